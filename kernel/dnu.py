"""`_doesNotUnderstand`, the engine of self-creation: a missing message becomes a method.

When a message misses (`MessageNotUnderstood` from the receiver itself), `Learner.send`
turns it into a **mandate** — the receiver's slots, parents and methods, the selector, the
call's actual arguments, what the caller expects, and the image's most similar methods as
examples (`kernel.library`) — and runs the cycle:

1. *claim*: the mandate is entered in `lobby.mandates` as pending, in its own transaction.
   Two processes that miss the same selector on the same object race on that one BTree key;
   the ZEO server lets one commit, the other sees the pending mandate and waits for it, so
   the method is generated once.
2. *write*: BRICK writes candidate methods, constrained by a grammar that knows the slots and
   the arguments (`kernel.grammars`), one per sampling temperature; a literal that copies an
   input's value is read from that input instead (`reads_its_inputs`).
3. *audit*: the PersistenceGuardian judges each source.
4. *trial*: each accepted candidate runs on the real receiver with the real arguments and on
   probe calls with other values of the same kinds (`kernel.behaviour`), inside savepoints of
   a transaction that is always aborted, under the sandbox budgets.
5. *decide*: with an expectation, the first candidate whose real result matches it is final;
   when no sample of any attempt meets it, the small expressions that do are enumerated and
   the model chooses among them (`kernel.synthesis`, `MethodWriter.fit`).
   Without one, the candidates are clustered by behaviour. The image's own method for the
   selector on an object of the same shape (a *precedent*) is chosen first; else the
   clusters are weighed by their votes, ties broken by the model's likelihood of writing
   the code plus its likelihood of the selector given the code (the "channel" score).
   A behaviour is installed as **final** only when the image's knowledge backs it: a
   precedent that no other precedent contradicts, over the receiver's very slot names, or
   read by kind, or of a selector with fewer words the rest of which name a slot
   (`highest` for `highest_temperature`), and written by a sample too. Where the image
   holds no such method, one that says the selector of other things (an *analogy*,
   `analogies`) is chosen first, never final. The samples'
   agreement alone is final only
   with `agreement_final` (a clear majority, the channel preferring it too, a behaviour
   that depends on its inputs): a 135M model's agreement is no fact.
   Otherwise more candidates are sampled within `seconds`, and if the evidence still
   disagrees the best behaviour is installed as **provisional**: it answers calls, but says
   so in its provenance, in `batos inspect`, in replies and events, never teaches other
   methods, and is relearned by the first call whose expectation contradicts it (a call
   whose expectation it meets, or `batos confirm` / the console's `/confirm`, makes it
   final).
6. *integrate*: the `Method` is installed with its provenance (persona, model, mandate,
   verdict, attempts, the evidence) and the mandate settled, in one transaction whose note
   names the persona, selector and receiver; then the original message is sent again.

Why provisional rather than asking the caller: most misses happen where nobody can answer a
question — a method calling a method, a script, another worker — and a question would stall
them all; a provisional method answers now with the best-supported behaviour, is marked as a
guess everywhere it shows, and is corrected by the first expectation that contradicts it.

Every outcome — no model, nonsense, a rejection, a failed trial, attempts exhausted — is
recorded on the mandate with a one-line reason; nothing is ever half-installed.
"""
import ast
import dataclasses
import datetime
import itertools
import logging
import math
import os
import re
import socket
import time

from kernel import behaviour, guardian, library, methods, paths, sandbox, synthesis
from kernel.errors import BatosError, MessageNotUnderstood
from kernel.grammars import BODIES, header, kind_of, method_grammar, parameter_names
from kernel.llm import LLMError
from kernel.values import matches, plain

log = logging.getLogger(__name__)

NO_EXPECTATION = object()

# Each attempt samples one candidate per temperature, first the most likely.
DEFAULT_TEMPERATURES = (0.2, 0.6, 0.9, 1.2)
DEFAULT_SECONDS = 8.5         # time to keep sampling while the candidates disagree
DEFAULT_EXAMPLES = 6          # the image's nearest methods a mandate carries as examples
DEFAULT_VIEWS = 2             # prompts that show BRICK different ones of them
TRIAL_CPU_SECONDS = 0.5       # a candidate's call in the trial (the sandbox budget caps it)
WRITE_SECONDS = 4.0           # one candidate's generation, cut off after this
MIN_WRITE_SECONDS = 0.5       # less left before the deadline: no more samples this attempt
OVERRUN_SECONDS = 6.0         # past the deadline, samples while none has run (`_write_seconds`)
JUDGING_SECONDS = 2.5         # kept before the deadline for judging the samples (`_decide`)
FIT_SECONDS = 4.0             # left before the deadline for reading the tied behaviours both ways
AGREEMENT_FINAL = False       # whether the samples' agreement alone can make a method final
FREE_WRITING = True           # without an expectation, the coolest sample is written freely
FINAL_VOTES = 3               # samples that agree (final with AGREEMENT_FINAL, or overruling
FINAL_MARGIN = 2              # an exact precedent), with this many times any other's votes
PRECEDENT_VOTES = 1           # samples that make a precedent read by kind or related final
# a selector's first word that makes it a yes-or-no question (`asks_a_question`)
QUESTION_WORDS = ("is", "has", "have", "can", "should", "needs", "contains", "includes",
                  "was", "were", "are", "does", "do", "will", "allows")
# a selector's first word that makes it a command (`gives_a_command`): verbs seldom a noun's
# modifier (not `start`, `charge`, `release`: `start_time`, `charge_amount`, `release_date`)
COMMAND_WORDS = ("add", "remove", "reset", "clear", "increment", "decrement", "deposit",
                 "withdraw", "move", "rename", "toggle", "mark", "cancel", "update", "append",
                 "insert", "delete", "pause", "resume", "lock", "unlock", "enable", "disable",
                 "refill", "raise", "increase", "decrease", "archive", "restore", "bump",
                 "swap", "rotate", "accept", "reject", "approve", "log", "set", "borrow",
                 "enroll", "hire", "promote")
# a selector's last word that names a measure (`_answers_as_named`): seldom what a command
# changes (not `cost`, `fee`, `tax`: `charge_fee`), so its method changes nothing
MEASURE_WORDS = ("percentage", "percent", "ratio", "average", "mean", "median", "total",
                 "sum", "area", "volume", "perimeter", "circumference", "bmi", "density",
                 "speed", "pace", "difference")
# selector beginnings whose answer is a number (`_answers_as_named`)
COUNT_PREFIXES = ("count", "number_of", "how_many", "total", "sum", "average", "mean")
FILLER_WORDS = frozenset(("in", "of", "the", "as", "a", "an"))  # inside a selector (`_meaning`)
# words that say how many: a selector with one is no kin of the selector without it
# (`first_three` is not `first`, `top_two` not `top`), whatever slots there are (`_relation`)
QUANTITY_WORDS = frozenset(("one", "two", "three", "four", "five", "six", "seven", "eight",
                            "nine", "ten", "dozen", "pair", "half", "double", "twice",
                            "triple"))
# words of a slot name that do not change what it holds (`_same_name`; its units, compared
# as written, unlike `UNIT_WORDS`, which says which words name the same unit)
NAME_QUALIFIERS = frozenset(("name", "km", "m", "cm", "mm", "kg", "g", "mi", "ft", "in",
                             "lb", "lbs", "l", "ml", "usd", "eur", "gbp"))
# a unit word of a name → the unit it says: a slot in minutes is not read as one in hours,
# and `volume_liters` is not `volume` of slots in centimetres (`_units`)
UNIT_WORDS = {word: unit for unit, words in (
    ("second", "sec secs second seconds"), ("minute", "min mins minute minutes"),
    ("hour", "hr hrs hour hours"), ("day", "day days"), ("week", "week weeks"),
    ("month", "month months"), ("year", "year years"), ("millimetre", "mm"),
    ("centimetre", "cm"), ("metre", "m metre metres meter meters"),
    ("kilometre", "km kilometre kilometres kilometer kilometers"), ("mile", "mi mile miles"),
    ("foot", "ft foot feet"), ("inch", "inch inches"), ("yard", "yard yards"),
    ("gram", "g gram grams"), ("kilogram", "kg kilo kilos kilogram kilograms"),
    ("pound", "lb lbs pound pounds"), ("ounce", "oz ounce ounces"),
    ("tonne", "ton tons tonne tonnes"), ("millilitre", "ml"),
    ("litre", "litre litres liter liters"), ("gallon", "gallon gallons"),
    ("celsius", "celsius"), ("fahrenheit", "fahrenheit"), ("kelvin", "kelvin"),
    ("cent", "cent cents"), ("dollar", "dollar dollars usd"), ("euro", "euro euros eur"),
    ("sterling", "gbp"), ("kmh", "kmh kph"), ("mph", "mph"))
    for word in words.split()}
# words that make a slot the present moment or amount: `current_day` is not `event_day`
NOW_WORDS = frozenset(("current", "today", "now", "present"))
# words that say the same in a selector (`_analogy`), each → the one it is read as
SAME_WORDS = {"remaining": "left", "percentage": "percent", "pct": "percent"}
# the part a slot plays in a measure, by a word of its name (`_role`): an analogy reads a
# whole onto a whole (`days_allowed` onto `duration_minutes`) and a part onto a part
ROLE_WORDS = {word: role for role, words in (
    ("whole", "capacity total limit max maximum budget goal target allowance allowed quota "
              "duration length size planned income seats period full available stock "
              "games questions attempts"),
    ("part", "used spent taken sold booked occupied done filled consumed elapsed spending "
             "completed attended correct wins passengers"),
    ("now", "current today now present")) for word in words.split()}
# words that only link a selector's others: sharing one says nothing (`_analogy`)
LINKING_WORDS = frozenset(("for", "to", "with", "by", "at", "from", "in", "of", "on"))
ANALOGIES = 8                 # the most analogies a mandate carries (`analogies`)
ANALOGOUS_READINGS = 2        # an analogy read more ways than this is no precedent
RENAMINGS = 24                # the most ways of reading a precedent's slots that are tried
SCORED_BEHAVIOURS = 4         # the most voted behaviours whose channel and fit are computed
SEARCH_SECONDS = 3.0          # enumerating expressions that meet a missed expectation
SEARCH_TRIALS = 3             # the likeliest of them tried in the trial

WRITER_INSTRUCTIONS = """\
You write exactly one Python method for an object of a living object system.
Read the object's slots as self.<slot>. Use the call's arguments by their parameter names.
A method named like a question returns the answer. A method named like a command
(add, increment, deposit, reset, clear, ...) changes the object's slots and then writes
self._p_changed = True.
Answer with the method only.

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

Example:
Slots: visits = 4
Write the method record_visit, called as record_visit().
def record_visit(self):
    self.visits = self.visits + 1
    self._p_changed = True
    return self.visits"""

# The channel: the model reads a candidate's code, its own name hidden, and is asked for a
# name. On 25 tuning cases (the right method against three near misses) this form ranked the
# right one first 17 times; other phrasings 8-15 (bench/README.md).
CHANNEL_PROMPT = "{source}\n\n# A good name for this method is"


# where a free sample's text ends (`MethodWriter.write`): after its method a model writes a
# fence, another definition, a comment, a call of it or the prompt's next example
FREE_STOPS = ("\n```", "\ndef ", "\nclass ", "\n#", "\nprint(", "\nExample")


def method_only(text):
    """A freely written method without what the model wrote after it: its `def` line and
    the indented lines that follow, up to the first line that is not (a fence, prose, a
    call of it)."""
    lines = text.strip("\n").split("\n")
    kept = lines[:1]
    for line in lines[1:]:
        if line.strip() and not line.startswith((" ", "\t")):
            break
        kept.append(line)
    return "\n".join(kept).rstrip()


def slots_it_invents(source, mandate):
    """The slots `source` assigns that the receiver does not have (`self.is_paid = True`
    for a slot named `paid`): a command changes the receiver's own state, and a new slot
    would make the method's own guess part of the object. (The grammar cannot write one; a
    free sample can, `MethodWriter.write`.)"""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    targets = [t for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AugAssign))
               for t in (node.targets if isinstance(node, ast.Assign) else [node.target])]
    return sorted({t.attr for t in targets if isinstance(t, ast.Attribute)
                   and isinstance(t.value, ast.Name) and t.value.id == "self"}
                  - set(mandate.slots) - {"_p_changed"})


def learner_settings(settings):
    """`Learner` keyword arguments from a home's `[dnu]` table (missing keys: the defaults)."""
    return {"writer": settings.get("writer", "BRICK"),
            "attempts": int(settings.get("attempts", 3)),
            "wait_seconds": float(settings.get("wait_seconds", 300)),
            "temperatures": tuple(settings.get("temperatures", DEFAULT_TEMPERATURES)),
            "seconds": float(settings.get("seconds", DEFAULT_SECONDS)),
            "examples": int(settings.get("examples", DEFAULT_EXAMPLES)),
            "views": int(settings.get("views", DEFAULT_VIEWS)),
            "search_seconds": float(settings.get("search_seconds", SEARCH_SECONDS)),
            "free_writing": bool(settings.get("free_writing", FREE_WRITING)),
            "agreement_final": bool(settings.get("agreement_final", AGREEMENT_FINAL))}


def _uses_its_inputs(source, mandate):
    """True unless the method ignores the receiver and the arguments while it has some —
    a hard-coded copy of the expected result, not behaviour."""
    if not mandate.slots and not mandate.args:
        return True
    body = source.split(":", 1)[-1]
    names = ["self."] + parameter_names(len(mandate.args))
    return any(re.search(rf"\b{re.escape(n)}", body) for n in names)


def reads_its_inputs(source, mandate):
    """`source` with every literal that copies an input's value read from that input instead
    (`self.price * 0.25` for `tax` with tax_rate = 0.25 is `self.price * self.tax_rate`, and
    `self.balance - 30` for `after_withdrawal(x)` with x = 30 is `self.balance - x`); the
    source unchanged when it copies none. The model copies the values the prompt shows; what
    the caller means is the input, whatever its value. Only values no everyday constant
    (0, 1, 2, a letter, blank text) can be told apart from a constant, only inputs the method
    does not read already, and only values that one input alone holds."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    copies = _copied_inputs(tree, mandate)
    if not copies:
        return source

    class Read(ast.NodeTransformer):
        def visit_JoinedStr(self, node):
            return node  # an f-string's parts must stay text

        def visit_Constant(self, node):
            name = copies.get(_literal_key(node.value))
            if name is None:
                return node
            return ast.copy_location(ast.parse(name, mode="eval").body, node)

    return ast.unparse(Read().visit(tree)) + "\n"


def _copied_inputs(tree, mandate):
    """literal key → how to read the input whose value the method writes as a literal."""
    read = {f"self.{node.attr}" for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Load) and isinstance(node.value, ast.Name)
            and node.value.id == "self"} | {
        node.id for node in ast.walk(tree) if isinstance(node, ast.Name)
        and isinstance(node.ctx, ast.Load)}
    inputs = [(f"self.{k}", v) for k, v in mandate.slots.items()] + list(
        zip(parameter_names(len(mandate.args)), mandate.args))
    holders = {}
    for name, value in inputs:
        key = _literal_key(value)
        if key is not None:
            holders.setdefault(key, []).append(name)
    written = {_literal_key(node.value) for node in ast.walk(tree)
               if isinstance(node, ast.Constant)}
    return {key: names[0] for key, names in holders.items()
            if len(names) == 1 and key in written and names[0] not in read}


def _literal_key(value):
    """A value that a literal copying it can be recognised by (None for everyday ones)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return ("number", float(value)) if value not in (0, 1, 2) else None
    if isinstance(value, str):
        return ("text", value) if len(value.strip()) > 1 else None
    return None


def _writes_the_expectation(source, expect):
    """True when the expected result (other than 0, 1, 2, True, False or "") appears in
    the method as a literal: the answer copied, whatever else the method computes."""
    if isinstance(expect, bool) or expect in (0, 1, 2, "") or not isinstance(
            expect, (int, float, str)):
        return False
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return any(isinstance(node, ast.Constant) and type(node.value) is not bool
               and node.value == expect for node in ast.walk(tree))


class LearningFailed(BatosError):
    """The cycle could not produce a method; `outcome` holds the recorded reason. Final for
    this mandate (sending the message again starts a new one)."""

    def __init__(self, outcome):
        self.outcome = outcome
        super().__init__(outcome.reason)


class NotProvisional(BatosError):
    """`confirm` was asked for a method that is not a provisional learned one. Final."""


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
    examples: tuple = ()
    analogies: tuple = ()   # with no expectation: methods that say it of other things
    unknown_words: tuple = ()  # the selector's words no method of the image has: unless
    # the writer's model knows them as words, its samples' agreement is no fact (`_decide`)

    @classmethod
    def of(cls, path, receiver, selector, args, expect, examples=(), analogies=(),
           unknown_words=()):
        """The mandate for `selector` missed on `receiver` (read in the current transaction)."""
        return cls(path=path, receiver=receiver.label,
                   slots={k: plain(v) for k, v in library.visible_slots(receiver).items()},
                   parents=tuple(p.label for p in receiver.parents),
                   methods=tuple(sorted({s for o in receiver._lineage()
                                         for s in o._own_methods()})),
                   selector=selector, args=tuple(args), expect=expect,
                   examples=tuple(examples), analogies=tuple(analogies),
                   unknown_words=tuple(unknown_words))

    @classmethod
    def from_record(cls, record):
        """The mandate again from its plain record (as it travels to BRICK's service)."""
        return cls(path=record["path"], receiver=record["receiver"], slots=record["slots"],
                   parents=tuple(record["parents"]), methods=tuple(record["methods"]),
                   selector=record["selector"], args=tuple(record["args"]),
                   expect=record.get("expect", NO_EXPECTATION),
                   examples=tuple(record.get("examples", ())),
                   analogies=tuple(record.get("analogies", ())),
                   unknown_words=tuple(record.get("unknown_words", ())))

    @property
    def has_expectation(self):
        """True when the caller said what result it expects."""
        return self.expect is not NO_EXPECTATION

    def prompt(self):
        """The mandate as BRICK reads it: the image's nearest examples, then the task.

        Measured on SmolLM2-135M: naming the expected result (or the receiver's other
        methods) in the first prompt makes the model copy numbers instead of writing the
        formula, so the expectation only reaches it as feedback on a failed trial.
        """
        task = library.task_text(self.selector, self.slots, self.args)
        return "\n\n".join(list(self.examples) + [task])

    def views(self, count):
        """The mandate as `count` prompts, each showing BRICK other examples (the nearest
        first shared out, each prompt's closest example last): agreement that survives a
        change of examples is behaviour the model means, not an example copied."""
        ranked = list(reversed(self.examples))  # most alike first
        return [dataclasses.replace(self, examples=tuple(reversed(ranked[view::count])))
                for view in range(count)]

    def record(self):
        """Plain data for provenance and the mandate ledger."""
        data = {"path": self.path, "receiver": self.receiver, "selector": self.selector,
                "args": plain(list(self.args)), "slots": self.slots,
                "parents": list(self.parents), "methods": list(self.methods),
                "examples": list(self.examples)}
        if self.analogies:
            data["analogies"] = list(self.analogies)
        if self.unknown_words:
            data["unknown_words"] = list(self.unknown_words)
        if self.has_expectation:
            data["expect"] = self.expect
        return data


@dataclasses.dataclass
class Outcome:
    """What happened to one message: its result, and what was learned on the way."""

    result: object = None
    learned: bool = False
    provisional: bool = False
    confirmed: bool = False
    source: str = None
    attempts: int = 0
    audit: dict = None
    persona: str = None
    model: str = None
    seconds: float = 0.0
    waited: bool = False
    reason: str = None
    evidence: dict = None
    history: list = dataclasses.field(default_factory=list)
    decided: tuple = None  # `decide`'s last (candidates, prompts, examples), for replays

    def as_json(self):
        """The outcome as one JSON-ready object (`batos send --json`)."""
        return {"result": plain(self.result), "learned": self.learned,
                "provisional": self.provisional, "confirmed": self.confirmed,
                "source": self.source, "attempts": self.attempts, "audit": self.audit,
                "persona": self.persona, "model": self.model,
                "seconds": round(self.seconds, 3), "waited": self.waited,
                "reason": self.reason, "evidence": self.evidence, "history": self.history}


class MethodWriter:
    """BRICK at work: mandate in, one grammar-constrained method definition out; and the
    model's judgement of finished candidates (the channel score)."""

    def __init__(self, persona, codex, model, max_tokens=96):
        self.persona = persona
        self.codex = codex
        self.model = model
        self.model_id = model.model_id
        self.max_tokens = max_tokens

    def write(self, mandate, feedback, temperature=None, seconds=WRITE_SECONDS, free=False):
        """The model's method for `mandate`, told what went wrong in earlier attempts,
        its generation cut off after `seconds`. With
        an expectation the first attempt writes one `return` (measured: 28/29 of the
        expectation tasks that way; the whole language at once, 22/29); a selector named as a
        question (`asks_a_question`) is never answered by a command. A `free` sample is
        written without the grammar, as the model writes Python (`range`, local names, a
        command under an `if`), and cut to the method (`method_only`); the guardian and the
        trial judge it like any other (`Learner.free_writing`)."""
        user = mandate.prompt()
        if feedback:
            user += "\n" + "\n".join(feedback) + "\nWrite a corrected method."
        bodies = ("query",) if mandate.has_expectation and not feedback else \
            tuple(b for b in BODIES if b != "command") if asks_a_question(mandate.selector) \
            else BODIES
        grammar = None if free else method_grammar(
            mandate.selector, mandate.slots, mandate.args, with_header=False, bodies=bodies,
            fence=True)
        completion = self.model.complete(self.codex + "\n\n" + WRITER_INSTRUCTIONS, user,
                                         persona=self.persona, grammar=grammar,
                                         max_tokens=self.max_tokens, temperature=temperature,
                                         start=header(mandate.selector, mandate.args),
                                         stop=FREE_STOPS if free else (), seconds=seconds)
        source = method_only(completion.text) if free else \
            completion.text.rstrip("`").strip("\n")
        return (source + "\n" if source else ""), completion

    def fit(self, mandate, sources):
        """The model's log-likelihood of each source's body as its answer to the mandate
        (its own prompt, the def line given): how likely BRICK was to write each of the
        methods proposed by `kernel.synthesis`, for choosing among them."""
        start = header(mandate.selector, mandate.args)
        return self.model.answers(self.codex + "\n\n" + WRITER_INSTRUCTIONS, mandate.prompt(),
                                  [s[len(start):] if s.startswith(start) else s
                                   for s in sources], start=start, persona=self.persona)

    def knows_word(self, word):
        """Whether BRICK's model knows `word` as a word (`LanguageModel.knows_word`)."""
        return self.model.knows_word(word)

    def score(self, mandate, sources):
        """The model's log-likelihood of the selector as the name of each source (its own
        name hidden): how well the code, read back, is named by the message that asked."""
        anonymous = f"def {mandate.selector}("
        return self.model.likelihoods(
            [CHANNEL_PROMPT.format(source=s.rstrip().replace(anonymous, "def method(", 1))
             for s in sources], " " + mandate.selector, persona=self.persona)


@dataclasses.dataclass
class Verdict:
    """The learner's decision without an expectation: the behaviour to install and whether
    the evidence makes it final."""

    cluster: behaviour.Cluster
    final: bool
    reason: str
    settled: bool = None  # True when more samples could not make it final (default: final)

    def __post_init__(self):
        if self.settled is None:
            self.settled = self.final

    def evidence(self, clusters, valid):
        """Plain data for provenance: how the candidates behaved (the five most voted
        behaviours and the image's own methods for the selector) and why this one."""
        shown = clusters[:5] + [c for c in clusters[5:] if c.precedent]
        return {"final": self.final, "reason": self.reason, "samples": valid,
                "behaviours": [{"votes": c.votes, "source": c.representative.source,
                                "result": c.representative.result,
                                "changes_state": behaviour.changes_state(c.signature),
                                "precedent": c.precedent,
                                "channel": None if c.channel is None else round(c.channel, 3)}
                               for c in shown]}


def shape(source, numbered=True):
    """A method's body with its slots and parameters read as placeholders, its literals and
    operators kept: `self.first + ' ' + self.last` is `A + ' ' + B`, `self.name + ' ' +
    self.name` is `A + ' ' + A` (`numbered=False`: every input is one placeholder, and the
    two are one shape). None when the source does not parse."""
    try:
        function = ast.parse(source).body[0]
    except (SyntaxError, IndexError):
        return None
    if not isinstance(function, ast.FunctionDef):
        return None
    params = {a.arg for a in function.args.args[1:]}
    names = {}

    def placeholder(name, ctx):
        label = f"INPUT{names.setdefault(name, len(names))}" if numbered else "INPUT"
        return ast.Name(id=label, ctx=ctx)

    class Abstract(ast.NodeTransformer):
        def visit_Attribute(self, node):
            if isinstance(node.value, ast.Name) and node.value.id == "self" \
                    and node.attr != "_p_changed":
                return placeholder("self." + node.attr, node.ctx)
            return self.generic_visit(node)

        def visit_Name(self, node):
            return placeholder(node.id, node.ctx) if node.id in params else node

    body = [Abstract().visit(statement) for statement in function.body]
    return ast.dump(ast.Module(body=body, type_ignores=[]))


@dataclasses.dataclass(frozen=True)
class Examples:
    """The methods BRICK's prompt showed it, as what a copy of one would look like."""

    bodies: frozenset = frozenset()     # their code, the def line left out
    shapes: frozenset = frozenset()     # their numbered shapes
    outlines: frozenset = frozenset()   # their shapes with every input alike

    def copied(self, source):
        """True when `source` is one of them word for word, or one of them with its inputs
        filled in wrongly (the shape of an example, but not its pattern of inputs:
        `self.name + ' ' + self.name` after `self.first + ' ' + self.last`)."""
        return _body(source) in self.bodies or (
            shape(source, numbered=False) in self.outlines
            and shape(source) not in self.shapes)


def _body(source):
    return source.split("\n", 1)[-1].strip()


def precedents_by_kind(mandate):
    """How the image already answers this message on objects of this shape: (a kind of
    `behaviour.PRECEDENT_KINDS`, groups of sources) for each kind found, strongest first.
    A group per example of the mandate's examples that defines its own
    selector — or a selector of fewer of its words (`_relation`: "related", "kin"), renamed
    — with its number of arguments and argument scales, on an object with as many slots of
    the same kinds as the receiver. An example with the receiver's very slot names — give
    or take a unit or `_name` (`_same_name`: `rectangle.area` over length_m and width_m for
    length and width) — is one source ("exact"); one with other names is its source once
    for every way of reading its slots from the receiver's slots of the same kinds
    (`triangle.perimeter` over a, b, c for a receiver with side_a, side_b, side_c) —
    `Learner._decide` keeps such a group only when all its readings behave alike — and
    counts only when no example has the very slot names ("read": `triangle.area`, base *
    height / 2, read onto a rectangle's width and height, was installed final beside
    `rectangle.area`). An example over fewer slots is no precedent (`initials` of first and
    last name, for a receiver with a middle name too, was installed wrong and final on the
    blind set), unless the receiver's other slots are of kinds it has none of ("partial",
    `_within`). A question's contrary answers `not` it (`_opposites`), and a count of what
    an example lists is `len` of it (`_counted`). An example or one of the mandate's
    `analogies` that says the selector of other things (`_analogy`) is "analogous": each of
    its readings a group of its own (the samples and the model choose among them), none when
    it reads more than `ANALOGOUS_READINGS` ways."""
    kinds = _kinds_of(mandate.slots)
    found = {kind: [] for kind in behaviour.PRECEDENT_KINDS}
    for text in mandate.examples + mandate.analogies:
        match = re.search(r"^def (\w+)\(self((?:, \w+)*)\):.*", text, re.M | re.S)
        if not match or match.group(2).count(",") != len(mandate.args) \
                or not _same_scales(library.shown_arguments(text), mandate.args):
            continue
        name = match.group(1)
        relation = _relation(mandate.selector, name, mandate.slots)
        example = _kinds_of(library.shown_slots(text))
        source = _counted(mandate.selector, name, match.group(0).rstrip().replace(
            f"def {name}(", f"def {mandate.selector}(", 1) + "\n")
        if relation is None and _opposites(mandate.selector, name):
            relation, source = "related", _negated(source)
        alignment = None
        if relation is None:
            alignment = _analogy(mandate.selector, name, mandate.slots, example)
            relation = "analogous" if alignment else None
        if relation is None or source is None:
            continue
        if sorted(example.values()) != sorted(kinds.values()):
            within = _within(example, kinds) if relation == "exact" else None
            if within is not None:
                found["partial"].append([_renamed(source, within)])
            continue
        if alignment:
            readings = _readings(source, example, kinds, alignment)
            if len(readings) <= ANALOGOUS_READINGS:
                found[relation].extend([reading] for reading in readings)
            continue
        same = _same_names(example, kinds)
        if relation == "exact" and same is None:
            relation = "read"
        found[relation].append([_renamed(source, same)] if same is not None
                               else _readings(source, example, kinds))
    return [(kind, groups) for kind in behaviour.PRECEDENT_KINDS
            if (groups := [group for group in found[kind] if group])]


def precedents(mandate):
    """The strongest kind of `precedents_by_kind` and its groups, or (None, [])."""
    return next(iter(precedents_by_kind(mandate)), (None, []))


def _relation(selector, name, slots):
    """How an example's selector `name` bears on the mandate's `selector`: "exact" (the
    same), "related" (`selector` is `name` said of one of the receiver's slots:
    `highest_temperature` of `highest` on an object with `temperatures`, `average_score`
    of `average` with `scores`), "kin" (`name`'s words are some of `selector`'s, the rest
    naming no slot: `tip` for `tip_amount`), or None. Never when the words it lacks
    say how many (`QUANTITY_WORDS`)."""
    if name == selector:
        return "exact"
    words, known = _meaning(selector), _meaning(name)
    if not known or not known <= words or (words - known) & QUANTITY_WORDS:
        return None
    stems = {library.singular(w) for slot in slots for w in slot.split("_")}
    if all(w in stems for w in words - known):
        return "related"
    return None if _units(selector) - _units(name) else "kin"


def _meaning(selector):
    """A selector's words without plural `s`, and without the small words between them that
    name nothing (`weight_in_pounds`: weight, pound; `count_items` and `item_count` are
    the same words)."""
    words = selector.split("_")
    return {library.singular(w) for n, w in enumerate(words) if n == 0 or w not in FILLER_WORDS}


def _counted(selector, name, source):
    """`source` answering how many when `selector` asks how many of what `name` lists
    (`count_passing` of `passing`, `[n for n in self.grades if n >= self.pass_mark]`:
    `len(...)` of it); else `source`. A `name` that does not answer a list makes the count
    fail in the trial, and it is no precedent."""
    if not any(selector == f"{prefix}_{name}" for prefix in ("count", "number_of", "how_many")):
        return source
    return _rewritten(source, "len({})") or source


def _opposites(selector, name):
    """True when two questions differ by one word only, and that word means the contrary
    (`is_unpaid` and `is_paid`; `is_closed` and `is_open`): one answers `not` the other."""
    if not asks_a_question(selector):
        return False
    words, other = selector.split("_"), name.split("_")
    differ = [(a, b) for a, b in zip(words, other) if a != b]
    return len(words) == len(other) and len(differ) == 1 and (
        differ[0] in library.OPPOSITE_WORDS or differ[0][::-1] in library.OPPOSITE_WORDS)


def _negated(source):
    """A one-expression question answering the contrary, or None for a longer body."""
    return _rewritten(source, "not ({})")


def _rewritten(source, form):
    """A method of one `return` returning its expression put in `form` (`"len({})"`), or
    None for a longer body."""
    head, _, body = source.partition("\n")
    expression = re.fullmatch(r"\s*return (.+)\n?", body)
    return f"{head}\n    return {form.format(expression.group(1))}\n" if expression else None


def _readings(source, example, kinds, alignment=None):
    """`source` with its slots renamed to the receiver's, once per kind-keeping assignment
    that keeps the most of them under their own names (`_same_name`): `bus.is_full` over
    passengers and seats is read onto passengers and capacity one way only, and
    `first[0] + last[0]` onto first_name and last_name (read both ways, the readings
    disagreed and the precedent was lost). With the `alignment` of an analogy (`_analogy`:
    the words only its selector has, the words only the mandate's has), a slot named by the
    one's words is read onto a slot named by the other's, a slot named by neither onto one
    named by neither, and a whole onto a whole (`_role`); their units are not compared."""
    used = [name for name in example if re.search(rf"\bself\.{name}\b", source)]
    theirs, ours = alignment or (set(), set())
    assignments = [targets for targets in itertools.permutations(kinds, len(used))
                   if all(example[u] == kinds[t]
                          and not _clash(_without(u, theirs), _without(t, ours))
                          for u, t in zip(used, targets))]

    def kept_names(targets):
        aligned = 0 if alignment is None else sum(
            (_names_any(u, theirs) == _names_any(t, ours))
            + (_role(u) is not None and _role(u) == _role(t)) for u, t in zip(used, targets))
        return aligned + sum(map(_same_name, used, targets))

    kept = max(map(kept_names, assignments), default=0)
    found = []
    for targets in assignments:
        if kept_names(targets) < kept:
            continue
        found.append(_renamed(source, dict(zip(used, targets))))
        if len(found) > RENAMINGS:
            return []
    return found


def analogies(catalogue, selector, slots, args, count=ANALOGIES):
    """The `count` examples of the `catalogue` (`library.Example`s) most like the mandate
    that say its selector of other things (`_analogy`), with as many arguments: precedents
    of the last resort, looked for in the whole image, as the few examples a prompt shows
    seldom hold one."""
    found = [e for e in catalogue if len(e.args) == len(args)
             and _analogy(selector, e.selector, slots, e.slots)]
    return sorted(found, key=lambda e: -library.similarity(e, selector, slots, args))[:count]


def _analogy(selector, name, slots, example):
    """How an example's selector `name` says the mandate's `selector` of other things, or
    None: the two share a word (`SAME_WORDS` alike: `left`, `remaining`), and the words
    only one of them has each name a slot of its own object (`minutes_left` over
    duration_minutes and elapsed_minutes, `days_remaining` over days_allowed and
    days_taken: the same operation said of minutes and of days). Returns (the example's own words, the
    mandate's own words), which `_readings` aligns the slots by. Sharing only a word that
    links others (`LINKING_WORDS`) or a unit is no analogy: `flour_for(x)` is flour /
    servings * x, `fare_for(x)` is not fare / price_per_km * x; `price_for_grams(x)` is
    price / weight_g * x, `grams_for_servings(x)` is not flour_grams / servings * x."""
    words, known = _synonymous(_meaning(selector)), _synonymous(_meaning(name))
    ours, theirs = words - known, known - words
    if not (words & known) - LINKING_WORDS - set(UNIT_WORDS) or not ours or not theirs:
        return None
    if not all(any(_names_any(slot, {word}) for slot in slots) for word in ours) or \
            not all(any(_names_any(slot, {word}) for slot in example) for word in theirs):
        return None
    return theirs, ours


def _role(slot):
    """The part a slot's name says it plays in a measure (`ROLE_WORDS`): "whole", "part"
    or "now"; None for none or several."""
    roles = {ROLE_WORDS[w] for w in slot.split("_") if w in ROLE_WORDS}
    return roles.pop() if len(roles) == 1 else None


def _synonymous(words):
    return {SAME_WORDS.get(word, word) for word in words}


def _without(slot, words):
    """A slot's name without the words of `words` (an analogy's own words: the minutes of
    `duration_minutes` are what it says in place of days, no clash of units)."""
    return "_".join(w for w in slot.split("_") if not _names_any(w, words))


def _names_any(slot, words):
    """True when a slot's name holds one of `words` (compared without plural `s`)."""
    return bool(_synonymous({library.singular(w) for w in slot.split("_")}) & words)


def _renamed(source, renaming):
    """`source` reading `self.<new>` for every `self.<old>` of `renaming`."""
    return re.sub(r"\bself\.(\w+)\b",
                  lambda m: "self." + renaming.get(m.group(1), m.group(1)), source)


def _same_names(example, kinds):
    """The renaming of an example's slots onto the receiver's when each has one and only one
    of the same name (`_same_name`) and kind, else None."""
    renaming = _by_name(example, kinds)
    return renaming if renaming is not None and len(renaming) == len(kinds) else None


def _within(example, kinds):
    """The renaming of an example's slots onto some of the receiver's (`_by_name`) when the
    receiver's other slots are of kinds the example has none of: `chore.mark_done` over
    done is over a task's done beside its title, but `initials` over first and last is not
    over first, middle and last."""
    renaming = _by_name(example, kinds)
    if renaming is None:
        return None
    others = set(kinds) - set(renaming.values())
    if not others or any(kinds[slot] in example.values() for slot in others):
        return None
    return renaming


def _by_name(example, kinds):
    """Each of an example's slots → the one receiver slot of its kind and the same name
    (`_same_name`), no two onto one; None when a slot has none or several."""
    renaming = {}
    for name, kind in example.items():
        same = [slot for slot in kinds if kinds[slot] == kind and _same_name(name, slot)]
        if len(same) != 1:
            return None
        renaming[name] = same[0]
    return renaming if len(set(renaming.values())) == len(renaming) else None


def _same_name(name, other):
    """True when two slot names differ at most by `name` or a unit only one of them has
    (`width`, `width_m`; `first`, `first_name`; not `height_cm`, `height_m`). Another word
    may change the meaning: seats are not seats_taken, and a shared word read days_borrowed
    as due_day on the tuning sets."""
    def parts(slot):
        words = slot.split("_")
        return [w for w in words if w not in NAME_QUALIFIERS] or words, \
            {w for w in words if w in NAME_QUALIFIERS and w != "name"}
    (core, units), (other_core, other_units) = parts(name), parts(other)
    return core == other_core and (units == other_units or not units or not other_units)


def _units(name):
    """The units a name says (`time_minutes`, `mins`: minute)."""
    return {UNIT_WORDS[w] for w in name.split("_") if w in UNIT_WORDS}


def _clash(name, other):
    """True when two slot names say different units (`time_minutes`, `hours`), or only one
    of them the present (`NOW_WORDS`): the one is not read as the other (`speed_kmh` over
    distance_km and time_minutes, read onto hours, and `days_until` over event_day, read
    onto current_day, were installed wrong and final)."""
    units, other_units = _units(name), _units(other)
    now, other_now = (bool(NOW_WORDS & set(n.split("_"))) for n in (name, other))
    return (bool(units) and bool(other_units) and units != other_units) or now != other_now


def _kinds_of(slots):
    """Slot name → the grammar's kind, for the slots a prompt shows; a number between -1
    and 1 is a kind of its own (a `tip_rate` of 0.15 is no `tip_rate` of 15: `bill *
    tip_rate / 100` was installed wrong and final on the blind set)."""
    return {k: "fraction" if _fraction(v) else kind_of(v) for k, v in slots.items()
            if kind_of(v) is not None}


def _fraction(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and 0 < abs(value) < 1


def _same_scales(example_args, args):
    """False when a number is a fraction in one call and not in the other: `with_tax(20)`
    (a percentage) is no precedent for `with_tax(0.2)` (a rate)."""
    if example_args is None or len(example_args) != len(args):
        return False
    return all(_fraction(a) == _fraction(b) for a, b in zip(example_args, args))


def shown_examples(mandate):
    """The `Examples` of the instructions and of the mandate, except those that answer the
    mandate's own selector: writing what the image already answers to the same message
    (`area` as another object's `area` computes it) is agreeing with the image, not copying
    an unrelated example."""
    sources = [match.group(0) for text in [WRITER_INSTRUCTIONS, *mandate.examples]
               for match in re.finditer(r"^def (\w+)\(.*?(?=\n\n|\nExample:|\Z)", text,
                                        re.M | re.S)
               if match.group(1) != mandate.selector]
    return Examples(frozenset(_body(s) for s in sources),
                    frozenset(shape(s) for s in sources) - {None},
                    frozenset(shape(s, numbered=False) for s in sources) - {None})


def decide(candidates, prompts=1, examples=Examples(), agreement_final=AGREEMENT_FINAL):
    """The behaviour to install from judged `candidates` (channel scores filled in), or None
    when none ran; `prompts` is how many different prompts (views) they were written for.

    Behaviours that ignore their inputs (the same answer on every call, no change), only
    echo one (`plural` → `self.animal`: an input its selector does not name, returned
    unchanged), ignore an argument or do not answer as their selector is named (`_counts`)
    count only when nothing else ran, and then more samples are asked for while time
    allows (the verdict is not settled); so they are while the samples have not agreed
    (`_agreed`), since more of them may change the choice though not make it final. The
    behaviour chosen is `_choose`'s: the
    image's own method for the selector first (a precedent, `precedents`, run on this
    receiver: the knowledge a 135M model lacks), then the samples' votes. A precedent is
    decided by `_precedent_verdict`. Any other behaviour rests on the samples' agreement
    alone, and is final only with `agreement_final` (and then only when no precedent
    behaves otherwise,
    when it has `FINAL_VOTES` samples and `FINAL_MARGIN` times the votes of any
    other, written for at least two of the prompts when there were several, when no other
    behaviour — its neighbours one change away included — reads more like the selector,
    when it does more than return an input unchanged,
    and when its code is not copied from one of the `examples` BRICK was shown (on the
    tuning set the model wrote `.upper()` for 8 of 8 samples of four unrelated selectors
    after one example showed it)). By default it is not: on the held-out sets of session
    8, the finals the samples' agreement made were right 14 times and wrong 11 times
    (`longest_word` → `max(self.words)` on 4 of 4 samples), against 92 and 3 for the
    finals precedents made. A 135M model agreeing with itself is no evidence that it is
    right; a larger model configured for BRICK may earn `[dnu] agreement_final = true`.
    """
    groups = behaviour.clusters(candidates)
    if not groups:
        return None
    varying = [c for c in groups if _counts(c)] or groups
    valid = sum(c.votes for c in varying)
    best = _choose(varying)
    if best.precedent:
        return _precedent_verdict(best, [c for c in groups if c is not best], valid)
    rival = max((c.channel for c in varying if c is not best and c.channel is not None),
                default=None)
    if not best.votes:
        reason = "no sample behaved this way; the model reads the selector best from it"
    elif any(c.precedent for c in groups if c is not best):
        reason = "the image's own method for this selector on another object behaves otherwise"
    elif not _agreed(best, varying):
        reason = f"only {best.votes} of {valid} samples behaved this way"
    elif prompts > 1 and best.views < 2:
        reason = "only the samples of one prompt behaved this way"
    elif rival is not None and best.channel is not None and rival > best.channel:
        reason = "a behaviour one change away reads more like the selector"
    elif _constant(best.signature):
        reason = "it gives the same answer whatever the inputs"
    elif best.representative.echoes:
        reason = "it only returns one of its inputs unchanged"
    elif not _reads_every_argument(best.representative.source):
        reason = "it ignores an argument of the call"
    elif _repeats_a_text(best):
        reason = "it writes the same text slot twice"
    elif not _counts(best):
        reason = "it does not answer as its selector is named (a question, a count, a command)"
    elif examples.copied(best.representative.source):
        reason = "it looks copied from an example the prompt showed"
    else:
        agreed = f"{best.votes} of {valid} samples from {best.views} prompt(s) agree on it"
        if agreement_final:
            return Verdict(best, True, agreed)
        reason = f"{agreed}, but no method of the image answers this message, and the " \
                 "model's agreement alone is no fact"
    return Verdict(best, False, reason,
                   settled=not agreement_final and _counts(best) and _agreed(best, varying))


def _precedent_verdict(best, others, valid):
    """The verdict on `best`, a behaviour of the image's own method for the selector. It is
    final when no other precedent behaves otherwise and it does not ignore its inputs, and:
    over the receiver's very slot names ("exact"), unless the samples agree on something
    else; read onto them by kind ("read") or of a related selector ("related"), when
    `PRECEDENT_VOTES` samples behave so too; of a "kin" selector, never (`tip` for
    `tip_amount` is a guess about what "amount" adds), nor an analogy (the readings of
    one, or analogies that behave otherwise, are chosen among as `_choose` does).
    Measured without a model (`bench/precedents.py`) on the held-out, tuning and blind
    sets: 49 of 49 exact precedents right, 21 of 22 read ones (`pair.average`, (a + b) / 2,
    read onto total and count was not)."""
    if best.precedent == "analogous":
        return Verdict(best, False, f"{best.votes} of {valid} samples behave as the image's "
                                    "method that says this of other things, read onto these "
                                    "slots (an analogy)", settled=True)
    says = f"{best.votes} of {valid} samples behave as the image's own method for this " \
           "selector on another object"
    if any(c.precedent for c in others):
        return Verdict(best, False, "the image's own methods for this selector on other "
                                    "objects behave in different ways", settled=True)
    if _constant(best.signature):
        return Verdict(best, False, "it gives the same answer whatever the inputs",
                       settled=True)
    if best.precedent == "exact":
        if any(_agreed(c, others + [best]) for c in others):
            return Verdict(best, False, f"{says}, over these very slots, but the samples agree "
                                        "on another behaviour")
        return Verdict(best, True, f"{says}, over these very slots")
    if best.precedent == "kin":
        return Verdict(best, False, f"{says}, but a selector of fewer words, and the words "
                                    "it lacks name none of these slots", settled=True)
    if best.precedent == "partial":
        return Verdict(best, False, f"{says}, but over only some of these slots", settled=True)
    if best.votes >= PRECEDENT_VOTES:
        return Verdict(best, True, says)
    return Verdict(best, False, f"only {says}, read onto these slots")


def _choose(clusters):
    """The image's own behaviour for the selector when there is one (a precedent; over the
    very slot names before one read by kind), else the most voted behaviour; ties broken by
    the model reading it both ways: its
    likelihood of writing the code for the mandate (`MethodWriter.fit`) plus its
    likelihood of the selector as the code's name (the channel), as coder-reviewer
    reranking does (Zhang et al., 2022: the product of both directions ranks programs
    better than either). Tuning set, replayed on one run's samples: 20 of 45 right against
    19 with the fit first and the channel after; the channel alone had lost to the fit
    (bench/README.md). A neighbour no sample wrote never replaces it: it only keeps it from
    being final (`decide`). (Replacing a voted behaviour without a clear majority by a
    neighbour the channel read 0.5 nats better was tried: on the tuning set it turned
    `self.total / self.count` for `average` and `self.gross - self.deductions` for
    `net_pay` into `%`, and righted none.)"""
    return max(_most_voted(clusters),
               key=lambda c: (c.precedent == "exact", _read_both_ways(c)))


def _decided_by_the_image(clusters):
    """True when one precedent has the most votes among those `decide` chooses from: the
    model's readings (channel and fit, the costliest judgements of BRICK's model) cannot
    change the verdict then, so they are not computed."""
    top = _most_voted([c for c in clusters if _counts(c)] or clusters)
    return len(top) == 1 and bool(top[0].precedent)


def _most_voted(clusters):
    """The behaviours `_choose` chooses among: of the precedents if there are any, else of
    all, those with the most votes. A precedent of a "kin" selector that no sample wrote
    leads nothing (`total` for `total_deposits`, `joined` for `joined_with_dashes`: on the
    list tuning set, all five such were wrong, and both kin that samples wrote too right)."""
    pool = [c for c in clusters if c.precedent and (c.votes or c.precedent != "kin")] \
        or clusters
    top = max((c.votes for c in pool), default=0)
    return [c for c in pool if c.votes == top]


def _write_seconds(mandate, candidates, deadline, reading=0.0):
    """How long the next sample may take to write: `WRITE_SECONDS`, less near the deadline
    of a send without an expectation (`JUDGING_SECONDS` are kept for judging, and `reading`
    for reading its prompt first when it is not the last one read), or None when too little
    is left: the send is over its time (on tasks with no precedent, four samples and their
    judging took 10–14 s). While no sample has run there is nothing to judge, and a sample
    that is cut off is time thrown away: samples get their whole `WRITE_SECONDS` until
    `OVERRUN_SECONDS` past the deadline. (Cut to 0.5 s, every sample after the deadline of
    a send whose first ones failed stopped mid-expression, and the send failed after 30 s.)"""
    if mandate.has_expectation:
        return WRITE_SECONDS
    if any(c.valid for c in candidates):
        left = deadline - time.monotonic() - JUDGING_SECONDS - reading
    else:
        left = deadline + OVERRUN_SECONDS - time.monotonic() - reading
    return min(WRITE_SECONDS, left) if left >= MIN_WRITE_SECONDS else None


def _time_for_more(candidates, started, deadline):
    """Whether two more samples, at the pace of those written since `started` (their
    judging included), and the judging after them fit before `deadline`: the next attempt
    is begun then, and cut short where time runs out (`_write_seconds`)."""
    pace = (time.monotonic() - started) / max(len(candidates), 1)
    return time.monotonic() + 2 * pace + JUDGING_SECONDS <= deadline


def _may_be_final(counted, prompts):
    """Whether the samples' most voted behaviour of those that count could be installed as
    final on their agreement (`decide`): a clear majority (`_agreed`), from two prompts when
    there were several. Only then are its neighbours judged and read, for they only keep a
    behaviour from being final: judging them otherwise took most of a send's time with a
    1.5B model (up to 14 channel readings, 0.7 s each on 2 cores), and on the mixed tuning
    set, replayed without them, not one choice changed (bench/README.md, session 18)."""
    top = counted[0]
    return _agreed(top, counted) and (prompts < 2 or top.views >= 2)


def _tied(voted):
    """The behaviours among `voted` that `_choose` can only tell apart by reading them both
    ways: those of the most votes in its pool, when there are several. (The fit is the
    costliest judgement of a message: the writer's whole prompt decoded once more, some 2 s
    on 2 cores; where the votes decide, it is not computed.)"""
    tied = _most_voted(voted)
    return tied if len(tied) > 1 else []


def _read_both_ways(cluster):
    """Fit plus channel (the fit counts 0 where it was not computed: one voted behaviour)."""
    return (cluster.representative.fit or 0.0) + _channel(cluster)


def _agreed(best, clusters):
    """True when `best` has `FINAL_VOTES` samples and `FINAL_MARGIN` times any other's."""
    runner_up = max((c.votes for c in clusters if c is not best), default=0)
    return best.votes >= FINAL_VOTES and best.votes >= FINAL_MARGIN * runner_up


def _counts(cluster):
    """False for a behaviour that ignores its inputs or only echoes one, ignores an
    argument of the call (`name_with_title(x)` → `self.last_name + ' ' + self.last_name`),
    writes a text slot twice (`_repeats_a_text`) or does not answer as its selector is
    named (`_answers_as_named`)."""
    source = cluster.representative.source
    return not _constant(cluster.signature) and not cluster.representative.echoes \
        and _reads_every_argument(source) and not _repeats_a_text(cluster) \
        and _answers_as_named(cluster)


def _repeats_a_text(cluster):
    """True when a text answer joins the same slot twice, whole (`mailing_address` →
    `self.street + ', ' + self.street + ', ' + self.postcode`): an example's outline filled
    in with one input in two places. Its item or slice is another part
    (`self.word[0].upper() + self.word[1:]`)."""
    if not isinstance(cluster.representative.result, str):
        return False
    whole = re.findall(r"\bself\.(\w+)\b(?![\[.(\w])", cluster.representative.source)
    return len(whole) != len(set(whole))


def _answers_as_named(cluster):
    """False when the selector is named as a question (`asks_a_question`) or a count, and the
    behaviour changes a slot or answers other than True or False, or than a number
    (`is_overdrawn` → `self.balance = -20.0`; `count_over_limit` → a list), or as a
    measure (`MEASURE_WORDS`) and it changes a slot (`win_percentage` →
    `self.wins = self.wins - …`), or as a command
    (`gives_a_command`), and it changes nothing (`log_workout(x)` →
    `return self.workouts * x * 3`) — unless it is the image's own method for the very
    selector, which says what the word means here (the seed's `add(x)` is
    `self.value + x`); one of fewer words does not (`add` read onto `add_flour(x)`:
    `self.flour_kg + x`)."""
    selector = _selector_of(cluster.representative.source)
    result = cluster.representative.result
    if gives_a_command(selector) and cluster.precedent not in ("exact", "read"):
        return behaviour.changes_state(cluster.signature)
    if asks_a_question(selector):
        answers = isinstance(result, bool)
    elif any(selector == p or selector.startswith(p + "_") for p in COUNT_PREFIXES):
        answers = isinstance(result, (int, float)) and not isinstance(result, bool)
    elif selector.rsplit("_", 1)[-1] in MEASURE_WORDS:
        answers = True
    else:
        return True
    return answers and not behaviour.changes_state(cluster.signature)


def asks_a_question(selector):
    """True for a selector named as a yes-or-no question (`is_full`, `has_item`,
    `can_vote`): its method answers True or False and changes nothing."""
    return selector.split("_", 1)[0] in QUESTION_WORDS


def gives_a_command(selector):
    """True for a selector named as a command (`add_item`, `reset`, `log_workout`): its
    method changes the receiver's slots."""
    return selector.split("_", 1)[0] in COMMAND_WORDS


def _selector_of(source):
    match = re.match(r"def (\w+)\(", source)
    return match.group(1) if match else ""


def _reads_every_argument(source):
    """True when the method's body reads each of its parameters."""
    match = re.match(r"def \w+\(self((?:, \w+)*)\):", source)
    if not match:
        return True
    body = source[match.end():]
    return all(re.search(rf"\b{name}\b", body)
               for name in match.group(1).split(", ")[1:])


def _channel(cluster):
    return -math.inf if cluster.channel is None else cluster.channel


def _constant(signature):
    """True when every call returned the same and nothing changed: behaviour that ignores
    the receiver and the arguments."""
    return len(signature) > 1 and len({part for part in signature}) == 1 \
        and signature[0][0] == "ok" and not signature[0][2]


class Learner:
    """Sends messages and learns the methods they miss, through one image."""

    def __init__(self, image, models, writer="BRICK", attempts=3, wait_seconds=300.0,
                 user="batos", temperatures=DEFAULT_TEMPERATURES, writer_factory=None,
                 progress=None, seconds=DEFAULT_SECONDS, examples=DEFAULT_EXAMPLES,
                 views=DEFAULT_VIEWS, search_seconds=SEARCH_SECONDS,
                 agreement_final=AGREEMENT_FINAL, free_writing=FREE_WRITING):
        self.image = image
        self.models = models
        self.writer_name = writer
        self.writer_factory = writer_factory or self.local_writer
        self.progress = progress or (lambda stage: None)
        self.attempts = attempts
        self.temperatures = tuple(temperatures)
        self.free_writing = free_writing
        self.wait_seconds = wait_seconds
        self.seconds = seconds
        self.examples = examples
        self.views = max(1, views)
        self.search_seconds = search_seconds
        self.agreement_final = agreement_final
        self.user = user
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    # -- the message ------------------------------------------------------------------------

    def send(self, path, selector, args=(), expect=NO_EXPECTATION):
        """Send `selector(*args)` to the object at `path`; learn the method if it is missing.
        A provisional method meets the caller's expectation first: one it contradicts is
        learned again, one it meets becomes final.

        Returns an `Outcome`; raises `LearningFailed` (with the recorded outcome) when the
        method could not be learned, and whatever the method itself raises.
        """
        started = time.monotonic()
        outcome = self.check(path, selector, args, expect, since=started)
        if outcome is None:
            try:
                return Outcome(result=self._send(path, selector, args))
            except MessageNotUnderstood as miss:
                if not self._is_own_miss(path, selector, miss):
                    raise
            outcome = self.learn(path, selector, args, expect, since=started)
        outcome.result = self._send(path, selector, args)
        outcome.seconds = time.monotonic() - started
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

    def _provisional_source(self, path, selector):
        """The source of the receiver's own provisional method `selector`, else None."""
        return self.image.run(lambda lobby: provisional_source(paths.resolve(lobby, path),
                                                               selector))

    def check(self, path, selector, args, expect, since=None):
        """Before a call with an expectation: when the receiver's method is provisional, its
        trial result meets the expectation and it becomes final, or contradicts it and the
        method is learned again (the expectation deciding). Returns that `Outcome`, or None
        when there is no expectation or no provisional method."""
        if expect is NO_EXPECTATION:
            return None
        source = self._provisional_source(path, selector)
        if source is None:
            return None
        try:
            result = self._trial(path, selector, source, [behaviour.Call({}, tuple(args))])[1]
            met = matches(result, expect)
        except (Exception, sandbox.BudgetExceeded):  # a failure contradicts too
            met = False
        if met:
            self.image.run(lambda lobby: confirm(lobby, path, selector, by="an expectation"),
                           note=f"{self.user} confirmed {path}.{selector} (its result met an "
                                f"expectation)", user=self.user)
            return Outcome(confirmed=True, source=source)
        log.info("the expectation %r contradicts provisional %s.%s; learning it again",
                 expect, path, selector)
        return self.learn(path, selector, args, expect, relearn=True, since=since)

    # -- the cycle --------------------------------------------------------------------------

    def local_writer(self, claim):
        """BRICK in this process: a `MethodWriter` over the model its persona names."""
        return MethodWriter(self.writer_name, claim["codex"], self.models.get(claim["model_id"]))

    def learn(self, path, selector, args=(), expect=NO_EXPECTATION, relearn=False,
              since=None):
        """Run the cycle for `selector` missing on the object at `path`; return the Outcome.
        With `relearn`, a provisional method of that selector is replaced. The time to sample
        while the candidates disagree (`seconds`) counts from `since` (`time.monotonic()`:
        the send that missed it), so that it bounds the whole send, not the sampling alone.

        Returns at once (with `waited`) if another process learned it meanwhile; raises
        `LearningFailed` with the recorded reason.
        """
        deadline = (time.monotonic() if since is None else since) + self.seconds
        self.progress("writing-method")
        claim = self.image.run(
            lambda lobby: self._claim(lobby, path, selector, args, expect, relearn),
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
        try:
            return self._search(claim, mandate, writer, outcome, deadline)
        except (LLMError, BatosError) as exc:
            if isinstance(exc, LearningFailed):
                raise
            return self._fail(claim, outcome, f"{self.writer_name}'s model failed: {exc}")

    def _search(self, claim, mandate, writer, outcome, deadline):
        """Sample, judge and decide until a method is installed or the attempts run out; no
        attempt starts unless two more samples and their judging fit before `deadline`
        (`_time_for_more`). A free sample that fails is followed, in its attempt, by one
        under the grammar at the coolest temperature, told why: the grammar names no slot
        the receiver lacks (on the mixed tuning set the free sample had written
        `self.is_paid` for `paid` twice when told so, the grammar's sample `self.paid`)."""
        path = mandate.path
        calls = [behaviour.Call({}, mandate.args)] if mandate.has_expectation else \
            behaviour.probe_calls(mandate.selector, mandate.slots, mandate.args)
        started = time.monotonic()
        candidates, feedback, problem = [], [], None
        views = mandate.views(1 if mandate.has_expectation else self.views)
        read, first = None, None  # the view whose prompt was read last; the first write's time
        for attempt in range(1, self.attempts + 1):
            outcome.attempts = attempt
            correction = None  # what the next sample is told of a free sample that failed
            for number, (view, temperature) in enumerate(self._plan(len(views), attempt), 1):
                seconds = _write_seconds(mandate, candidates, deadline,
                                         reading=first if read not in (None, view) else 0.0)
                if seconds is None:
                    break
                if correction is not None:
                    temperature = min(self.temperatures)
                free = self._writes_freely(mandate, temperature) and correction is None
                began = time.monotonic()
                written, _completion = writer.write(
                    views[view], feedback + ([correction] if correction else []),
                    temperature, seconds, free=free)
                first = time.monotonic() - began if first is None else first
                read = view
                outcome.model = writer.model_id
                source = reads_its_inputs(written, mandate)
                candidate = self._judge(path, mandate, source, calls, temperature)
                candidate.view = view
                candidates.append(candidate)
                outcome.history.append({"attempt": attempt, "candidate": number,
                                        "source": candidate.source,
                                        "problem": candidate.problem,
                                        "result": candidate.result})
                if candidate.source != written:
                    outcome.history[-1]["written"] = written
                if candidate.valid and mandate.has_expectation:
                    self._install(claim, mandate, candidate.source, outcome)
                    return outcome
                correction = None
                if not candidate.valid:
                    problem, failed = candidate.problem, candidate.source
                    log.info("attempt %d.%d for %s.%s failed: %s", attempt, number, path,
                             mandate.selector, problem)
                    if free:
                        correction = _told(failed, problem)
            if mandate.has_expectation and attempt == self.attempts \
                    and self.search_seconds > 0 \
                    and self._search_expressions(claim, mandate, writer, outcome):
                return outcome
            verdict = None if mandate.has_expectation else self._decide(
                writer, mandate, candidates, len({v.examples for v in views}), calls,
                deadline, outcome)
            if verdict is not None and (verdict.settled or attempt == self.attempts
                                        or not _time_for_more(candidates, started, deadline)):
                valid = sum(1 for c in candidates if c.valid)
                outcome.evidence = verdict.evidence(behaviour.clusters(candidates), valid)
                self._install(claim, mandate, verdict.cluster.representative.source, outcome,
                              provisional=not verdict.final)
                return outcome
            if problem is not None:
                feedback = [_told(failed, problem)]
        return self._fail(claim, outcome, f"no working method after {self.attempts} attempts; "
                                           f"last: {problem}")

    def _search_expressions(self, claim, mandate, writer, outcome):
        """Every attempt's samples missed the expectation: propose the small expressions that
        meet it (`kernel.synthesis`), let the model choose (`MethodWriter.fit`) and install the
        likeliest that passes the audit and the trial. False when none does."""
        self.progress("searching")
        calls = behaviour.probe_calls(mandate.selector, mandate.slots, mandate.args)
        behaviours = synthesis.proposals(mandate.slots, mandate.args, calls, mandate.expect,
                                         seconds=self.search_seconds)
        if not behaviours:
            return False
        start = header(mandate.selector, mandate.args)
        sources = [f"{start}    {body}\n" for bodies in behaviours for body in bodies]
        fits = dict(zip(sources, writer.fit(mandate, sources)))
        best = sorted((max((f"{start}    {body}\n" for body in bodies), key=fits.get)
                       for bodies in behaviours), key=lambda source: -fits[source])
        real = [behaviour.Call({}, mandate.args)]
        for source in best[:SEARCH_TRIALS]:
            candidate = self._judge(mandate.path, mandate, source, real)
            outcome.history.append({"attempt": outcome.attempts, "candidate": "search",
                                    "source": source, "problem": candidate.problem,
                                    "result": candidate.result, "fit": round(fits[source], 3),
                                    "proposals": len(behaviours)})
            if candidate.valid:
                self._install(claim, mandate, candidate.source, outcome)
                return True
        return False

    def _writes_freely(self, mandate, temperature):
        """Whether a sample is written without the grammar (`MethodWriter.write`): with
        `free_writing`, the coolest of each attempt's samples for a send without an
        expectation. The grammar was made for a 135M model that wandered; the 1.5B coder
        writes Python it cannot say: `range`, a command under an `if`, two slots changed.
        On the mixed tuning set, its coolest samples were right on 46 and 43 of 60 tasks
        free against 42 and 42 under the grammar, 47 right answers against 42–43; freeing
        the warmer samples too lost (T 0.9: right 25 of 48 against 31 of 49) (bench/README.md,
        session 18). With an expectation the grammar stays: its one `return` is 29/29."""
        return self.free_writing and not mandate.has_expectation \
            and temperature == min(self.temperatures)

    def _plan(self, views, attempt):
        """(view, temperature) of each candidate of an attempt: the temperatures shared out
        among the views, one view's candidates after another, the last view of an attempt
        first in the next (its prompt is still in the model's cache)."""
        order = range(views) if attempt % 2 else reversed(range(views))
        return [(view, t) for view in order for t in self.temperatures[view::views]]

    def _decide(self, writer, mandate, candidates, prompts, calls, deadline, outcome):
        """`decide`, after judging the neighbours of the most voted behaviour that counts
        (one change away from it) when the samples agree on it (`_may_be_final`), scoring
        the channel of the most voted behaviours and of those no sample wrote, and the fit
        of those tied for the most votes (`_tied`) while `FIT_SECONDS` are left before the
        `deadline` (else the channel alone breaks the tie). What it decides on is kept in
        `outcome.decided` (`bench/choice.py`)."""
        self.progress("judging")
        groups = behaviour.clusters(candidates)
        if not groups:
            return None
        if not any(c.precedent for c in candidates):
            candidates += self._precedents(mandate, calls)
        known = {c.source for c in candidates}
        counted = [c for c in groups if _counts(c)] or groups
        if _may_be_final(counted, prompts):
            for source in behaviour.neighbours(counted[0].representative.source):
                if source not in known:
                    neighbour = self._judge(mandate.path, mandate, source, calls)
                    neighbour.sampled = False
                    candidates.append(neighbour)
        groups = behaviour.clusters(candidates)
        voted = [c for c in groups if c.votes and _counts(c)][:SCORED_BEHAVIOURS]
        by_the_image = _decided_by_the_image(groups)
        unscored = [] if by_the_image else [c.representative for c in groups if not c.votes] \
            + [c.representative for c in voted]
        unscored = [c for c in unscored if c.channel is None]
        if unscored:
            for candidate, score in zip(unscored, writer.score(mandate, [c.source for c in
                                                                          unscored])):
                candidate.channel = score
        unfit = [c.representative for c in _tied(voted) if c.representative.fit is None]
        if unfit and not by_the_image and time.monotonic() + FIT_SECONDS < deadline:
            for candidate, fit in zip(unfit, writer.fit(mandate, [c.source for c in unfit])):
                candidate.fit = fit
        examples = shown_examples(mandate)
        outcome.decided = (candidates, prompts, examples)
        unheard = [w for w in mandate.unknown_words if not writer.knows_word(w)]
        return decide(candidates, prompts, examples=examples,
                      agreement_final=self.agreement_final and not unheard)

    def _precedents(self, mandate, calls):
        """The image's own methods for the selector, judged on the receiver: of each group of
        the strongest kind of `precedents_by_kind` that has one, one reading when every
        reading of it that runs behaves alike."""
        for kind, groups in precedents_by_kind(mandate):
            found = []
            for group in groups:
                judged = [self._judge(mandate.path, mandate, source, calls)
                          for source in group]
                ran = [c for c in judged if c.valid]
                if ran and len({c.signature for c in ran}) == 1:
                    ran[0].sampled, ran[0].precedent = False, kind
                    found.append(ran[0])
            if found:
                return found
        return []

    def _claim(self, lobby, path, selector, args, expect, relearn=False):
        receiver = paths.resolve(lobby, path)
        key = f"{int.from_bytes(receiver._p_oid, 'big'):#x}.{selector}"
        if receiver.responds_to(selector) and not (
                relearn and provisional_source(receiver, selector) is not None):
            return {"status": "exists", "key": key}
        entries = lobby.mandates.entries
        current = entries.get(key)
        if current and current["status"] == "pending" \
                and time.time() - current["started"] < self.wait_seconds:
            return {"status": "pending", "key": key}
        catalogue, slots = library.catalogue(lobby), library.visible_slots(receiver)
        examples = library.nearest(catalogue, selector, slots, args, self.examples)
        found = analogies(catalogue, selector, slots, args) if expect is NO_EXPECTATION else []
        mandate = Mandate.of(path, receiver, selector, args, expect,
                             [e.prompt() for e in examples], [e.prompt() for e in found],
                             library.unknown_words(catalogue, selector))
        writer = getattr(lobby.personas, self.writer_name)
        entries[key] = {"status": "pending", "owner": self.owner, "started": time.time(),
                        "mandate": mandate.record(), "persona": self.writer_name}
        return {"status": "mine", "key": key, "mandate": mandate, "codex": writer.codex,
                "model_id": writer.model_id}

    def _judge(self, path, mandate, source, calls, temperature=None):
        """The candidate `source` after audit and trial: its problem, or its behaviour."""
        candidate = behaviour.Candidate(source, temperature)
        self.progress("audit")
        verdict = guardian.audit(source)
        if not verdict.ok:
            candidate.problem = "the guardian rejected it: " + "; ".join(
                str(v) for v in verdict.violations)
        elif verdict.function_name != mandate.selector:
            candidate.problem = f"it defines {verdict.function_name}, not {mandate.selector}"
        elif invented := slots_it_invents(source, mandate):
            candidate.problem = "it sets " + ", ".join(f"self.{name}" for name in invented) \
                + ", which the receiver does not have"
        if candidate.problem:
            return candidate
        self.progress("trial")
        try:
            candidate.signature, candidate.result = self._trial(path, mandate.selector, source,
                                                                calls)
        except sandbox.BudgetExceeded as exc:
            candidate.problem = f"the trial run was stopped: {exc}"
        except Exception as exc:  # the method's own failure is feedback, not a crash
            missing = _missing_slot(exc, source, mandate)
            meant = missing and _slot_meant(source, mandate)
            if meant:
                log.info("%s.%s: a sample read self.%s, which %s lacks; read as self.%s",
                         path, mandate.selector, missing, mandate.receiver, meant)
                renamed = re.sub(rf"\bself\.{re.escape(missing)}\b", f"self.{meant}", source)
                return self._judge(path, mandate, renamed, calls, temperature)
            candidate.problem = f"the trial run raised {type(exc).__name__}: {exc}"
            if missing:
                candidate.problem += f" (the object has no slot {missing}; its slots are " \
                                     f"{', '.join(mandate.slots)})"
        else:
            candidate.problem = self._unexpected(source, mandate, candidate.result)
            echoed = behaviour.echoed_input(candidate.signature, calls, mandate.slots)
            candidate.echoes = echoed is not None and \
                echoed.removeprefix("self.") not in mandate.selector
        return candidate

    @staticmethod
    def _unexpected(source, mandate, result):
        """Why a result that ran is still wrong for the caller, else None."""
        if not mandate.has_expectation:
            return None
        if not matches(result, mandate.expect):
            return f"it returned {plain(result)!r} but the caller expects {mandate.expect!r}"
        if not _uses_its_inputs(source, mandate):
            return "it returns a constant; compute the result from the slots and arguments"
        if _writes_the_expectation(source, mandate.expect):
            return (f"it writes the expected result {mandate.expect!r} instead of computing "
                    "it")
        return None

    def _trial(self, path, selector, source, calls):
        """Run `source` on every call — the receiver itself first, then probe receivers
        (clones of it with the call's slots) — and change nothing. Returns the behaviour
        signature and the real call's plain result; raises what the real call raised."""
        with self.image.transaction(dry_run=True) as lobby, \
                sandbox.budgets(cpu_seconds=min(sandbox.LIMITS.cpu_seconds, TRIAL_CPU_SECONDS)):
            receiver = paths.resolve(lobby, path)
            txn = lobby._p_jar.transaction_manager.get()
            outer = txn.savepoint()
            try:
                receiver.define(selector, source, author=self.writer_name)
                signature = [_run(txn, receiver, selector, call, real=n == 0)
                             for n, call in enumerate(calls)]
                return tuple(part for part, _result in signature), signature[0][1]
            finally:
                outer.rollback()

    def _install(self, claim, mandate, source, outcome, provisional=False):
        path, key = mandate.path, claim["key"]

        def install(lobby):
            method = paths.resolve(lobby, path).define(
                mandate.selector, source, author=self.writer_name, model=outcome.model,
                mandate=mandate.record(), attempts=outcome.attempts, provisional=provisional,
                evidence=outcome.evidence)
            self._settle(lobby, key, "provisional" if provisional else "learned", outcome)
            return method.provenance["audit"]

        kind = " (provisional)" if provisional else ""
        outcome.audit = self.image.run(
            install, note=f"{self.writer_name} learned {path}.{mandate.selector}{kind} "
                          f"(receiver {mandate.receiver})", user=self.writer_name)
        outcome.learned = True
        outcome.provisional = provisional
        outcome.source = source
        self.progress("installed")
        log.info("%s learned %s.%s%s in %d attempt(s)", self.writer_name, path,
                 mandate.selector, kind, outcome.attempts)

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
            if responds and entry.get("status") != "pending":
                return Outcome(waited=True, persona=entry.get("persona"),
                               model=entry.get("model"), attempts=entry.get("attempts", 0),
                               provisional=entry.get("status") == "provisional")
            if entry.get("status") == "failed":
                raise LearningFailed(Outcome(waited=True, reason=entry.get("reason"),
                                             attempts=entry.get("attempts", 0)))
            if time.monotonic() > deadline:
                raise LearningFailed(Outcome(waited=True, reason=(
                    f"waited {self.wait_seconds:g} s for another process to learn "
                    f"{path}.{selector}")))
            time.sleep(delay)  # polling the image for the other process's commit
            delay = min(delay * 2, 0.5)


def _told(source, problem):
    """What the writer is told of a sample that failed: the method, and why."""
    return f"Your method was:\n{source.rstrip()}\nIt failed: {problem}"


def _missing_slot(exc, source, mandate):
    """The name of a trial's `MessageNotUnderstood` when the method read it as a slot
    (`self.text`) and the receiver has none of that name; else None."""
    name = getattr(exc, "selector", None) if isinstance(exc, MessageNotUnderstood) else None
    if name is None or name in mandate.slots \
            or not re.search(rf"\bself\.{re.escape(name)}\b", source):
        return None
    return name


def _slot_meant(source, mandate):
    """The slot a method that read one the receiver lacks meant: the receiver's only slot it
    does not read otherwise (`self.text` in `first_words` for an object whose one slot is
    `article`), else None. The model named the slot by what it holds; the method, read
    with the receiver's own name, is judged again like any other."""
    read = set(re.findall(r"\bself\.(\w+)", source))
    unread = [slot for slot in mandate.slots if slot not in read]
    return unread[0] if len(unread) == 1 else None


def _run(txn, receiver, selector, call, real):
    """One call of a trial inside its own savepoint: its behaviour and plain result. The
    real call's failure propagates; a probe's is part of the behaviour."""
    savepoint = txn.savepoint()
    try:
        target = receiver if real else receiver.clone(**call.slots)
        before = {k: plain(v) for k, v in target.slots().items()}
        result = plain(target.send(selector, *call.args))
        return behaviour.outcome(result, before, target.slots()), result
    except (Exception, sandbox.BudgetExceeded) as exc:
        if real:
            raise
        return behaviour.failure(exc), None
    finally:
        savepoint.rollback()


# -- provisional methods -----------------------------------------------------------------------

def provisional_source(receiver, selector):
    """The source of `receiver`'s own method `selector` when it is provisional, else None."""
    method = receiver._own_methods().get(selector)
    if isinstance(method, methods.Method) and method.provenance.get("provisional"):
        return method.source
    return None


def confirm(lobby, path, selector, by):
    """Make the provisional method `selector` of the object at `path` final, in the current
    transaction: a new `Method` with the same source whose provenance says who confirmed it
    and when (the provisional one stays in its history). `NotProvisional` otherwise."""
    receiver = paths.resolve(lobby, path)
    method = receiver._own_methods().get(selector)
    if provisional_source(receiver, selector) is None:
        what = "has no learned method" if not isinstance(method, methods.Method) else \
            "is already final"
        raise NotProvisional(f"{path}.{selector} {what}; only a provisional method can be "
                             "confirmed")
    provenance = {k: v for k, v in method.provenance.items() if k not in ("audit", "created")}
    provenance.update(provisional=False, confirmed_by=by,
                      confirmed=datetime.datetime.now(datetime.timezone.utc).isoformat())
    confirmed = receiver.define(selector, method.source, **provenance)
    key = f"{int.from_bytes(receiver._p_oid, 'big'):#x}.{selector}"
    entry = lobby.mandates.entries.get(key)
    if entry is not None:
        lobby.mandates.entries[key] = {**entry, "status": "learned", "confirmed_by": by}
    return confirmed.describe()
