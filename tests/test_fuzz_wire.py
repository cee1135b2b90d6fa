"""BATOS/1 fuzzed against a real orchestrator process (issue 8): whatever arrives on its
frontend or backend socket gets an error reply or is dropped and logged; no process dies, and
good requests keep getting their answers meanwhile.

A real ZEO server, a real `batos-orchestrator` process and a real ROBIN worker (scripted
model) serve the whole module. Hypothesis generates at least `EXAMPLES` inputs per socket;
every `GOOD_EVERY` inputs a good request must still get ROBIN's answer. Requests that are
valid but cannot be served at once (no worker for their persona) are not waited for one by
one: their answers are collected as they come and all must have come by the end. A request
is one request while in flight: an id sent again meanwhile gets one answer in all, and an
id cancelled needs none (BATOS/1).
"""
import collections
import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import time
import uuid

import pytest
import zmq
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from conftest import REPO, wait_until
from kernel import protocol
from kernel.client import Client, NoAnswer
from kernel.home import Home
from kernel.ratelimit import RateLimitFilter
from zeo_server import launcher

EXAMPLES = 2000
GOOD_EVERY = 100
ANSWER_TIMEOUT = 10.0
SERVICE_WAIT = 1.0
SERVED = "ROBIN"                                  # the one persona with a real worker
UNSERVED = ("ALFRED", "BRICK", "BABS")            # personas that exist but have no worker
PERSONAS = (SERVED, *UNSERVED)
RULES = [{"match": "choose plan", "reply": "reply"}, {"match": r"User: ", "reply": "hello"}]
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking a hang takes too long
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much, HealthCheck.large_base_example])


# -- the cluster under test -------------------------------------------------------------------

@dataclasses.dataclass
class Cluster:
    """The processes under test and how to reach them."""

    home: Home
    orchestrator: subprocess.Popen
    worker: subprocess.Popen
    log_path: object
    context: zmq.Context

    @property
    def frontend(self):
        return self.home.orchestrator_endpoints["frontend"]

    @property
    def backend(self):
        return self.home.orchestrator_endpoints["backend"]

    def log(self):
        """What the orchestrator has logged so far."""
        return self.log_path.read_text(errors="replace")

    def assert_alive(self):
        """Both processes still run."""
        assert self.orchestrator.poll() is None, "the orchestrator died:\n" + self.log()[-3000:]
        assert self.worker.poll() is None, f"the {SERVED} worker died (exit " \
                                           f"{self.worker.returncode})"

    def dealer(self, endpoint, identity=None, linger=0):
        """A DEALER socket connected to `endpoint`."""
        socket = self.context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, linger)
        if identity is not None:
            socket.setsockopt(zmq.IDENTITY, identity)
        socket.connect(endpoint)
        return socket

    def client(self, timeout=60.0):
        """A protocol-abiding client."""
        return Client(self.frontend, context=self.context, timeout=timeout)

    def good_request(self, client):
        """A good request gets ROBIN's proper answer."""
        request_id = "good-" + uuid.uuid4().hex
        answer = client.request({"id": request_id, "session": "fuzz-good", "text": "hi",
                                 "persona": SERVED})
        assert answer["id"] == request_id and answer["type"] == "reply"
        assert answer["persona"] == SERVED and answer["reply"] == "hello"

    def live_workers(self):
        """Service → live workers, as `ping` reports them."""
        with self.client(timeout=10.0) as client:
            return client.request({"intent": "ping"})["services"]


def start(arguments, log_path, env):
    """`python -m ARGUMENTS` with its output appended to `log_path`."""
    with open(log_path, "ab") as output:
        return subprocess.Popen([sys.executable, "-m", *arguments], cwd=REPO, env=env,
                                stdin=subprocess.DEVNULL, stdout=output,
                                stderr=subprocess.STDOUT)


def stop(process):
    """SIGTERM, then SIGKILL if it does not end."""
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """ZEO, the orchestrator and a ROBIN worker as real processes, for the whole module."""
    base = tmp_path_factory.mktemp("fuzz")
    rules = base / "rules.json"
    rules.write_text(json.dumps(RULES))
    home = Home.init(base / "home")
    config = home.path / "batos.toml"
    config.write_text(config.read_text().replace("service_wait = 10.0",
                                                 f"service_wait = {SERVICE_WAIT}"))
    home = Home.open(home.path)
    assert home.setting("orchestrator", "max_request_bytes",
                        default=protocol.MAX_PAYLOAD) == protocol.MAX_PAYLOAD
    _address, stop_zeo, _process = launcher.start(home)
    env = dict(os.environ, BATOS_LLM=f"scripted:{rules}")
    processes = []
    context = zmq.Context()
    try:
        processes.append(start(["kernel.orchestrator", "--home", str(home.path)],
                               home.log_dir / "orchestrator.log", env))
        processes.append(start(["kernel.worker", "--home", str(home.path), "--persona", SERVED],
                               home.log_dir / f"worker-{SERVED}.log", env))
        cluster = Cluster(home, *processes, home.log_dir / "orchestrator.log", context)

        def registered():
            cluster.assert_alive()
            try:
                return cluster.live_workers().get(SERVED, 0) >= 1
            except NoAnswer:
                return False

        wait_until(registered, timeout=180)
        yield cluster
    finally:
        for process in reversed(processes):
            stop(process)
        stop_zeo()
        context.term()


# -- frontend inputs ----------------------------------------------------------------------------

class Input:
    """Frames to send and what they are: `request_id` is set for a valid request (its answer
    carries that id, now or later); None means malformed (an immediate "malformed request"
    error without id is due) unless the frames are `unread` (over the frontend's hard cap,
    ZeroMQ itself drops them with the connection: nothing is due)."""

    def __init__(self, kind, frames, request_id=None, unread=False):
        self.kind, self.frames, self.request_id = kind, frames, request_id
        self.unread = unread  # past the hard cap: ZeroMQ drops it (and the connection)

    def __repr__(self):  # short: frames may be megabytes
        shown = [frame[:80] + (b"..." if len(frame) > 80 else b"") for frame in self.frames]
        return f"Input({self.kind}, {shown}, sizes={[len(f) for f in self.frames]})"


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) \
    | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)
request_ids = st.sampled_from(["dup", "dup-2"]) | st.text(min_size=1, max_size=40)
unknown_personas = st.text(min_size=1, max_size=40).filter(lambda name: name not in PERSONAS)
WRONG_TYPES = {
    str: st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none()
    | st.lists(st.text(max_size=5), max_size=3) | st.dictionaries(st.text(max_size=5),
                                                                  st.integers(), max_size=3),
    list: st.text(max_size=10) | st.integers() | st.none() | st.booleans()
    | st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    dict: st.text(max_size=10) | st.integers() | st.none() | st.lists(st.integers(), max_size=3),
    int: st.text(max_size=10) | st.floats(allow_nan=False) | st.none()   # a bool is an int
    | st.lists(st.integers(), max_size=3),
    (int, float): st.text(max_size=10) | st.none() | st.lists(st.integers(), max_size=3)
    | st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    bool: st.integers() | st.text(max_size=10) | st.none() | st.lists(st.booleans(), max_size=3),
}
TYPED_FIELDS = sorted(field for field, kind in protocol.REQUEST_FIELDS.items()
                      if kind is not object)
TEXT_FIELDS = sorted(field for field, kind in protocol.REQUEST_FIELDS.items() if kind is str)
BAD_UTF8 = [b"\xff", b"\x80", b"\xc0\xaf", b"\xe2\x82", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]


@st.composite
def valid_requests(draw):
    """A request BATOS/1 accepts, for a persona that exists without a worker, for none
    (routing, whose router has no worker either), or for one that does not exist."""
    intent = draw(st.sampled_from(protocol.INTENTS))
    request = {"id": draw(request_ids), "intent": intent}
    persona = draw(st.none() | st.just("") | st.sampled_from(UNSERVED) | unknown_personas)
    if persona is not None:
        request["persona"] = persona
    if intent == "chat" or draw(st.booleans()):
        request["text"] = draw(st.text(min_size=1, max_size=100))
    if intent in ("send", "revert") or draw(st.booleans()):
        request["target"] = draw(st.text(min_size=1, max_size=20))
        request["selector"] = draw(st.text(min_size=1, max_size=20))
    if intent == "versions":
        request["target"] = draw(st.text(min_size=1, max_size=20))
    if draw(st.booleans()):
        request["session"] = draw(st.text(max_size=20))
    if draw(st.booleans()):
        request["args"] = draw(st.lists(json_values, max_size=3))
    if draw(st.booleans()):
        request["expect"] = draw(json_values)
    return request


def invalid(payload):
    """Frames carrying a payload the test built to be malformed."""
    return [protocol.CLIENT, payload]


@st.composite
def broken_requests(draw):
    """A request with exactly one thing wrong with its fields."""
    request = draw(valid_requests())
    fault = draw(st.sampled_from(["wrong type", "unknown field", "unknown intent", "no id",
                                  "empty id", "long id", "chat without text",
                                  "send without target", "lone surrogate"]))
    if fault == "wrong type":
        field = draw(st.sampled_from(TYPED_FIELDS))
        request[field] = draw(WRONG_TYPES[protocol.REQUEST_FIELDS[field]])
    elif fault == "unknown field":
        name = draw(st.text(max_size=20).filter(lambda key: key not in protocol.REQUEST_FIELDS))
        request[name] = draw(json_values)
    elif fault == "unknown intent":
        request["intent"] = draw(st.text(max_size=30).filter(lambda i: i not in protocol.INTENTS))
    elif fault == "no id":
        del request["id"]
    elif fault == "empty id":
        request["id"] = ""
    elif fault == "long id":
        request["id"] = draw(st.text(min_size=129, max_size=300))
    elif fault == "chat without text":
        request["intent"] = "chat"
        request.pop("text", None) if draw(st.booleans()) else request.update(text="")
    elif fault == "send without target":
        request["intent"] = "send"
        missing = draw(st.sampled_from(["target", "selector"]))
        request.pop(missing, None) if draw(st.booleans()) else request.update({missing: ""})
    else:  # a \udXXX escape: JSON allows it, but it is no Unicode text
        field = draw(st.sampled_from(TEXT_FIELDS))
        request[field] = draw(st.text(max_size=5)) + draw(st.characters(categories=["Cs"]))
    return Input(fault, invalid(json.dumps(request).encode()))


@st.composite
def broken_bytes(draw):
    """Payload bytes that are no JSON object in UTF-8."""
    good = json.dumps(draw(valid_requests()), ensure_ascii=False).encode()
    fault = draw(st.sampled_from(["bad utf-8", "truncated", "not json", "not an object",
                                  "deep nesting", "huge integer", "binary"]))
    if fault == "bad utf-8":
        at = draw(st.integers(0, len(good)))
        payload = good[:at] + draw(st.sampled_from(BAD_UTF8)) + good[at:]
    elif fault == "truncated":
        payload = good[:draw(st.integers(0, len(good) - 1))]
    elif fault == "not json":
        payload = draw(st.text(max_size=60).filter(lambda t: not parses(t))).encode()
    elif fault == "not an object":
        payload = json.dumps(draw(json_values.filter(lambda v: not isinstance(v, dict)))).encode()
    elif fault == "deep nesting":
        depth = draw(st.integers(500, protocol.MAX_PAYLOAD // 2 - 100))
        nested = b"[" * depth + b"]" * depth
        payload = nested if draw(st.booleans()) else b'{"id": "deep", "args": ' + nested + b"}"
    elif fault == "huge integer":
        digits = b"9" * draw(st.integers(4301, 50000))
        payload = digits if draw(st.booleans()) else b'{"id": "big", "limit": ' + digits + b"}"
    else:
        payload = draw(st.binary(max_size=200).filter(lambda b: not parses(b)))
    return Input(fault, invalid(payload))


def parses(data):
    """Whether `data` could be a request at all (a JSON object with an id)."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return False
    return isinstance(value, dict) and "id" in value


HARD_CAP = protocol.hard_cap(protocol.MAX_PAYLOAD)


@st.composite
def sized_requests(draw):
    """Requests padded to near the size limit (valid, for a persona that does not exist) or
    over it, up to the hard cap and past it."""
    if draw(st.integers(0, 9)):
        size = draw(st.integers(protocol.MAX_PAYLOAD - 64, protocol.MAX_PAYLOAD + 64))
    else:
        size = draw(st.integers(HARD_CAP - 8, HARD_CAP + 8) | st.just(4 * HARD_CAP))
    request_id = "size-" + uuid.uuid4().hex
    request = {"id": request_id, "persona": "NOBODY", "text": ""}
    request["text"] = "x" * (size - len(json.dumps(request).encode()))
    payload = json.dumps(request).encode()
    assert len(payload) == size
    if size <= protocol.MAX_PAYLOAD:
        return Input("near the limit", [protocol.CLIENT, payload], request_id)
    if len(protocol.CLIENT) + size <= HARD_CAP:  # the cap bounds the whole message
        return Input("over the limit", invalid(payload))
    return Input("over the hard cap", invalid(payload), unread=True)


@st.composite
def broken_frames(draw):
    """Frame counts and headers other than [BATOS/C1, request-json]."""
    fault = draw(st.sampled_from(["header only", "extra frames", "wrong header", "junk"]))
    payload = json.dumps(draw(valid_requests())).encode()
    if fault == "header only":
        frames = [protocol.CLIENT]
    elif fault == "extra frames":
        frames = [protocol.CLIENT, payload, *draw(st.lists(st.binary(max_size=30), min_size=1,
                                                             max_size=4))]
    elif fault == "wrong header":
        header = draw(st.binary(max_size=12).filter(lambda h: h != protocol.CLIENT)
                      | st.sampled_from([protocol.WORKER, b"BATOS/C2", b""]))
        frames = [header, payload]
    else:
        frames = draw(st.lists(st.binary(max_size=40), min_size=1, max_size=6).filter(
            lambda f: not (len(f) == 2 and f[0] == protocol.CLIENT)))
    return Input(fault, frames)


def valid_inputs():
    """Valid requests whose answers come now or after the service wait."""
    return valid_requests().map(
        lambda r: Input("valid", [protocol.CLIENT, json.dumps(r).encode()], r["id"]))


frontend_inputs = st.one_of(broken_frames(), broken_bytes(), broken_requests(),
                            sized_requests(), valid_inputs())


class FrontendFuzz:
    """One DEALER sending fuzzed input; it checks each answer and collects late ones."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.socket = cluster.dealer(cluster.frontend)
        self.good = cluster.client()
        self.outstanding = set()  # valid request ids whose answer is still due
        self.asked = set()  # every valid request id sent
        self.sent = collections.Counter()

    def check(self, sent):
        """Send one input; a malformed one gets its error now; every `GOOD_EVERY` inputs a
        good request is answered."""
        self.sent[sent.kind] += 1
        if sent.unread:  # from a connection of its own, which ZeroMQ will close
            unread = self.cluster.dealer(self.cluster.frontend, linger=5000)
            unread.send_multipart(sent.frames)
            unread.close()  # what was sent still goes out (linger)
        elif sent.request_id is None:
            self.socket.send_multipart(sent.frames)
            message = self.next_anonymous(sent)
            assert message["type"] == "error", (sent, message)
            assert message["error"].startswith("malformed request"), (sent, message)
            assert message["retry"] is False, (sent, message)
        else:
            self.socket.send_multipart(sent.frames)
            intent = json.loads(sent.frames[1]).get("intent")
            if intent == "cancel":  # withdrawn, or left to finish unseen: no answer is due
                self.outstanding.discard(sent.request_id)
            elif intent != "track":  # a track is answered by a progress note only
                self.outstanding.add(sent.request_id)
                self.asked.add(sent.request_id)
        while self.socket.poll(0):
            self.settle(self.receive())
        if sum(self.sent.values()) % GOOD_EVERY == 0:
            self.cluster.assert_alive()
            self.cluster.good_request(self.good)

    def receive(self):
        frames = self.socket.recv_multipart()
        assert len(frames) == 2 and frames[0] == protocol.CLIENT, frames
        return json.loads(frames[1])

    def next_anonymous(self, sent):
        """The next answer without a request id (the one a malformed input gets); answers to
        earlier valid requests arriving meanwhile are settled."""
        while True:
            assert self.socket.poll(ANSWER_TIMEOUT * 1000), f"no answer to {sent!r}"
            message = self.receive()
            if message.get("id") is None:
                return message
            self.settle(message)

    def settle(self, message):
        """An answer to a valid request: it must be one still due."""
        if message["type"] == "progress":
            return
        assert message["type"] in ("reply", "error"), message
        assert message["id"] in self.asked, f"an answer nobody asked for: {message}"
        self.outstanding.discard(message["id"])  # a re-send's answer may come after it

    def drain(self):
        """Wait for the answers still due (at most the service wait each, in parallel)."""
        while self.outstanding:
            assert self.socket.poll((SERVICE_WAIT + ANSWER_TIMEOUT) * 1000), \
                f"valid requests never answered: {sorted(self.outstanding)}"
            message = self.receive()
            assert message.get("id") is not None, f"an unexpected error: {message}"
            self.settle(message)

    def close(self):
        self.socket.close(0)
        self.good.close()


def test_fuzzed_frontend_input_gets_error_replies_and_good_requests_still_flow(cluster):
    fuzz = FrontendFuzz(cluster)

    @FUZZ_SETTINGS
    @given(frontend_inputs)
    @example(Input("deep nesting", invalid(b"[" * 100000 + b"]" * 100000)))
    @example(Input("huge integer", invalid(b'{"id": "big", "limit": ' + b"9" * 5000 + b"}")))
    @example(Input("lone surrogate", invalid(b'{"id": "\\ud800", "persona": "BRICK"}')))
    @example(Input("lone surrogate", invalid(b'{"id": "s", "text": "\\udfff"}')))
    @example(Input("valid", [protocol.CLIENT, b'{"id": "dup", "text": "a"}'], "dup"))
    @example(Input("valid", [protocol.CLIENT, b'{"id": "dup", "text": "b"}'], "dup"))
    def run(sent):
        fuzz.check(sent)

    try:
        run()
        fuzz.drain()
        assert sum(fuzz.sent.values()) >= EXAMPLES
        cluster.assert_alive()
        cluster.good_request(fuzz.good)
    finally:
        fuzz.close()
    assert "Traceback" not in cluster.log(), cluster.log()[-3000:]


def test_a_client_named_like_the_old_internal_route_client_still_gets_answers(cluster):
    socket = cluster.dealer(cluster.frontend, identity=b"@route")
    try:
        socket.send_multipart([protocol.CLIENT, b"{not json"])
        assert socket.poll(ANSWER_TIMEOUT * 1000), "the orchestrator did not answer"
        message = json.loads(socket.recv_multipart()[1])
        assert message["type"] == "error" and message["error"].startswith("malformed request")
        socket.send_multipart([protocol.CLIENT, b'{"id": "ping-1", "intent": "ping"}'])
        assert socket.poll(ANSWER_TIMEOUT * 1000), "the orchestrator did not answer"
        assert json.loads(socket.recv_multipart()[1])["id"] == "ping-1"
    finally:
        socket.close(0)


# -- backend inputs -----------------------------------------------------------------------------

commands = st.sampled_from(list(protocol.COMMAND_NAMES)) | st.binary(max_size=3)
service_names = (st.sampled_from([b"", b"BRICK", b"ALFRED", b"BABS", b"NOBODY", b"x" * 64,
                                  b"x" * 65, b"\xff\xfe", b"BRICK\x00", b"robin"])
                 | st.text(max_size=80).map(str.encode) | st.binary(max_size=80)).filter(
    lambda name: name != SERVED.encode())  # a forged ROBIN would only slow the good requests
client_frames = st.sampled_from([b"", b"@route", b"\x00\x80\x00\x00\x01"]) | st.binary(max_size=12)
answer_bodies = st.one_of(
    st.fixed_dictionaries({}, optional={
        "id": json_values, "type": st.sampled_from(["reply", "error", "progress"]) | json_values,
        "persona": st.sampled_from(PERSONAS) | json_values, "error": json_values,
        "retry": json_values, "events": json_values, "reply": json_values,
    }).map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=100),
    st.sampled_from([b'{"id": "\\ud800", "type": "reply"}', b"[" * 5000 + b"]" * 5000,
                     b'{"events": 5}', b'{"events": "abc"}', b'{"id": [1], "persona": {}}']),
)
worker_messages = st.one_of(
    st.lists(st.binary(max_size=20), min_size=1, max_size=5),
    st.tuples(commands, st.lists(st.binary(max_size=20), max_size=4)).map(
        lambda t: [protocol.WORKER, t[0], *t[1]]),
    service_names.map(lambda name: [protocol.WORKER, protocol.READY, name]),
    st.tuples(st.sampled_from([protocol.REPLY, protocol.PROGRESS]), client_frames,
              answer_bodies).map(lambda t: [protocol.WORKER, t[0], t[1], t[2]]),
    st.lists(st.binary(max_size=20), max_size=3).map(
        lambda extra: [protocol.WORKER, protocol.HEARTBEAT, *extra]),
    st.sampled_from([[protocol.WORKER, protocol.DISCONNECT], [protocol.WORKER]]),
)
worker_peers = st.one_of(
    st.lists(worker_messages, min_size=1, max_size=6),
    st.tuples(service_names, st.lists(worker_messages, max_size=5)).map(
        lambda t: [[protocol.WORKER, protocol.READY, t[0]], *t[1]]),
)


class BackendFuzz:
    """Each input comes from a fresh DEALER peer: never registered, unless it says READY."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.good = cluster.client()
        self.peers = 0

    def check(self, messages):
        """Connect, send the messages, leave; every `GOOD_EVERY` peers a good request is
        answered."""
        socket = self.cluster.dealer(self.cluster.backend, linger=5000)
        socket.setsockopt(zmq.IMMEDIATE, 1)  # POLLOUT only once the connection stands
        try:
            assert socket.poll(ANSWER_TIMEOUT * 1000, zmq.POLLOUT), "backend not reachable"
            for frames in messages:
                socket.send_multipart(frames)
        finally:
            socket.close()  # what was sent still goes out (linger)
        self.peers += 1
        if self.peers % GOOD_EVERY == 0:
            self.cluster.assert_alive()
            self.cluster.good_request(self.good)

    def close(self):
        self.good.close()


class RawWorker:
    """A worker speaking BATOS/1 by hand and properly."""

    def __init__(self, cluster, service):
        self.socket = cluster.dealer(cluster.backend)
        self.socket.send_multipart([protocol.WORKER, protocol.READY, service.encode()])

    def send(self, *frames):
        self.socket.send_multipart([protocol.WORKER, *frames])

    def next_request(self, timeout=ANSWER_TIMEOUT):
        """The next REQUEST (heartbeating meanwhile): (client, request)."""
        def arrived():
            self.send(protocol.HEARTBEAT)
            while self.socket.poll(50):
                frames = self.socket.recv_multipart()
                if frames[1] == protocol.REQUEST:
                    self.request = frames[2], json.loads(frames[3])
                    return True
            return False
        wait_until(arrived, timeout=timeout, interval=0)
        return self.request

    def answer(self, client, message):
        self.send(protocol.REPLY, client, protocol.encode(message))

    def close(self):
        self.send(protocol.DISCONNECT)
        self.socket.close(0)


def ask(cluster, persona, request_id):
    """Send a request for `persona` without waiting; returns the client socket."""
    client = cluster.client()
    client.socket.send_multipart([protocol.CLIENT, protocol.encode(
        {"id": request_id, "text": "hi", "persona": persona})])
    return client


def answer_of(client, timeout=ANSWER_TIMEOUT):
    """The next non-progress message a client gets."""
    while True:
        assert client.socket.poll(timeout * 1000), "no answer"
        message = json.loads(client.socket.recv_multipart()[1])
        if message["type"] != "progress":
            return message


DROP_LINES = ("dropping a malformed backend message", "dropping an unknown command",
              "refusing a registration", "is silent; dropping it",
              "for a request it does not hold")


def test_fuzzed_backend_input_is_dropped_and_logged_and_good_requests_still_flow(cluster):
    fuzz = BackendFuzz(cluster)
    began, logged_before = time.monotonic(), len(cluster.log())

    @FUZZ_SETTINGS
    @given(worker_peers)
    @example([[protocol.WORKER, protocol.READY, b"BRICK"],
              [protocol.WORKER, protocol.REPLY, b"nobody", b'{"type": "reply"}'],
              [protocol.WORKER, protocol.REPLY, b"nobody", b'{"type": "reply"}']])
    @example([[protocol.WORKER, protocol.READY, b"ALFRED"],
              [protocol.WORKER, protocol.REPLY, b"@route", b'{"id": [1], "type": "reply"}']])
    @example([[protocol.WORKER, protocol.READY, b"BABS"],
              [protocol.WORKER, protocol.REPLY, b"x", b'{"events": 5}']])
    @example([[protocol.WORKER, protocol.READY, b"\xff" * 10]])
    def run(messages):
        fuzz.check(messages)

    try:
        run()
        assert fuzz.peers >= EXAMPLES
        cluster.assert_alive()
        cluster.good_request(fuzz.good)
    finally:
        fuzz.close()
    # the forged registrations expire; then every service serves a proper worker again
    wait_until(lambda: not any(cluster.live_workers().get(name) for name in UNSERVED),
               timeout=60)
    for name in UNSERVED:
        worker = RawWorker(cluster, name)
        client = ask(cluster, name, f"after-fuzz-{name}")
        try:
            peer, request = worker.next_request()
            assert request["id"] == f"after-fuzz-{name}"
            worker.answer(peer, protocol.reply(request["id"], reply="served"))
            assert answer_of(client)["reply"] == "served"
        finally:
            client.close()
            worker.close()
    cluster.assert_alive()
    log = cluster.log()[logged_before:]
    assert "Traceback" not in log, log[-3000:]
    # each kind of drop is logged, at most a burst per interval (the rest is counted)
    windows = math.ceil((time.monotonic() - began) / RateLimitFilter.INTERVAL) + 1
    for kind in DROP_LINES:
        assert 1 <= log.count(kind) <= RateLimitFilter.BURST * windows, kind


def test_an_unsolicited_reply_does_not_make_a_worker_serve_twice(cluster):
    first, second = RawWorker(cluster, "BABS"), RawWorker(cluster, "BABS")
    first.answer(b"nobody", protocol.reply("x", reply="unasked"))
    clients = [ask(cluster, "BABS", f"twice-{n}") for n in range(2)]
    try:
        served = {}
        for worker in (first, second):
            peer, request = worker.next_request()
            served[request["id"]] = worker
            worker.answer(peer, protocol.reply(request["id"], reply="ok"))
        assert sorted(served) == ["twice-0", "twice-1"]
        assert [answer_of(client)["reply"] for client in clients] == ["ok", "ok"]
    finally:
        for client in clients:
            client.close()
        first.close()
        second.close()


def test_a_reply_for_another_client_is_dropped_and_the_right_one_answered(cluster):
    worker = RawWorker(cluster, "BABS")
    right = ask(cluster, "BABS", "mine")
    try:
        peer, request = worker.next_request()
        assert request["id"] == "mine"
        worker.answer(b"someone-else", protocol.reply("mine", reply="misdirected"))
        worker.answer(peer, protocol.reply("mine", reply="right"))
        assert answer_of(right)["reply"] == "right"
    finally:
        right.close()
        worker.close()
    assert re.search(r"dropping .*REPLY", cluster.log())
