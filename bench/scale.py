"""Benchmark: a worker on an image of 1,000,000 objects vs the same worker on an empty image.

Two homes, same run. The big one's `live_image.fs` is written directly with ZODB FileStorage
before its ZEO server starts (genesis first, then `--batch` UvmObjects per transaction, one
LOBTree chunk `lobby.big.cNNNN` per transaction). For each home: a real ZEO server, the real
orchestrator and ONE real `batos-worker` for ROBIN with the scripted model (a chat answered by
one `set` command), started `--repeat` times: cold start (process start → registered with the
orchestrator) and the first request (chat → `set box.n` committed with its ledger entry and
turns), medians. Then, on the big image, the worker's peak RSS (VmHWM) after its first request
and after a walk that inspects every chunk (rendering a chunk counts its LOBTree, loading
every bucket: the whole image's buckets over the walk), once with a small and once with a
large `[zeo] cache_objects`. Ends with one JSON line of goals (issue 7: cold start and first
request on the big image ≤ 1.5× the empty image's; peak RSS: report, bounded by the cache).
`cache_objects` counts objects, not bytes: a cached BTree bucket keeps its ~30 values alive
as ghosts, so the walk's peak grows with the setting. Takes about 4 minutes at 1,000,000.
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import transaction
import ZODB
from BTrees.LOBTree import LOBTree
from ZODB.FileStorage import FileStorage

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from kernel import genesis  # noqa: E402
from kernel.client import Client  # noqa: E402
from kernel.home import Home  # noqa: E402
from kernel.uvm import UvmObject  # noqa: E402
from zeo_server import launcher  # noqa: E402

PERSONA = "ROBIN"
RULES = [{"match": "choose plan", "reply": "set box n"}]
SET_TEXT = "set the n of box to 1"  # the plan the scripted model chooses: one `set` command
BIN = os.path.dirname(sys.executable)


def say(text):
    """Progress on stderr (figures go to stdout)."""
    print(text, file=sys.stderr, flush=True)


# -- building the big image ----------------------------------------------------------------------

def chunk_name(index):
    """The lobby path step of the `index`-th chunk under `lobby.big`."""
    return f"c{index:04d}"


def build(home, objects, batch):
    """Write genesis, `lobby.box` and `objects` UvmObjects under `lobby.big` into the home's
    FileStorage (no server running); return the number of chunks."""
    storage = FileStorage(str(home.image_path))
    db = ZODB.DB(storage, cache_size=batch)
    try:
        genesis.ensure_awake(db, home.personas)
        manager = transaction.TransactionManager()
        connection = db.open(transaction_manager=manager)
        lobby = genesis.lobby_of(connection)
        traits = lobby.traits
        lobby.box = UvmObject(parents=(traits,), label="box", n=0)
        if not objects:
            manager.get().note("bench: the box")
            manager.commit()
            return 0
        lobby.big = big = UvmObject(parents=(traits,), label="big")
        chunks, started = 0, time.perf_counter()
        for first in range(0, objects, batch):
            name = chunk_name(chunks)
            items = LOBTree()
            for n in range(first, min(objects, first + batch)):
                items[n] = UvmObject(parents=(traits,), n=n)
            setattr(big, name, UvmObject(parents=(traits,), label=f"big.{name}", items=items))
            manager.get().note(f"bench: big.{name}")
            manager.commit()
            connection.cacheMinimize()
            chunks += 1
            done = min(objects, first + batch)
            rate = done / (time.perf_counter() - started)
            say(f"  built {done:,} of {objects:,} objects ({rate:,.0f}/s)")
        connection.close()
        return chunks
    finally:
        db.close()  # FileStorage writes its .index, so the server starts without a scan


def make_home(directory, name, objects, batch):
    """A fresh home holding `objects` objects; `(home, chunks, build seconds)`."""
    home = Home.init(os.path.join(directory, name))
    started = time.perf_counter()
    chunks = build(home, objects, batch)
    return home, chunks, time.perf_counter() - started


def set_cache(home, cache_objects, client_cache_mib):
    """Rewrite the home's `[zeo]` cache settings; workers started afterwards use them."""
    config = home.path / "batos.toml"
    text = config.read_text()
    for key, value in (("cache_objects", cache_objects), ("client_cache_mib", client_cache_mib)):
        text, count = re.subn(rf"(?m)^{key}\s*=.*$", f"{key} = {value}", text)
        if count != 1:
            raise SystemExit(f"{config} has no [zeo] {key} setting to change")
    config.write_text(text)


# -- one home's processes ------------------------------------------------------------------------

def memory_of(pid):
    """`(VmHWM, VmRSS)` of a process in MiB, from /proc."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value
    return tuple(int(fields[key].split()[0]) / 1024 for key in ("VmHWM", "VmRSS"))


def stop_process(process, timeout=30.0):
    """SIGTERM a process we started and wait; SIGKILL it when it does not go in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Cluster:
    """A home's ZEO server and orchestrator, and a client to start and time one worker with."""

    def __init__(self, home, env):
        self.home, self.env = home, env
        started = time.perf_counter()
        _address, self.stop_zeo, self.zeo = launcher.start(home, timeout=300.0)
        self.zeo_start = time.perf_counter() - started
        self.orchestrator = self.client = None
        try:
            self.orchestrator = self.spawn("batos-orchestrator", "orchestrator")
            self.client = Client(home.orchestrator_endpoints["frontend"], timeout=120.0)
            self.live_workers()  # the orchestrator answers: it serves
        except BaseException:
            self.close()
            raise

    def spawn(self, program, log_name, *args):
        """Start one of the project's programs for this home, logging into the home."""
        with open(self.home.log_dir / f"{log_name}.log", "ab") as log_file:
            return subprocess.Popen([os.path.join(BIN, program), "--home", str(self.home.path),
                                     *args], env=self.env, stdout=log_file,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def live_workers(self):
        """How many workers serve the persona, as the orchestrator sees it now."""
        answer = self.client.request({"id": f"ping-{time.monotonic_ns()}", "intent": "ping"})
        return answer["services"].get(PERSONA, 0)

    def wait_for_workers(self, count, timeout=120.0):
        """Poll the orchestrator until `count` workers serve the persona."""
        deadline = time.monotonic() + timeout
        while self.live_workers() != count:
            if time.monotonic() > deadline:
                raise SystemExit(f"{PERSONA} did not reach {count} workers in {timeout:g} s")
            time.sleep(0.01)

    def start_worker(self):
        """Start one worker; `(process, seconds from process start to registered)`."""
        started = time.perf_counter()
        worker = self.spawn("batos-worker", "worker", "--persona", PERSONA)
        self.wait_for_workers(1)
        return worker, time.perf_counter() - started

    def stop_worker(self, worker):
        """Stop the worker and wait until the orchestrator has forgotten it."""
        stop_process(worker)
        self.wait_for_workers(0)

    def request(self, **payload):
        """One request to the persona; its latency in seconds."""
        payload = {"id": f"r-{time.monotonic_ns()}", "persona": PERSONA, **payload}
        started = time.perf_counter()
        self.client.request(payload)
        return time.perf_counter() - started

    def close(self):
        """Stop the orchestrator and the ZEO server."""
        if self.client is not None:
            self.client.close()
        if self.orchestrator is not None:
            stop_process(self.orchestrator)
        self.stop_zeo()


def cold_start(cluster, run):
    """A fresh worker: cold start, first request, the next request, VmHWM after them."""
    worker, cold = cluster.start_worker()
    first = cluster.request(text=SET_TEXT, session=f"cold-{run}")
    second = cluster.request(text=SET_TEXT, session=f"warm-{run}")
    peak, _rss = memory_of(worker.pid)
    cluster.stop_worker(worker)
    return {"cold": cold, "first": first, "second": second, "peak_mib": peak}


def cold_starts(clusters, repeat):
    """`repeat` rounds of one cold start per cluster, interleaved so that the host's noise
    falls on both alike; the median of each figure per cluster."""
    runs = {name: [] for name in clusters}
    for n in range(repeat):
        for name, cluster in clusters.items():
            run = cold_start(cluster, n)
            runs[name].append(run)
            say(f"  {name} run {n + 1}: cold start {run['cold'] * 1e3:.0f} ms, first request "
                f"{run['first'] * 1e3:.1f} ms, next {run['second'] * 1e3:.1f} ms, VmHWM "
                f"{run['peak_mib']:.1f} MiB")
    return {name: {key: statistics.median(run[key] for run in found) for key in found[0]}
            for name, found in runs.items()}


def walk(cluster, chunks):
    """One worker inspects every chunk; its VmHWM after the first request and after the walk."""
    worker, _cold = cluster.start_worker()
    try:
        cluster.request(text=SET_TEXT, session="walk")
        first_peak, _ = memory_of(worker.pid)
        started = time.perf_counter()
        for index in range(chunks):
            cluster.request(intent="inspect", target=f"big.{chunk_name(index)}")
        seconds = time.perf_counter() - started
        walked_peak, walked_rss = memory_of(worker.pid)
    finally:
        cluster.stop_worker(worker)
    return {"first_peak_mib": first_peak, "walk_peak_mib": walked_peak,
            "walk_rss_mib": walked_rss, "walk_s": seconds}


# -- the run -------------------------------------------------------------------------------------

def file_mib(path):
    """Size of a file in MiB."""
    return os.path.getsize(path) / 2 ** 20


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=1_000_000,
                        help="UvmObjects in the big image (default 1,000,000)")
    parser.add_argument("--batch", type=int, default=20_000,
                        help="objects per transaction and per chunk while building")
    parser.add_argument("--repeat", type=int, default=5, help="worker starts per image")
    parser.add_argument("--small-cache", type=int, default=1_000,
                        help="[zeo] cache_objects of the small-cache walk")
    parser.add_argument("--large-cache", type=int, default=1_000_000,
                        help="[zeo] cache_objects of the large-cache walk")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        rules = os.path.join(directory, "rules.json")
        with open(rules, "w") as handle:
            json.dump(RULES, handle)
        env = dict(os.environ, BATOS_LLM=f"scripted:{rules}")
        say("building the empty image")
        empty, _, _ = make_home(directory, "empty", 0, args.batch)
        say(f"building the big image ({args.objects:,} objects, {args.batch:,} per transaction)")
        big, chunks, build_s = make_home(directory, "big", args.objects, args.batch)
        figures = {"objects": args.objects, "build_s": round(build_s, 1),
                   "image_mib": round(file_mib(big.image_path), 1),
                   "empty_image_mib": round(file_mib(empty.image_path), 2)}
        default_cache = big.zeo_cache["cache_objects"]
        clusters = {}
        try:
            for name, home in (("empty", empty), ("big", big)):
                say(f"{name} image: starting its ZEO server and orchestrator")
                clusters[name] = Cluster(home, env)
            say(f"{args.repeat} cold starts of a worker on each image, interleaved")
            results = cold_starts(clusters, args.repeat)
            for name, cluster in clusters.items():
                results[name]["zeo_start"] = cluster.zeo_start
                results[name]["zeo_peak_mib"] = memory_of(cluster.zeo.pid)[0]
            for size, cache in (("small", args.small_cache), ("default", default_cache),
                                ("large", args.large_cache)):
                say(f"big image: a worker walks {chunks} chunks with cache_objects = {cache:,}")
                set_cache(big, cache, 20)
                results[f"walk_{size}"] = {"cache_objects": cache, **walk(clusters["big"],
                                                                          chunks)}
        finally:
            for cluster in clusters.values():
                cluster.close()
    report(figures, results)


def report(figures, results):
    """Print the figures and the goals line."""
    empty, big = results["empty"], results["big"]
    print(f"big image: {figures['objects']:,} objects, built in {figures['build_s']:.1f} s "
          f"({figures['objects'] / figures['build_s']:,.0f} objects/s), "
          f"live_image.fs {figures['image_mib']:.1f} MiB (empty: "
          f"{figures['empty_image_mib']:.2f} MiB)")
    print(f"ZEO server start: empty {empty['zeo_start']:.2f} s, big {big['zeo_start']:.2f} s; "
          f"server VmHWM empty {empty['zeo_peak_mib']:.0f} MiB, big "
          f"{big['zeo_peak_mib']:.0f} MiB (ZEO reads the oids of the last 100 transactions "
          f"at start; here they hold the whole image)")
    for label, key in (("worker cold start", "cold"), ("first request", "first"),
                       ("second request", "second")):
        print(f"{label} (median): empty {empty[key] * 1e3:.1f} ms, big {big[key] * 1e3:.1f} ms"
              f" ({big[key] / empty[key]:.2f}x)")
    print(f"worker VmHWM after the first request (median): empty {empty['peak_mib']:.1f} MiB, "
          f"big {big['peak_mib']:.1f} MiB")
    for size in ("small", "default", "large"):
        w = results[f"walk_{size}"]
        print(f"walk of every chunk, cache_objects = {w['cache_objects']:,}: {w['walk_s']:.1f} s;"
              f" worker VmHWM {w['first_peak_mib']:.1f} MiB after the first request, "
              f"{w['walk_peak_mib']:.1f} MiB after the walk (VmRSS {w['walk_rss_mib']:.1f} MiB)")
    goals = [("worker cold start, big vs empty image", big["cold"] / empty["cold"], 1.5),
             ("first request, big vs empty image", big["first"] / empty["first"], 1.5)]
    small, default, large = (results[f"walk_{size}"] for size in ("small", "default", "large"))
    print(json.dumps({
        "goals": [{"name": n, "ratio": round(r, 2), "target": t, "met": r <= t}
                  for n, r, t in goals],
        **figures,
        "cold_start_ms": {"empty": round(empty["cold"] * 1e3, 1),
                          "big": round(big["cold"] * 1e3, 1)},
        "first_request_ms": {"empty": round(empty["first"] * 1e3, 1),
                             "big": round(big["first"] * 1e3, 1)},
        "worker_peak_mib": {"empty": round(empty["peak_mib"], 1),
                            "big": round(big["peak_mib"], 1),
                            "walk_small_cache": round(small["walk_peak_mib"], 1),
                            "walk_default_cache": round(default["walk_peak_mib"], 1),
                            "walk_large_cache": round(large["walk_peak_mib"], 1)},
        "cache_objects": {"small": small["cache_objects"], "default": default["cache_objects"],
                          "large": large["cache_objects"]},
        "walk_s": round(default["walk_s"], 1),
        "zeo_start_s": {"empty": round(empty["zeo_start"], 2), "big": round(big["zeo_start"], 2)},
    }))


if __name__ == "__main__":
    main()
