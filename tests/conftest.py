"""Fixtures: a fresh home, a real ZEO server for it, images and client processes.

Before any test runs, the llama.cpp runtime is probed with one real grammar-constrained
completion in a child process (`kernel.runtime_probe`): a runtime that crashes on this CPU ends
the session with one line saying why and how to rebuild, instead of killing pytest later.
Test tiers are markers (pyproject.toml): `cluster` (brings a cluster up under supervisord),
`model` (runs the real model, in-process or served; every `real_model` test is one) and
`install` (clones the repository and installs it); `make test-fast` leaves all three out.
Tests marked `real_model` run the real default model: each runs in a fork of its own
(`pytest_runtest_protocol` below; its reports come back through pytest's own report
serialisation), so a crash in the model's C code is a failed test, never a dead run. The fork
tears down every fixture it set up, so such tests must not share module- or session-scoped
fixtures with tests that run in the main process.

A test gets a home and a ZEO server of its own (`home`, `zeo`, `image`), except in a module
marked `shared_server`: there every test uses the module's one home and server, and gets a
fresh lobby (the root is cleared before it, so genesis runs again) and the shipped
configuration back after it; such a module's tests must not depend on the image's whole
history (it holds the earlier tests' transactions) nor stop or damage the server.
"""
import contextlib
import dataclasses
import json
import os
import pathlib
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import transaction
import zmq
import ZODB
from ZEO.ClientStorage import ClientStorage

from kernel import genesis, protocol
from kernel.home import Home, format_address, free_port
from kernel.image import connect, default_personas
from kernel.orchestrator import Orchestrator
from zeo_server import launcher

REPO = pathlib.Path(__file__).resolve().parent.parent
ACTOR = REPO / "tests" / "actor.py"


def pytest_sessionstart(session):
    """Probe the llama.cpp runtime first; a broken one is one clear line, not a dead suite."""
    from kernel import runtime_probe
    result = runtime_probe.probe(runtime_probe.default_gguf())
    if not result.ok:
        pytest.exit(result.line(), returncode=1)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """A `real_model` test belongs to the `model` tier too, before `-m` selects tiers."""
    for item in items:
        if item.get_closest_marker("real_model") is not None:
            item.add_marker(pytest.mark.model)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """Run a `real_model` test in a fork of its own; a crash there fails only that test."""
    if item.get_closest_marker("real_model") is None:
        return None
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in _reports_of_a_fork(item):
        item.ihook.pytest_runtest_logreport(report=report)
    item.session._setupstate.teardown_exact(nextitem)  # this process's part, as pytest does
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _reports_of_a_fork(item):
    """The test's setup/call/teardown reports, run in a child process; a report of the crash
    (its signal and the end of its output) when the child dies."""
    from _pytest.runner import runtestprotocol
    hook = item.config.hook
    item.session._setupstate.teardown_exact(item)  # what earlier tests left that is not ours
    with tempfile.TemporaryDirectory() as scratch:
        out, result = pathlib.Path(scratch, "output"), pathlib.Path(scratch, "reports")
        pid = os.fork()
        if pid == 0:  # the child: run the test, write its reports, leave without clean-up
            code = 1
            try:
                fd = os.open(out, os.O_WRONLY | os.O_CREAT)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                reports = runtestprotocol(item, log=False, nextitem=None)
                result.write_text(json.dumps([hook.pytest_report_to_serializable(
                    config=item.config, report=report) for report in reports]))
                code = 0
            finally:
                os._exit(code)
        _pid, status = os.waitpid(pid, 0)
        if result.exists():
            return [hook.pytest_report_from_serializable(config=item.config, data=data)
                    for data in json.loads(result.read_text())]
        output = out.read_text(errors="replace")[-3000:] if out.exists() else ""
    how = (f"signal {signal.Signals(os.WTERMSIG(status)).name}" if os.WIFSIGNALED(status)
           else f"exit status {os.WEXITSTATUS(status)}")
    return [pytest.TestReport(item.nodeid, item.location, {}, "failed",
                              f"the test's process died ({how}); its last output:\n{output}",
                              "call")]


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


def shares_a_server(request):
    """Whether the test's module shares one home and server (`shared_server` marker)."""
    return request.node.get_closest_marker("shared_server") is not None


@pytest.fixture
def home(request, tmp_path):
    """A freshly initialised data directory; in a `shared_server` module the module's home,
    whose `batos.toml` is put back as it was after each test."""
    if not shares_a_server(request):
        return Home.init(tmp_path / "home")
    shared = request.getfixturevalue("module_home")
    config = shared.path / "batos.toml"
    text = config.read_text()
    request.addfinalizer(lambda: config.write_text(text))
    return Home.open(shared.path)


@pytest.fixture
def zeo(request, home):
    """A real ZEO server process for `home`; yields its address and stops it afterwards. In a
    `shared_server` module: the module's server, whose image has a fresh lobby (the root is
    cleared, so the next client performs genesis again; the history keeps growing)."""
    if shares_a_server(request):
        address = request.getfixturevalue("module_zeo")
        clear_the_root(address)
        yield address
        return
    address, stop, _process = launcher.start(home)
    yield address
    stop()


@pytest.fixture(scope="module")
def module_home(tmp_path_factory):
    """The home a `shared_server` module's tests share."""
    return Home.init(tmp_path_factory.mktemp("shared") / "home")


@pytest.fixture(scope="module")
def module_zeo(module_home):
    """The ZEO server a `shared_server` module's tests share; yields its address."""
    address, stop, _process = launcher.start(module_home)
    yield address
    stop()


def clear_the_root(address):
    """Empty the database root served at `address` in one transaction: no lobby, so the next
    client to connect performs genesis anew."""
    db = ZODB.DB(ClientStorage(address, wait_timeout=30))
    try:
        with db.transaction(note="tests: a fresh lobby for the next test") as connection:
            connection.root().clear()
    finally:
        db.close()


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


BATOS = [sys.executable, "-c", "import sys; from kernel.cli import main; sys.exit(main())"]


def run_batos(*args, home=None, check=False, timeout=120, env=None, cwd=REPO):
    """Run the real `batos` command line in a subprocess; return the CompletedProcess."""
    env = dict(os.environ, **(env or {}))
    if home is not None:
        args = args + ("--home", str(home))
    result = subprocess.run(BATOS + list(args), capture_output=True, text=True,
                            timeout=timeout, env=env, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"batos {args} failed: {result.stderr}")
    return result


def one_line_error(result):
    """The command failed with exactly one line on stderr; return it."""
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("batos: ")
    return lines[0]


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


def scripted_learner(image, tmp_path, monkeypatch, replies):
    """A `_doesNotUnderstand` engine on `image` whose BRICK answers "Write the method NAME"
    with `replies[NAME]` (the scripted model, set for this test only)."""
    rules = [{"persona": "BRICK", "match": f"Write the method {name}", "reply": source}
             for name, source in replies.items()]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules))
    monkeypatch.setenv("BATOS_LLM", f"scripted:{path}")
    from kernel import dnu, llm
    return dnu.Learner(image, llm.ModelRegistry({}), user="test")


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


@pytest.fixture
def busy_cpu():
    """Two processes spinning on the CPU (the machine has two cores) for the whole test, as
    other programs, or models, keep a machine busy."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    yield spinners
    for spinner in spinners:
        spinner.kill()
        spinner.wait()


def logged(home, pattern, programs="worker-*"):
    """How many lines of the home's program logs (`programs`: a glob) match `pattern`."""
    regex = re.compile(pattern)
    return sum(1 for path in home.log_dir.glob(f"{programs}.log")
               for line in path.read_text(errors="replace").splitlines() if regex.search(line))


class Broker:
    """A real orchestrator serving in a thread of the test process, without an image (it then
    routes to ALFRED and accepts any persona name)."""

    def __init__(self, endpoints, service_wait=1.0):
        self.endpoints = endpoints
        self.context = zmq.Context()  # its own: terminating it frees the ports at once
        self.orchestrator = Orchestrator(endpoints["front"], endpoints["back"],
                                         endpoints["ev"], service_wait=service_wait,
                                         context=self.context)
        self.thread = threading.Thread(target=self.orchestrator.serve, daemon=True)
        self.thread.start()

    def stop(self):
        """Stop serving and unbind, as an orchestrator that ends does."""
        self.orchestrator.stop()
        self.thread.join(10)
        self.orchestrator.close()
        self.context.term()


@pytest.fixture
def broker():
    """A `Broker` on free loopback ports; yields (orchestrator, endpoints)."""
    endpoints = {name: f"tcp://127.0.0.1:{free_port()}" for name in ("front", "back", "ev")}
    served = Broker(endpoints)
    yield served.orchestrator, endpoints
    served.stop()


class RawWorker:
    """A worker speaking BATOS/1 by hand, so tests control its every frame; `held`: the tag
    of a request it registers holding (after an orchestrator restart)."""

    def __init__(self, endpoint, service, held=None):
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.socket.send_multipart([protocol.WORKER, protocol.READY, service.encode(),
                                    *filter(None, [held])])

    def next_request(self, timeout=10.0):
        """The next REQUEST (tag, request), heartbeating meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.socket.send_multipart([protocol.WORKER, protocol.HEARTBEAT])
            if self.socket.poll(100):
                frames = self.socket.recv_multipart()
                if frames[1] == protocol.REQUEST:
                    return frames[2], json.loads(frames[3])
        raise AssertionError("no request came")

    def heartbeat_until(self, condition, timeout=30.0):
        """Heartbeat (as a live worker does) until `condition()`; fail on any REQUEST."""
        def done():
            self.socket.send_multipart([protocol.WORKER, protocol.HEARTBEAT])
            while self.socket.poll(0):
                frames = self.socket.recv_multipart()
                assert frames[1] != protocol.REQUEST, f"an unexpected request: {frames}"
            return condition()
        wait_until(done, timeout=timeout, interval=0.1)

    def progress(self, tag, stage, persona):
        """A progress note for the request it holds."""
        self.socket.send_multipart([protocol.WORKER, protocol.PROGRESS, tag, protocol.encode(
            protocol.progress(None, stage, persona))])

    def answer(self, client, message):
        self.socket.send_multipart([protocol.WORKER, protocol.REPLY, client,
                                    protocol.encode(message)])

    def close(self):
        self.socket.close(0)
