"""Benchmark: a request through the whole cluster vs the raw parts it is made of, same run.

BAT OS: client → orchestrator → ROBIN worker (scripted model answering one `set` command) →
commit with the ledger entry and the conversation turns → reply; one request at a time, then
8 in flight (4 ROBIN workers). Raw: a DEALER → ROUTER/ROUTER broker → DEALER worker echo over
TCP loopback (Python processes, as the orchestrator is), and a raw ZEO commit of one small
object. Ends with one JSON line of goals (issue 7: p50 ≤ 1.5× raw ZMQ + raw ZEO; throughput ≥
60% of raw ZEO commits/s).
"""
import contextlib
import json
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import persistent.mapping
import transaction
import zmq

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from kernel.client import Client  # noqa: E402
from kernel.home import Home, free_port  # noqa: E402
from kernel.image import connect  # noqa: E402

RULES = [{"match": "choose plan", "reply": "set box n"}]
SET_TEXT = "set the n of box to 1"  # the plan the scripted model chooses: one `set` command


# -- raw ZeroMQ ----------------------------------------------------------------------------------

def raw_broker(front, back):
    context = zmq.Context()
    frontend, backend = context.socket(zmq.ROUTER), context.socket(zmq.ROUTER)
    frontend.bind(front)
    backend.bind(back)
    worker = backend.recv_multipart()[0]  # the worker says hello first
    poller = zmq.Poller()
    poller.register(frontend, zmq.POLLIN)
    poller.register(backend, zmq.POLLIN)
    while True:
        ready = dict(poller.poll())
        if frontend in ready:
            client, body = frontend.recv_multipart()
            backend.send_multipart([worker, client, body])
        if backend in ready:
            _worker, client, body = backend.recv_multipart()
            frontend.send_multipart([client, body])


def raw_worker(back):
    socket = zmq.Context().socket(zmq.DEALER)
    socket.connect(back)
    socket.send_multipart([b"hello"])
    while True:
        client, body = socket.recv_multipart()
        socket.send_multipart([client, body])


def raw_zmq():
    front, back = (f"tcp://127.0.0.1:{free_port()}" for _ in range(2))
    spawn = multiprocessing.get_context("spawn")
    processes = [spawn.Process(target=raw_broker, args=(front, back), daemon=True),
                 spawn.Process(target=raw_worker, args=(back,), daemon=True)]
    for process in processes:
        process.start()
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.connect(front)
    socket.send(b"warm")
    socket.recv()
    latencies = []
    for _ in range(2000):
        started = time.perf_counter()
        socket.send(b"x" * 100)
        socket.recv()
        latencies.append(time.perf_counter() - started)
    started, total, outstanding = time.perf_counter(), 4000, 0
    sent = received = 0
    while received < total:
        while outstanding < 8 and sent < total:
            socket.send(b"x" * 100)
            sent, outstanding = sent + 1, outstanding + 1
        socket.recv()
        received, outstanding = received + 1, outstanding - 1
    throughput = total / (time.perf_counter() - started)
    socket.close(0)
    for process in processes:
        process.terminate()
    return statistics.median(latencies), throughput


# -- raw ZEO -------------------------------------------------------------------------------------

def raw_zeo(address):
    import ZEO
    db = ZEO.DB(address, server_sync=True)
    manager = transaction.TransactionManager()
    connection = db.open(transaction_manager=manager)
    connection.root()["bench"] = box = persistent.mapping.PersistentMapping()
    manager.commit()
    latencies = []
    for n in range(500):
        started = time.perf_counter()
        box["n"] = n
        manager.commit()
        latencies.append(time.perf_counter() - started)
    connection.close()
    db.close()
    return statistics.median(latencies), 1 / statistics.mean(latencies)


# -- BAT OS --------------------------------------------------------------------------------------

@contextlib.contextmanager
def cluster(directory, rules, workers=None):
    """A fresh home under `directory` with its whole cluster up under supervisord (`batos up`),
    every model scripted by `rules`, `workers` overriding persona -> worker processes; yields
    the home and brings the cluster down afterwards."""
    path = os.path.join(directory, "rules.json")
    with open(path, "w") as handle:
        json.dump(rules, handle)
    home = Home.init(os.path.join(directory, "home"))
    config = home.path / "batos.toml"
    text = config.read_text()
    for persona, count in (workers or {}).items():
        text = re.sub(rf"(?m)^{persona} = \d+$", f"{persona} = {count}", text)
    config.write_text(text)
    home = Home.open(home.path)
    env = dict(os.environ, BATOS_LLM=f"scripted:{path}")
    cli = [sys.executable, "-m", "kernel.cli"]
    subprocess.run(cli + ["up", "--home", str(home.path)], check=True, env=env,
                   capture_output=True)
    try:
        yield home
    finally:
        subprocess.run(cli + ["down", "--home", str(home.path)], capture_output=True,
                       check=False)


def batos(home):
    frontend = home.orchestrator_endpoints["frontend"]
    with Client(frontend) as client:
        for n in range(20):
            client.request({"id": f"warm-{n}", "session": "warm", "text": SET_TEXT,
                            "persona": "ROBIN"})
        latencies = []
        for n in range(300):
            started = time.perf_counter()
            client.request({"id": f"one-{n}", "session": f"one-{n}", "text": SET_TEXT,
                            "persona": "ROBIN"})
            latencies.append(time.perf_counter() - started)

    def run(k, count):
        with Client(frontend) as client:
            for n in range(count):
                client.request({"id": f"par-{k}-{n}", "session": f"par-{k}-{n}", "text": SET_TEXT,
                                "persona": "ROBIN"})

    threads = [threading.Thread(target=run, args=(k, 60)) for k in range(8)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statistics.median(latencies), 480 / (time.perf_counter() - started)


def main():
    with tempfile.TemporaryDirectory() as directory, \
            cluster(directory, RULES, {"ROBIN": 4}) as home:
        image = connect(home.zeo_address, personas=home.personas)
        with image.transaction() as lobby:
            lobby.box = lobby.traits.clone(n=0)
        image.close()
        ours_p50, ours_rps = batos(home)
        zeo_p50, zeo_cps = raw_zeo(home.zeo_address)
    zmq_p50, zmq_rps = raw_zmq()
    raw_sum = zmq_p50 + zeo_p50
    print(f"raw ZMQ 3-hop: p50 {zmq_p50 * 1e6:.0f} us, {zmq_rps:.0f} round trips/s (8 in flight)")
    print(f"raw ZEO commit: p50 {zeo_p50 * 1e3:.2f} ms, {zeo_cps:.0f} commits/s")
    print(f"BAT OS request (route, worker, commands + ledger commit): p50 {ours_p50 * 1e3:.2f} ms"
          f" ({ours_p50 / raw_sum:.1f}x raw sum), {ours_rps:.0f} requests/s with 8 in flight "
          f"({ours_rps / zeo_cps:.0%} of raw ZEO commits/s)")
    goals = [("p50 vs raw ZMQ + raw ZEO", ours_p50 / raw_sum, 1.5, "<="),
             ("throughput vs raw ZEO commits/s", ours_rps / zeo_cps, 0.6, ">=")]
    print(json.dumps({"goals": [{"name": n, "ratio": round(r, 2), "target": t,
                                 "met": r <= t if op == "<=" else r >= t}
                                for n, r, t, op in goals],
                      "p50_ms": round(ours_p50 * 1e3, 2), "requests_per_s": round(ours_rps, 1),
                      "raw_zmq_p50_us": round(zmq_p50 * 1e6), "raw_zeo_p50_ms":
                      round(zeo_p50 * 1e3, 2), "raw_zeo_commits_per_s": round(zeo_cps)}))


if __name__ == "__main__":
    main()
