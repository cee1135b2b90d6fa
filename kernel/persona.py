"""What a persona does with a request: reason with its model, act on the image exactly once.

Every persona serves `chat` (its model answers `{"reply", "commands"}`, constrained by the
command schema, with its codex, the conversation so far and BABS's recalled memories in the
prompt), `send` and `inspect` (direct messages to objects) and `status`. ALFRED also serves
`route` (the meta-prompt in the image, a constrained choice among the personas that exist now)
and `audit` (the guardian as a service); BRICK serves `write_method` (mandates from every
worker). The commands, the conversation turns and the request's ledger entry commit in ONE
transaction: a request delivered twice finds its ledger entry and returns the stored reply.
A message that misses runs the `_doesNotUnderstand` cycle, then the request is tried again.
Sizes are bounded by `kernel.limits`: a reply over `max_reply_bytes` is an error (refused
before its transaction commits), and every part of a chat prompt is cut to `max_turn_chars`.
"""
import json
import logging

from kernel import commands, conversation, dnu, guardian, ledger, memory, paths, protocol, sandbox
from kernel.errors import BatosError, MessageNotUnderstood
from kernel.limits import LIMITS, check_size, clip
from kernel.values import plain

log = logging.getLogger(__name__)

CHAT_INSTRUCTIONS = """\
Answer with one JSON object: {"reply": "<what you say>", "commands": [<zero or more commands>]}.
Commands act on the living image; targets are lobby paths such as "rect":
  {"op": "send", "target": T, "selector": S, "args": [...]}   send a message
  {"op": "clone", "proto": "traits", "name": N, "slots": {...}} make an object
  {"op": "set", "target": T, "slot": S, "value": V}            change a slot
  {"op": "remember", "text": X} / {"op": "recall", "query": Q} memory
Use no command when a reply is enough."""

MAX_LEARNING_ROUNDS = 3


class PersonaService:
    """One persona's request handler, shared by every request its worker process receives."""

    def __init__(self, name, image, models, learner_settings=None, writer_factory=None):
        self.name = name
        self.image = image
        self.models = models
        self.learner_settings = dict(learner_settings or {})
        self.writer_factory = writer_factory
        self.handlers = {"chat": self.chat, "send": self.send, "inspect": self.inspect,
                         "status": self.status, "route": self.route, "audit": self.audit,
                         "write_method": self.write_method, "log": self.log,
                         "undo": self.undo, "history": self.history, "confirm": self.confirm}

    def handle(self, request, progress=lambda stage: None):
        """Answer one request with a BATOS/1 message; never raises."""
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
        """ALFRED: which persona should take this request (a constrained choice)."""
        me = self.name
        meta, roles, codex, model_id = self.image.run(lambda lobby: (  # one snapshot
            lobby.orchestrator.meta_prompt,
            {name: getattr(lobby.personas, name).role for name in lobby.personas.slot_names()},
            getattr(lobby.personas, me).codex, getattr(lobby.personas, me).model_id))
        model = self.models.get(model_id)
        listing = "\n".join(f"- {name}: {role}" for name, role in sorted(roles.items()))
        schema = commands.route_schema(roles)
        answer = model.complete(codex + "\n\n" + meta.replace("{personas}", listing),
                                request.get("text", ""), persona=self.name,
                                json_schema=schema, max_tokens=24)
        choice = commands.validate(_parse(answer.text), schema)["persona"]
        return protocol.reply(request["id"], persona=choice)

    def chat(self, request, progress):
        """Reason with the model; execute its commands with the ledger entry, exactly once."""
        session, text = request["session"], request["text"]

        def read(lobby):  # one snapshot for everything the prompt needs
            stored = ledger.lookup(lobby, request["id"])
            if stored:
                return stored, None
            me = getattr(lobby.personas, self.name)
            return None, (me.codex, me.model_id, conversation.window(lobby, session),
                          memory.recall(lobby, text), _touched_objects(lobby, text))

        stored, context = self.image.run(read)
        if stored:
            return {**stored["message"], "replayed": True}
        progress("thinking")
        codex, model_id, turns, memories, touched = context
        model = self.models.get(model_id)
        prompt = _chat_prompt(turns, memories, touched, text)
        answer = model.complete(codex + "\n\n" + CHAT_INSTRUCTIONS, prompt, persona=self.name,
                                json_schema=commands.grammar_schema(), max_tokens=256)
        parsed = commands.validate(_parse(answer.text))
        return self.execute(request, parsed["reply"], parsed["commands"], progress)

    def send(self, request, progress):
        """A direct message to an object, learning the method if it is missing (and learning
        a provisional one again when the request's expectation contradicts it)."""
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
        """An object's slots, parents and methods."""
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
            return protocol.reply(request["id"], persona=self.name, model=writer.model_id,
                                  scores=writer.score(mandate, request["sources"]))
        source, _completion = writer.write(mandate, request.get("feedback", []),
                                           request.get("temperature"))
        return protocol.reply(request["id"], persona=self.name, source=source,
                              model=writer.model_id)

    # -- exactly once -----------------------------------------------------------------------

    def execute(self, request, reply_text, command_list, progress):
        """Commit commands + turns + ledger entry together; learn what they miss, retry."""
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
        message = protocol.reply(request["id"], persona=self.name, reply=reply_text,
                                 result=results[0] if request["intent"] == "send" else results)
        # refused before anything commits: the ledger never stores an oversize reply
        check_size("the reply", len(protocol.encode(message)), LIMITS.max_reply_bytes)
        if request["intent"] == "chat":
            conversation.append(lobby, request["session"], "user", request["text"])
            conversation.append(lobby, request["session"], "persona", reply_text, self.name)
        ledger.record(lobby, request["id"], self.name, request["session"], message)
        return message

    def learner(self, progress):
        """The `_doesNotUnderstand` engine for this worker (BRICK local or behind ZMQ)."""
        return dnu.Learner(self.image, self.models, writer_factory=self.writer_factory,
                           progress=progress, user=self.name, **self.learner_settings)


def _parse(text):
    try:
        return json.loads(text)
    except ValueError as exc:
        raise commands.CommandError(f"the model's answer is not JSON ({exc})") from None


def _touched_objects(lobby, text, limit=3):
    """The lobby's objects the request names, with their slots and methods, for the prompt."""
    touched = []
    for word in dict.fromkeys(memory.WORD.findall(text)):
        found = lobby.lookup(word) if word.isidentifier() else None
        if found is None or found[2] or not hasattr(found[1], "slots") \
                or word in SYSTEM_OBJECTS:
            continue
        obj = found[1]
        slots = ", ".join(f"{k} = {plain(v)!r}" for k, v in obj.slots().items())
        methods = ", ".join(sorted(obj._own_methods()))
        touched.append(clip(f"{word}: slots {slots or '(none)'}; methods {methods or '(none)'}",
                            LIMITS.max_turn_chars))
        if len(touched) == limit:
            break
    return touched


SYSTEM_OBJECTS = frozenset({"traits", "persona", "personas", "orchestrator", "ledger",
                            "memory", "history", "mandates"})


def _chat_prompt(turns, memories, touched, text):
    lines = []
    if touched:
        lines.append("Objects in the image the request names:")
        lines += [f"- {t}" for t in touched]
    if memories:
        lines.append("What BABS remembers:")
        lines += [f"- {clip(m['text'], LIMITS.max_turn_chars)}" for m in memories]
    if turns:
        lines.append("The conversation so far:")
        lines += [f"{t['persona'] or 'User'}: {clip(t['text'], LIMITS.max_turn_chars)}"
                  for t in turns]
    lines.append(f"User: {clip(text, LIMITS.max_turn_chars)}")
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

    def write(self, mandate, feedback, temperature=None):
        """Ask BRICK's service for one method."""
        answer = self.client.request({"intent": "write_method", "persona": self.persona,
                                      "mandate": mandate.record(), "feedback": feedback,
                                      "temperature": temperature}, timeout=self.timeout)
        self.model_id = answer.get("model", self.model_id)
        return answer.get("source", ""), None

    def score(self, mandate, sources):
        """Ask BRICK's service for the channel scores of finished candidates."""
        answer = self.client.request({"intent": "write_method", "persona": self.persona,
                                      "mandate": mandate.record(), "sources": sources},
                                     timeout=self.timeout)
        return answer["scores"]
