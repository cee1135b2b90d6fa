"""The Synaptic Console against a running cluster: in a real terminal (tmux) and line by line.

The models (personas' and the console's) follow a script whose `delay`s stand in for a slow
model; supervisord, ZEO, the orchestrator, the workers and the terminal are real, and tests of
waiting keep the CPU busy with other processes.
"""
import codecs
import contextlib
import json
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import threading

import pytest

from conftest import REPO, logged, run_batos, running_cluster, wait_until
from console.chat_client import interruptible_lines
from kernel import supervise
from kernel.home import Home

RULES = [
    {"persona": "console", "match": "choose intent", "reply": "chat"},
    {"persona": "ALFRED", "match": "choose persona", "reply": "BRICK"},
    {"persona": "BRICK", "match": "Write the method area",
     "reply": "def area(self):\n    return self.width * self.height\n"},
    {"match": r"choose plan[\s\S]*\n\nwhat is the rect area\??\Z", "reply": "send rect area"},
    {"match": r"choose plan[\s\S]*\n\nslow bump counter\Z", "delay": 4.0,
     "reply": "send counter bump"},
    {"match": r"choose plan[\s\S]*\n\nremember ping events\Z", "reply": "remember"},
    {"match": "choose plan", "reply": "reply"},
    {"match": r"User: slow hello (\d)\Z", "delay": 3.0, "expand": True, "reply": "hello \\1"},
    {"match": r"User: very slow\Z", "delay": 20.0, "reply": "slowly done"},  # room for Ctrl-C
    {"match": r"User: never mind\Z", "reply": "minded"},
    {"match": r"User: ", "reply": "hello"},
]
BUMP = ("def bump(self):\n    self.count = self.count + 1\n    self._p_changed = True\n"
        "    return self.count\n")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with running_cluster(tmp_path_factory.mktemp("console"), RULES) as (home, env, image):
        with image.transaction(note="console test objects") as lobby:
            lobby.rect = lobby.traits.clone(width=3, height=4)
            lobby.rect._label = "rect"
            lobby.counter = lobby.traits.clone(count=0)
            lobby.counter.define("bump", BUMP)
        yield home, env, image


def model_calls(home, text, planned=False):
    """How often a worker's model answered the chat line `text` — spoke, or (`planned`)
    chose its plan (each answer is logged with the number of the rule that gave it)."""
    prompt = f"choose plan\n[reply] -\n\n{text}" if planned else f"User: {text}"
    number = next(n for n, rule in enumerate(RULES)
                  if "persona" not in rule and re.search(rule["match"], prompt))
    return logged(home, rf"completed for \w+ by rule {number} ")


def console_command(home, *extra):
    return [sys.executable, "-c", "import sys; from kernel.cli import main; sys.exit(main())",
            "console", "--home", str(home.path), *extra]


class LineConsole:
    """A console whose stdin is a pipe: one message per line, replies on stdout (read as it
    comes, unbuffered: a line read ahead into a buffer would wait for the next output)."""

    def __init__(self, home, env, *extra):
        self.process = subprocess.Popen(console_command(home, *extra), cwd=REPO,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, env=dict(os.environ, **env))
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.process.stdout, selectors.EVENT_READ)
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.partial = ""
        self.seen = []  # every line so far
        self.checked = 0  # how many of them `expect` has looked at

    def send(self, line):
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def expect(self, pattern, timeout=60.0):
        """The next line (after those looked at before) matching `pattern`."""
        def found():
            while self.checked < len(self.seen):
                self.checked += 1
                if re.search(pattern, self.seen[self.checked - 1]):
                    return True
            if self.selector.select(0.1):
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError("console ended; it said: " + "".join(self.seen))
                *lines, self.partial = (self.partial + self.decoder.decode(chunk)).split("\n")
                self.seen += [line + "\n" for line in lines]
            return False
        try:
            wait_until(found, timeout=timeout, interval=0)
        except AssertionError:
            raise AssertionError(f"{pattern!r} never appeared; the console said:\n"
                                 + "".join(self.seen)) from None
        return self.seen[self.checked - 1]

    def wait_until_listening(self, home, env):
        """PUB/SUB drops what is published before a subscriber has joined: ping from another
        session until this console hears one."""
        def heard():
            run_batos("ask", "remember ping events", "--persona", "ROBIN", "--session",
                      "pinger", home=home.path, env=env, check=True)
            try:
                self.expect(r"~ elsewhere: .*\(remember\)", timeout=3)
            except AssertionError:
                return False
            return True
        wait_until(heard, timeout=120)

    def ended(self, timeout=120.0):
        """The console's exit code once it has ended by itself; what it said when it does not."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(AssertionError):
                self.expect(r"\A\Z", timeout=1)  # read what it said meanwhile
            raise AssertionError(f"the console did not end within {timeout:g} s; it said:\n"
                                 + "".join(self.seen)) from None

    def close(self):
        self.process.stdin.close()
        self.process.wait(120)
        self.selector.close()
        self.process.stdout.close()


class Terminal:
    """A real terminal: the console (or `command`) running in a tmux session, whose screen
    stays when the command ends."""

    def __init__(self, home, env, name, command=None):
        self.name = name
        command = shlex.join(["env", *(f"{k}={v}" for k, v in env.items()),
                              *(command or console_command(home, "--session", name))])
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "160", "-y", "60",
                        ";", "set-option", "-t", name, "remain-on-exit", "on"], check=True,
                       cwd=REPO)
        subprocess.run(["tmux", "respawn-pane", "-k", "-t", name, command], check=True,
                       cwd=REPO)

    def type(self, text):
        subprocess.run(["tmux", "send-keys", "-t", self.name, text, "Enter"], check=True)

    def keys(self, *keys):
        """Press keys (tmux names: "C-c"), or type text without Enter."""
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def ended(self):
        """True once the command in the terminal has ended."""
        return subprocess.run(["tmux", "display-message", "-p", "-t", self.name,
                               "#{pane_dead}"], capture_output=True, text=True,
                              check=True).stdout.strip() == "1"

    def bottom(self):
        """The last line of the screen that is not empty."""
        return [line for line in self.screen().splitlines() if line.strip()][-1]

    def expect_bottom(self, line, timeout=60.0):
        """Wait until the screen's last line is `line` (the rest of an answer may still be
        arriving when what was expected of it has appeared)."""
        try:
            wait_until(lambda: self.bottom() == line, timeout=timeout)
        except AssertionError:
            raise AssertionError(f"the last line never became {line!r}; the screen:\n"
                                 f"{self.screen()}") from None

    def screen(self):
        return subprocess.run(["tmux", "capture-pane", "-p", "-S", "-200", "-t", self.name],
                              capture_output=True, text=True, check=True).stdout

    def expect(self, pattern, timeout=60.0):
        try:
            wait_until(lambda: re.search(pattern, self.screen()), timeout=timeout)
        except AssertionError:
            raise AssertionError(f"{pattern!r} never appeared; the screen:\n{self.screen()}")\
                from None
        return self.screen()

    def close(self):
        subprocess.run(["tmux", "kill-session", "-t", self.name], check=False)


@pytest.mark.cluster
def test_a_person_learns_a_method_watches_it_and_undoes_it_while_another_console_sees_it(
        cluster):
    home, env, _image = cluster
    assert shutil.which("tmux"), "tmux is missing: `make test` installs it"
    witness = LineConsole(home, env, "--session", "witness")
    witness.wait_until_listening(home, env)
    terminal = Terminal(home, env, "batos-console-test")
    try:
        terminal.expect(r"you>")
        terminal.type("what is the rect area?")
        screen = terminal.expect(r"BRICK ⇒ \[12\]")
        for stage in ("routed \\(BRICK\\)", "thinking", "writing-method", "audit", "trial",
                      "installed \\(BRICK\\)"):
            assert re.search(r"… " + stage, screen), stage
        assert "✓ installed rect.area" in screen and "| def area(self):" in screen
        witness.expect(r"~ elsewhere: rect\.area was learned")
        terminal.type("/log")
        tid = re.search(r"([0-9a-f]{8,})  BRICK\s+BRICK learned rect\.area",
                        terminal.expect(r"BRICK learned rect\.area")).group(1)
        terminal.type(f"/undo {tid}")
        terminal.expect(r"undone: BRICK learned rect\.area")
        terminal.type("/inspect rect")
        screen = terminal.expect(r"rect  parents: traits")
        assert "area()" not in screen.split("rect  parents: traits")[-1]
        witness.expect(r"~ elsewhere: undone: BRICK learned rect\.area")
        terminal.type("/explain")
        terminal.expect(r'payload: \{"intent": "chat", "text": "what is the rect area\?"')
        terminal.type("/quit")
    finally:
        terminal.close()
        witness.close()


@pytest.mark.cluster
def test_a_persona_addressed_or_chosen_again_answers_and_routing_learns_from_it(cluster):
    home, env, image = cluster
    console = LineConsole(home, env, "--session", "addressing")
    try:
        console.send("@ROBIN how are you")
        console.expect(r"^ROBIN: hello$")
        console.send("where did I leave my hat")
        console.expect(r"^BRICK: hello$")  # routed
        console.send("/route babs")
        console.expect(r"^BABS: hello$")
    finally:
        console.close()
    examples = image.run(lambda lobby: [dict(e) for e in lobby.orchestrator.examples])
    assert {"text": "where did I leave my hat", "persona": "BABS",
            "was": "BRICK"}.items() <= examples[-1].items()


@pytest.mark.cluster
def test_the_console_recovers_when_the_orchestrator_restarts_mid_request(cluster):
    home, env, image = cluster
    before = image.run(lambda lobby: lobby.counter.count)
    calls = model_calls(home, "slow bump counter", planned=True)
    console = LineConsole(home, env, "--session", "restart")
    try:
        console.send("slow bump counter")
        console.expect(r"… thinking")  # the request is in a worker's hands now
        with supervise.supervisor(home) as server:
            server.stopProcess("orchestrator")
            server.startProcess("orchestrator")
        console.expect(r"\w+: The bump of counter is", timeout=120)
        assert image.run(lambda lobby: lobby.counter.count) == before + 1
        # the new orchestrator adopted it from the worker: the model did not run again
        assert model_calls(home, "slow bump counter", planned=True) == calls + 1
        console.send("/history")
        console.expect(r"you: slow bump counter")
    finally:
        console.close()


def test_a_console_says_clearly_when_the_cluster_is_down(tmp_path):
    from kernel.home import Home
    home = Home.init(tmp_path / "down")
    result = subprocess.run(console_command(home, "--no-translate"), input="hello\n",
                            text=True, capture_output=True, cwd=REPO, timeout=60)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("batos: no answer from the orchestrator at tcp://")
    assert f"is the cluster of {home.path} up? (batos status --home {home.path})" \
        in result.stderr


# -- at real-model speed (issue 19) -----------------------------------------------------------

def test_a_line_console_reads_lines_as_they_come_whole_and_decoded():
    read_end, write_end = os.pipe()
    with open(read_end, encoding="utf-8") as stream:
        lines = interruptible_lines(stream)
        os.write(write_end, b"one\ntw")
        assert next(lines) == "one\n"
        os.write(write_end, b"o\ncaf\xc3")  # "é" split between two reads
        assert next(lines) == "two\n"
        os.write(write_end, b"\xa9\nlast")
        os.close(write_end)
        assert list(lines) == ["café\n", "last"]


def test_a_line_console_reads_a_file_or_dev_null_that_it_cannot_wait_on(tmp_path):
    script = tmp_path / "lines"
    script.write_text("one\ntwo\n")
    with open(script, encoding="utf-8") as stream:
        assert list(interruptible_lines(stream)) == ["one\n", "two\n"]
    with open(os.devnull, encoding="utf-8") as stream:  # `make run < /dev/null`
        assert list(interruptible_lines(stream)) == []


def test_a_line_console_waiting_for_a_line_is_interrupted_at_once():
    read_end, write_end = os.pipe()
    main = threading.main_thread().ident
    before = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(before)

    def waiting():
        return any(frame.f_code is interruptible_lines.__code__
                   for frame in _frames(sys._current_frames()[main]))

    def interrupt():
        wait_until(waiting, timeout=60)
        os.kill(os.getpid(), signal.SIGINT)
        ended.wait(60) or os.write(write_end, b"never interrupted\n")  # no hang: a failure

    ended = threading.Event()
    interrupter = threading.Thread(target=interrupt)
    with open(read_end, encoding="utf-8") as stream:
        lines = interruptible_lines(stream)
        interrupter.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                next(lines)
        finally:
            ended.set()
            interrupter.join()
            os.close(write_end)
    assert signal.set_wakeup_fd(before) == before  # the console's wakeup pipe went with it


def _frames(frame):
    while frame is not None:
        yield frame
        frame = frame.f_back


@pytest.mark.cluster
def test_three_consoles_asking_at_once_all_get_their_answers(cluster, busy_cpu):
    home, env, _image = cluster
    before = model_calls(home, "slow hello 1")
    consoles = [LineConsole(home, env, "--session", f"three-{n}") for n in range(3)]
    try:
        for n, console in enumerate(consoles):
            console.send(f"slow hello {n}")
        for n, console in enumerate(consoles):  # one BRICK worker: they take turns
            console.expect(rf"^BRICK: hello {n}$", timeout=180)
        assert any("… queued (BRICK)" in line for console in consoles for line in console.seen)
        assert model_calls(home, "slow hello 1") == before + 3  # once each, none again
    finally:
        for console in consoles:
            console.close()


@pytest.mark.cluster
def test_ctrl_c_cancels_a_request_while_the_cluster_serves_other_consoles(cluster, busy_cpu):
    home, env, _image = cluster
    assert shutil.which("tmux"), "tmux is missing: `make test` installs it"
    witness = LineConsole(home, env, "--session", "ctrl-c-witness")
    terminal = Terminal(home, env, "batos-console-ctrl-c")
    try:
        terminal.expect(r"you>")
        before = model_calls(home, "very slow")
        terminal.type("very slow")  # started, then cancelled: it finishes, its reply is kept
        terminal.expect(r"… thinking \(BRICK\) \d+ s")
        terminal.keys("C-c")
        terminal.expect(r"cancelled: BRICK is already at it; its reply will be kept")
        terminal.expect_bottom("you>")
        witness.send("slow hello 5")  # queued behind the very slow one, and answered
        terminal.type("never mind")  # queued too, then withdrawn: it never runs
        terminal.expect(r"… queued \(BRICK\)")
        terminal.keys("C-c")
        terminal.expect(r"cancelled: withdrawn before any persona started it")
        witness.expect(r"^BRICK: hello 5$", timeout=180)
        terminal.type("hi there")
        terminal.expect(r"BRICK: hello\n", timeout=120)
        assert model_calls(home, "very slow") == before + 1 and model_calls(home,
                                                                            "never mind") == 0
        terminal.type("/history")
        terminal.expect(r"BRICK: slowly done")
        terminal.keys("C-c")  # at an empty prompt: leave
        wait_until(terminal.ended, timeout=30)
    finally:
        terminal.close()
        witness.close()


@pytest.mark.cluster
def test_an_event_redraws_the_prompt_and_what_was_typed(cluster):
    home, env, _image = cluster
    terminal = Terminal(home, env, "batos-console-redraw")
    try:
        terminal.expect(r"you>")
        terminal.keys("hel")
        listening = LineConsole(home, env, "--session", "redraw-witness")
        try:
            listening.wait_until_listening(home, env)  # events reach consoles now
        finally:
            listening.close()
        terminal.expect(r"~ elsewhere: ROBIN changed the image \(remember\)")
        terminal.expect_bottom("you> hel")
        terminal.type("lo")
        terminal.expect(r"you> hello\n(.*\n)*BRICK: hello")
    finally:
        terminal.close()


@pytest.mark.cluster
def test_a_console_whose_stdin_is_dev_null_leaves_at_once(cluster):
    home, env, _image = cluster
    result = subprocess.run(console_command(home, "--session", "null"), cwd=REPO,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            env=dict(os.environ, **env), timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.cluster
def test_a_line_console_cancels_on_sigint_and_leaves_on_the_next(cluster):
    home, env, _image = cluster
    console = LineConsole(home, env, "--session", "sigint")
    try:
        console.send("very slow")
        console.expect(r"… thinking \(BRICK\)", timeout=120)
        console.process.send_signal(signal.SIGINT)
        console.expect(r"cancelled: BRICK is already at it")
        console.send("hi")
        console.expect(r"^BRICK: hello$", timeout=120)
        console.process.send_signal(signal.SIGINT)  # between requests: leave
        assert console.ended() == 0
    finally:
        console.close()


BUMP_2 = ("def bump(self):\n    self.count = 1 + self.count\n    self._p_changed = True\n"
          "    return self.count\n")


@pytest.mark.cluster
def test_a_console_in_at_mode_sees_the_past_while_other_consoles_change_the_image(cluster):
    """Issue 15: one console looks at the image as it was (/at; its prompt says so) while
    two others change it at the same time; it sees the past, read-only, and the present
    again after /now; /history shows each version, /revert reinstalls one."""
    home, env, image = cluster
    then = image.run(lambda lobby: lobby.counter.count)
    moment = image.history(1)[0]["tid"]
    changers = [LineConsole(home, env, "--session", f"changer-{n}", "--no-translate")
                for n in range(2)]
    terminal = Terminal(home, env, "batos-console-at")
    try:
        terminal.expect(r"you>")
        terminal.type(f"/at {moment}")
        terminal.expect(r"viewing the image as of transaction [0-9a-f]{16} .*read-only")
        terminal.expect(r"you@[0-9a-f]{16}>")
        for changer in changers:  # both at once, while the past is being looked at
            changer.send("/send counter bump")
        for changer in changers:
            changer.expect(r"BRICK ⇒ \d+", timeout=120)
        terminal.type("/inspect counter")
        screen = terminal.expect(rf"count = {then}\n")
        assert "(read-only):" in screen
        terminal.type("/send counter bump")
        terminal.expect(r"error: the image as of transaction .* is read-only: the message "
                        r"tried to change it")
        terminal.type("/send counter count")
        terminal.expect(rf"ALFRED ⇒ {then}\n")
        terminal.type("hello there")
        terminal.expect(r"only /inspect, /send and lines that mean them run there")
        assert image.run(lambda lobby: lobby.counter.count) == then + 2
        terminal.type("/history counter")
        terminal.expect(r"counter \(oid 0x[0-9a-f]+\): \d+ version\(s\)")
        terminal.type("/now")
        terminal.expect(r"now: /inspect and /send act on the image as it is")
        terminal.type("/inspect counter")
        terminal.expect(rf"count = {then + 2}\n")
        terminal.expect_bottom("you>")

        image.run(lambda lobby: lobby.counter.define("bump", BUMP_2), note="bump 2")
        changers[0].wait_until_listening(home, env)
        terminal.type("/history counter bump")
        terminal.expect(r"counter\.bump: 2 version\(s\)(.*\n)*.*\+    self\.count = 1 \+ "
                        r"self\.count")
        terminal.type("/revert counter bump")
        terminal.expect(r"revert counter\.bump to version 1 \(was version 2")
        changers[0].expect(r"~ elsewhere: revert counter\.bump to version 1")
        assert image.run(lambda lobby: lobby.counter._own_methods()["bump"].source) == BUMP
        terminal.type("/quit")
    finally:
        terminal.close()
        for changer in changers:
            changer.close()


def test_make_runs_console_cancels_on_ctrl_c_and_leaving_it_stops_the_cluster(tmp_path):
    """`batos awaken` (what `make run` runs) on a brand-new home: the demo, then a console
    of its own session where Ctrl-C cancels; Ctrl-C at the empty prompt brings it all down."""
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES))
    home = Home.init(tmp_path / "home")  # made, never served
    env = {"BATOS_LLM": f"scripted:{rules}"}
    terminal = Terminal(home, env, "batos-awaken-ctrl-c", command=[
        sys.executable, "-c", "import sys; from kernel.cli import main; sys.exit(main())",
        "awaken", "--home", str(home.path)])
    try:
        screen = terminal.expect(r"you>", timeout=300)
        assert "genesis: the image has awakened" in screen
        assert "BAT OS console — session awaken" not in screen  # not the demo's session
        terminal.type("very slow")  # the console's own stage line counts seconds; the demo's not
        terminal.expect(r"… thinking \(BRICK\) \d+ s", timeout=120)
        terminal.keys("C-c")
        terminal.expect(r"cancelled: BRICK is already at it")
        assert supervise.is_up(home)
        terminal.type("/personas")
        terminal.expect(r"personas: ALFRED, BABS, BRICK, ROBIN")
        terminal.keys("C-c")
        terminal.expect(r"cluster stopped", timeout=120)
        wait_until(terminal.ended, timeout=60)
        assert not supervise.is_up(home)
    finally:
        terminal.close()
        supervise.stop(home)
