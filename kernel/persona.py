"""What a persona does with a request: reason with its model, act on the image exactly once.

Every persona serves `chat` (its model *chooses* among the plans the words and the image make
possible, `kernel.understanding`; the reply states what the plan's commands did, recalls what
was told, or — for a spoken answer — is written by the model with the codex, the last turns,
the named objects and the matching memories in the prompt, streamed as progress notes),
`send` and `inspect` (direct messages to objects) and `status`. ALFRED also serves
`route` (a choice among the personas that exist now, scored by the model, taught by examples)
and `audit` (the guardian as a service); BRICK serves `write_method` (mandates from every
worker). The commands, the conversation turns and the request's ledger entry commit in ONE
transaction: a request delivered twice finds its ledger entry and returns the stored reply.
A message that misses runs the `_doesNotUnderstand` cycle, then the request is tried again.
Sizes are bounded by `kernel.limits`: a reply over `max_reply_bytes` is an error (refused
before its transaction commits; in a chat, a reply saying the plan failed), and every part of
a prompt is cut to its share, so that a prompt always fits the model's context.
"""
import logging

from transaction.interfaces import TransientError

from kernel import (commands, conversation, dnu, guardian, ledger, memory, paths, protocol,
                    routing, sandbox, timetravel, understanding, versions)
from kernel.errors import BatosError, MessageNotUnderstood
from kernel.limits import LIMITS, check_size, clip
from kernel.values import plain

log = logging.getLogger(__name__)

SPEAK_INSTRUCTIONS = """\
Answer the user in one or two short sentences. Say only what you know from this conversation,
the objects and the memories shown; never invent facts about the user or the system."""
SPOKEN_TOKENS = 64  # a spoken answer always ends within this budget
SPOKEN_STOPS = ("\n\n", "\nUser:", "User:", "\nYou:")  # the model starts another turn
SPOKEN_SENTENCES = 2
SPOKEN_TURNS = 4  # the newest turns a spoken answer sees
PROMPT_PART_CHARS = 300  # each object, memory and turn in a prompt; the request gets 4x

MAX_LEARNING_ROUNDS = 3


class PersonaService:
    """One persona's request handler, shared by every request its worker process receives."""

    def __init__(self, name, image, models, learner_settings=None, writer_factory=None):
        self.name = name
        self.image = image
        self.models = models
        self.learner_settings = dict(learner_settings or {})
        self.writer_factory = writer_factory
        # each intent a persona serves (`protocol.PERSONA_INTENTS`) by the method of its name
        self.handlers = {intent: getattr(self, intent) for intent in protocol.PERSONA_INTENTS}

    def handle(self, request, progress=lambda stage, persona=None, **fields: None):
        """Answer one request with a BATOS/1 message; never raises. `progress(stage,
        persona=None, **fields)` reports each stage (`persona`: who is at it, when not this
        one; `text`: a piece of a reply being written)."""
        request_id = request.get("id")
        handler = self.handlers.get(request.get("intent"))
        if handler is None:
            return protocol.error(request_id, f"{self.name} cannot serve intent "
                                              f"{request.get('intent')!r}")
        try:
            message = handler(request, progress)
            check_size("the reply", len(protocol.encode(message)), LIMITS.max_reply_bytes)
            return message
        except sandbox.BudgetExceeded as exc:
            return protocol.error(request_id, f"stopped: {exc}")
        except dnu.LearningFailed as exc:
            return protocol.error(request_id, f"could not learn the missing method: {exc}")
        except BatosError as exc:
            return protocol.error(request_id, str(exc), retry=exc.transient)
        except Exception as exc:  # a request's failure is an answer, never a dead worker
            log.exception("request %s failed", request_id)
            return protocol.error(request_id, f"{type(exc).__name__}: {exc}")

    # -- reading the image ------------------------------------------------------------------

    def persona(self):
        """This persona's codex and model id, as the image says now."""
        return self.image.run(lambda lobby: (getattr(lobby.personas, self.name).codex,
                                             getattr(lobby.personas, self.name).model_id))

    def model(self):
        """This persona's model and codex."""
        codex, model_id = self.persona()
        return self.models.get(model_id), codex

    # -- intents ----------------------------------------------------------------------------

    def route(self, request, progress):
        """ALFRED: which persona should take this request, scored over the personas that exist
        now (`kernel.routing`): the one under whose prefix the request is likeliest."""
        me = self.name
        prefixes, model_id = self.image.run(lambda lobby: (  # one snapshot
            routing.prefixes(lobby), getattr(lobby.personas, me).model_id))
        model = self.models.get(model_id)
        choice, scores = model.choose("persona", prefixes,
                                      request.get("text", "")[:understanding.SCORED_CHARS],
                                      persona=self.name)
        return protocol.reply(request["id"], persona=choice,
                              result={"scores": {n: round(v, 2) for n, v in scores.items()}})

    def chat(self, request, progress):
        """Understand the words as one of the plans the image makes possible (scored by the
        model, `kernel.understanding`), carry it out exactly once, and say what was done.
        Every chat gets a reply: a plan that fails is reported in the reply, not as an error."""
        session, text = request["session"], request["text"]

        def read(lobby):  # one snapshot for everything the answer needs
            stored = ledger.lookup(lobby, request["id"])
            if stored:
                return stored, None
            me = getattr(lobby.personas, self.name)
            return None, (me.codex, me.model_id, conversation.window(lobby, session),
                          memory.recall(lobby, text), _touched_objects(lobby, text),
                          understanding.plans(lobby, text))

        stored, context = self.image.run(read)
        if stored:
            return {**stored["message"], "replayed": True}
        progress("thinking")
        codex, model_id, turns, memories, touched, options = context
        model = self.models.get(model_id)
        plan, _scores = understanding.choose(model, self.name, options, text)
        progress("planned", plan=plan.key)
        if plan.kind == "reply":
            reply = self.speak(model, codex, turns, memories, touched, text, progress)
            return self.execute(request, reply, [], progress)
        if plan.kind == "recall":
            return self.execute(request, recalled(memories), [], progress)
        try:
            checked = commands.validate({"reply": "", "commands": list(plan.commands)})
            return self.execute(request, lambda results: done(plan, results),
                                checked["commands"], progress)
        except Exception as exc:  # a method's own error too: the plan failed, not the chat
            if getattr(exc, "transient", False) or isinstance(exc, TransientError):
                raise
            log.info("request %s: plan %r failed: %s", request["id"], plan.key, exc)
            return self.execute(request, f"I could not {plan.key}: {_failure(exc)}", [],
                                progress)

    def speak(self, model, codex, turns, memories, touched, text, progress):
        """A short spoken answer from the model, streamed to the console as it is written."""
        answer = model.complete(codex + "\n\n" + SPEAK_INSTRUCTIONS,
                                _chat_prompt(turns, [m for m in memories if m["complete"]],
                                             touched, text),
                                persona=self.name, max_tokens=SPOKEN_TOKENS,
                                on_token=lambda piece: progress("reply", text=piece),
                                stop=SPOKEN_STOPS, sentences=SPOKEN_SENTENCES)
        return answer.text.strip() or "I am listening; tell me more."

    def send(self, request, progress):
        """A direct message to an object, learning the method if it is missing (and learning
        a provisional one again when the request's expectation contradicts it); with `at`,
        on the image as it was then (read-only: nothing is learned or recorded)."""
        if request.get("at") is not None:
            try:
                result, at = timetravel.send_at(self.image, request["target"],
                                                request["selector"], request.get("args", []),
                                                request["at"], plain)
            except (BatosError, sandbox.BudgetExceeded):
                raise
            except Exception as exc:  # the method's own failure, in the past
                raise BatosError(f"{request['target']}.{request['selector']} raised "
                                 f"{type(exc).__name__}: {exc}") from None
            return protocol.reply(request["id"], persona=self.name, reply="", result=result,
                                  at=at)
        command = {"op": "send", "target": request["target"], "selector": request["selector"],
                   "args": request.get("args", [])}
        if "expect" in request:
            self.learner(progress).check(command["target"], command["selector"],
                                         command["args"], request["expect"])
        return self.execute(request, "", [command], progress)

    def confirm(self, request, progress):
        """Make a provisional learned method final (`/confirm PATH SELECTOR`)."""
        target, selector = request.get("target", ""), request.get("selector", "")
        description = self.image.run(
            lambda lobby: dnu.confirm(lobby, target, selector, by=request["session"]),
            note=f"{self.name} confirmed {target}.{selector} for {request['session']}",
            user=self.name)
        return protocol.reply(request["id"], persona=self.name, result=description,
                              events=[{"type": "confirmed", "target": target,
                                       "selector": selector, "session": request["session"]}])

    def inspect(self, request, progress):
        """An object's slots, parents and methods (with `at`: as they were then)."""
        if request.get("at") is not None:
            description = timetravel.inspect_at(self.image, request["target"], request["at"],
                                                lambda obj: plain(obj.describe()))
            return protocol.reply(request["id"], persona=self.name, result=description)
        description = self.image.run(lambda lobby: plain(paths.resolve(  # rendered while the
            lobby, request["target"]).describe()))  # connection can still load its slots
        return protocol.reply(request["id"], persona=self.name, result=description)

    def status(self, request, progress):
        """The image's vital signs."""
        status = self.image.run(lambda lobby: {
            "ledger": ledger.size(lobby), "personas": sorted(lobby.personas.slot_names()),
            "memories": lobby.memory.size(), "mandates": len(lobby.mandates.entries)})
        return protocol.reply(request["id"], persona=self.name, result=status)

    def log(self, request, progress):
        """The image's newest transactions: time, user, note, id."""
        return protocol.reply(request["id"], persona=self.name,
                              result=self.image.history(request.get("limit", 20)))

    def undo(self, request, progress):
        """Undo one transaction with ZODB's own undo (e.g. a learned method's install)."""
        note = self.image.undo(request.get("txn", ""), user=self.name)
        return protocol.reply(request["id"], persona=self.name, result={"undone": note},
                              events=[{"type": "undone", "note": note,
                                       "session": request["session"]}])

    def history(self, request, progress):
        """The session's conversation so far."""
        turns = self.image.run(lambda lobby: conversation.window(
            lobby, request["session"], request.get("limit", 20)))
        return protocol.reply(request["id"], persona=self.name, result=turns)

    def versions(self, request, progress):
        """Every version of an object's slots, or (with a selector) of a method's source."""
        limit = request.get("limit", 20)
        if request.get("selector"):
            result = versions.method_versions(self.image, request["target"],
                                              request["selector"], limit=limit)
        else:
            result = versions.object_versions(self.image, request["target"], limit=limit)
        return protocol.reply(request["id"], persona=self.name, result=result)

    def revert(self, request, progress):
        """Install an earlier version of a method again (or remove it) in one transaction.
        The request's ledger entry commits with the revert, so a request delivered again
        gets the stored answer and never reverts twice."""
        stored = self.image.run(lambda lobby: ledger.lookup(lobby, request["id"]))
        if stored:
            return {**stored["message"], "replayed": True}

        def record(lobby, done):  # in the revert's own transaction
            ledger.record(lobby, request["id"], self.name, request["session"],
                          protocol.reply(request["id"], persona=self.name, result=done))

        done = versions.revert(self.image, request["target"], request["selector"],
                               to=request.get("version"), user=self.name, record=record)
        return protocol.reply(request["id"], persona=self.name, result=done,
                              events=[{"type": "reverted", "note": done["note"],
                                       "session": request["session"]}])

    def audit(self, request, progress):
        """ALFRED: the guardian's verdict on a source."""
        return protocol.reply(request["id"], persona=self.name,
                              result=guardian.audit(request.get("source", "")).as_record())

    def write_method(self, request, progress):
        """BRICK: one method for a mandate sent by any worker."""
        model, codex = self.model()
        writer = dnu.MethodWriter(self.name, codex, model)
        mandate = dnu.Mandate.from_record(request["mandate"])
        if "sources" in request:  # judging candidates rather than writing one
            judge = writer.fit if request.get("judge") == "fit" else writer.score
            return protocol.reply(request["id"], persona=self.name, model=writer.model_id,
                                  scores=judge(mandate, request["sources"]))
        seconds = min(max(request.get("seconds") or dnu.WRITE_SECONDS, dnu.MIN_WRITE_SECONDS),
                      dnu.WRITE_SECONDS)
        source, _completion = writer.write(mandate, request.get("feedback", []),
                                           request.get("temperature"), seconds,
                                           free=bool(request.get("free")))
        return protocol.reply(request["id"], persona=self.name, source=source,
                              model=writer.model_id)

    # -- exactly once -----------------------------------------------------------------------

    def execute(self, request, reply_text, command_list, progress):
        """Commit commands + turns + ledger entry together; learn what they miss, retry.
        `reply_text` is the reply, or a function making it from the commands' results."""
        learned = []
        for _ in range(MAX_LEARNING_ROUNDS):
            try:
                message = self.image.run(
                    lambda lobby: self._commit(lobby, request, reply_text, command_list),
                    note=f"{self.name} answered {request['id']}", user=self.name)
            except MessageNotUnderstood as miss:
                command = _missed_command(command_list, miss)
                if command is None:
                    raise
                outcome = self.learner(progress).learn(
                    command["target"], command["selector"], command.get("args", []),
                    request.get("expect", dnu.NO_EXPECTATION))
                learned.append({"selector": command["selector"], "target": command["target"],
                                "source": outcome.source, "attempts": outcome.attempts,
                                "waited": outcome.waited, "provisional": outcome.provisional})
                continue
            if message.get("replayed"):
                return message
            events = [{"type": "installed", "session": request["session"], **entry}
                      for entry in learned if entry["source"]]
            if any(c["op"] != "recall" for c in command_list):
                events.append({"type": "committed", "persona": self.name,
                               "session": request["session"],
                               "ops": [c["op"] for c in command_list]})
            return {**message, **({"learned": learned} if learned else {}), "events": events}
        raise BatosError(f"request {request['id']} kept missing methods after "
                         f"{MAX_LEARNING_ROUNDS} rounds of learning")

    def _commit(self, lobby, request, reply_text, command_list):
        stored = ledger.lookup(lobby, request["id"])
        if stored:
            return {**stored["message"], "replayed": True}
        results = commands.execute(lobby, command_list, self.name, request["session"])
        if callable(reply_text):
            reply_text = reply_text(results) + _provisional_note(lobby, command_list)
        message = protocol.reply(request["id"], persona=self.name, reply=reply_text,
                                 result=results[0] if request["intent"] == "send" else results)
        # refused before anything commits: the ledger never stores an oversize reply
        check_size("the reply", len(protocol.encode(message)), LIMITS.max_reply_bytes)
        if request["intent"] == "chat":
            if request.get("corrects"):
                routing.learn(lobby, request["text"], self.name, request["corrects"])
            conversation.append(lobby, request["session"], "user", request["text"])
            conversation.append(lobby, request["session"], "persona", reply_text, self.name)
        ledger.record(lobby, request["id"], self.name, request["session"], message)
        return message

    def learner(self, progress):
        """The `_doesNotUnderstand` engine for this worker (BRICK local or behind ZMQ); its
        "writing-method" progress names the writer, the other stages this persona."""
        writer = self.learner_settings.get("writer", "BRICK")
        return dnu.Learner(self.image, self.models, writer_factory=self.writer_factory,
                           progress=lambda stage: progress(
                               stage, writer if stage == "writing-method" else None),
                           user=self.name, **self.learner_settings)


def _touched_objects(lobby, text, limit=3):
    """The lobby's objects the request names, with their slots and methods, for the prompt."""
    touched = []
    for word, obj in understanding.targets(lobby, text)[:limit]:
        slots = ", ".join(f"{k} = {plain(v)!r}" for k, v in obj.slots().items())
        methods = ", ".join(sorted(obj._own_methods()))
        touched.append(clip(f"{word}: slots {slots or '(none)'}; methods {methods or '(none)'}",
                            PROMPT_PART_CHARS))
    return touched


def _provisional_note(lobby, command_list):
    """What a chat reply adds when a message it sent ran a provisional method (a guess of
    `_doesNotUnderstand`, never stated as fact)."""
    notes = []
    for command in command_list:
        if command["op"] == "send" and dnu.provisional_source(
                paths.resolve(lobby, command["target"]), command["selector"]) is not None:
            notes.append(f" ({command['target']}.{command['selector']} is a provisional "
                         f"method, learned without an expectation: /confirm "
                         f"{command['target']} {command['selector']} if it is right.)")
    return "".join(notes)


def recalled(memories):
    """BABS's grounded answer from recalled memories: what was told, or that nothing was."""
    if not memories:
        return "I have no memory of that."
    best = memories[0]
    if best["complete"]:
        return f"You told me: {memory.second_person(best['text'])}"
    return ("I do not remember exactly that. The closest thing I remember: "
            f"{memory.second_person(best['text'])}")


def _failure(exc):
    """One line for an error: a BAT OS error says itself, others name their kind."""
    return str(exc) if isinstance(exc, BatosError) else f"{type(exc).__name__}: {exc}"


def done(plan, results):
    """The reply stating what a plan did, from its commands' results (never imagined)."""
    result, about = results[0], plan.about
    if plan.kind == "send":
        return f"The {about['selector']} of {about['target']} is {shown(result)}."
    if plan.kind == "set":
        return (f"Done: the {about['slot']} of {about['target']} is now "
                f"{shown(plan.commands[0]['value'])}.")
    if plan.kind == "clone":
        slots = plan.commands[0]["slots"]
        return (f"Created {about['name']}" + (" with " + ", ".join(
            f"{k} {shown(v)}" for k, v in slots.items()) if slots else "") + ".")
    if plan.kind == "remember":
        return f"I will remember that: {plan.commands[0]['text']}"
    return "Done."


def shown(value):
    """A result as a person reads it, bounded."""
    return clip(value if isinstance(value, str) else repr(value), 400)


def _chat_prompt(turns, memories, touched, text):
    """The request with what grounds it: objects, memories and the last turns, each bounded
    so that the prompt always fits the model's context."""
    lines = []
    if touched:
        lines.append("Objects in the image the request names:")
        lines += [f"- {t}" for t in touched]
    if memories:
        lines.append("What BABS remembers:")
        lines += [f"- {clip(m['text'], PROMPT_PART_CHARS)}" for m in memories]
    if turns:
        lines.append("The conversation so far:")
        lines += [f"{t['persona'] or 'User'}: {clip(t['text'], PROMPT_PART_CHARS)}"
                  for t in turns[-SPOKEN_TURNS:]]
    lines.append(f"User: {clip(text, 4 * PROMPT_PART_CHARS)}")
    return "\n".join(lines)


def _missed_command(command_list, miss):
    """The send command whose own receiver missed (None for a miss deeper inside a method)."""
    for command in command_list:
        if command["op"] == "send" and command["selector"] == miss.selector:
            return command
    return None


class RemoteWriter:
    """BRICK behind the orchestrator: mandates go to BRICK's service as `write_method`."""

    def __init__(self, client, persona="BRICK", timeout=300.0):
        self.client = client
        self.persona = persona
        self.timeout = timeout
        self.model_id = f"{persona} service"

    def write(self, mandate, feedback, temperature=None, seconds=None, free=False):
        """Ask BRICK's service for one method (its generation cut off after `seconds`;
        `free`: without the grammar, `MethodWriter.write`)."""
        request = {"intent": "write_method", "persona": self.persona,
                   "mandate": mandate.record(), "feedback": feedback,
                   "temperature": temperature, "free": free}
        if seconds is not None:
            request["seconds"] = seconds
        answer = self.client.request(request, timeout=self.timeout)
        self.model_id = answer.get("model", self.model_id)
        return answer.get("source", ""), None

    def score(self, mandate, sources, judge="channel"):
        """Ask BRICK's service for the channel scores of finished candidates (or, with
        `judge="fit"`, how likely it was to write each: `MethodWriter.fit`)."""
        answer = self.client.request({"intent": "write_method", "persona": self.persona,
                                      "mandate": mandate.record(), "sources": sources,
                                      "judge": judge}, timeout=self.timeout)
        return answer["scores"]

    def fit(self, mandate, sources):
        """`MethodWriter.fit`, asked of BRICK's service."""
        return self.score(mandate, sources, judge="fit")

    def knows_word(self, word):
        """Not asked of BRICK's service: a word the image does not know stays unknown."""
        return False
