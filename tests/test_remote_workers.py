"""Persona workers on other hosts: two homes on one machine stand in for two hosts.

Host A (its ZEO server on 127.0.0.2, its orchestrator's backend bound on every interface, remote
mode on) runs the cluster under supervisord without a BRICK worker (`[workers] BRICK = 0`);
host B is a second home made by `batos init` with the files `batos keys export-worker` wrote,
whose worker for BRICK reaches A's ZEO server over SSL at 127.0.0.2 and registers at A's
backend over CURVE at 127.0.0.2 — a different loopback address from A's own processes, as
another host's would be. Real supervisord, ZEO, orchestrator and worker processes; the
scripted backend stands in for the models.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading

import pytest
import zmq
import zmq.auth
import zmq.utils.monitor

from conftest import REPO, logged, run_batos, wait_until
from kernel import keys, protocol, supervise
from kernel import worker as worker_module
from kernel.client import RequestFailed
from kernel.home import Home, free_port
from kernel.image import connect_home

HOST_A, HOST_B_SEES_A = "127.0.0.1", "127.0.0.2"
BUMP = ("def bump(self):\n    self.count = self.count + 1\n    self._p_changed = True\n"
        "    return self.count\n")
RULES = [
    {"persona": "ALFRED", "match": "choose persona", "reply": "ROBIN"},
    {"match": r"choose plan[\s\S]*\n\nslow bump counter\Z", "delay": 4.0,
     "reply": "send counter bump"},
    {"match": r"choose plan[\s\S]*\n\nbump counter\Z", "reply": "send counter bump"},
    {"match": "choose plan", "reply": "reply"},
    {"match": r"User: ", "reply": "hello"},
]


def configure(home, **settings):
    """Set `KEY = VALUE` lines of a home's batos.toml (each key names one line, e.g.
    `address`, `backend`, `BRICK`; `worker_key` uncomments the template's line)."""
    config = home.path / "batos.toml"
    text = config.read_text()
    for key, value in settings.items():
        text, count = re.subn(rf"(?m)^(# )?{key} = .*$", f"{key} = {json.dumps(value)}", text,
                              count=1)
        assert count == 1, key
    config.write_text(text)
    return Home.open(home.path)


class RemoteWorker:
    """A worker process of host B's home (`batos-worker --home B --persona NAME`), its output
    in B's log directory; `key` names the worker key ($BATOS_WORKER_KEY), else the home's."""

    count = 0

    def __init__(self, home, env, persona="BRICK", key=None):
        RemoteWorker.count += 1
        self.log_path = home.log_dir / f"worker-{persona}-{RemoteWorker.count}.log"
        env = {**os.environ, **env, **({keys.ENV_WORKER_KEY: key} if key else {})}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kernel.worker", "--home", str(home.path), "--persona",
                 persona], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)

    def logged(self, pattern):
        """How many lines of its log match `pattern`."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return len(re.findall(f"(?m)^.*{pattern}.*$", text))

    def kill(self):
        """SIGKILL, as a crash of host B's worker (or of host B) would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        """SIGTERM (it finishes the request in hand), else SIGKILL."""
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()


class Hosts:
    """Host A's running cluster, host B's home and its BRICK worker, the image seen from A."""

    def __init__(self, base):
        (base / "rules.json").write_text(json.dumps(RULES))
        self.env = {"BATOS_LLM": f"scripted:{base / 'rules.json'}"}
        zeo = f"{HOST_B_SEES_A}:{free_port(HOST_B_SEES_A)}"
        backend_port = free_port("0.0.0.0")
        self.a = configure(Home.init(base / "a", zeo_address=zeo), enabled=True, BRICK=0,
                           backend=f"tcp://0.0.0.0:{backend_port}", service_wait=3.0)
        run_batos("certs", "init", home=self.a.path, check=True)  # SAN: the ZEO host
        run_batos("keys", "new", "gpu1", "--role", "worker", home=self.a.path, check=True)
        self.b = Home.init(base / "b")
        run_batos("keys", "export-worker", "gpu1", self.b.path, home=self.a.path, check=True)
        self.b = configure(self.b, enabled=True, worker_key="gpu1", address=zeo,
                           backend=f"tcp://{HOST_B_SEES_A}:{backend_port}")
        self.workers = []
        self.image = None

    def up(self):
        """Bring host A's cluster up and start host B's worker; make the test objects."""
        up = run_batos("up", home=self.a.path, env=self.env, timeout=300)
        assert up.returncode == 0, up.stderr
        self.image = connect_home(self.a, wait_timeout=60.0)
        with self.image.transaction(note="test objects") as lobby:
            lobby.counter = lobby.traits.clone(count=0)
            lobby.counter.define("bump", BUMP)
        self.start_worker()

    def start_worker(self, key=None):
        """A new worker process of host B for BRICK; waits until A counts it when it has
        the right key."""
        worker = RemoteWorker(self.b, self.env, key=key)
        self.workers.append(worker)
        if key is None:
            wait_until(lambda: self.brick_workers() == 1, timeout=120, interval=0.2)
        return worker

    def brick_workers(self):
        """How many live BRICK workers host A's orchestrator counts."""
        answer = supervise.ping(self.a, timeout=10.0)
        return (answer or {}).get("services", {}).get("BRICK", 0)

    def ask_brick(self, request_id, text, **options):
        """A request to BRICK through host A's orchestrator."""
        with keys.frontend_client(self.a, timeout=120) as client:
            return client.request({"id": request_id, "session": request_id, "text": text,
                                   "persona": "BRICK"}, **options)

    def ledger_ids(self, prefix):
        return self.image.run(lambda lobby: sorted(k for k in lobby.ledger.entries.keys()
                                                   if k.startswith(prefix)))

    def counter(self):
        return self.image.run(lambda lobby: lobby.counter.count)

    def close(self):
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.stop()
        if self.image is not None:
            self.image.close()
        run_batos("down", home=self.a.path)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    """Host A's cluster up without BRICK, host B's worker serving BRICK for it."""
    hosts = Hosts(tmp_path_factory.mktemp("two-hosts"))
    try:
        hosts.up()
        yield hosts
    finally:
        hosts.close()


@pytest.mark.cluster
def test_a_worker_of_the_second_home_serves_brick_over_curve_and_ssl(hosts):
    assert not any(p["name"].startswith("worker-BRICK") for p in supervise.programs(hosts.a))
    assert hosts.brick_workers() == 1
    (worker,) = hosts.workers
    assert worker.logged(f"registered for BRICK at tcp://{HOST_B_SEES_A}:") == 1
    before = hosts.counter()
    answer = hosts.ask_brick("remote-1", "bump counter")
    assert answer["result"] == [before + 1] and hosts.counter() == before + 1
    assert worker.logged("took request remote-1 ") == worker.logged("answered request remote-1 ") \
        == 1
    assert hosts.ledger_ids("remote-1") == ["remote-1"]
    assert not hosts.b.image_path.exists()  # B holds no image: it used A's, over SSL
    assert hosts.b.zeo_address == hosts.a.zeo_address and hosts.b.remote


def raw_worker(curve, endpoint):
    """A DEALER registering for BRICK by hand (plain ZMTP when `curve` is None); returns the
    socket and how its first handshake ended."""
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        keys.secure_client(socket, curve)
    monitor = socket.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | sum(
        worker_module.HANDSHAKE_EVENTS))
    socket.connect(endpoint)
    socket.send_multipart([protocol.WORKER, protocol.READY, b"BRICK"])
    try:
        assert monitor.poll(30000), "the handshake never ended"
        event = zmq.utils.monitor.recv_monitor_message(monitor)["event"]
    finally:
        socket.disable_monitor()
        monitor.close(0)
    return socket, event


@pytest.mark.cluster
def test_workers_without_an_allowed_worker_key_are_refused(hosts):
    hosts.workers[-1].stop()
    wait_until(lambda: hosts.brick_workers() == 0, timeout=60, interval=0.2)
    refused = run_batos("keys", "new", "rogue", "--role", "worker", home=hosts.b.path)
    assert refused.returncode == 1 and "make keys in that orchestrator's home" in refused.stderr
    _public, rogue_key = zmq.auth.create_certificates(hosts.b.path / "keys", "rogue")
    rogues = [hosts.start_worker(key=str(rogue_key)),  # a worker key A never allowed
              hosts.start_worker(key=str(hosts.a.path / "keys/consoles/local.key_secret"))]
    endpoint = hosts.b.orchestrator_endpoints["backend"]
    plain, plain_event = raw_worker(None, endpoint)
    console, console_event = raw_worker(keys.KeyRing(hosts.a.path).client_keys("local"),
                                        endpoint)
    try:
        for rogue in rogues:
            wait_until(lambda: rogue.logged("refused \\(authentication\\) this worker's CURVE "
                                            "handshake") == 1, timeout=120, interval=0.2)
        assert plain_event != zmq.EVENT_HANDSHAKE_SUCCEEDED
        assert console_event == zmq.EVENT_HANDSHAKE_FAILED_AUTH
        with pytest.raises(RequestFailed, match="no live worker for persona BRICK"):
            hosts.ask_brick("rogue-1", "bump counter")
        assert hosts.brick_workers() == 0 and hosts.ledger_ids("rogue-") == []
        assert all(rogue.logged("took request") == 0 for rogue in rogues)
        assert not plain.poll(0) and not console.poll(0)
    finally:
        plain.close(0)
        console.close(0)
        for rogue in rogues:
            rogue.stop()
        hosts.start_worker()


@pytest.mark.cluster
def test_revoking_the_worker_key_stops_the_remote_worker_until_allowed_again(hosts):
    worker = hosts.workers[-1]
    run_batos("keys", "revoke", "gpu1", "--role", "worker", home=hosts.a.path, check=True)
    wait_until(lambda: hosts.brick_workers() == 0, timeout=60, interval=0.2)
    assert logged(hosts.a, "a worker key that is not allowed; dropping worker .* of BRICK",
                  programs="orchestrator") >= 1
    wait_until(lambda: worker.logged("refused \\(authentication\\)") >= 1, timeout=60,
               interval=0.2)  # its next connection is refused during the handshake
    run_batos("keys", "allow", hosts.b.path / "keys/workers/gpu1.key", "--role", "worker",
              home=hosts.a.path, check=True)
    wait_until(lambda: hosts.brick_workers() == 1, timeout=60, interval=0.2)
    assert worker.logged("accepted this worker's key after") >= 1
    assert hosts.ask_brick("revoked-1", "hi")["reply"] == "hello"
    assert worker.logged("took request revoked-1 ") == 1


@pytest.mark.cluster
def test_a_request_survives_a_kill_9_of_the_remote_worker_exactly_once(hosts):
    before = hosts.counter()
    first = hosts.workers[-1]
    held, answer = threading.Event(), {}

    def run():
        answer["message"] = hosts.ask_brick(
            "remote-killed-1", "slow bump counter",
            on_progress=lambda m: held.set() if m["stage"] == "thinking" else None)

    thread = threading.Thread(target=run)
    thread.start()
    assert held.wait(60), "the remote BRICK worker never started the request"
    assert first.logged("took request remote-killed-1 ") == 1
    first.kill()
    second = hosts.start_worker()  # host B's supervisor starts it again
    thread.join(120)
    assert answer["message"]["reply"].startswith("The bump of counter is ")
    assert hosts.ledger_ids("remote-killed-") == ["remote-killed-1"]
    assert hosts.counter() == before + 1
    assert second.logged("answered request remote-killed-1 ") == 1
    assert logged(hosts.a, "re-dispatching request remote-killed-1 held by a lost BRICK",
                  programs="orchestrator") == 1
