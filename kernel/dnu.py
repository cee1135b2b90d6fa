"""`_doesNotUnderstand`, the engine of self-creation: a missing message becomes a method.

When a message misses (`MessageNotUnderstood` from the receiver itself), `Learner.send`
turns it into a **mandate** — the receiver's slots, parents and methods, the selector, the
call's actual arguments and what the caller expects — and runs the cycle:

1. *claim*: the mandate is entered in `lobby.mandates` as pending, in its own transaction.
   Two processes that miss the same selector on the same object race on that one BTree key;
   the ZEO server lets one commit, the other sees the pending mandate and waits for it, so
   the method is generated once.
2. *write*: BRICK writes one method, constrained by a grammar that knows the slots and the
   arguments (`kernel.grammars`).
3. *audit*: the PersistenceGuardian judges the source.
4. *trial*: the method runs on the real receiver with the real arguments inside a savepoint
   of a transaction that is always aborted, under the sandbox budgets; the result is checked
   against the expectation if there is one.
5. *integrate*: the `Method` is installed with its provenance (persona, model, mandate,
   verdict, attempts) and the mandate marked learned, in one transaction whose note names the
   persona, selector and receiver; then the original message is sent again.

Each attempt samples a few candidates at rising temperatures and keeps the first that passes
audit and trial; a failed attempt feeds its reason back to the next (at most `attempts`).
Every outcome — no model, nonsense, a rejection, a failed trial, attempts exhausted — is
recorded on the mandate with a one-line reason; nothing is ever half-installed.
"""
import dataclasses
import logging
import os
import re
import socket
import time

from kernel import guardian, paths, sandbox
from kernel.errors import BatosError, MessageNotUnderstood
from kernel.grammars import method_grammar, parameter_names
from kernel.llm import LLMError
from kernel.values import matches, plain

log = logging.getLogger(__name__)

NO_EXPECTATION = object()

# Each attempt samples one candidate per temperature, first the most likely; the trial is
# the verifier. On SmolLM2-135M this took the benchmark's tasks from 72% to 97%.
DEFAULT_TEMPERATURES = (0.2, 0.6, 0.9, 1.2)

WRITER_INSTRUCTIONS = """\
You write exactly one Python method for an object of a living object system.
Read the object's slots as self.<slot>. Use the call's arguments by their parameter names.
Answer with the method only: a def line and one return line.

Example:
Slots: price = 10, quantity = 3
Write the method total, called as total().
def total(self):
    return self.price * self.quantity

Example:
Slots: radius = 2
Write the method scaled, called as scaled(x) with x = 5.
def scaled(self, x):
    return self.radius * x

Example:
Slots: first = 'Ada', last = 'Lovelace'
Write the method full_name, called as full_name().
def full_name(self):
    return self.first + ' ' + self.last
"""


def _uses_its_inputs(source, mandate):
    """True unless the method ignores the receiver and the arguments while it has some —
    a hard-coded copy of the expected result, not behaviour."""
    if not mandate.slots and not mandate.args:
        return True
    body = source.split(":", 1)[-1]
    names = ["self."] + parameter_names(len(mandate.args))
    return any(re.search(rf"\b{re.escape(n)}", body) for n in names)


class LearningFailed(BatosError):
    """The cycle could not produce a method; `outcome` holds the recorded reason. Final for
    this mandate (sending the message again starts a new one)."""

    def __init__(self, outcome):
        self.outcome = outcome
        super().__init__(outcome.reason)


@dataclasses.dataclass(frozen=True)
class Mandate:
    """What BRICK is asked to do: everything known about the missed message."""

    path: str
    receiver: str
    slots: dict
    parents: tuple
    methods: tuple
    selector: str
    args: tuple
    expect: object = NO_EXPECTATION

    @classmethod
    def of(cls, path, receiver, selector, args, expect):
        """The mandate for `selector` missed on `receiver` (read in the current transaction)."""
        slots = {}
        for obj in reversed(list(receiver._lineage())):  # nearest definition wins
            slots.update({k: v for k, v in obj.slots().items() if not k.startswith("_")})
        return cls(path=path, receiver=receiver.label,
                   slots={k: plain(v) for k, v in slots.items()},
                   parents=tuple(p.label for p in receiver.parents),
                   methods=tuple(sorted({s for o in receiver._lineage()
                                         for s in o._own_methods()})),
                   selector=selector, args=tuple(args), expect=expect)

    @classmethod
    def from_record(cls, record):
        """The mandate again from its plain record (as it travels to BRICK's service)."""
        return cls(path=record["path"], receiver=record["receiver"], slots=record["slots"],
                   parents=tuple(record["parents"]), methods=tuple(record["methods"]),
                   selector=record["selector"], args=tuple(record["args"]),
                   expect=record.get("expect", NO_EXPECTATION))

    @property
    def has_expectation(self):
        """True when the caller said what result it expects."""
        return self.expect is not NO_EXPECTATION

    def call_text(self):
        """How the message was sent, e.g. `scaled(x) with x = 5`."""
        names = parameter_names(len(self.args))
        called = f"{self.selector}({', '.join(names)})"
        if not names:
            return called
        return called + " with " + ", ".join(f"{n} = {a!r}" for n, a in zip(names, self.args))

    def prompt(self):
        """The mandate as BRICK first reads it.

        Measured on SmolLM2-135M: naming the expected result (or the receiver's other
        methods) in the first prompt makes the model copy numbers instead of writing the
        formula, so the expectation only reaches it as feedback on a failed trial.
        """
        slots = ", ".join(f"{k} = {v!r}" for k, v in self.slots.items()
                          if not isinstance(v, dict)) or "(none)"
        return f"Slots: {slots}\nWrite the method {self.selector}, called as {self.call_text()}."

    def record(self):
        """Plain data for provenance and the mandate ledger."""
        data = {"path": self.path, "receiver": self.receiver, "selector": self.selector,
                "args": plain(list(self.args)), "slots": self.slots,
                "parents": list(self.parents), "methods": list(self.methods)}
        if self.has_expectation:
            data["expect"] = self.expect
        return data


@dataclasses.dataclass
class Outcome:
    """What happened to one message: its result, and what was learned on the way."""

    result: object = None
    learned: bool = False
    source: str = None
    attempts: int = 0
    audit: dict = None
    persona: str = None
    model: str = None
    seconds: float = 0.0
    waited: bool = False
    reason: str = None
    history: list = dataclasses.field(default_factory=list)

    def as_json(self):
        """The outcome as one JSON-ready object (`batos send --json`)."""
        return {"result": plain(self.result), "learned": self.learned, "source": self.source,
                "attempts": self.attempts, "audit": self.audit, "persona": self.persona,
                "model": self.model, "seconds": round(self.seconds, 3), "waited": self.waited,
                "reason": self.reason, "history": self.history}


class MethodWriter:
    """BRICK at work: mandate in, one grammar-constrained method definition out."""

    def __init__(self, persona, codex, model, max_tokens=160):
        self.persona = persona
        self.codex = codex
        self.model = model
        self.model_id = model.model_id
        self.max_tokens = max_tokens

    def write(self, mandate, feedback, temperature=None):
        """The model's method for `mandate`, told what went wrong in earlier attempts."""
        user = mandate.prompt()
        if feedback:
            user += "\n" + "\n".join(feedback) + "\nWrite a corrected method."
        grammar = method_grammar(mandate.selector, mandate.slots, mandate.args)
        completion = self.model.complete(self.codex + "\n\n" + WRITER_INSTRUCTIONS, user,
                                         persona=self.persona, grammar=grammar,
                                         max_tokens=self.max_tokens, temperature=temperature)
        source = completion.text.strip("\n")
        return (source + "\n" if source else ""), completion


class Learner:
    """Sends messages and learns the methods they miss, through one image."""

    def __init__(self, image, models, writer="BRICK", attempts=3, wait_seconds=300.0,
                 user="batos", temperatures=DEFAULT_TEMPERATURES, writer_factory=None,
                 progress=None):
        self.image = image
        self.models = models
        self.writer_name = writer
        self.writer_factory = writer_factory or self.local_writer
        self.progress = progress or (lambda stage: None)
        self.attempts = attempts
        self.temperatures = tuple(temperatures)
        self.wait_seconds = wait_seconds
        self.user = user
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    # -- the message ------------------------------------------------------------------------

    def send(self, path, selector, args=(), expect=NO_EXPECTATION):
        """Send `selector(*args)` to the object at `path`; learn the method if it is missing.

        Returns an `Outcome`; raises `LearningFailed` (with the recorded outcome) when the
        method could not be learned, and whatever the method itself raises.
        """
        started = time.perf_counter()
        try:
            return Outcome(result=self._send(path, selector, args))
        except MessageNotUnderstood as miss:
            if not self._is_own_miss(path, selector, miss):
                raise
        outcome = self.learn(path, selector, args, expect)
        outcome.result = self._send(path, selector, args)
        outcome.seconds = time.perf_counter() - started
        return outcome

    def _send(self, path, selector, args):
        return self.image.run(lambda lobby: paths.resolve(lobby, path).send(selector, *args),
                              note=f"send {path} {selector}", user=self.user)

    def _is_own_miss(self, path, selector, miss):
        """True when the miss is the receiver's own, not one inside a method it ran."""
        if miss.selector != selector:
            return False
        oid = self.image.run(lambda lobby: paths.resolve(lobby, path)._p_oid)
        return miss.receiver_oid == oid

    # -- the cycle --------------------------------------------------------------------------

    def local_writer(self, claim):
        """BRICK in this process: a `MethodWriter` over the model its persona names."""
        return MethodWriter(self.writer_name, claim["codex"], self.models.get(claim["model_id"]))

    def learn(self, path, selector, args=(), expect=NO_EXPECTATION):
        """Run the cycle for `selector` missing on the object at `path`; return the Outcome.

        Returns at once (with `waited`) if another process learned it meanwhile; raises
        `LearningFailed` with the recorded reason.
        """
        self.progress("writing-method")
        claim = self.image.run(lambda lobby: self._claim(lobby, path, selector, args, expect),
                               note=f"mandate {path}.{selector}", user=self.user)
        if claim["status"] != "mine":
            return self._wait(path, selector, claim["key"])
        mandate = claim["mandate"]
        outcome = Outcome(persona=self.writer_name)
        try:
            writer = self.writer_factory(claim)
        except (LLMError, BatosError) as exc:
            return self._fail(claim, outcome, f"no model for {self.writer_name}: {exc}")
        outcome.model = writer.model_id
        feedback = []
        for attempt in range(1, self.attempts + 1):
            outcome.attempts = attempt
            for candidate, temperature in enumerate(self.temperatures, 1):
                try:
                    source, _completion = writer.write(mandate, feedback, temperature)
                    outcome.model = writer.model_id
                except (LLMError, BatosError) as exc:
                    return self._fail(claim, outcome, f"{self.writer_name}'s model failed: "
                                                      f"{exc}")
                problem = self._judge(path, mandate, source, outcome)
                outcome.history.append({"attempt": attempt, "candidate": candidate,
                                        "source": source, "problem": problem})
                if problem is None:
                    self._install(claim["key"], path, mandate, source, outcome)
                    self.progress("installed")
                    return outcome
                log.info("attempt %d.%d for %s.%s failed: %s", attempt, candidate, path,
                         selector, problem)
            feedback = [f"Your method was:\n{source.rstrip()}\nIt failed: {problem}"]
        return self._fail(claim, outcome, f"no working method after {self.attempts} attempts; "
                                           f"last: {problem}")

    def _claim(self, lobby, path, selector, args, expect):
        receiver = paths.resolve(lobby, path)
        key = f"{int.from_bytes(receiver._p_oid, 'big'):#x}.{selector}"
        if receiver.responds_to(selector):
            return {"status": "exists", "key": key}
        entries = lobby.mandates.entries
        current = entries.get(key)
        if current and current["status"] == "pending" \
                and time.time() - current["started"] < self.wait_seconds:
            return {"status": "pending", "key": key}
        mandate = Mandate.of(path, receiver, selector, args, expect)
        writer = getattr(lobby.personas, self.writer_name)
        entries[key] = {"status": "pending", "owner": self.owner, "started": time.time(),
                        "mandate": mandate.record(), "persona": self.writer_name}
        return {"status": "mine", "key": key, "mandate": mandate, "codex": writer.codex,
                "model_id": writer.model_id}

    def _judge(self, path, mandate, source, outcome):
        """None when `source` passes audit and trial; else the reason, for feedback."""
        self.progress("audit")
        verdict = guardian.audit(source)
        outcome.audit = verdict.as_record()
        if not verdict.ok:
            return "the guardian rejected it: " + "; ".join(str(v) for v in verdict.violations)
        if verdict.function_name != mandate.selector:
            return f"it defines {verdict.function_name}, not {mandate.selector}"
        self.progress("trial")
        try:
            result = self._trial(path, mandate, source)
        except sandbox.BudgetExceeded as exc:
            return f"the trial run was stopped: {exc}"
        except Exception as exc:  # the method's own failure is feedback, not a crash
            return f"the trial run raised {type(exc).__name__}: {exc}"
        if mandate.has_expectation and not matches(result, mandate.expect):
            return f"it returned {plain(result)!r} but the caller expects {mandate.expect!r}"
        if mandate.has_expectation and not _uses_its_inputs(source, mandate):
            return "it returns a constant; compute the result from the slots and arguments"
        return None

    def _trial(self, path, mandate, source):
        """Run `source` on the real receiver with the real arguments; change nothing."""
        with self.image.transaction(dry_run=True) as lobby:
            receiver = paths.resolve(lobby, path)
            savepoint = lobby._p_jar.transaction_manager.get().savepoint()
            try:
                receiver.define(mandate.selector, source, author=self.writer_name)
                return plain(receiver.send(mandate.selector, *mandate.args))
            finally:
                savepoint.rollback()

    def _install(self, key, path, mandate, source, outcome):
        def install(lobby):
            method = paths.resolve(lobby, path).define(
                mandate.selector, source, author=self.writer_name, model=outcome.model,
                mandate=mandate.record(), attempts=outcome.attempts)
            self._settle(lobby, key, "learned", outcome)
            return method.provenance["audit"]

        outcome.audit = self.image.run(
            install, note=f"{self.writer_name} learned {path}.{mandate.selector} "
                          f"(receiver {mandate.receiver})", user=self.writer_name)
        outcome.learned = True
        outcome.source = source
        log.info("%s learned %s.%s in %d attempt(s)", self.writer_name, path,
                 mandate.selector, outcome.attempts)

    def _fail(self, claim, outcome, reason):
        outcome.reason = reason
        mandate = claim["mandate"]
        self.image.run(lambda lobby: self._settle(lobby, claim["key"], "failed", outcome),
                       note=f"{self.writer_name} could not learn {mandate.path}."
                            f"{mandate.selector}: {reason}"[:400], user=self.writer_name)
        raise LearningFailed(outcome)

    def _settle(self, lobby, key, status, outcome):
        entry = dict(lobby.mandates.entries.get(key) or {})
        entry.update(status=status, finished=time.time(), attempts=outcome.attempts,
                     reason=outcome.reason, model=outcome.model, history=outcome.history)
        lobby.mandates.entries[key] = entry

    def _wait(self, path, selector, key):
        """Another process holds the mandate: wait for its method (or its failure)."""
        deadline = time.monotonic() + self.wait_seconds
        delay = 0.05
        while True:
            state = self.image.run(lambda lobby: (
                paths.resolve(lobby, path).responds_to(selector),
                dict(lobby.mandates.entries.get(key) or {})))
            responds, entry = state
            if responds:
                return Outcome(waited=True, persona=entry.get("persona"),
                               model=entry.get("model"), attempts=entry.get("attempts", 0))
            if entry.get("status") == "failed":
                raise LearningFailed(Outcome(waited=True, reason=entry.get("reason"),
                                             attempts=entry.get("attempts", 0)))
            if time.monotonic() > deadline:
                raise LearningFailed(Outcome(waited=True, reason=(
                    f"waited {self.wait_seconds:g} s for another process to learn "
                    f"{path}.{selector}")))
            time.sleep(delay)  # polling the image for the other process's commit
            delay = min(delay * 2, 0.5)
