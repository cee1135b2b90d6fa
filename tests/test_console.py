"""The Synaptic Console against a running cluster: in a real terminal (tmux) and line by line.

The models (personas' and the console's) follow a script; supervisord, ZEO, the orchestrator,
the workers and the terminal are real.
"""
import os
import re
import selectors
import shlex
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, run_batos, running_cluster, wait_until
from kernel import supervise

RULES = [
    {"persona": "console", "match": "choose intent", "reply": "chat"},
    {"persona": "ALFRED", "match": "choose persona", "reply": "BRICK"},
    {"persona": "BRICK", "match": "Write the method area",
     "reply": "def area(self):\n    return self.width * self.height\n"},
    {"match": r"choose plan[\s\S]*\n\nwhat is the rect area\??\Z", "reply": "send rect area"},
    {"match": r"choose plan[\s\S]*\n\nslow bump counter\Z", "delay": 4.0,
     "reply": "send counter bump"},
    {"match": r"choose plan[\s\S]*\n\nping events\Z", "reply": "remember"},
    {"match": "choose plan", "reply": "reply"},
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


def console_command(home, *extra):
    return [sys.executable, "-c", "import sys; from kernel.cli import main; sys.exit(main())",
            "console", "--home", str(home.path), *extra]


class LineConsole:
    """A console whose stdin is a pipe: one message per line, replies on stdout."""

    def __init__(self, home, env, *extra):
        self.process = subprocess.Popen(console_command(home, *extra), cwd=REPO, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, env=dict(os.environ, **env))
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.process.stdout, selectors.EVENT_READ)
        self.seen, self.pending, self.unread = [], "", []

    def send(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def expect(self, pattern, timeout=60.0):
        """Read lines until one matches `pattern`; return it. The pipe is read unbuffered:
        a buffered reader may hold a whole line that select() then never reports."""
        def found():
            while self.unread or self.selector.select(0.1):
                if not self.unread:
                    chunk = os.read(self.process.stdout.fileno(), 65536).decode()
                    if not chunk:
                        raise AssertionError("console ended; it said: " + "".join(self.seen))
                    *self.unread, self.pending = (self.pending + chunk).split("\n")
                    continue
                line = self.unread.pop(0)
                self.seen.append(line + "\n")
                if re.search(pattern, line):
                    return True
            return False
        try:
            wait_until(found, timeout=timeout)
        except AssertionError:
            raise AssertionError(f"{pattern!r} never appeared; the console said:\n"
                                 + "".join(self.seen)) from None
        return self.seen[-1]

    def wait_until_listening(self, home, env):
        """PUB/SUB drops what is published before a subscriber has joined: ping from another
        session until this console hears one."""
        def heard():
            run_batos("ask", "ping events", "--persona", "ROBIN", "--session", "pinger",
                      home=home.path, env=env, check=True)
            try:
                self.expect(r"~ elsewhere: .*\(remember\)", timeout=3)
            except AssertionError:
                return False
            return True
        wait_until(heard, timeout=120)

    def close(self):
        self.process.stdin.close()
        self.process.wait(30)
        self.selector.close()
        self.process.stdout.close()


class Terminal:
    """A real terminal: the console running in a tmux session."""

    def __init__(self, home, env, name):
        self.name = name
        command = shlex.join(["env", *(f"{k}={v}" for k, v in env.items()),
                              *console_command(home, "--session", name)])
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "160", "-y", "60",
                        command], check=True, cwd=REPO)

    def type(self, text):
        subprocess.run(["tmux", "send-keys", "-t", self.name, text, "Enter"], check=True)

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


def test_the_console_recovers_when_the_orchestrator_restarts_mid_request(cluster):
    home, env, image = cluster
    before = image.run(lambda lobby: lobby.counter.count)
    console = LineConsole(home, env, "--session", "restart", "--resend-after", "3")
    try:
        console.send("slow bump counter")
        console.expect(r"… thinking")  # the request is in a worker's hands now
        with supervise.supervisor(home) as server:
            server.stopProcess("orchestrator")
            server.startProcess("orchestrator")
        console.expect(r"\w+: The bump of counter is", timeout=120)
        assert image.run(lambda lobby: lobby.counter.count) == before + 1
        console.send("/history")
        console.expect(r"you: slow bump counter")
    finally:
        console.close()


def test_a_console_says_clearly_when_the_cluster_is_down(tmp_path):
    from kernel.home import Home
    home = Home.init(tmp_path / "down")
    result = subprocess.run(console_command(home, "--no-translate", "--resend-after", "1",
                                            "--timeout", "2"), input="hello\n", text=True,
                            capture_output=True, cwd=REPO, timeout=60)
    assert "does not answer; is it up? (batos status)" in result.stdout
