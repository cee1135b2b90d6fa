"""The Synaptic Console: a person's conversation with the living image.

It speaks only ZeroMQ to the orchestrator (no database access), so it runs anywhere — on
another host with an allowed CURVE console key when the home is in remote mode (`kernel.keys`,
`batos console --key NAME`). Each
console has its own session (its history lives in the image). A line is translated into a
payload by the console's small model (`console.translator`), or sent as a plain chat; slash
commands need no model. While a request is in flight the console shows its progress
(routed → thinking → writing-method → audit → trial → judging → installed); between requests
it shows, quietly, what other consoles cause (methods learned, objects changed) from the
orchestrator's events. A method learned as provisional (`kernel.dnu`) says so wherever it
shows; `/confirm PATH SELECTOR` makes it final. If the orchestrator restarts mid-request, the request is sent again with the same id —
the ledger makes sure its effects happen once. When stdin is not a terminal, it reads one
message per line and prints the replies (for scripts and tests).
"""
import getpass
import json
import os
import shlex
import socket
import sys
import threading
import uuid

import zmq

from kernel import keys, protocol
from kernel.client import Client, NoAnswer, RequestFailed, new_request_id

HELP = """\
Type a message to talk to the personas (ALFRED routes it), or a command:
  /send PATH SELECTOR [ARG…]   send a message to an object (arguments as JSON)
  /inspect PATH                an object's slots, parents and methods
  /confirm PATH SELECTOR       make a provisional learned method final
  /personas                    who is there
  /log                         the image's recent transactions (ids for /undo)
  /undo TXN                    undo a transaction (e.g. a learned method)
  /history                     this session's conversation
  /explain                     how the last line was translated
  /help                        this text
  /quit                        leave (Ctrl-D too)"""


class Console:
    """One person's console: a session, a client, the event stream and the translator."""

    def __init__(self, frontend, events, session=None, translator=None, out=sys.stdout,
                 resend_after=15.0, timeout=600.0, curve=None):
        self.frontend = frontend
        self.curve = curve  # a kernel.keys.ClientCurve in remote mode, for both sockets
        self.session = session or f"{getpass.getuser()}@{socket.gethostname()}-" \
                                  f"{uuid.uuid4().hex[:6]}"
        self.translator = translator
        self.out = out
        self.resend_after = resend_after
        self.timeout = timeout
        self.client = Client(frontend, timeout=timeout, curve=curve)
        self.last_translation = None
        self.lock = threading.Lock()
        self.events = _subscribe(events, curve)
        self.listening = True
        self.listener = threading.Thread(target=self.listen, name="events", daemon=True)
        self.listener.start()

    # -- output -----------------------------------------------------------------------------

    def say(self, text):
        """Print a line (events may print from another thread)."""
        with self.lock:
            print(text, file=self.out, flush=True)

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

    # -- requests ---------------------------------------------------------------------------

    def request(self, payload):
        """Send one request; resend it with the same id after silence; return the reply."""
        payload = {"id": new_request_id(), "session": self.session, **payload}
        attempts = max(1, round(self.timeout / self.resend_after))
        for attempt in range(attempts):
            try:
                return self.client.request(payload, on_progress=self.show_progress,
                                           timeout=self.resend_after)
            except NoAnswer:
                if attempt == 0:
                    self.say("  … no answer yet; asking again (same request, no duplicate "
                             "effects)")
                self.client.close()
                self.client = Client(self.frontend, timeout=self.timeout, curve=self.curve)
        raise NoAnswer(f"the cluster at {self.frontend} does not answer; is it up? "
                       "(batos status)")

    def show_progress(self, message):
        """One line per stage of a request in flight."""
        self.say(f"  … {message.get('stage')} ({message.get('persona')})")

    def show_reply(self, message):
        """A reply, labelled by persona, with what was learned on the way."""
        persona = message.get("persona", "?")
        if message.get("reply"):
            self.say(f"{persona}: {message['reply']}")
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
        if message.get("replayed"):
            self.say("  (answered before; nothing was done again)")

    # -- lines ------------------------------------------------------------------------------

    def handle(self, line):
        """Act on one line; False when the person wants to leave."""
        line = line.strip()
        if not line:
            return True
        try:
            if line.startswith("/"):
                return self.command(line)
            translation = self.translate(line)
            self.show_reply(self.request(translation.payload))
        except RequestFailed as exc:
            self.say(f"error: {exc}" + (" (retrying may help)" if exc.transient else ""))
        except NoAnswer as exc:
            self.say(f"error: {exc}")
        return True

    def translate(self, line):
        """The payload for a line of text (plain chat without a translator)."""
        from console.translator import Translation
        if self.translator is None:
            translation = Translation({"intent": "chat", "text": line}, None, "no translator")
        else:
            translation = self.translator.translate(line)
        self.last_translation = translation
        return translation

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
            self.show_reply(self.request({"intent": "send", "target": args[0],
                                          "selector": args[1], "args": values}))
        elif name == "inspect" and len(args) == 1:
            self.show_object(self.request({"intent": "inspect", "target": args[0],
                                           "persona": "ALFRED"})["result"])
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

    def explain(self):
        """How the last line was translated."""
        translation = self.last_translation
        if translation is None:
            self.say("nothing translated yet")
            return
        self.say(f"payload: {json.dumps(translation.payload, ensure_ascii=False)}")
        self.say(f"model said: {translation.raw}; {translation.note}")

    def show_object(self, description):
        """An object's slots, parents and methods."""
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
        self.say(f"BAT OS console — session {self.session}. /help for commands.")
        try:
            while True:
                try:
                    line = input("you> ")
                except EOFError:
                    break
                if not self.handle(line):
                    break
        finally:
            if readline is not None:
                try:
                    readline.write_history_file(history)
                except OSError:
                    pass

    def run_lines(self, stream):
        """One message per line from a non-terminal stdin."""
        for line in stream:
            if not self.handle(line):
                break

    def close(self):
        """Stop listening and close the sockets."""
        self.listening = False
        self.listener.join(2)
        self.events.close(0)
        self.client.close()


def _subscribe(endpoint, curve=None):
    socket = zmq.Context.instance().socket(zmq.SUB)
    socket.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        keys.secure_client(socket, curve)
    socket.setsockopt(zmq.SUBSCRIBE, protocol.EVENT)
    socket.connect(endpoint)
    return socket


def main(home, session=None, translate=True, resend_after=15.0, timeout=600.0, key=None):
    """Run a console for a home's cluster; interactive on a terminal, line by line otherwise.
    In remote mode it authenticates with console key `key` (default `$BATOS_KEY`, then the
    home's `local` key; see `kernel.keys`)."""
    from console.translator import Translator
    curve = keys.client_curve(home, key)
    endpoints = {name: keys.connect_endpoint(endpoint)
                 for name, endpoint in home.orchestrator_endpoints.items()}
    translator = Translator.from_config(home.config, home.personas) if translate else None
    console = Console(endpoints["frontend"], endpoints["events"], session, translator,
                      resend_after=resend_after, timeout=timeout, curve=curve)
    try:
        if sys.stdin.isatty():
            console.run_interactive()
        else:
            console.run_lines(sys.stdin)
    finally:
        console.close()
    return 0
