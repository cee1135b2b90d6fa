"""kernel.orchestrator: the broker in a thread, with real ZeroMQ workers and clients around it.

No image: the orchestrator then routes to ALFRED and accepts any persona name.
"""
import json
import re
import signal
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
from tests.conftest import REPO, RawWorker


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


# -- a request in flight is one request (issue 19) --------------------------------------------

def recv(socket, timeout=10.0):
    """The next message a raw client gets."""
    assert socket.poll(timeout * 1000), "no answer"
    return json.loads(socket.recv_multipart()[1])


def test_a_request_sent_again_while_in_flight_is_attached_never_run_again(broker):
    _, endpoints = broker
    worker = RawWorker(endpoints["back"], "ROBIN")
    wait_for_workers(endpoints, "ROBIN", 1)
    first, again = raw_client(endpoints["front"]), raw_client(endpoints["front"])
    payload = protocol.encode({"id": "once", "text": "hi", "persona": "ROBIN"})
    first.send_multipart([protocol.CLIENT, payload])
    tag, request = worker.next_request()
    assert request["id"] == "once"
    again.send_multipart([protocol.CLIENT, payload])  # e.g. a console that reconnected
    note = recv(again)
    assert (note["type"], note["stage"], note["persona"]) == ("progress", "working", "ROBIN")
    worker.answer(tag, protocol.reply("once", reply="hi"))
    assert recv(again)["reply"] == "hi"  # the answer goes to whoever waits for the id now
    first.send_multipart([protocol.CLIENT, protocol.encode({"id": "after", "text": "hi",
                                                            "persona": "ROBIN"})])
    assert worker.next_request()[1]["id"] == "after"  # "once" was never queued again
    for socket in (first, again):
        socket.close()
    worker.close()


def test_track_and_cancel_a_started_and_a_queued_request(broker):
    _, endpoints = broker
    worker = RawWorker(endpoints["back"], "BRICK")
    wait_for_workers(endpoints, "BRICK", 1)
    client = raw_client(endpoints["front"])

    def ask(request_id, intent="chat"):
        client.send_multipart([protocol.CLIENT, protocol.encode(
            {"id": request_id, "intent": intent, "text": "hi", "persona": "BRICK"})])

    ask("started")
    tag, _request = worker.next_request()
    worker.progress(tag, "thinking", "BRICK")
    assert recv(client)["stage"] == "thinking"
    ask("queued")  # the one BRICK worker is busy: it waits
    for request_id, intent, stage in [("started", "track", "thinking"),
                                      ("queued", "track", "queued"),
                                      ("nobody", "track", "unknown"),
                                      ("queued", "cancel", "withdrawn"),
                                      ("started", "cancel", "detached"),
                                      ("queued", "track", "unknown")]:
        ask(request_id, intent)
        note = recv(client)
        assert (note["id"], note["type"], note["stage"]) == (request_id, "progress", stage)
    worker.answer(tag, protocol.reply("started", reply="nobody hears this"))
    ask("next")
    tag, request = worker.next_request()
    assert request["id"] == "next"  # the withdrawn request never reached the worker
    worker.answer(tag, protocol.reply("next", reply="hi"))
    answer = recv(client)  # nothing for the detached one came before it
    assert (answer["id"], answer["reply"]) == ("next", "hi")
    client.close()
    worker.close()


def test_a_worker_registering_with_a_request_in_hand_answers_it_once(broker):
    """After an orchestrator restart, a busy worker registers naming the request it holds:
    the client's re-send attaches to it instead of running it again."""
    _, endpoints = broker
    worker = RawWorker(endpoints["back"], "ROBIN", held=b"kept")
    client = raw_client(endpoints["front"])
    wait_for_workers(endpoints, "ROBIN", 1)
    client.send_multipart([protocol.CLIENT, protocol.encode(
        {"id": "kept", "text": "hi", "persona": "ROBIN"})])
    assert recv(client)["stage"] == "working"
    worker.answer(b"kept", protocol.reply("kept", reply="done once"))
    assert recv(client)["reply"] == "done once"
    client.send_multipart([protocol.CLIENT, protocol.encode(
        {"id": "after", "text": "hi", "persona": "ROBIN"})])
    assert worker.next_request()[1]["id"] == "after"
    client.close()
    worker.close()


def test_an_orchestrator_held_up_longer_than_the_liveness_window_drops_no_worker(home, zeo):
    """SIGSTOP stands in for whatever holds the broker up (a slow image read, a starved CPU):
    its workers kept heartbeating meanwhile, so none is dropped and the request one holds is
    answered once, not re-dispatched."""
    home = Home.open(home.path)
    endpoints = home.orchestrator_endpoints
    log_path = home.log_dir / "orchestrator.log"
    with open(log_path, "ab") as output:
        process = subprocess.Popen([sys.executable, "-m", "kernel.orchestrator", "--home",
                                    str(home.path)], cwd=REPO, stdin=subprocess.DEVNULL,
                                   stdout=output, stderr=subprocess.STDOUT)
    workers = [RawWorker(endpoints["backend"], name) for name in ("ALFRED", "ROBIN", "BABS")]
    client = raw_client(endpoints["frontend"])
    try:
        wait_for_workers({"front": endpoints["frontend"]}, "BABS", 1)
        client.send_multipart([protocol.CLIENT, protocol.encode(
            {"id": "held", "text": "hi", "persona": "ROBIN"})])
        tag, _request = workers[1].next_request()
        process.send_signal(signal.SIGSTOP)
        try:
            held_up = time.monotonic() + 2 * protocol.CLIENT_LIVENESS
            while time.monotonic() < held_up:  # the stall itself; the workers live on
                for worker in workers:
                    worker.socket.send_multipart([protocol.WORKER, protocol.HEARTBEAT])
                time.sleep(protocol.HEARTBEAT_INTERVAL / 4)
        finally:
            process.send_signal(signal.SIGCONT)
        workers[1].answer(tag, protocol.reply("held", reply="answered once"))
        messages = [recv(client, timeout=30)]
        while messages[-1]["type"] == "progress":
            messages.append(recv(client, timeout=30))
        assert messages[-1]["reply"] == "answered once"
        assert not [m for m in messages if m.get("stage") == "redelivered"]
        with Client(endpoints["frontend"], timeout=30) as asker:
            assert asker.check()["services"] == {"ALFRED": 1, "BABS": 1, "ROBIN": 1}
        assert "dropping it" not in log_path.read_text()
    finally:
        process.terminate()
        process.wait(30)
        client.close()
        for worker in workers:
            worker.close()


# -- one table of intents (kernel.protocol.INTENT_TABLE) -----------------------------------------

def test_the_orchestrator_answers_its_own_intents_and_passes_on_every_persona_intent(broker):
    _, endpoints = broker
    worker = RawWorker(endpoints["back"], "ROBIN")
    wait_for_workers(endpoints, "ROBIN", 1)
    socket = raw_client(endpoints["front"])
    fields = {"persona": "ROBIN", "text": "hi", "target": "rect", "selector": "area"}
    for intent in protocol.BROKER_INTENTS:
        answer = exchange(socket, protocol.encode({"id": f"own-{intent}", "intent": intent,
                                                   **fields}))
        assert answer["id"] == f"own-{intent}" and answer["type"] in ("reply", "progress")
    for intent in protocol.PERSONA_INTENTS:
        socket.send_multipart([protocol.CLIENT, protocol.encode(
            {"id": f"to-{intent}", "intent": intent, **fields})])
        client, request = worker.next_request()
        assert (request["id"], request["intent"]) == (f"to-{intent}", intent)
        worker.answer(client, protocol.reply(request["id"], reply="ok"))
        while recv(socket)["type"] != "reply":
            pass
    socket.close()
    worker.close()
