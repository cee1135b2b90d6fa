"""Chaos run: the cluster keeps every request exactly once while its processes are killed.

A home's cluster runs under supervisord with the scripted model. Clients (threads, one socket
each) send non-idempotent requests: each is a chat that ALFRED routes to a persona, whose model
answers with one command, `tally.tally(client, n)` — a learned method (BRICK writes it on the
first request) that increments one shared counter and appends `n` to the client's own list.
Meanwhile a schedule drawn from `--seed` kill -9s persona workers, the orchestrator and the
ZEO server; supervisord restarts them. Clients resend a request (same id) when no answer
comes or the answer says retrying can help — the ledger makes every resend harmless.

Afterwards: every request answered, exactly one ledger entry per request, the counter and every
list exact (no effect lost or doubled), `fstest` + `fsrefs` clean, every program RUNNING with a
live worker per persona. The schedule depends only on the seed, so any seed can be replayed.

    python bench/chaos.py --seed 7 [--requests 600] [--clients 3]

Ends with one JSON line: {"seed", "requests", "answered_once", "counters_exact", "check_clean",
"all_running", ...figures}; exits non-zero when any of those fails.
"""
import argparse
import collections
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
import xmlrpc.client

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from kernel import supervise  # noqa: E402
from kernel.client import Client, NoAnswer, RequestFailed  # noqa: E402
from kernel.home import Home  # noqa: E402
from kernel.image import connect  # noqa: E402
from zeo_server import maintenance  # noqa: E402

TALLY = ("def tally(self, who, n):\n    self.count = self.count + 1\n"
         "    self.lists[who] = self.lists[who] + [n]\n    self._p_changed = True\n"
         "    return self.count\n")
PERSONA_OF_CLIENT = ["ROBIN", "BABS", "ALFRED", "BRICK"]
WARM_UP = "warmup"


def rules(clients):
    """The scripted model: ALFRED routes each client's `tally <client> <n>` sends to a persona
    of its own; BRICK writes `tally`."""
    routes = [{"persona": "ALFRED", "match": rf"choose persona[\s\S]*\n\ntally {client} ",
               "reply": PERSONA_OF_CLIENT[i % len(PERSONA_OF_CLIENT)]}
              for i, client in enumerate(clients + [WARM_UP])]
    return routes + [{"persona": "BRICK", "match": "Write the method tally", "reply": TALLY}]


def tally(client, n, **fields):
    """The request counting `n` for `client`: a send routed by its text."""
    return {"intent": "send", "target": "tally", "selector": "tally", "args": [client, n],
            "text": f"tally {client} {n}", **fields}


def schedule(seed, pauses=(0.3, 2.5), count=2000):
    """The kills, from the seed alone: (pause in seconds, program kind, pick) triples. The
    first three kill one program of each kind, in the seed's order, so that every run meets
    them all; then kinds come at random, workers twice as often."""
    rng = random.Random(seed)
    first = ["worker", "orchestrator", "zeo"]
    rng.shuffle(first)
    kinds = first + [rng.choice(["worker"] * 2 + ["orchestrator", "zeo"]) for _ in range(count)]
    return [(rng.uniform(*pauses), kind, rng.random()) for kind in kinds]


class Chaos(threading.Thread):
    """Kills programs of the cluster by the seed's schedule until told to stop."""

    def __init__(self, home, seed, pauses):
        super().__init__(name="chaos", daemon=True)
        self.home = home
        self.plan = schedule(seed, pauses)
        self.stopped = threading.Event()
        self.kills = collections.Counter()
        self.skipped = 0
        self.error = None  # what stopped the kills early, if anything did

    def run(self):
        try:
            for pause, kind, pick in self.plan:
                if self.stopped.wait(pause):
                    return
                self.kill(kind, pick)
        except Exception as exc:  # reported in the figures, not lost with the thread
            self.error = f"{type(exc).__name__}: {exc}"
            raise

    def kill(self, kind, pick):
        """kill -9 one RUNNING program of `kind` (`pick` chooses among the workers)."""
        try:
            running = [p for p in supervise.programs(self.home) if p["state"] == "RUNNING"
                       and p["name"].split(":")[0].startswith(kind)]
        except (OSError, xmlrpc.client.Error) as exc:  # supervisord busy restarting one
            print(f"  chaos: supervisord did not answer ({exc}); skipped a kill",
                  file=sys.stderr)
            running = []
        if not running:
            self.skipped += 1  # that kind is restarting right now
            return
        target = sorted(running, key=lambda p: p["name"])[int(pick * len(running))]
        try:
            os.kill(target["pid"], signal.SIGKILL)
        except ProcessLookupError:
            self.skipped += 1
            return
        self.kills[target["name"].split(":")[0]] += 1
        print(f"  chaos: killed {target['name']} (pid {target['pid']})", file=sys.stderr)


class Sender(threading.Thread):
    """One client: `count` requests in order, each resent (same id) until it is answered."""

    def __init__(self, endpoint, seed, name, count, timeout, progress):
        super().__init__(name=f"client-{name}", daemon=True)
        self.endpoint, self.seed, self.client_name = endpoint, seed, name
        self.count, self.timeout, self.progress = count, timeout, progress
        self.answered, self.failed = {}, {}
        self.resends = 0

    def run(self):
        client = Client(self.endpoint, timeout=self.timeout)
        try:
            for n in range(self.count):
                self.send(client, n)
                self.progress()
        finally:
            client.close()

    def send(self, client, n):
        request = tally(self.client_name, n, id=request_id(self.seed, self.client_name, n),
                        session=f"chaos-{self.client_name}")
        for _ in range(200):
            try:
                self.answered[request["id"]] = client.request(request)
                return
            except NoAnswer:
                self.resends += 1
            except RequestFailed as exc:
                if not exc.transient:
                    self.failed[request["id"]] = str(exc)
                    return
                self.resends += 1
                time.sleep(0.2)  # a transient refusal: give the restarting program a moment
        self.failed[request["id"]] = "still unanswered after 200 sends"


def request_id(seed, client, n):
    """The id of a client's n-th request in a run."""
    return f"chaos-{seed}-{client}-{n}"


def prepare(home, clients):
    """The tally object, and its method learned once before the chaos starts."""
    image = connect(home.zeo_address, personas=home.personas)
    try:
        with image.transaction(note="chaos: the tally object") as lobby:
            lobby.tally = lobby.traits.clone(count=0, lists={c: [] for c in clients + [WARM_UP]})
    finally:
        image.close()
    with Client(home.orchestrator_endpoints["frontend"], timeout=120) as client:
        client.request(tally(WARM_UP, 0, session="chaos-warmup"))


def verify(home, seed, clients, per_client, senders):
    """What the image says after the run, against what the clients sent."""
    expected = {request_id(seed, c, n) for c in clients for n in range(per_client)}
    answered = {rid for s in senders for rid in s.answered}
    image = connect(home.zeo_address, personas=home.personas)
    try:
        ledger_ids, count, lists = image.run(lambda lobby: (
            {rid for rid in lobby.ledger.entries.keys() if rid.startswith(f"chaos-{seed}-")},
            lobby.tally.count, dict(lobby.tally.lists)))
    finally:
        image.close()
    lists_exact = all(lists[c] == list(range(per_client)) for c in clients)
    return {
        "answered": len(answered & expected),
        "answered_once": len(answered & ledger_ids),
        "ledger_entries": len(ledger_ids),
        "counter": count,
        "counters_exact": count == len(expected) + 1 and lists_exact
                          and ledger_ids == expected,
    }


def wait_all_running(home, timeout=180.0):
    """True once every program runs and every persona has a live worker again. A program
    just killed shows EXITED until supervisord restarts it, so a failed state ends the wait
    only if it lasts until the timeout."""
    deadline, problem = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            problem = supervise._not_ready(home, set(home.worker_counts))
            if problem is None:
                return True
        except supervise.ClusterError as exc:
            problem = str(exc)
        time.sleep(0.5)  # polling supervisord and the orchestrator
    print(f"  not all running after {timeout:g} s: {problem}", file=sys.stderr)
    return False


def run(base, seed, requests, client_count, timeout, pauses):
    """One chaos run in a fresh home under `base`; returns the figures."""
    clients = [f"c{i}" for i in range(client_count)]
    per_client = requests // client_count
    rules_path = os.path.join(base, "rules.json")
    with open(rules_path, "w") as out:
        json.dump(rules(clients), out)
    os.environ["BATOS_LLM"] = f"scripted:{rules_path}"
    home = Home.init(os.path.join(base, "home"))
    print(f"chaos seed {seed}: {per_client * client_count} requests from {client_count} "
          f"clients; home {home.path}", file=sys.stderr)
    with supervise.running(home, progress=lambda line: print(line, file=sys.stderr)):
        prepare(home, clients)
        done = collections.Counter()
        lock = threading.Lock()

        def progress():
            with lock:
                done["n"] += 1
                if done["n"] % 50 == 0:
                    print(f"  {done['n']}/{per_client * client_count} answered", file=sys.stderr)

        endpoint = home.orchestrator_endpoints["frontend"]
        senders = [Sender(endpoint, seed, c, per_client, timeout, progress) for c in clients]
        chaos = Chaos(home, seed, pauses)
        started = time.monotonic()
        chaos.start()
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        seconds = time.monotonic() - started
        chaos.stopped.set()
        chaos.join()
        all_running = wait_all_running(home)
        figures = verify(home, seed, clients, per_client, senders)
        report = maintenance.check(home.image_path)
    return {"seed": seed, "requests": per_client * client_count,
            "answered_once": figures["answered_once"],
            "counters_exact": figures["counters_exact"], "check_clean": report.ok,
            "all_running": all_running, "answered": figures["answered"],
            "ledger_entries": figures["ledger_entries"], "counter": figures["counter"],
            "failed": {rid: why for s in senders for rid, why in s.failed.items()},
            "problems": list(report.problems), "kills": dict(chaos.kills),
            "kills_skipped": chaos.skipped, "chaos_error": chaos.error,
            "resends": sum(s.resends for s in senders),
            "seconds": round(seconds, 1),
            "requests_per_s": round(per_client * client_count / seconds, 1)}


def main(argv=None):
    """Parse the options, run once, print the figures and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds without an answer before a request is sent again")
    parser.add_argument("--pauses", type=float, nargs=2, default=(0.3, 2.5),
                        metavar=("MIN", "MAX"), help="seconds between two kills (uniform)")
    args = parser.parse_args(argv)
    supervise.terminate_as_interrupt()  # a SIGTERM brings the run's cluster down too
    with tempfile.TemporaryDirectory(prefix="batos-chaos-") as base:
        result = run(base, args.seed, args.requests, args.clients, args.timeout,
                     tuple(args.pauses))
    ok = (result["answered_once"] == result["requests"] and result["counters_exact"]
          and result["check_clean"] and result["all_running"])
    print(f"seed {result['seed']}: {result['answered_once']}/{result['requests']} answered "
          f"exactly once in {result['seconds']} s ({result['requests_per_s']} req/s), "
          f"counter {result['counter']}, kills {result['kills']} "
          f"({result['kills_skipped']} skipped: already restarting), {result['resends']} "
          f"resends; counters exact: {result['counters_exact']}; check clean: "
          f"{result['check_clean']}; all running: {result['all_running']}")
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
