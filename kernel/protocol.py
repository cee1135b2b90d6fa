"""The BAT OS wire protocol (BATOS/1): consoles ⇄ orchestrator ⇄ persona workers over ZeroMQ.

This module is the specification; every other module speaks it through these helpers.
It follows the ZeroMQ guide's Majordomo pattern: a service is a persona, a broker (the
orchestrator) holds a queue of ready workers per service and hands each request to the least
recently used one.

Sockets (all TCP, loopback unless configured):
  frontend  ROUTER, bound by the orchestrator; consoles and clients connect DEALER sockets.
  backend   ROUTER, bound by the orchestrator; workers connect DEALER sockets.
  events    PUB, bound by the orchestrator; consoles SUB to see what others cause.
  In remote mode all three are CURVE servers: frontend and events admit only allowed console
  keys, the backend only allowed worker keys, which lets workers run on other hosts
  (`kernel.keys`).

Client → orchestrator (frontend), after the ROUTER's identity frame:
  [CLIENT, request-json]
  request-json is a JSON object (at most `[orchestrator] max_request_bytes`, by default
  `MAX_PAYLOAD` bytes, else an "error" reply; a frame over `hard_cap` of that is not read at
  all — ZeroMQ drops the connection; UTF-8, no lone surrogate escapes such as "\\ud800"
  since those are not Unicode text):
    id       str, made by the client, unique per request (re-sending an id never repeats
             its effects: the reply stored in the image's ledger is returned instead)
    session  str, the conversation it belongs to (default "default")
    intent   "chat" | "send" | "inspect" | "audit" | "status" | "route" | "write_method" |
             "log" | "undo" (txn) | "history" (the session's turns) | "versions" (target,
             optional selector, limit: every version of an object's slots or a method's
             source, kernel.versions) | "revert" (target, selector, optional version: a
             number or "none") | "confirm" (target, selector: a provisional learned method
             becomes final), served by a persona;
             "ping", "track", "cancel", answered by the orchestrator itself (below);
             `INTENT_TABLE` is the one list of them, saying who answers each
    persona  optional str: the service to ask; without it the router persona chooses
    corrects optional str: the persona the router chose for this text before; the persona
             now asked records the text as a routing example (the orchestrator sets it when
             a routed text is re-sent naming another persona)
    text     str for chat; for send/inspect: target (lobby path), selector, args (list);
             for send optionally expect (the result the caller expects); write_method
             carries mandate, feedback, temperature and optionally seconds (the sample's
             generation cut off after that, at most 4) and free (bool: written without
             the method grammar, `dnu.MethodWriter.write`); with sources (list of method
             texts) it asks for their scores instead of a method (judge "channel", the
             default, or "fit")
    at       optional str for send/inspect: WHEN (kernel.timetravel) — the message runs on
             the image as it was then, read-only; a miss there is an error, never learned
Orchestrator → client:
  [CLIENT, message-json] with "id" (the request's, when known) and "type" (a persona's
  reply is at most `[orchestrator] max_reply_bytes`, by default `MAX_REPLY`; a bigger one
  becomes an "error" and, for a request that changes the image, nothing of it commits):
    "reply"     the persona's answer: persona, reply (text), result (data), learned (…)
    "error"     error (one line), retry (bool: true when trying again can help)
    "progress"  stage ("routing", "routed", "queued", "working", "thinking",
                "writing-method", "audit", "trial", "judging", "searching", "installed"; "redelivered" with
                "delivery": N when the request is handed to another worker because the one
                holding it died), persona (who is at it: "writing-method" names the writer)

A request in flight is one request. From its arrival until its final answer ("reply" or
"error") the orchestrator knows a request by its id:
  - the same id sent again while in flight attaches the sender: it is never routed or run
    again, the final answer goes to whoever sent or tracked the id last, and the sender gets
    a "progress" note of the current stage at once;
  - {"id": ID, "intent": "track"} asks where request ID is, and attaches the asker too: the
    answer is a "progress" note of its current stage, or stage "unknown" when the
    orchestrator does not know the id (it restarted, or the answer went out already) — then,
    and only then, a client sends the request again (same id: the ledger replays effects
    that happened; a request naming the persona it was routed to is not routed again);
  - {"id": ID, "intent": "cancel"} answers a "progress" note: stage "withdrawn" (no worker
    had started it; it never will), "detached" (a worker has it: it finishes, its effects
    and reply are kept in the ledger, nobody is sent the answer) or "unknown".
  - "ping" answers a "reply" with "services" (persona → live workers) and "busy" (persona →
    workers holding a request).
A waiting client tracks its request after every `HEARTBEAT_INTERVAL` of silence; silence for
`CLIENT_LIVENESS` seconds, tracks unanswered, means the orchestrator is gone. A client's own
timeout applies to one stage, not to the whole request.

Worker → orchestrator (backend), after the ROUTER's identity frame:
  [WORKER, READY, service]            register (again after any reconnect)
  [WORKER, READY, service, tag]       register while holding request `tag` (the orchestrator
                                      restarted meanwhile): it adopts the request, and its
                                      REPLY answers whoever waits for that id
  [WORKER, HEARTBEAT]                 liveness; also implied by any other message
  [WORKER, REPLY, tag, message-json]     the answer to a request it was given
  [WORKER, PROGRESS, tag, message-json]  a progress note for the client
  [WORKER, DISCONNECT]                leaving
Orchestrator → worker:
  [WORKER, REQUEST, tag, request-json]   tag: opaque, echoed in the REPLY and PROGRESS
  [WORKER, HEARTBEAT]
  [WORKER, DISCONNECT]                forget me and register again

Liveness: both sides send HEARTBEAT every `HEARTBEAT_INTERVAL` seconds; a peer silent for
`HEARTBEAT_LIVENESS` intervals is dead. A worker heartbeats from a thread of its own while
its request runs (llama.cpp releases the GIL while it computes), so a busy worker is never
silent; the orchestrator judges silence only after reading every message already waiting
for it, so its own stalls (a slow image read, a starved CPU) never make a worker look dead. A worker that dies holding
a request has that request re-dispatched to another worker of the service; a request for a
service with no live worker waits (bounded) and then gets an "error" reply. Any malformed
frame gets an "error" reply when a sender can be named, and is otherwise dropped and logged —
it never ends a process. A worker's REPLY or PROGRESS counts only for the request it holds
(its id is that request's, whatever the message says); READY only for a persona of the
image; anything else from a worker is dropped and logged (rate-limited). A message from a
peer that never registered gets DISCONNECT.

Events (PUB): [b"event", event-json] with "type" ("installed" — with "provisional" —,
"confirmed", "committed", "worker"), …
"""
import json
import logging
import re

from kernel.errors import BatosError

log = logging.getLogger(__name__)

CLIENT = b"BATOS/C1"
WORKER = b"BATOS/W1"
READY, REQUEST, REPLY, PROGRESS, HEARTBEAT, DISCONNECT = (
    b"\x01", b"\x02", b"\x03", b"\x04", b"\x05", b"\x06")
COMMAND_NAMES = {READY: "READY", REQUEST: "REQUEST", REPLY: "REPLY", PROGRESS: "PROGRESS",
                 HEARTBEAT: "HEARTBEAT", DISCONNECT: "DISCONNECT"}
EVENT = b"event"

HEARTBEAT_INTERVAL = 1.0
HEARTBEAT_LIVENESS = 3
CLIENT_LIVENESS = HEARTBEAT_INTERVAL * HEARTBEAT_LIVENESS
MAX_PAYLOAD = 256 * 1024
MAX_REPLY = 1024 * 1024
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")

# The one table of intents (the docstring's "intent" field): who answers each. A persona's
# handler table (`kernel.persona`) and the orchestrator's own answers (`kernel.orchestrator`)
# are derived from it, each by the intent's name.
PERSONA, BROKER = "persona", "orchestrator"
INTENT_TABLE = {"chat": PERSONA, "send": PERSONA, "inspect": PERSONA, "audit": PERSONA,
                "status": PERSONA, "route": PERSONA, "write_method": PERSONA, "ping": BROKER,
                "log": PERSONA, "undo": PERSONA, "history": PERSONA, "versions": PERSONA,
                "revert": PERSONA, "track": BROKER, "cancel": BROKER, "confirm": PERSONA}
INTENTS = tuple(INTENT_TABLE)
PERSONA_INTENTS = tuple(i for i, who in INTENT_TABLE.items() if who == PERSONA)
BROKER_INTENTS = tuple(i for i, who in INTENT_TABLE.items() if who == BROKER)
REQUEST_FIELDS = {"id": str, "session": str, "intent": str, "persona": str, "text": str,
                  "target": str, "selector": str, "args": list, "source": str,
                  "mandate": dict, "feedback": list, "temperature": (int, float),
                  "seconds": (int, float), "free": bool,
                  "sources": list, "judge": str, "expect": object, "txn": str, "limit": int,
                  "corrects": str, "at": str, "version": str}


class ProtocolError(BatosError):
    """A frame or payload breaks BATOS/1. Final for that message; the peer is told why."""


def hard_cap(max_request_bytes):
    """The frame size past which the orchestrator does not even read a request (4× the bound:
    a little over gets a clear error reply; far over is abuse, refused without buffering)."""
    return 4 * max_request_bytes


def encode(message):
    """A JSON message as one UTF-8 frame."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode(frame, limit=MAX_PAYLOAD):
    """One JSON-object frame, or a `ProtocolError` saying what is wrong with it."""
    if len(frame) > limit:
        raise ProtocolError(f"payload of {len(frame)} bytes exceeds the limit of {limit}")
    try:
        message = json.loads(frame.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProtocolError("payload is not UTF-8") from None
    except RecursionError:
        raise ProtocolError("payload is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"payload is not JSON ({exc.msg})") from None
    except ValueError:  # an integer past Python's digit limit (sys.get_int_max_str_digits)
        raise ProtocolError("payload holds a number with too many digits") from None
    if not isinstance(message, dict):
        raise ProtocolError("payload must be a JSON object")
    if SURROGATE_ESCAPE.search(frame):
        try:  # a lone \ud800-\udfff escape is valid JSON but no Unicode text: it cannot be
            encode(message)  # sent on, so it is refused here
        except UnicodeEncodeError:
            raise ProtocolError("payload holds a lone surrogate escape (\\ud800-\\udfff), "
                                "which is not Unicode text") from None
    return message


def validate_request(message):
    """Check a client request's fields and types; return it with defaults filled in."""
    for field, kind in REQUEST_FIELDS.items():
        if field in message and kind is not object and not isinstance(message[field], kind):
            raise ProtocolError(f"field {field!r} must be of type "
                                f"{getattr(kind, '__name__', 'number')}")
    unknown = set(message) - set(REQUEST_FIELDS)
    if unknown:
        raise ProtocolError(f"unknown fields {sorted(unknown)}")
    if not message.get("id"):
        raise ProtocolError("field 'id' is required (a unique request id made by the client)")
    if len(message["id"]) > 128:
        raise ProtocolError("field 'id' is longer than 128 characters")
    intent = message.setdefault("intent", "chat")
    if intent not in INTENTS:
        raise ProtocolError(f"unknown intent {intent!r}; use one of {', '.join(INTENTS)}")
    message.setdefault("session", "default")
    if intent == "chat" and not message.get("text"):
        raise ProtocolError("a chat request needs 'text'")
    if intent in ("send", "revert") and not (message.get("target")
                                             and message.get("selector")):
        raise ProtocolError(f"a {intent} request needs 'target' and 'selector'")
    if intent == "versions" and not message.get("target"):
        raise ProtocolError("a versions request needs 'target'")
    return message


def reply(request_id, **fields):
    """A "reply" message."""
    return {"id": request_id, "type": "reply", **fields}


def error(request_id, text, retry=False):
    """An "error" message: one line, and whether retrying can help."""
    return {"id": request_id, "type": "error", "error": text, "retry": retry}


def progress(request_id, stage, persona=None, **fields):
    """A "progress" message."""
    return {"id": request_id, "type": "progress", "stage": stage, "persona": persona, **fields}
