"""Fixtures: a fresh home, a real ZEO server for it, images and client processes.

Before any test runs, the llama.cpp runtime is probed with one real grammar-constrained
completion in a child process (`kernel.runtime_probe`): a runtime that crashes on this CPU ends
the session with one line saying why and how to rebuild, instead of killing pytest later.
Tests marked `real_model` run the real default model in this process's children: each runs in
a fork of its own (pytest-forked), so a crash in the model's C code is a failed test, never a
dead run.
"""
import contextlib
import dataclasses
import json
import os
import pathlib
import selectors
import subprocess
import sys
import time

import pytest
import transaction
import ZODB

from kernel import genesis
from kernel.home import Home, format_address
from kernel.image import connect, default_personas
from zeo_server import launcher

REPO = pathlib.Path(__file__).resolve().parent.parent
ACTOR = REPO / "tests" / "actor.py"


def pytest_sessionstart(session):
    """Probe the llama.cpp runtime first; a broken one is one clear line, not a dead suite."""
    from kernel import runtime_probe
    result = runtime_probe.probe(runtime_probe.default_gguf())
    if not result.ok:
        pytest.exit(result.line(), returncode=1)


def pytest_collection_modifyitems(items):
    """Tests that load the real model in-process run in a fork of their own."""
    for item in items:
        if item.get_closest_marker("real_model"):
            item.add_marker(pytest.mark.forked)


@pytest.fixture
def lobby():
    """The lobby of an awakened in-memory image (`ZODB.DB(None)`), in its own transaction."""
    db = ZODB.DB(None)
    genesis.ensure_awake(db, default_personas())
    manager = transaction.TransactionManager()
    connection = db.open(transaction_manager=manager)
    yield genesis.lobby_of(connection)
    manager.abort()
    connection.close()
    db.close()


@pytest.fixture
def home(tmp_path):
    """A freshly initialised data directory."""
    return Home.init(tmp_path / "home")


@pytest.fixture
def zeo(home):
    """A real ZEO server process for `home`; yields its address and stops it afterwards."""
    address, stop, _process = launcher.start(home)
    yield address
    stop()


@pytest.fixture
def image(home, zeo):
    """An open image (genesis done) on the home's server."""
    img = connect(zeo, personas=home.personas)
    yield img
    img.close()


class ActorProcess:
    """A test client process (tests/actor.py) spoken to in JSON lines."""

    def __init__(self, address, env=None):
        self.process = subprocess.Popen(
            [sys.executable, str(ACTOR), format_address(address)], cwd=REPO,
            env=dict(os.environ, **(env or {})),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.process.stdout, selectors.EVENT_READ)
        assert self.read() == {"ready": True}

    def write(self, **command):
        """Send one command line without waiting for the answer."""
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def read(self, timeout=120.0):
        """The next answer line, waiting at most `timeout` seconds."""
        if not self.selector.select(timeout):
            raise TimeoutError(f"actor gave no answer in {timeout} s")
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("actor died: " + self.process.stderr.read()[-2000:])
        return json.loads(line)

    def call(self, op, **fields):
        """Send a command and return its result, raising if the actor reports an error."""
        self.write(op=op, **fields)
        answer = self.read()
        if not answer.get("ok"):
            raise AssertionError(f"actor {op} failed: {answer}")
        return answer["result"]

    def kill(self):
        """SIGKILL, as a crash would."""
        self.process.kill()
        self.process.wait()

    def close(self):
        """End the process cleanly (or kill it if it does not go)."""
        try:
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.selector.close()
        self.process.stdout.close()
        self.process.stderr.close()


@pytest.fixture
def actors(zeo):
    """A factory of client processes on the test's server; all are closed afterwards."""
    made = []

    def make(count=1, env=None):
        batch = [ActorProcess(zeo, env) for _ in range(count)]
        made.extend(batch)
        return batch

    yield make
    for actor in made:
        actor.close()


def run_batos(*args, home=None, check=False, timeout=120, env=None):
    """Run the real `batos` command line in a subprocess; return the CompletedProcess."""
    env = dict(os.environ, **(env or {}))
    command = [sys.executable, "-c", "import sys; from kernel.cli import main; sys.exit(main())"]
    if home is not None:
        args = args + ("--home", str(home))
    result = subprocess.run(command + list(args), capture_output=True, text=True,
                            timeout=timeout, env=env, cwd=REPO)
    if check and result.returncode != 0:
        raise AssertionError(f"batos {args} failed: {result.stderr}")
    return result


@contextlib.contextmanager
def running_cluster(base, rules, env=None):
    """A home under `base` with its cluster up (scripted models following `rules`, the
    cluster's processes getting `env` too); yields (home, env, image) and brings the cluster
    down afterwards."""
    path = base / "rules.json"
    path.write_text(json.dumps(rules))
    env = {**(env or {}), "BATOS_LLM": f"scripted:{path}"}
    home = Home.init(base / "home")
    config = home.path / "batos.toml"
    config.write_text(config.read_text().replace("service_wait = 10.0", "service_wait = 3.0"))
    home = Home.open(home.path)
    up = run_batos("up", home=home.path, env=env, timeout=300)
    assert up.returncode == 0, up.stderr
    image = connect(home.zeo_address, personas=home.personas)
    try:
        yield home, env, image
    finally:
        image.close()
        run_batos("down", home=home.path)


def wait_until(condition, timeout=60.0, interval=0.02):
    """Poll `condition` until true or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


@pytest.fixture
def bounds(monkeypatch):
    """This process's size bounds (`kernel.limits.LIMITS`) at their shipped defaults; a test
    may change them with monkeypatch, and they are restored afterwards."""
    from kernel import limits
    for field in dataclasses.fields(limits.Limits):
        monkeypatch.setattr(limits.LIMITS, field.name, field.default)
    return limits.LIMITS
