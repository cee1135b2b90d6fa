"""kernel.keys: remote mode's CURVE keys, the allow-list, and the orchestrator that enforces it.

The cluster tests run a real home in remote mode under supervisord (ZEO with its SSL
certificates, the orchestrator, one worker per persona with the scripted backend), keys made
by the real `batos keys`, and real ZeroMQ clients with real key pairs around it.
"""
import json
import logging
import pathlib
import re
import stat
import subprocess
import sys
import threading

import pytest
import zmq
import zmq.auth
import zmq.utils.monitor

from conftest import REPO, run_batos, wait_until
from kernel import keys, protocol, supervise
from kernel import worker as worker_module
from kernel.client import Client, NoAnswer, RequestFailed
from kernel.errors import ConfigError
from kernel.home import Home, free_port
from kernel.orchestrator import Orchestrator

RULES = [
    {"persona": "ALFRED", "match": "choose persona", "reply": "ROBIN"},
    {"match": r"choose plan[\s\S]*\n\nremember ", "reply": "remember"},
    {"match": "choose plan", "reply": "reply"},
    {"match": r"User: ", "reply": "hello"},
]
SHORT_WAIT = 3.0  # how long a refused client waits for the answer that must not come


def enable_remote(home, **orchestrator):
    """Turn remote mode on in a home's batos.toml (and set [orchestrator] endpoints)."""
    config = home.path / "batos.toml"
    text = re.sub(r"(?ms)^(\[remote\]$.*?^)enabled = false$", r"\1enabled = true",
                  config.read_text(), count=1)
    for name, endpoint in orchestrator.items():
        text = re.sub(rf'(?m)^{name} = "[^"]*"$', f'{name} = "{endpoint}"', text, count=1)
    config.write_text(text)
    return Home.open(home.path)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A home in remote mode, its frontend bound to every interface, with the console key
    `alice` made by `batos keys new`, and its cluster up; yields (home, env)."""
    base = tmp_path_factory.mktemp("remote")
    (base / "rules.json").write_text(json.dumps(RULES))
    env = {"BATOS_LLM": f"scripted:{base / 'rules.json'}"}
    home = enable_remote(Home.init(base / "home"), frontend=f"tcp://0.0.0.0:{free_port()}")
    run_batos("certs", "init", home=home.path, check=True)
    run_batos("keys", "new", "alice", home=home.path, check=True)
    up = run_batos("up", home=home.path, env=env, timeout=300)
    assert up.returncode == 0, up.stderr
    try:
        yield home, env
    finally:
        run_batos("down", home=home.path)


def console_keys(home, name):
    """The `ClientCurve` of console key `name` made in `home`."""
    return keys.KeyRing(home.path).client_keys(name)


def stranger_keys(home, directory):
    """A real key pair the home has never heard of, aimed at the home's orchestrator."""
    _public_file, secret_file = zmq.auth.create_certificates(directory, "stranger")
    public, secret = zmq.auth.load_certificate(secret_file)
    return keys.ClientCurve(public, secret, keys.KeyRing(home.path).server_public())


def frontend(home):
    return keys.connect_endpoint(home.orchestrator_endpoints["frontend"])


def ping(home, curve, timeout=30.0):
    """The orchestrator's live services, asked with `curve` (None: a plain client)."""
    with Client(frontend(home), timeout=timeout, curve=curve) as client:
        return client.request({"intent": "ping"})["services"]


def refused(home, curve):
    """True if a client with `curve` gets no answer within SHORT_WAIT."""
    try:
        ping(home, curve, timeout=SHORT_WAIT)
    except NoAnswer:
        return True
    return False


def assert_still_serving(home):
    """The orchestrator is alive and still answers an allowed key."""
    states = {p["name"]: p["state"] for p in supervise.programs(home)}
    assert states["orchestrator"] == "RUNNING", states
    assert ping(home, console_keys(home, "alice"))["ROBIN"] == 1


# -- the key ring, no cluster ----------------------------------------------------------------

def test_keys_new_makes_an_allowed_pair_whose_secrets_only_the_owner_reads(home):
    made = run_batos("keys", "new", "alice", home=home.path, check=True)
    assert "made console key alice and allowed it" in made.stdout
    assert "remote mode is off" in made.stdout
    root = home.path / "keys"
    for secret in (root / "orchestrator.key_secret", root / "consoles" / "alice.key_secret"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    public, secret = zmq.auth.load_certificate(root / "consoles" / "alice.key_secret")
    assert zmq.curve_public(secret) == public
    assert zmq.auth.load_certificate(root / "allowed" / "alice.key") == (public, None)
    listing = json.loads(run_batos("keys", "list", "--json", home=home.path, check=True).stdout)
    assert listing["remote"] is False
    assert listing["server"] == zmq.auth.load_certificate(root / "orchestrator.key")[0].decode()
    assert listing["keys"] == [{"name": "alice", "role": "console", "public": public.decode(),
                                "allowed": True, "secret_here": True}]


def test_keys_allow_takes_a_file_or_a_z85_key_and_revoke_takes_it_away(home, tmp_path):
    public = b"-"
    while public.startswith(b"-"):  # a key starting with "-" needs "--" before it (argparse)
        public_file, secret_file = zmq.auth.create_certificates(tmp_path, "bob")
        public = zmq.auth.load_certificate(public_file)[0]
    assert run_batos("keys", "allow", secret_file, home=home.path, check=True).stdout \
        .startswith("allowed bob")
    allowed = home.path / "keys" / "allowed"
    assert zmq.auth.load_certificate(allowed / "bob.key") == (public, None)  # no secret kept
    run_batos("keys", "allow", public.decode(), "--name", "bob-laptop", home=home.path,
              check=True)
    assert zmq.auth.load_certificate(allowed / "bob-laptop.key")[0] == public
    run_batos("keys", "revoke", "bob", home=home.path, check=True)
    listing = json.loads(run_batos("keys", "list", "--json", home=home.path, check=True).stdout)
    assert [(k["name"], k["allowed"], k["secret_here"]) for k in listing["keys"]] == \
        [("bob-laptop", True, False)]


@pytest.mark.parametrize("args, message", [
    (("new", "../evil"), "is not a key name"),
    (("new",), "needs a NAME"),
    (("revoke", "nobody"), "no console key named 'nobody' is allowed"),
    (("revoke", "nobody", "--role", "worker"), "no worker key named 'nobody' is allowed"),
    (("export-worker", "nobody"), "needs a NAME and a DIR"),
    (("new", "gpu1", "somewhere"), "needs a NAME (and nothing else)"),
    (("allow", "not-a-key"), "neither a key file nor a 40-character Z85 public key"),
    (("allow", "x" * 40), "a key given as text needs a name"),
])
def test_bad_key_commands_say_what_is_wrong_in_one_line(home, args, message):
    result = run_batos("keys", *args, home=home.path)
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_a_second_key_with_the_same_name_is_refused(home):
    run_batos("keys", "new", "alice", home=home.path, check=True)
    secret = (home.path / "keys" / "consoles" / "alice.key_secret").read_bytes()
    result = run_batos("keys", "new", "alice", home=home.path)
    assert result.returncode == 1 and "already exists" in result.stderr
    assert (home.path / "keys" / "consoles" / "alice.key_secret").read_bytes() == secret


def test_loopback_mode_needs_no_keys_and_makes_none(home):
    assert keys.server_curve(home) is None and keys.client_curve(home) is None
    keys.ensure_home_keys(home)
    assert not (home.path / "keys").exists()


@pytest.mark.parametrize("endpoint, loopback", [
    ("tcp://127.0.0.1:5555", True), ("tcp://localhost:5555", True), ("tcp://[::1]:5555", True),
    ("ipc:///tmp/batos.sock", True), ("tcp://0.0.0.0:5555", False), ("tcp://*:5555", False),
    ("tcp://192.0.2.7:5555", False), ("tcp://eth0:5555", False), ("tcp://example.org:5555", False),
])
def test_which_endpoints_are_loopback(endpoint, loopback):
    assert keys.is_loopback(endpoint) is loopback


def test_a_client_on_this_host_connects_to_a_wildcard_bind_through_loopback():
    assert keys.connect_endpoint("tcp://0.0.0.0:5555") == "tcp://127.0.0.1:5555"
    assert keys.connect_endpoint("tcp://*:5555") == "tcp://127.0.0.1:5555"
    assert keys.connect_endpoint("tcp://[::]:5555") == "tcp://[::1]:5555"
    assert keys.connect_endpoint("tcp://192.0.2.7:5555") == "tcp://192.0.2.7:5555"


def run_orchestrator(home):
    """Start the real orchestrator of `home` and wait for it to exit (it must refuse)."""
    return subprocess.run([sys.executable, "-m", "kernel.orchestrator", "--home", str(home.path)],
                          capture_output=True, text=True, timeout=60, cwd=REPO, check=False)


def test_without_remote_mode_a_non_loopback_frontend_is_refused(home):
    config = home.path / "batos.toml"
    config.write_text(re.sub(r'(?m)^frontend = "[^"]*"$', 'frontend = "tcp://0.0.0.0:5555"',
                             config.read_text()))
    home = Home.open(home.path)
    with pytest.raises(ConfigError, match="remote mode is off"):
        keys.server_curve(home)
    result = run_orchestrator(home)
    assert result.returncode == 1
    assert result.stderr.startswith("batos-orchestrator: ") and "is not a loopback address " \
        "and remote mode is off" in result.stderr and result.stderr.count("\n") == 1


def test_without_remote_mode_a_non_loopback_backend_is_refused(home):
    config = home.path / "batos.toml"
    config.write_text(re.sub(r'(?m)^backend = "[^"]*"$', 'backend = "tcp://0.0.0.0:5556"',
                             config.read_text()))
    result = run_orchestrator(Home.open(home.path))
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "orchestrator.backend 'tcp://0.0.0.0:5556' is not a loopback address and remote " \
        "mode is off" in result.stderr and "--role worker" in result.stderr


def test_in_remote_mode_the_backend_may_bind_any_address_behind_worker_keys(home):
    home = enable_remote(home, backend="tcp://0.0.0.0:5556")
    curve = keys.server_curve(home)
    assert curve.allowed_dirs == {"console": home.path / "keys" / "allowed",
                                  "worker": home.path / "keys" / "allowed_workers"}
    ring = keys.KeyRing(home.path)
    assert set(ring.allowed("worker")) == set(ring.made("worker")) == {"local"}
    assert set(ring.allowed("console")) == set(ring.made("console")) == {"local"}
    assert ring.allowed("worker")["local"] != ring.allowed("console")["local"]


def test_worker_keys_are_made_listed_and_revoked_apart_from_console_keys(home):
    made = run_batos("keys", "new", "gpu1", "--role", "worker", home=home.path, check=True)
    assert "made worker key gpu1 and allowed it" in made.stdout
    assert "batos keys export-worker gpu1 DIR" in made.stdout
    root = home.path / "keys"
    assert stat.S_IMODE((root / "workers" / "gpu1.key_secret").stat().st_mode) == 0o600
    public = zmq.auth.load_certificate(root / "workers" / "gpu1.key_secret")[0]
    assert zmq.auth.load_certificate(root / "allowed_workers" / "gpu1.key") == (public, None)
    assert not (root / "allowed" / "gpu1.key").exists()
    listing = json.loads(run_batos("keys", "list", "--json", home=home.path, check=True).stdout)
    assert listing["keys"] == [{"name": "gpu1", "role": "worker", "public": public.decode(),
                                "allowed": True, "secret_here": True}]
    assert "gpu1                 worker" in run_batos("keys", "list", home=home.path).stdout
    assert run_batos("keys", "revoke", "gpu1", home=home.path).returncode == 1  # not a console
    run_batos("keys", "revoke", "gpu1", "--role", "worker", home=home.path, check=True)
    assert not (root / "allowed_workers" / "gpu1.key").exists()
    allowed = run_batos("keys", "allow", root / "workers" / "gpu1.key", "--role", "worker",
                        home=home.path, check=True)
    assert allowed.stdout.startswith("allowed worker key gpu1")
    assert keys.KeyRing(home.path).allowed("worker") == {"gpu1": public}


def test_export_worker_writes_exactly_what_a_worker_home_on_another_host_needs(home, tmp_path):
    home = enable_remote(home)
    run_batos("certs", "init", home=home.path, check=True)
    run_batos("keys", "new", "gpu1", "--role", "worker", home=home.path, check=True)
    target = tmp_path / "worker-home"
    exported = run_batos("keys", "export-worker", "gpu1", target, home=home.path, check=True)
    assert 'worker_key = "gpu1"' in exported.stdout
    files = {str(p.relative_to(target)): stat.S_IMODE(p.stat().st_mode)
             for p in target.rglob("*") if p.is_file()}
    assert files == {"keys/orchestrator.key": 0o644, "keys/workers/gpu1.key_secret": 0o600,
                     "keys/workers/gpu1.key": 0o644, "certs/ca.pem": 0o644,
                     "certs/client.pem": 0o644, "certs/client.key": 0o600}
    assert (target / "keys/workers/gpu1.key_secret").read_bytes() == \
        (home.path / "keys/workers/gpu1.key_secret").read_bytes()
    assert (target / "certs/ca.pem").read_bytes() == (home.path / "certs/ca.pem").read_bytes()
    assert (target / "certs/client.pem").read_bytes() != \
        (home.path / "certs/client.pem").read_bytes()  # its own client certificate
    again = run_batos("keys", "export-worker", "gpu1", target, home=home.path)
    assert again.returncode == 1 and "already exists" in again.stderr
    unknown = run_batos("keys", "export-worker", "alice", tmp_path / "x", home=home.path)
    assert "no worker key pair 'alice'" in unknown.stderr and not (tmp_path / "x").exists()


def test_export_worker_without_certificates_says_how_to_make_them(home, tmp_path):
    run_batos("keys", "new", "gpu1", "--role", "worker", home=home.path, check=True)
    result = run_batos("keys", "export-worker", "gpu1", tmp_path / "w", home=home.path)
    assert result.returncode == 1 and "batos certs init" in result.stderr
    assert result.stderr.count("\n") == 1


def test_each_backend_and_frontend_admits_only_keys_of_its_own_role(home, caplog):
    """An orchestrator in remote mode (in this process, real sockets): a worker key registers,
    a console key or a plain socket cannot; a worker key gets nothing on the frontend."""
    home = enable_remote(home)
    run_batos("keys", "new", "gpu1", "--role", "worker", home=home.path, check=True)
    run_batos("keys", "new", "alice", home=home.path, check=True)
    ring = keys.KeyRing(home.path)
    endpoints = {name: f"tcp://127.0.0.1:{free_port()}" for name in ("front", "back", "ev")}
    context = zmq.Context()
    broker = Orchestrator(endpoints["front"], endpoints["back"], endpoints["ev"],
                          context=context, curve=keys.server_curve(home), service_wait=1.0)
    thread = threading.Thread(target=broker.serve, daemon=True)
    thread.start()
    sockets = []

    def dealer(curve):
        socket = context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            keys.secure_client(socket, curve)
        sockets.append(socket)
        return socket

    def register(curve, service):
        """A worker socket sending READY for `service`; returns it and its handshake monitor."""
        socket = dealer(curve)
        monitor = socket.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | sum(
            worker_module.HANDSHAKE_EVENTS))
        sockets.append(monitor)
        socket.connect(endpoints["back"])
        socket.send_multipart([protocol.WORKER, protocol.READY, service.encode()])
        return socket, monitor

    def handshake(monitor):
        assert monitor.poll(30000), "no handshake ended"
        return zmq.utils.monitor.recv_monitor_message(monitor)["event"]

    console = Client(endpoints["front"], timeout=30.0, curve=ring.client_keys("alice"))
    try:
        for curve in (ring.client_keys("alice"), None):  # a console key; plain ZMTP
            _socket, monitor = register(curve, "BAD")
            assert handshake(monitor) != zmq.EVENT_HANDSHAKE_SUCCEEDED
        with pytest.raises(RequestFailed, match="no live worker for persona BAD"):
            console.request({"intent": "chat", "persona": "BAD", "text": "hi"})
        assert console.request({"intent": "ping"})["services"].get("BAD", 0) == 0
        as_console = dealer(ring.client_keys("gpu1", role="worker"))
        as_console.connect(endpoints["front"])
        as_console.send_multipart([protocol.CLIENT, protocol.encode({"intent": "ping",
                                                                     "id": "p"})])
        assert not as_console.poll(SHORT_WAIT * 1000)  # a worker key is no console

        worker, monitor = register(ring.client_keys("gpu1", role="worker"), "GOOD")
        assert handshake(monitor) == zmq.EVENT_HANDSHAKE_SUCCEEDED

        def serving():
            """Heartbeat as a live worker does; how many GOOD workers the broker counts."""
            worker.send_multipart([protocol.WORKER, protocol.HEARTBEAT])
            return console.request({"intent": "ping"})["services"].get("GOOD")

        wait_until(lambda: serving() == 1, timeout=30)
        with caplog.at_level(logging.WARNING, logger="kernel.orchestrator"):
            run_batos("keys", "revoke", "gpu1", "--role", "worker", home=home.path,
                      check=True)
            wait_until(lambda: serving() == 0, timeout=30, interval=0.2)
        assert "a worker key that is not allowed; dropping worker" in caplog.text
        assert "is silent" not in caplog.text  # dropped for its key, not for its silence
    finally:
        console.close()
        broker.stop()
        thread.join(10)
        broker.close()
        for socket in sockets:
            socket.close(0)
        context.term()


# -- the orchestrator in remote mode -----------------------------------------------------------

@pytest.mark.cluster
def test_the_home_itself_is_served_through_its_own_key(cluster):
    home, env = cluster
    status = run_batos("status", home=home.path, env=env)
    assert status.returncode == 0 and "workers: ALFRED 1, BABS 1, BRICK 1, ROBIN 1" in \
        status.stdout, status.stderr
    asked = run_batos("ask", "hi", home=home.path, env=env)
    assert asked.returncode == 0 and asked.stdout.strip() == "ROBIN: hello", asked.stderr
    listing = json.loads(run_batos("keys", "list", "--json", home=home.path).stdout)
    assert listing["remote"] is True
    assert {(k["name"], k["role"]): k["allowed"] for k in listing["keys"]} == {
        ("alice", "console"): True, ("local", "console"): True, ("local", "worker"): True}


@pytest.mark.cluster
def test_an_allowed_console_key_gets_answers(cluster):
    home, env = cluster
    by_name = run_batos("ask", "hi", "--persona", "ROBIN", "--key", "alice", home=home.path,
                        env=env)
    assert by_name.stdout.strip() == "ROBIN: hello", by_name.stderr
    secret = home.path / "keys" / "consoles" / "alice.key_secret"
    by_environment = run_batos("ask", "hi", "--persona", "ROBIN", home=home.path,
                               env={**env, "BATOS_KEY": str(secret)})
    assert by_environment.stdout.strip() == "ROBIN: hello", by_environment.stderr
    assert ping(home, console_keys(home, "alice")) == {"ALFRED": 1, "BABS": 1, "BRICK": 1,
                                                       "ROBIN": 1}


@pytest.mark.cluster
def test_a_key_not_on_the_allow_list_gets_nothing(cluster, tmp_path):
    home, env = cluster
    with Client(frontend(home), curve=stranger_keys(home, tmp_path)) as stranger:
        for _attempt in range(2):  # the refused connection is closed: the second never hangs
            with pytest.raises(NoAnswer):
                stranger.request({"intent": "ping"}, timeout=SHORT_WAIT)
    _public, secret_file = zmq.auth.create_certificates(tmp_path, "outsider")
    asked = run_batos("ask", "hi", "--persona", "ROBIN", "--key", secret_file, "--timeout",
                      str(SHORT_WAIT), home=home.path, env=env)
    assert asked.returncode == 1 and "no answer" in asked.stderr
    assert_still_serving(home)


@pytest.mark.cluster
def test_a_plain_client_gets_nothing(cluster):
    home, _env = cluster
    assert refused(home, None)
    assert_still_serving(home)


@pytest.mark.cluster
def test_an_allowed_key_aimed_at_the_wrong_server_key_gets_nothing(cluster):
    home, _env = cluster
    alice = console_keys(home, "alice")
    impostor_public, _ = zmq.curve_keypair()
    assert refused(home, keys.ClientCurve(alice.public, alice.secret, impostor_public))
    assert_still_serving(home)


@pytest.mark.cluster
def test_revoking_a_key_silences_it_at_once_even_on_an_open_connection(cluster):
    home, _env = cluster
    run_batos("keys", "new", "bob", home=home.path, check=True)
    bob = console_keys(home, "bob")
    wait_until(lambda: not refused(home, bob), timeout=30)  # the allow-list was re-read
    with Client(frontend(home), timeout=30.0, curve=bob) as connection:
        assert connection.request({"intent": "ping"})["services"]["ROBIN"] == 1
        run_batos("keys", "revoke", "bob", home=home.path, check=True)

        def silenced():
            try:
                connection.request({"intent": "ping"}, timeout=0.5)
            except NoAnswer:
                return True
            return False

        wait_until(silenced, timeout=30)
        assert refused(home, bob)  # a new connection is refused too
        run_batos("keys", "allow", str(home.path / "keys" / "consoles" / "bob.key"), "--name",
                  "bob-again", home=home.path, check=True)
        wait_until(lambda: not refused(home, bob), timeout=30)  # no restart needed
    assert_still_serving(home)


def subscriber(home, curve):
    """A SUB socket on the orchestrator's events, with `curve` (None: plain)."""
    socket = zmq.Context.instance().socket(zmq.SUB)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.SUBSCRIBE, protocol.EVENT)
    if curve is not None:
        keys.secure_client(socket, curve)
    socket.connect(keys.connect_endpoint(home.orchestrator_endpoints["events"]))
    return socket


@pytest.mark.cluster
def test_events_reach_allowed_consoles_only(cluster, tmp_path):
    home, _env = cluster
    allowed = subscriber(home, console_keys(home, "alice"))
    outsiders = [subscriber(home, stranger_keys(home, tmp_path)), subscriber(home, None)]
    received = []
    try:
        with Client(frontend(home), timeout=60.0, curve=console_keys(home, "alice")) as alice:
            def an_event_arrived():
                alice.request({"intent": "chat", "persona": "ROBIN", "session": "events",
                               "text": "remember the sky"})
                while allowed.poll(200):
                    received.append(json.loads(allowed.recv_multipart()[1]))
                return any(e.get("type") == "committed" for e in received)

            wait_until(an_event_arrived, timeout=60)
            an_event_arrived()  # one more, published while every subscriber is connected
        assert all(not socket.poll(SHORT_WAIT * 1000) for socket in outsiders)
    finally:
        for socket in [allowed, *outsiders]:
            socket.close(0)


@pytest.mark.cluster
def test_no_secret_is_in_the_image(cluster):
    home, env = cluster
    secrets = [zmq.auth.load_certificate(path)[1]
               for path in pathlib.Path(home.path, "keys").rglob("*.key_secret")]
    assert len(secrets) >= 3
    run_batos("ask", "remember this", "--persona", "ROBIN", home=home.path, env=env, check=True)
    image = home.image_path.read_bytes()
    assert not any(secret in image for secret in secrets)
