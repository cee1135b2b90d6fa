"""kernel.orchestrator: the broker in a thread, with real ZeroMQ workers and clients around it.

No image: the orchestrator then routes to ALFRED and accepts any persona name.
"""
import json
import re
import subprocess
import sys
import threading
import time

import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from kernel import protocol
from kernel.client import Client, RequestFailed
from kernel.home import Home, free_port
from kernel.orchestrator import Orchestrator
from tests.conftest import REPO


@pytest.fixture
def broker():
    endpoints = {name: f"tcp://127.0.0.1:{free_port()}" for name in ("front", "back", "ev")}
    orchestrator = Orchestrator(endpoints["front"], endpoints["back"], endpoints["ev"],
                                service_wait=1.0)
    thread = threading.Thread(target=orchestrator.serve, daemon=True)
    thread.start()
    yield orchestrator, endpoints
    orchestrator.stop()
    thread.join(10)
    orchestrator.close()


class RawWorker:
    """A worker speaking BATOS/1 by hand, so tests control its every frame."""

    def __init__(self, endpoint, service):
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.socket.send_multipart([protocol.WORKER, protocol.READY, service.encode()])

    def next_request(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.socket.send_multipart([protocol.WORKER, protocol.HEARTBEAT])
            if self.socket.poll(100):
                frames = self.socket.recv_multipart()
                if frames[1] == protocol.REQUEST:
                    return frames[2], json.loads(frames[3])
        raise AssertionError("no request came")

    def answer(self, client, message):
        self.socket.send_multipart([protocol.WORKER, protocol.REPLY, client,
                                    protocol.encode(message)])

    def close(self):
        self.socket.close(0)


def ask(endpoint, payload, results, timeout=20.0):
    with Client(endpoint, timeout=timeout) as client:
        try:
            results.append(client.request(payload))
        except RequestFailed as exc:
            results.append(exc)


def test_requests_go_to_workers_least_recently_used_first(broker):
    _, endpoints = broker
    first, second = RawWorker(endpoints["back"], "ROBIN"), RawWorker(endpoints["back"], "ROBIN")
    wait_for_workers(endpoints, "ROBIN", 2)
    results = []
    threads = [threading.Thread(target=ask, args=(endpoints["front"], {
        "id": f"r{i}", "text": "hi", "persona": "ROBIN"}, results)) for i in range(2)]
    for thread in threads:
        thread.start()
    served = []
    for worker in (first, second):
        client, request = worker.next_request()
        served.append(request["id"])
        worker.answer(client, protocol.reply(request["id"], reply="ok"))
    for thread in threads:
        thread.join()
    assert sorted(served) == ["r0", "r1"] and all(r["reply"] == "ok" for r in results)
    first.close()
    second.close()


def test_a_request_held_by_a_silent_worker_is_redispatched(broker):
    _, endpoints = broker
    doomed = RawWorker(endpoints["back"], "BRICK")
    results = []
    thread = threading.Thread(target=ask, args=(endpoints["front"], {
        "id": "held", "text": "hi", "persona": "BRICK"}, results, 30.0))
    thread.start()
    _client, request = doomed.next_request()
    assert request["id"] == "held"
    doomed.close()  # it dies holding the request: no reply, no heartbeats
    rescuer = RawWorker(endpoints["back"], "BRICK")
    client, request = rescuer.next_request(timeout=15)
    assert request["id"] == "held"
    rescuer.answer(client, protocol.reply("held", reply="rescued"))
    thread.join()
    assert not isinstance(results[0], Exception), results[0]
    assert results[0]["reply"] == "rescued"
    rescuer.close()


def test_a_service_without_workers_answers_with_a_retryable_error(broker):
    _, endpoints = broker
    results = []
    ask(endpoints["front"], {"id": "lonely", "text": "hi", "persona": "BABS"}, results)
    assert isinstance(results[0], RequestFailed) and results[0].transient
    assert "no live worker for persona BABS" in str(results[0])


def test_unrouted_requests_ask_the_router_first(broker):
    _, endpoints = broker
    alfred, robin = RawWorker(endpoints["back"], "ALFRED"), RawWorker(endpoints["back"], "ROBIN")
    results = []
    thread = threading.Thread(target=ask, args=(endpoints["front"], {
        "id": "q", "text": "hello"}, results))
    thread.start()
    client, request = alfred.next_request()
    assert request["intent"] == "route" and request["text"] == "hello"
    assert request["id"].startswith("q#route")  # a route of its own: clients may share ids
    alfred.answer(client, protocol.reply("q", persona="ROBIN"))
    client, request = robin.next_request()
    assert request["intent"] == "chat" and request["persona"] == "ROBIN"
    robin.answer(client, protocol.reply("q", persona="ROBIN", reply="hi"))
    thread.join()
    assert results[0]["reply"] == "hi"
    alfred.close()
    robin.close()


def wait_for_workers(endpoints, service, count):
    """Ask the broker (ping) until `count` workers of `service` are registered."""
    with Client(endpoints["front"]) as client:
        deadline = time.monotonic() + 10
        while client.request({"intent": "ping"})["services"].get(service) != count:
            assert time.monotonic() < deadline, "workers did not register"


def test_ping_reports_live_workers(broker):
    _, endpoints = broker
    worker = RawWorker(endpoints["back"], "ROBIN")
    wait_for_workers(endpoints, "ROBIN", 1)
    worker.close()


def test_a_request_that_kills_every_worker_is_given_up_after_three(broker):
    _, endpoints = broker
    results = []
    thread = threading.Thread(target=ask, args=(endpoints["front"], {
        "id": "poison", "text": "hi", "persona": "BRICK"}, results, 60.0))
    thread.start()
    for _ in range(3):
        victim = RawWorker(endpoints["back"], "BRICK")
        _client, request = victim.next_request(timeout=20)
        assert request["id"] == "poison"
        victim.close()  # dies holding it
    thread.join(60)
    assert isinstance(results[0], RequestFailed) and not results[0].transient
    assert "3 BRICK workers died while handling it" in str(results[0])


@pytest.fixture
def bounded_broker():
    """A broker whose requests may be at most 2048 bytes."""
    endpoints = {name: f"tcp://127.0.0.1:{free_port()}" for name in ("front", "back", "ev")}
    orchestrator = Orchestrator(endpoints["front"], endpoints["back"], endpoints["ev"],
                                service_wait=1.0, max_request_bytes=2048)
    thread = threading.Thread(target=orchestrator.serve, daemon=True)
    thread.start()
    yield endpoints
    orchestrator.stop()
    thread.join(10)
    orchestrator.close()


def raw_client(endpoint):
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(endpoint)
    return socket


def exchange(socket, payload):
    socket.send_multipart([protocol.CLIENT, payload])
    assert socket.poll(10000), "no answer"
    return json.loads(socket.recv_multipart()[1])


def test_the_request_bound_is_configurable(bounded_broker):
    socket = raw_client(bounded_broker["front"])
    try:
        fits = exchange(socket, protocol.encode({"id": "fits", "intent": "ping",
                                                 "text": "a" * 1900}))
        assert fits["type"] == "reply" and fits["id"] == "fits"
        over = exchange(socket, protocol.encode({"id": "over", "intent": "ping",
                                                 "text": "a" * 3000}))
        assert over["type"] == "error" and not over["retry"]
        assert re.fullmatch(r"malformed request: payload of \d+ bytes exceeds the limit of "
                            r"2048", over["error"])
    finally:
        socket.close()


def test_a_request_far_over_the_bound_is_not_read_and_the_broker_serves_on(bounded_broker):
    socket = raw_client(bounded_broker["front"])
    monitor = socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    try:
        assert exchange(socket, protocol.encode({"id": "before", "intent": "ping"}))["id"] \
            == "before"
        socket.send_multipart([protocol.CLIENT, b'{"id": "huge", "text": "'
                               + b"a" * protocol.hard_cap(2048) + b'"}'])
        assert monitor.poll(10000), "the connection was not dropped"
        assert recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED
        answer = exchange(socket, protocol.encode({"id": "after", "intent": "ping"}))
        assert answer["type"] == "reply" and answer["id"] == "after"  # nothing about "huge"
    finally:
        socket.disable_monitor()
        monitor.close()
        socket.close()


def test_the_orchestrator_takes_its_request_bound_from_the_home(home, zeo):
    config = home.path / "batos.toml"
    config.write_text(config.read_text().replace("max_request_bytes = 262144",
                                                 "max_request_bytes = 4096"))
    process = subprocess.Popen([sys.executable, "-m", "kernel.orchestrator", "--home",
                                str(home.path)], cwd=REPO, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with Client(Home.open(home.path).orchestrator_endpoints["frontend"], timeout=60) as c:
            assert c.request({"intent": "ping", "text": "a" * 3000})["type"] == "reply"
            with pytest.raises(RequestFailed, match="exceeds the limit of 4096"):
                c.request({"intent": "ping", "text": "a" * 5000})
    finally:
        process.terminate()
        process.wait(30)
