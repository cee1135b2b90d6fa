"""kernel.client: waiting for a request as BATOS/1 says — tracked, sent again only when the
orchestrator has forgotten it, given up per stage, and a silent orchestrator reported within
the liveness window. Real orchestrators serve in threads; the workers are raw sockets."""
import threading

import pytest

from conftest import Broker, RawWorker
from kernel import protocol
from kernel.client import Client, ClusterSilent, NoAnswer
from kernel.home import free_port


def test_no_orchestrator_is_reported_as_silent():
    with Client(f"tcp://127.0.0.1:{free_port()}", timeout=600) as client:
        with pytest.raises(ClusterSilent, match="no answer from the orchestrator at tcp://"):
            client.check()
        with pytest.raises(ClusterSilent, match=r"for \d+ s \(request r1\)"):
            client.request({"id": "r1", "text": "hi"})


def test_a_request_is_sent_again_only_when_a_restarted_orchestrator_forgot_it():
    endpoints = {name: f"tcp://127.0.0.1:{free_port()}" for name in ("front", "back", "ev")}
    first = Broker(endpoints)
    worker = RawWorker(endpoints["back"], "ROBIN")
    answers = []

    def ask():
        with Client(endpoints["front"], timeout=60) as client:
            answers.append(client.request({"id": "survivor", "text": "hi", "persona": "ROBIN"}))

    asker = threading.Thread(target=ask)
    asker.start()
    tag, _request = worker.next_request()
    first.stop()
    restarted = Broker(endpoints)  # a new orchestrator on the same endpoints knows nothing
    try:
        worker.close()
        worker = RawWorker(endpoints["back"], "ROBIN", held=tag)  # registers, request in hand
        flights = restarted.orchestrator.flights
        worker.heartbeat_until(lambda: "survivor" in flights  # adopted, and the client's
                               and flights["survivor"].client is not None)  # re-send attached
        worker.answer(tag, protocol.reply("survivor", reply="once"))
        asker.join(60)
        assert answers[0]["reply"] == "once"
        with Client(endpoints["front"]) as client:
            client.socket.send_multipart([protocol.CLIENT, protocol.encode(
                {"id": "after", "text": "hi", "persona": "ROBIN"})])
            assert worker.next_request()[1]["id"] == "after"  # "survivor" never ran again
    finally:
        worker.close()
        restarted.stop()


def test_a_stage_that_lasts_too_long_is_given_up_and_cancelled(broker):
    _, endpoints = broker
    worker = RawWorker(endpoints["back"], "ROBIN")
    failures = []

    def ask():
        with Client(endpoints["front"], timeout=2) as client:
            try:
                client.request({"id": "stuck", "text": "hi", "persona": "ROBIN"})
            except NoAnswer as exc:
                failures.append(exc)

    asker = threading.Thread(target=ask)
    asker.start()
    tag, _request = worker.next_request()
    worker.progress(tag, "thinking", "ROBIN")
    worker.heartbeat_until(lambda: failures, timeout=60)
    asker.join(30)
    assert not isinstance(failures[0], ClusterSilent)
    assert str(failures[0]) == (f"no answer to request stuck from {endpoints['front']}: "
                                "thinking (ROBIN) for longer than 2 s; given up (detached)")
    worker.close()
