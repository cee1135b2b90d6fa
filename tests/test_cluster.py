"""The cluster end to end: real supervisord, ZEO, orchestrator and persona workers.

The scripted backend stands in for the models (determinism); everything else is real.
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

from conftest import BATOS, REPO, logged, one_line_error, run_batos, running_cluster, wait_until
from kernel import protocol, supervise
from kernel.client import Client, RequestFailed
from kernel.home import Home

BUMP = ("def bump(self):\n    self.count = self.count + 1\n    self._p_changed = True\n"
        "    return self.count\n")
RULES = [
    # ALFRED, routing: the persona prefixes (meta-prompt, descriptions) and the text decide
    {"persona": "ALFRED", "match": "PREFER-BABS", "reply": "BABS"},
    {"persona": "ALFRED", "match": r"\[GORDON\][\s\S]*for gordon", "reply": "GORDON"},
    {"persona": "ALFRED", "match": "choose persona", "reply": "ROBIN"},
    # BRICK writing methods
    {"persona": "BRICK", "match": "Write the method perimeter",
     "reply": "def perimeter(self):\n    return 2 * (self.width + self.height)\n"},
    {"persona": "BRICK", "match": "Write the method area",
     "reply": "def area(self):\n    return self.width * self.height\n"},
    # chat: the plan chosen for the text, then a spoken answer
    {"match": r"choose plan[\s\S]*\n\nbump counter within a minute\Z", "delay": 60.0,
     "reply": "send counter bump"},  # a slow model, at real-model speed
    {"match": r"choose plan[\s\S]*\n\nslow bump counter\Z", "delay": 4.0,
     "reply": "send counter bump"},
    {"match": r"choose plan[\s\S]*\n\nbump counter\Z", "reply": "send counter bump"},
    {"match": r"choose plan[\s\S]*\n\nrect area please\Z", "reply": "send rect area"},
    {"match": r"choose plan[\s\S]*\n\nremember ", "reply": "remember"},
    {"match": "choose plan", "reply": "reply"},
    {"match": r"User: ", "reply": "hello"},
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A home with its cluster up under supervisord; yields (home, env, image)."""
    with running_cluster(tmp_path_factory.mktemp("cluster"), RULES) as (home, env, image):
        with image.transaction(note="test objects") as lobby:
            lobby.counter = lobby.traits.clone(count=0)
            lobby.counter.define("bump", BUMP)
            lobby.rect = lobby.traits.clone(width=3, height=4)
        yield home, env, image


def client(home, timeout=60.0):
    return Client(home.orchestrator_endpoints["frontend"], timeout=timeout)


def all_running(home):
    return all(p["state"] == "RUNNING" for p in supervise.programs(home))


def ledger_ids(image, prefix):
    return image.run(lambda lobby: [k for k in lobby.ledger.entries.keys() if
                                    k.startswith(prefix)])


def counter(image):
    return image.run(lambda lobby: lobby.counter.count)


@pytest.mark.cluster
def test_three_clients_fifty_requests_each_get_their_own_replies(cluster):
    home, _env, image = cluster
    failures, answered = [], []

    def run(n):
        with client(home) as c:
            for i in range(50):
                request_id = f"many-{n}-{i}"
                persona = {} if i % 5 == 0 else {"persona": "ROBIN"}
                try:
                    message = c.request({"id": request_id, "session": request_id,
                                         "text": f"hi {n} {i}", **persona})
                except Exception as exc:  # collected and asserted below
                    failures.append((request_id, exc))
                    continue
                if message["id"] != request_id or message["reply"] != "hello":
                    failures.append((request_id, message))
                answered.append(request_id)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(answered) == len(set(answered)) == 150
    assert sorted(ledger_ids(image, "many-")) == sorted(answered)


@pytest.mark.cluster
def test_a_resent_request_id_never_repeats_its_effects(cluster):
    home, _env, image = cluster
    before = counter(image)
    with client(home) as c:
        first = c.request({"id": "once-1", "session": "once", "text": "bump counter",
                           "persona": "BRICK"})
        again = c.request({"id": "once-1", "session": "once", "text": "bump counter",
                           "persona": "BRICK"})
    assert first["result"] == [before + 1] and again["replayed"] is True
    assert again["result"] == first["result"] and counter(image) == before + 1
    result = run_batos("ask", "bump", "--persona", "BRICK", "--id", "once-1", "--json",
                       home=home.path, check=True)
    assert json.loads(result.stdout)["replayed"] is True and counter(image) == before + 1


@pytest.mark.cluster
def test_restarting_brick_while_requests_flow_answers_each_exactly_once(cluster):
    home, _env, image = cluster
    before = counter(image)
    ids, failures = [], []

    def run(n):
        with client(home, timeout=120) as c:
            for i in range(15):
                request_id = f"restart-{n}-{i}"
                try:
                    c.request({"id": request_id, "session": request_id, "text": "bump counter",
                               "persona": "BRICK"})
                    ids.append(request_id)
                except Exception as exc:  # collected and asserted below
                    failures.append((request_id, exc))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(ids) >= 5, timeout=60)
    assert run_batos("restart", "BRICK", home=home.path).returncode == 0
    for thread in threads:
        thread.join()
    assert failures == [] and len(ids) == 45
    assert sorted(ledger_ids(image, "restart-")) == sorted(ids)
    assert counter(image) == before + 45
    wait_until(lambda: all_running(home), timeout=60)


@pytest.mark.cluster
def test_a_worker_killed_holding_a_request_is_replaced_and_answers_once(cluster):
    home, _env, image = cluster
    before = counter(image)
    held = threading.Event()
    answer = {}

    def run():
        with client(home, timeout=120) as c:
            answer["message"] = c.request(
                {"id": "killed-1", "session": "killed", "text": "slow bump counter",
                 "persona": "ROBIN"},
                on_progress=lambda m: held.set() if m["stage"] == "thinking" else None)

    thread = threading.Thread(target=run)
    thread.start()
    assert held.wait(60), "the ROBIN worker never started the request"
    (robin,) = [p for p in supervise.programs(home) if p["name"].startswith("worker-ROBIN")]
    os.kill(robin["pid"], signal.SIGKILL)
    thread.join(120)
    assert answer["message"]["reply"].startswith("The bump of counter is ")
    assert ledger_ids(image, "killed-") == ["killed-1"]
    assert counter(image) == before + 1
    wait_until(lambda: all_running(home), timeout=60)


@pytest.mark.cluster
def test_a_method_learned_through_brick_is_callable_through_robin(cluster):
    home, _env, _image = cluster
    with client(home) as c:
        learned = c.request({"id": "learn-1", "intent": "send", "persona": "BRICK",
                             "target": "rect", "selector": "perimeter"})
        assert learned["result"] == 14 and learned["learned"][0]["selector"] == "perimeter"
        called = c.request({"id": "learn-2", "intent": "send", "persona": "ROBIN",
                            "target": "rect", "selector": "perimeter"})
        assert called["result"] == 14 and "learned" not in called
        # and a miss inside ROBIN's worker sends the mandate to BRICK's service
        notes = []
        chat = c.request({"id": "learn-3", "session": "learn", "text": "rect area please",
                          "persona": "ROBIN"}, on_progress=notes.append)
        assert chat["result"] == [12] and chat["learned"][0]["selector"] == "area"
        stages = [(n["stage"], n["persona"]) for n in notes]
        assert ("writing-method", "BRICK") in stages and ("trial", "ROBIN") in stages
        assert ("writing-method", "ROBIN") not in stages
        assert chat["learned"][0]["source"].startswith("def area(self):")


@pytest.mark.cluster
def test_routing_follows_the_meta_prompt_in_the_image_and_new_personas(cluster):
    home, env, image = cluster
    with client(home) as c:
        assert c.request({"id": "route-1", "session": "route-1", "text": "hi"})["persona"] \
            == "ROBIN"
        with image.transaction(note="prefer BABS") as lobby:
            lobby.orchestrator.meta_prompt += "\nPREFER-BABS"
        assert c.request({"id": "route-2", "session": "route-2", "text": "hi"})["persona"] \
            == "BABS"
        with image.transaction(note="a fifth persona") as lobby:
            lobby.orchestrator.meta_prompt = lobby.orchestrator.meta_prompt.replace(
                "\nPREFER-BABS", "")
            lobby.personas.GORDON = lobby.persona.clone(
                name="GORDON", role="commissioner", codex="You are GORDON.",
                model_id="steward-smollm2")
        worker = subprocess.Popen([sys.executable, "-m", "kernel.worker", "--home",
                                   str(home.path), "--persona", "GORDON"], cwd=REPO,
                                  env=dict(os.environ, **env), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            answer = c.request({"id": "route-3", "session": "route-3",
                                "text": "a question for gordon"})
            assert answer["persona"] == "GORDON" and answer["reply"] == "hello"
        finally:
            worker.terminate()
            worker.wait(30)


@pytest.mark.cluster
def test_bad_input_gets_clear_errors_and_every_process_stays_up(cluster):
    home, _env, _image = cluster
    endpoints = home.orchestrator_endpoints
    context = zmq.Context.instance()
    raw = context.socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(endpoints["frontend"])
    cases = [[b"garbage"], [protocol.CLIENT, b"\xff\xfe not utf-8"],
             [protocol.CLIENT, b"{not json"], [protocol.CLIENT, b"[1, 2]"],
             [protocol.CLIENT, b'{"id": 5}'], [protocol.CLIENT, b'{"id": "x", "intent": "fly"}'],
             [protocol.CLIENT, b'{"id": "x", "text": "' + b"a" * (protocol.MAX_PAYLOAD + 1)
              + b'"}'], [protocol.CLIENT, b"{}", b"extra"]]
    for frames in cases:
        raw.send_multipart(frames)
        assert raw.poll(10000), f"no answer to {frames[:1]}"
        reply = json.loads(raw.recv_multipart()[1])
        assert reply["type"] == "error" and reply["error"].startswith("malformed request")
    backend = context.socket(zmq.DEALER)
    backend.setsockopt(zmq.LINGER, 0)
    backend.connect(endpoints["backend"])
    for frames in ([b"junk"], [protocol.WORKER, b"\x99"], [protocol.WORKER, protocol.REPLY,
                                                          b"x", b"{"]):
        backend.send_multipart(frames)
    raw.close()
    backend.close()
    with client(home) as c:
        with pytest.raises(RequestFailed, match="unknown persona 'NOBODY'"):
            c.request({"id": "bad-1", "text": "hi", "persona": "NOBODY"})
        assert c.request({"id": "bad-2", "session": "bad", "text": "hi",
                          "persona": "ROBIN"})["reply"] == "hello"
    assert all_running(home)


@pytest.mark.cluster
def test_status_reports_programs_workers_and_ledger(cluster):
    home, _env, image = cluster
    status = json.loads(run_batos("status", "--json", home=home.path, check=True).stdout)
    names = {p["name"].split(":")[0] for p in status["programs"]}
    assert {"zeo", "orchestrator", "worker-ALFRED", "worker-BRICK", "worker-ROBIN",
            "worker-BABS"} <= names
    assert all(status["workers"][name] >= 1 for name in ("ALFRED", "BRICK", "ROBIN", "BABS"))
    assert status["ledger"] == image.run(lambda lobby: lobby.ledger.size())


@pytest.mark.cluster
def test_workers_register_again_after_the_orchestrator_restarts(cluster):
    home, _env, _image = cluster
    with supervise.supervisor(home) as server:
        server.stopProcess("orchestrator")
        server.startProcess("orchestrator")
    wait_until(lambda: (supervise.live_services(home, timeout=1.0) or {}).get("ROBIN"),
               timeout=60)
    with client(home) as c:
        assert c.request({"id": "reborn-1", "session": "reborn", "text": "hi",
                          "persona": "ROBIN"})["reply"] == "hello"


@pytest.mark.cluster
def test_a_second_instance_runs_side_by_side(cluster, tmp_path):
    home, env, _image = cluster
    other = Home.init(tmp_path / "other")
    assert other.zeo_address != home.zeo_address
    assert set(other.orchestrator_endpoints.values()).isdisjoint(
        home.orchestrator_endpoints.values())
    assert run_batos("up", home=other.path, env=env, timeout=300).returncode == 0
    try:
        with client(other) as c:
            assert c.request({"id": "other-1", "session": "o", "text": "hi",
                              "persona": "ROBIN"})["reply"] == "hello"
        assert all_running(home) and all_running(other)
    finally:
        assert run_batos("down", home=other.path).returncode == 0
    assert not supervise.is_up(other) and supervise.is_up(home)
    # a stopped cluster is one line within seconds (the 60 s here is only a safety net)
    line = one_line_error(run_batos("ask", "hi", home=other.path, timeout=60))
    frontend = other.orchestrator_endpoints["frontend"]
    assert line == (f"batos: no answer from the orchestrator at {frontend} within 3 s; is "
                    f"the cluster of {other.path} up? (batos status --home {other.path})")



SEGFAULT = {"PYTHONPATH": str(REPO / "tests" / "segfault")}


@pytest.mark.cluster
def test_a_worker_that_crashes_on_every_request_fails_it_with_its_last_words(tmp_path):
    env = {**SEGFAULT, "BATOS_TEST_SEGFAULT": "persona:BRICK"}  # a real SIGSEGV in the model
    with running_cluster(tmp_path, RULES, env=env) as (home, env, _image):
        with client(home, timeout=120) as c:
            notes = []
            with pytest.raises(RequestFailed) as failed:
                c.request({"id": "crash-1", "session": "crash", "text": "hi",
                           "persona": "BRICK"}, on_progress=notes.append)
            assert [(n["persona"], n["delivery"]) for n in notes
                    if n["stage"] == "redelivered"] == [("BRICK", 2), ("BRICK", 3)]
            error = str(failed.value)
            assert error.startswith("request lost: 3 BRICK workers died while handling it")
            assert "last log line: worker-BRICK-0: Fatal Python error: Segmentation fault" \
                in error
            assert not failed.value.transient
            # the other personas serve on
            assert c.request({"id": "crash-2", "session": "crash", "text": "hi",
                              "persona": "ROBIN"})["reply"] == "hello"
        wait_until(lambda: all_running(home), timeout=60)
        status = json.loads(run_batos("status", "--json", home=home.path, check=True).stdout)
        brick = next(p for p in status["programs"] if p["name"].startswith("worker-BRICK"))
        assert brick["restarts"] >= 3 and "SIGSEGV" in brick["last_exit"]
        shown = run_batos("status", home=home.path, check=True).stdout
        assert "restarted" in shown and "last exit: terminated by SIGSEGV" in shown
        assert all_running(home)


@pytest.mark.cluster
def test_up_that_fails_stops_what_it_started_and_says_why(tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES))
    home = Home.init(tmp_path / "home")
    env = {**SEGFAULT, "BATOS_TEST_SEGFAULT": "start:BABS", "BATOS_LLM": f"scripted:{rules}"}
    result = run_batos("up", home=home.path, env=env, timeout=300)
    assert result.returncode == 1
    assert "programs failed to start: worker-BABS:worker-BABS-0: " in result.stderr
    assert "Fatal Python error: Segmentation fault" in result.stderr
    assert not supervise.is_up(home)
    pid = int((home.run_dir / "supervisord.pid").read_text()) \
        if (home.run_dir / "supervisord.pid").exists() else None
    assert pid is None or not os.path.exists(f"/proc/{pid}")


# -- at real-model speed (issue 19) -----------------------------------------------------------

@pytest.mark.cluster
def test_a_request_that_takes_a_minute_is_answered_once_and_no_worker_is_dropped(cluster,
                                                                                  busy_cpu):
    home, _env, image = cluster
    before, drops = counter(image), logged(home, "dropping it", "orchestrator")
    notes = []
    with client(home, timeout=300) as c:  # ALFRED routes it to ROBIN
        answer = c.request({"id": "minute-1", "session": "minute",
                            "text": "bump counter within a minute"},
                           on_progress=notes.append)
    assert answer["reply"] == f"The bump of counter is {before + 1}." \
        and answer["result"] == [before + 1]
    assert len(notes) > 30  # tracked every second of silence …
    assert not [n for n in notes if n["stage"] == "redelivered"]
    assert logged(home, r"request minute-1 to a ROBIN worker", "orchestrator") == 1  # … sent once
    assert logged(home, r"took request minute-1 ") == 1  # run by one worker, once
    assert logged(home, rf"completed for ROBIN by rule "
                        rf"{rule_number('bump counter within a minute')} ") == 1
    assert logged(home, "dropping it", "orchestrator") == drops  # no worker was dropped
    assert ledger_ids(image, "minute-") == ["minute-1"] and counter(image) == before + 1


@pytest.mark.cluster
def test_a_cluster_that_dies_mid_request_is_reported_in_seconds(cluster):
    home, env, image = cluster
    before = counter(image)
    asking = subprocess.Popen(BATOS + ["ask", "slow bump counter", "--persona", "ROBIN", "--id",
                                       "dying-1", "--home", str(home.path)], cwd=REPO,
                              env=dict(os.environ, **env), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: logged(home, "took request dying-1 "), timeout=60)
        with supervise.supervisor(home) as server:
            server.stopProcess("orchestrator")
        _out, err = asking.communicate(timeout=60)
    finally:
        asking.kill()
        with supervise.supervisor(home) as server:
            server.startProcess("orchestrator")
    assert asking.returncode == 1
    assert err.startswith(f"batos: no answer from the orchestrator at "
                          f"{home.orchestrator_endpoints['frontend']} for ")
    assert "(request dying-1); is the cluster of" in err
    wait_until(lambda: (supervise.live_services(home, timeout=1.0) or {}).get("ROBIN"),
               timeout=60)
    wait_until(lambda: counter(image) == before + 1, timeout=60)  # the worker finished it


def rule_number(text):
    """The number of the rule that chooses the plan for `text` (the scripted model logs it)."""
    return next(n for n, rule in enumerate(RULES) if "persona" not in rule and re.search(
        rule["match"], f"choose plan\n[reply] -\n\n{text}"))
