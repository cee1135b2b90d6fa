"""Benchmark: three Synaptic Consoles × 10 requests each against a real cluster running the
real default model (SmolLM2-135M-Instruct through llama.cpp) on this machine's cores.

First the heartbeat path: a process runs one grammar-constrained chat completion of that model
in a thread while its main thread wakes every 10 ms; how late it wakes says whether a worker
can heartbeat during a model call (llama-cpp-python releases the GIL in its ctypes calls).

Then a fresh home under supervisord (ZEO, orchestrator, one worker per persona, the models of
`conf/batos.toml`) and three consoles (`console.chat_client.Console`, the console's own code
minus the terminal) that each send `--requests` chat lines one after another, all three at
once; ALFRED routes each line. From the workers' logs (each request taken and answered, and
each model completion, is a line) it counts, per console request, how often a worker took it
and how often the model ran for its routing and for its answer; from the orchestrator's log,
how often each was dispatched, re-dispatched, and every worker dropped; from the consoles,
latency (line sent → reply) and errors. Goals (issue 19): 1.0 model call per request and
stage, 1.0 dispatch per request, 0 worker drops. Ends with one JSON line of goals. Takes
10–30 minutes on 2 shared cores.
"""
import argparse
import collections
import io
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from console.chat_client import Console  # noqa: E402
from kernel import commands, llm, persona, supervise  # noqa: E402
from kernel.client import NoAnswer, RequestFailed  # noqa: E402
from kernel.home import Home  # noqa: E402

LINES = [
    "Hello, who are you?", "Please remember that my cat is called Tom.",
    "What do you remember about my cat?", "How are you today?",
    "Remember that the meeting is on Friday.", "Tell me a short joke.",
    "What day is the meeting?", "What is the capital of France?", "Say something kind.",
    "Thank you, goodbye.",
]
TOOK = re.compile(r"took request (\S+) \((\w+)\)")
ANSWERED = re.compile(r"answered request (\S+) in")
COMPLETED = re.compile(r"completed for \w+")


def say(text):
    """Progress on stderr (figures go to stdout)."""
    print(text, file=sys.stderr, flush=True)


# -- the heartbeat path ----------------------------------------------------------------------

def heartbeat_gaps(home):
    """How late a main thread wakes (10 ms naps) while a real completion runs in a thread:
    seconds of the completion, p99 and max lateness in ms."""
    model = llm.ModelRegistry(home.config["models"]).get(home.personas["BABS"]["model_id"])
    done, result = threading.Event(), {}

    def complete():
        started = time.perf_counter()
        model.complete(home.personas["BABS"]["codex"] + "\n\n" + persona.CHAT_INSTRUCTIONS,
                       "User: Please remember that my cat is called Tom.", persona="BABS",
                       json_schema=commands.grammar_schema(), max_tokens=48)
        result["seconds"] = time.perf_counter() - started
        done.set()

    thread = threading.Thread(target=complete)
    thread.start()
    late = []
    while not done.is_set():
        before = time.perf_counter()
        time.sleep(0.01)  # the nap whose lateness is measured
        late.append(time.perf_counter() - before - 0.01)
    thread.join()
    late.sort()
    return {"completion_s": round(result["seconds"], 1),
            "wake_late_p99_ms": round(late[int(len(late) * 0.99)] * 1e3, 1),
            "wake_late_max_ms": round(late[-1] * 1e3, 1)}


# -- the consoles ------------------------------------------------------------------------------

def run_console(home, number, count, out):
    """One console's `count` requests in turn: (request id, seconds, outcome) each."""
    endpoints = home.orchestrator_endpoints
    console = Console(endpoints["frontend"], endpoints["events"], f"bench-{number}",
                      out=io.StringIO(), timeout=1800)
    ids = iter(f"bench-{number}-{n}" for n in range(count))
    try:
        for n in range(count):
            text = LINES[(n + 3 * number) % len(LINES)]
            request_id = next(ids)
            started = time.monotonic()
            try:
                message = console.request({"id": request_id, "intent": "chat", "text": text})
                outcome = f"{message.get('persona')}: {(message.get('reply') or '')[:60]}"
            except (RequestFailed, NoAnswer) as exc:
                outcome = f"error: {exc}"
            seconds = time.monotonic() - started
            out.append((request_id, seconds, outcome))
            say(f"  console {number} request {n + 1}/{count}: {seconds:.1f} s, {outcome}")
    finally:
        console.close()


def worker_runs(home):
    """Request id → [(intent, model completions while it ran)] for every run in the workers'
    logs (a worker serves one request at a time)."""
    runs = collections.defaultdict(list)
    for path in home.log_dir.glob("worker-*.log"):
        current = None
        for line in path.read_text(errors="replace").splitlines():
            if found := TOOK.search(line):
                current = [found[1], found[2], 0]
            elif current and COMPLETED.search(line):
                current[2] += 1
            elif current and (found := ANSWERED.search(line)) and found[1] == current[0]:
                runs[current[0]].append((current[1], current[2]))
                current = None
    return runs


def orchestrator_counts(home, ids):
    """Dispatches per request id, re-dispatches, drops, and the longest gap between a
    worker's messages, from the orchestrator's log."""
    text = (home.log_dir / "orchestrator.log").read_text(errors="replace")
    dispatched = collections.Counter(re.findall(r"request (\S+) to a \w+ worker", text))
    gaps = [float(g) for g in re.findall(r"no message from worker \S+ of \w+ read for "
                                         r"([\d.]+) s", text)]
    return {"dispatches": [dispatched[i] for i in ids],
            "redispatches": len(re.findall(r"re-dispatching request", text)),
            "drops": len(re.findall(r"dropping it", text)),
            "longest_worker_gap_s": max(gaps, default=0.0)}


def percentile(values, fraction):
    """The value below which `fraction` of `values` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main():
    """Run the bench; print the figures and the goals line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--consoles", type=int, default=3, help="consoles at once")
    parser.add_argument("--requests", type=int, default=10, help="requests per console")
    args = parser.parse_args()
    os.environ.pop(llm.ENV_BACKEND, None)  # the real models, never the scripted double
    with tempfile.TemporaryDirectory(prefix="batos-consoles-") as scratch:
        home = Home.init(os.path.join(scratch, "home"))
        say("heartbeat path: a main thread's naps while a completion runs in a thread")
        gaps = heartbeat_gaps(home)
        say(f"starting the cluster of {home.path}")
        results = []
        with supervise.running(home, timeout=600, progress=say):
            started = time.monotonic()
            threads = [threading.Thread(target=run_console,
                                        args=(home, n, args.requests, results))
                       for n in range(args.consoles)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.monotonic() - started
            ids = [request_id for request_id, _s, _o in results]
            runs, counts = worker_runs(home), orchestrator_counts(home, ids)
        report(args, gaps, results, runs, counts, wall)


def report(args, gaps, results, runs, counts, wall):
    """Print the figures and the goals line."""
    ids = [request_id for request_id, _s, _o in results]
    latencies = [seconds for _i, seconds, _o in results]
    errors = [outcome for _i, _s, outcome in results if outcome.startswith("error")]
    answer_runs = [len(runs.get(i, [])) for i in ids]
    answer_calls = [sum(calls for _intent, calls in runs.get(i, [])) for i in ids]
    route_calls = [sum(calls for key, entries in runs.items() if key.startswith(f"{i}#route")
                       for _intent, calls in entries) for i in ids]
    figures = {
        "requests": len(ids), "consoles": args.consoles, "errors": len(errors),
        "wall_s": round(wall, 1),
        "latency_p50_s": round(percentile(latencies, 0.5), 1),
        "latency_p90_s": round(percentile(latencies, 0.9), 1),
        "latency_max_s": round(max(latencies), 1),
        "runs_per_request": round(statistics.fmean(answer_runs), 3),
        "model_calls_per_request": round(statistics.fmean(answer_calls), 3),
        "route_model_calls_per_request": round(statistics.fmean(route_calls), 3),
        "dispatches_per_request": round(statistics.fmean(counts["dispatches"]), 3),
        "redispatches": counts["redispatches"], "worker_drops": counts["drops"],
        "longest_worker_gap_s": counts["longest_worker_gap_s"], **gaps,
    }
    print(f"heartbeat path: a completion of {gaps['completion_s']} s in a thread; the main "
          f"thread woke late by {gaps['wake_late_p99_ms']} ms (p99), "
          f"{gaps['wake_late_max_ms']} ms at most")
    print(f"{args.consoles} consoles x {args.requests} requests, real model, "
          f"{os.cpu_count()} cores: {wall:.0f} s in all, {len(errors)} error(s)")
    print(f"latency (line sent -> reply): p50 {figures['latency_p50_s']} s, p90 "
          f"{figures['latency_p90_s']} s, max {figures['latency_max_s']} s")
    print(f"per request: {figures['dispatches_per_request']} dispatches, "
          f"{figures['runs_per_request']} runs, {figures['model_calls_per_request']} model "
          f"calls answering, {figures['route_model_calls_per_request']} routing")
    gap = counts["longest_worker_gap_s"]
    print(f"workers dropped: {counts['drops']}; re-dispatches: {counts['redispatches']}; "
          f"longest gap between a worker's messages read: "
          f"{f'{gap} s' if gap else 'none over 2 heartbeats'}")
    for error in errors:
        print(f"  {error}")
    for request_id, calls, routing in zip(ids, answer_calls, route_calls):
        if (calls, routing) != (1, 1):
            print(f"  {request_id}: {routing} routing and {calls} answering model call(s): "
                  f"{runs.get(request_id)}")
    goals = [("runs per request", figures["runs_per_request"], 1.0),
             ("model calls per request, answering", figures["model_calls_per_request"], 1.0),
             ("model calls per request, routing", figures["route_model_calls_per_request"],
              1.0),
             ("dispatches per request", figures["dispatches_per_request"], 1.0),
             ("worker drops", figures["worker_drops"], 0)]
    print(json.dumps({"goals": [{"name": n, "value": v, "target": t, "met": v == t}
                                for n, v, t in goals], **figures}))


if __name__ == "__main__":
    main()
