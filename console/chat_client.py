"""The Synaptic Console: a person's conversation with the living image.

It speaks only ZeroMQ to the orchestrator (no database access), so it runs anywhere — on
another host with an allowed CURVE console key when the home is in remote mode (`kernel.keys`,
`batos console --key NAME`). Each
console has its own session (its history lives in the image). A line is translated into a
payload by the console's small model (`console.translator`), or sent as a plain chat; slash
commands need no model. It asks the orchestrator first and says in one line when none answers.
While a request is in flight the console shows its stage and how long it has waited (routed →
thinking (BABS) 23 s → writing-method → audit → trial → judging → installed) and a spoken reply
as the model writes it, piece by piece; the request is sent once, and again (same id) only when
the orchestrator says it does not know it — after a restart; the ledger makes sure its effects
happen once (`kernel.client`). Ctrl-C cancels the request in hand and returns to the prompt:
one no worker has started is withdrawn, one under way finishes and its reply is kept
(`/history`). Ctrl-C at an empty prompt, `/quit` or Ctrl-D leave. Between requests it shows
what other consoles cause (methods learned, objects changed) from the orchestrator's events,
redrawing the prompt and what was typed. When stdin is not a terminal, it reads one message per
line and prints the replies (for scripts and tests). A method learned as provisional
(`kernel.dnu`) says so wherever it shows; `/confirm PATH SELECTOR` makes it final. `/at WHEN`
turns /inspect and /send to the image as it was (read-only, `kernel.timetravel`; the prompt
names the moment) until `/now`; `/history PATH [SELECTOR]` and `/revert` show and reinstall
versions (`kernel.versions`).
"""
import codecs
import contextlib
import getpass
import json
import logging
import os
import re
import selectors
import shlex
import signal
import socket
import sys
import threading
import time
import uuid

import zmq

from kernel import keys, protocol
from kernel.client import Cancelled, Client, ClusterSilent, NoAnswer, RequestFailed, \
    new_request_id
from kernel.errors import Terminated

PROMPT = "you> "
CLEAR_LINE = "\r\x1b[K"
CANCELLED = {
    "withdrawn": "cancelled: withdrawn before any persona started it",
    "detached": "cancelled: {persona} is already at it; its reply will be kept (/history)",
    "unknown": "cancelled: the orchestrator no longer knew it (answered already, or restarted)",
    None: "cancelled; the orchestrator did not confirm (is the cluster up? batos status)",
}

log = logging.getLogger(__name__)

ADDRESSED = re.compile(r"^@([A-Za-z_][A-Za-z0-9_]*)[\s,:]+(\S.*)$", re.S)
NAMES_SECONDS = 10.0  # how long the lobby's names, read for translations, are trusted
NAMES_WAIT = 3.0  # how long a translation waits for them before words alone decide
NAMES_PERSONA = "ALFRED"  # any persona's worker can read the lobby; no routing needed
AT_ONLY = ("the console looks at the image as of {at}: only /inspect, /send and lines that "
           "mean them run there (read-only); /now returns to the present")

HELP = """\
Type a message to talk to the personas (ALFRED routes it), or a command:
  /send PATH SELECTOR [ARG…]   send a message to an object (arguments as JSON)
  /inspect PATH                an object's slots, parents and methods
  /confirm PATH SELECTOR       make a provisional learned method final
  /personas                    who is there
  @PERSONA TEXT                talk to one persona, without routing
  /route PERSONA               send the last chat again to PERSONA (routing learns from it)
  /log                         the image's recent transactions (ids for /undo and /at)
  /undo TXN                    undo everything one transaction did (e.g. a learned method)
  /at WHEN                     look at the image as it was: /inspect and /send run there,
                               read-only, until /now (WHEN: a UTC time such as
                               2026-12-02 06:40:05, a TXN from /log, or before:TXN)
  /now                         back to the image as it is
  /history PATH [SELECTOR]     every version of an object's slots, or of a method's source
  /revert PATH SELECTOR [V]    install version V of a method again (default: the one
                               before; none removes it) — one method, whatever came after;
                               /undo takes back a whole transaction, if nothing came after
  /history                     this session's conversation
  /explain                     how the last line was translated
  /help                        this text
  /quit                        leave (Ctrl-D, or Ctrl-C at an empty prompt, too)
Ctrl-C while a request is on its way cancels it and returns to the prompt."""


class Console:
    """One person's console: a session, a client, the event stream and the translator."""

    def __init__(self, frontend, events, session=None, translator=None, out=sys.stdout,
                 timeout=600.0, curve=None):
        self.session = session or f"{getpass.getuser()}@{socket.gethostname()}-" \
                                  f"{uuid.uuid4().hex[:6]}"
        self.translator = translator
        self.out = out
        # on a terminal the bottom line (the prompt, or the stage of the request in hand) is
        # redrawn in place; elsewhere every line is printed once
        self.terminal = out.isatty()
        self.client = Client(frontend, timeout=timeout, curve=curve)  # timeout: per stage
        self.last_translation = None
        self.streamed = ""  # the reply text streamed so far for the request in flight
        self.last_chat = None  # the words of the last chat, for /route
        self.names, self.names_read = None, 0.0  # the lobby's names, for the translator
        self.lock = threading.Lock()
        self.at_prompt = False
        self.replied = False  # the line in hand has had its answer shown
        self.at = None  # WHEN of the historical view /at chose (None: the image as it is)
        self.line_buffer = lambda: ""  # what is typed at the prompt (readline's, if any)
        self.status = None  # the stage line being redrawn, on a terminal
        self.stage = None
        self.asked_at = 0.0
        self.events = _subscribe(events, curve)
        self.listening = True
        self.listener = threading.Thread(target=self.listen, name="events", daemon=True)
        self.listener.start()

    # -- output -----------------------------------------------------------------------------

    def say(self, text):
        """Print a line (events may print from another thread); on a terminal, above the
        bottom line, which is drawn again."""
        with self.lock:
            self._end_stream()
            if not self.terminal:
                print(text, file=self.out, flush=True)
                return
            bottom = self.status if self.status is not None else \
                self.prompt_text() + self.line_buffer() if self.at_prompt else ""
            self.out.write(f"{CLEAR_LINE}{text}\n{bottom}")
            self.out.flush()

    def _end_stream(self):
        if self.streamed:
            print(file=self.out, flush=True)
            self.streamed = ""

    def listen(self):
        """Print what other consoles cause, as it happens."""
        while self.listening:
            if not self.events.poll(200):
                continue
            try:
                _topic, body = self.events.recv_multipart()
                event = json.loads(body)
            except (ValueError, zmq.ZMQError):
                continue
            if event.get("session") in (None, self.session):
                continue
            if event.get("type") == "installed":
                self.say(f"  ~ elsewhere: {event.get('target')}.{event.get('selector')} was "
                         f"learned" + (" (provisional)" if event.get("provisional") else ""))
            elif event.get("type") == "confirmed":
                self.say(f"  ~ elsewhere: {event.get('target')}.{event.get('selector')} was "
                         f"confirmed")
            elif event.get("type") == "committed":
                self.say(f"  ~ elsewhere: {event.get('persona')} changed the image "
                         f"({', '.join(event.get('ops', []))})")
            elif event.get("type") == "undone":
                self.say(f"  ~ elsewhere: undone: {event.get('note')}")
            elif event.get("type") == "reverted":
                self.say(f"  ~ elsewhere: {event.get('note')}")

    # -- requests ---------------------------------------------------------------------------

    def request(self, payload):
        """Send one request and return its reply, showing its stages on the way (the client
        tracks it and sends it again only when the orchestrator has forgotten it)."""
        payload = {"id": new_request_id(), "session": self.session, **payload}
        self.asked_at, self.stage = time.monotonic(), None
        try:
            return self.client.request(payload, on_progress=self.show_progress)
        finally:
            self.end_status()

    def show_progress(self, message):
        """The stage of the request in hand: one line per stage; on a terminal the current
        one is redrawn with the seconds waited so far ("… thinking (BABS) 23 s"). Pieces of
        a reply being written are shown as they come."""
        if message.get("stage") == "reply":
            self.stream(message.get("persona"), str(message.get("text", "")))
            return
        stage = (message.get("stage"), message.get("persona"))
        text = f"  … {stage[0]}" + (f" ({stage[1]})" if stage[1] else "")
        if not self.terminal:
            if stage != self.stage:
                self.say(text)
            self.stage = stage
            return
        with self.lock:
            if stage != self.stage and self.status is not None:
                self.out.write("\n")  # the stage before keeps its line
            self.stage = stage
            self.status = f"{text} {time.monotonic() - self.asked_at:.0f} s"
            self.out.write(CLEAR_LINE + self.status)
            self.out.flush()

    def end_status(self):
        """The request in hand is over: its last stage line stays as it is."""
        with self.lock:
            if self.status is not None:
                self.out.write("\n")
                self.out.flush()
            self.status = self.stage = None

    def stream(self, persona, text):
        """A piece of a reply being written, appended to the persona's line."""
        with self.lock:
            if not self.streamed:
                if self.status is not None:  # the stage line keeps its line
                    self.out.write("\n")
                    self.status = None
                print(f"{persona}: ", end="", file=self.out)
            self.streamed += text
            print(text, end="", file=self.out, flush=True)

    def show_reply(self, message):
        """A reply, labelled by persona, with what was learned on the way (a reply already
        streamed is only ended)."""
        self.replied = True
        persona, reply = message.get("persona", "?"), message.get("reply") or ""
        if self.streamed and self.streamed.strip() == reply.strip():
            with self.lock:
                self._end_stream()
        elif reply:
            self.say(f"{persona}: {reply}")
        result = message.get("result")
        if result not in (None, [], ""):
            self.say(f"{persona} ⇒ {json.dumps(result, ensure_ascii=False)}")
        for learned in message.get("learned", []):
            provisional = (f"; PROVISIONAL — /confirm {learned['target']} "
                           f"{learned['selector']} makes it final") \
                if learned.get("provisional") else ""
            self.say(f"  ✓ installed {learned['target']}.{learned['selector']} "
                     f"({learned['attempts']} attempt(s){provisional})")
            for line in (learned.get("source") or "").rstrip().splitlines():
                self.say(f"    | {line}")
        if message.get("at"):
            self.say(f"  ({message['at']['label']}; read-only)")
        if message.get("replayed"):
            self.say("  (answered before; nothing was done again)")

    # -- lines ------------------------------------------------------------------------------

    def handle(self, line):
        """Act on one line; False when the person wants to leave."""
        line = line.strip()
        if not line:
            return True
        self.replied = False
        try:
            if line.startswith("/"):
                return self.command(line)
            addressed = ADDRESSED.match(line)
            if addressed and self.at is None:  # "@BRICK …": that persona, no routing
                self.chat_with(addressed.group(1), addressed.group(2))
                return True
            if addressed:
                self.say(AT_ONLY.format(at=self.at))
                return True
            translation = self.translate(line)
            if self.at is not None:
                if translation.payload.get("intent") not in ("send", "inspect"):
                    self.say(AT_ONLY.format(at=self.at))
                    return True
                translation.payload["at"] = self.at
            self.show_reply(self.request(translation.payload))
            if translation.payload.get("intent") == "chat":
                self.last_chat = line
        except RequestFailed as exc:
            self.say(f"error: {exc}" + (" (retrying may help)" if exc.transient else ""))
        except ClusterSilent as exc:
            self.say(f"error: {exc}; is the cluster up? (batos status)")
        except NoAnswer as exc:
            self.say(f"error: {exc}")
        except Cancelled as cancelled:
            self.say("  " + CANCELLED[cancelled.outcome].format(
                persona=cancelled.persona or "a persona"))
        except Terminated:
            raise
        except KeyboardInterrupt:
            if self.replied:  # Ctrl-C just after the answer: between requests, as at the prompt
                return self.terminal
            self.say("  cancelled")  # before anything was sent: nothing to cancel
        return True

    def chat_with(self, persona, text):
        """A chat for one persona; when the router chose another for the same words, the
        orchestrator takes it as a correction that teaches routing."""
        self.show_reply(self.request({"intent": "chat", "text": text, "persona": persona}))
        self.last_chat = text

    def translate(self, line):
        """The payload for a line of text (plain chat without a translator)."""
        from console.translator import Translation
        if self.translator is None:
            translation = Translation({"intent": "chat", "text": line}, None, "no translator")
        else:
            translation = self.translator.translate(line, self.lobby_names())
        self.last_translation = translation
        return translation

    def lobby_names(self):
        """The lobby's names, so that translations name only objects that exist: read at most
        every `NAMES_SECONDS` (None while the lobby cannot be read: words alone decide)."""
        now = time.monotonic()
        if self.names is None or now - self.names_read > NAMES_SECONDS:
            try:
                answer = self.client.request({"id": new_request_id(), "session": self.session,
                                              "intent": "inspect", "target": "lobby",
                                              "persona": NAMES_PERSONA}, timeout=NAMES_WAIT)
                self.names = set((answer.get("result") or {}).get("slots", {}))
                self.names_read = now
            except (NoAnswer, RequestFailed) as exc:
                log.info("the lobby's names could not be read: %s", exc)
        return self.names

    def command(self, line):
        """A slash command."""
        try:
            words = shlex.split(line[1:])
        except ValueError as exc:
            self.say(f"error: {exc}")
            return True
        name, args = (words[0], words[1:]) if words else ("help", [])
        if name in ("quit", "exit"):
            return False
        if name == "help":
            self.say(HELP)
        elif name == "explain":
            self.explain()
        elif name == "send" and len(args) >= 2:
            try:
                values = [json.loads(a) for a in args[2:]]
            except ValueError:
                self.say("error: arguments are JSON values, e.g. /send rect scaled 2")
                return True
            payload = {"intent": "send", "target": args[0], "selector": args[1],
                       "args": values}
            if self.at is not None:  # read-only: any persona reads the past, no routing
                payload.update(at=self.at, persona="ALFRED")
            self.show_reply(self.request(payload))
        elif name == "inspect" and len(args) == 1:
            payload = {"intent": "inspect", "target": args[0], "persona": "ALFRED"}
            if self.at is not None:
                payload["at"] = self.at
            self.show_object(self.request(payload)["result"])
        elif name == "at" and args:
            self.travel(" ".join(args))
        elif name == "now":
            self.at = None
            self.say("now: /inspect and /send act on the image as it is")
        elif name == "history" and args and len(args) <= 2:
            self.show_versions(args)
        elif name == "revert" and len(args) in (2, 3):
            payload = {"intent": "revert", "target": args[0], "selector": args[1],
                       "persona": "ALFRED"}
            if len(args) == 3:
                payload["version"] = args[2]
            done = self.request(payload)["result"]
            self.say(f"{done['note']} (was version {done['from']}; /undo of its transaction "
                     "takes it back)")
        elif name == "route" and len(args) == 1 and self.last_chat:
            self.chat_with(args[0].upper(), self.last_chat)
        elif name == "confirm" and len(args) == 2:
            self.request({"intent": "confirm", "target": args[0], "selector": args[1],
                          "persona": "ALFRED"})
            self.say(f"confirmed {args[0]}.{args[1]}: it is final now")
        elif name == "personas":
            status = self.request({"intent": "status", "persona": "ALFRED"})["result"]
            self.say("personas: " + ", ".join(status["personas"]))
        elif name == "log":
            for row in self.request({"intent": "log", "persona": "ALFRED"})["result"]:
                self.say(f"  {row['tid']}  {row['user'] or '-':<10} {row['note']}")
        elif name == "undo" and len(args) == 1:
            result = self.request({"intent": "undo", "txn": args[0],
                                   "persona": "ALFRED"})["result"]
            self.say(f"undone: {result['undone']}")
        elif name == "history":
            for turn in self.request({"intent": "history", "persona": "ALFRED"})["result"]:
                self.say(f"  {turn['persona'] or 'you'}: {turn['text']}")
        else:
            self.say(f"unknown or incomplete command: /{name} (see /help)")
        return True

    def travel(self, when):
        """`/at WHEN`: check the moment with a persona (it reads the lobby as it was), then
        send /inspect and /send there until /now."""
        answer = self.request({"intent": "inspect", "target": "lobby", "at": when,
                               "persona": "ALFRED"})["result"]["at"]
        self.at = answer["when"]
        self.say(f"viewing the image {answer['label']}, read-only: /inspect and /send run "
                 "there; /now returns")

    def show_versions(self, args):
        """`/history PATH [SELECTOR]`: the versions of an object's slots or a method."""
        from kernel import versions  # rendering only: the console still reads no database
        payload = {"intent": "versions", "target": args[0], "persona": "ALFRED"}
        if len(args) == 2:
            payload["selector"] = args[1]
        result = self.request(payload)["result"]
        lines = versions.method_lines(result, diff=True) if len(args) == 2 else \
            versions.object_lines(result)
        for line in lines:
            self.say(line)

    def prompt_text(self):
        """The prompt: it names the moment while the console looks at the past."""
        return PROMPT if self.at is None else f"you@{self.at}> "

    def explain(self):
        """How the last line was translated."""
        translation = self.last_translation
        if translation is None:
            self.say("nothing translated yet")
            return
        self.say(f"payload: {json.dumps(translation.payload, ensure_ascii=False)}")
        self.say(f"model said: {translation.raw}; {translation.note}")

    def show_object(self, description):
        """An object's slots, parents and methods (as of when, for a view of the past)."""
        if description.get("at"):
            self.say(f"{description['at']['label']} (read-only):")
        self.say(f"{description['label']}  parents: {', '.join(description['parents'])}")
        for name, value in description["slots"].items():
            self.say(f"  {name} = {json.dumps(value, ensure_ascii=False)[:70]}")
        for selector, method in description["methods"].items():
            provisional = (method.get("provenance") or {}).get("provisional")
            self.say(f"  {selector}()  {method.get('kind')}"
                     + ("  PROVISIONAL (/confirm makes it final)" if provisional else ""))

    # -- loops ------------------------------------------------------------------------------

    def run_interactive(self):
        """A prompt with line editing and history (readline)."""
        history = os.path.expanduser("~/.batos_console_history")
        try:
            import readline
            try:
                readline.read_history_file(history)
            except OSError:
                pass
        except ImportError:
            readline = None
        if readline is not None:
            self.line_buffer = readline.get_line_buffer
        self.say(f"BAT OS console — session {self.session}. /help for commands.")
        try:
            with own_terminal():
                while (line := self.prompt()) is not None and self.handle(line):
                    pass
        finally:
            if readline is not None:
                try:
                    readline.write_history_file(history)
                except OSError:
                    pass

    def prompt(self):
        """The next line typed; None to leave (Ctrl-D, or Ctrl-C at an empty prompt). Ctrl-C
        drops a line being typed, as a shell does."""
        while True:
            self.at_prompt = True
            try:
                return input(self.prompt_text())
            except EOFError:
                self.out.write("\n")
                return None
            except Terminated:
                raise
            except KeyboardInterrupt:
                typed = self.line_buffer()
                self.out.write("\n")
                if not typed.strip():
                    return None
            finally:
                self.at_prompt = False

    def run_lines(self, stream):
        """One message per line from a non-terminal stdin; Ctrl-C while a request is on its
        way cancels it, Ctrl-C between requests leaves."""
        lines = interruptible_lines(stream)
        try:
            for line in lines:
                if not self.handle(line):
                    break
        except Terminated:
            raise
        except KeyboardInterrupt:
            pass
        finally:
            lines.close()

    def close(self):
        """Stop listening and close the sockets."""
        self.listening = False
        self.listener.join(2)
        self.events.close(0)
        self.client.close()


@contextlib.contextmanager
def own_terminal():
    """Make the console's process group the terminal's foreground group while it runs, so
    that Ctrl-C reaches the console alone — not a program that started it in its own group
    (`make run`), which would wait for the console and then end, reporting an interrupt.
    Ctrl-Z is ignored meanwhile: no shell would see the console stop."""
    fd = sys.stdin.fileno()
    group = os.getpgrp()
    if group == os.getpid() or os.tcgetpgrp(fd) != group:
        yield  # a group of its own already (a shell's job), or not in the foreground
        return
    os.setpgid(0, 0)
    _give_terminal(fd, os.getpgrp())
    stop = signal.signal(signal.SIGTSTP, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTSTP, stop)
        _give_terminal(fd, group)


def _give_terminal(fd, group):
    """Make `group` the foreground process group of terminal `fd` (SIGTTOU, which a process
    outside the foreground gets for asking, is ignored meanwhile)."""
    ttou = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(fd, group)
    finally:
        signal.signal(signal.SIGTTOU, ttou)


def interruptible_lines(stream):
    """The lines of `stream` (a console's stdin that is no terminal) as they come, waiting so
    that a signal is never lost: Python runs a signal's handler only between bytecodes, so a
    Ctrl-C that lands just before a plain read blocks would wait for the next line. Here the
    signal's wakeup byte (`signal.set_wakeup_fd`) ends the wait and the handler runs at once.
    A stream that is never waited on (no file descriptor, a regular file, /dev/null: epoll
    refuses those) is read as it is."""
    selector = selectors.DefaultSelector()
    try:
        fd = stream.fileno()
        selector.register(fd, selectors.EVENT_READ)
    except (AttributeError, OSError, ValueError):
        selector.close()
        yield from stream
        return
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    previous = signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    decoder = codecs.getincrementaldecoder(getattr(stream, "encoding", None) or "utf-8")(
        "replace")
    partial = ""
    try:
        with selector:
            selector.register(wake_read, selectors.EVENT_READ)
            while True:
                ready = {key.fd for key, _ in selector.select()}
                if wake_read in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_read, 4096)  # a signal came: its handler runs now
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                *lines, partial = (partial + decoder.decode(chunk)).split("\n")
                yield from (line + "\n" for line in lines)
        partial += decoder.decode(b"", final=True)
        if partial:
            yield partial
    finally:
        signal.set_wakeup_fd(previous)
        os.close(wake_read)
        os.close(wake_write)


def _subscribe(endpoint, curve=None):
    socket = zmq.Context.instance().socket(zmq.SUB)
    socket.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        keys.secure_client(socket, curve)
    socket.setsockopt(zmq.SUBSCRIBE, protocol.EVENT)
    socket.connect(endpoint)
    return socket


def main(home, session=None, translate=True, timeout=600.0, key=None):
    """Run a console for a home's cluster; interactive on a terminal, line by line otherwise.
    In remote mode it authenticates with console key `key` (default `$BATOS_KEY`, then the
    home's `local` key; see `kernel.keys`). `timeout`: the seconds one stage of a request may
    last. No orchestrator answering is a `ClusterSilent` within seconds, before anything else
    (the translator's model) is loaded."""
    from console.translator import Translator
    curve = keys.client_curve(home, key)
    endpoints = {name: keys.connect_endpoint(endpoint)
                 for name, endpoint in home.orchestrator_endpoints.items()}
    with Client(endpoints["frontend"], curve=curve) as probe:
        probe.check()
    translator = Translator.from_config(home.config, home.personas) if translate else None
    console = Console(endpoints["frontend"], endpoints["events"], session, translator,
                      timeout=timeout, curve=curve)
    try:
        if sys.stdin.isatty():
            console.run_interactive()
        else:
            console.run_lines(sys.stdin)
    finally:
        console.close()
    return 0
