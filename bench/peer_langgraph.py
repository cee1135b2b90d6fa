"""Benchmark: BAT OS against the same workload built the idiomatic way in LangGraph, same run.

The workload (issue 7): 4 personas (ALFRED, BRICK, ROBIN, BABS), a router choosing one per
request, a scripted model, state persisted after every step.

- Peer: a LangGraph `StateGraph` over a messages state (`add_messages`): a router node asks its
  chat model which persona takes the request and goes there (`Command(goto=...)`); each persona
  node asks its own chat model and appends the answer. The chat models are LangChain
  `BaseChatModel`s wrapping the very same scripted double BAT OS uses (`kernel.llm.
  ScriptedModel`, same rules, same codexes and routing meta-prompt). Checkpointer:
  `SqliteSaver` on a file in WAL mode with `synchronous=FULL`, `durability="sync"` (each
  superstep's checkpoint is committed before the next step starts).
- BAT OS: a real cluster under supervisord (`route.cluster`): client → orchestrator → ALFRED's
  worker routes (the meta-prompt in the image) → the chosen persona's worker answers and
  commits the conversation turns with the request's ledger entry in one ZEO transaction.

Durability: a ZEO commit returns after the server's FileStorage `tpc_finish` has written the
transaction's status byte and `fsync`ed live_image.fs (`FileStorage._finish_finish`: flush +
`os.fsync`, once per transaction; `tpc_vote` only writes and flushes). SQLite in WAL mode with
`synchronous=FULL` fsyncs the WAL at every commit. Both survive a power loss after the reply.

Shapes: fresh conversations one at a time and one long conversation (the two sides taking
turns in blocks, so that the shared host's load drift hits both alike), then concurrent
clients (separate processes, one side after the other). Where BAT OS's time goes: the CPU each
kind of process spends per request (from /proc; the peer's is its one process) and the
client-side phases of a request (routed, thinking, reply). Ends with one JSON line of goals
(BAT OS requests/s ≥ 3× the peer's, per shape).
"""
import argparse
import collections
import json
import multiprocessing
import os
import queue
import sqlite3
import statistics
import sys
import tempfile
import time
from typing import Annotated

from typing_extensions import TypedDict

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH))
sys.path.insert(0, BENCH)

import route  # noqa: E402
from kernel import supervise  # noqa: E402
from kernel.client import Client  # noqa: E402
from kernel.image import connect, default_personas  # noqa: E402
from kernel.llm import ScriptedModel  # noqa: E402

PERSONAS = ("ALFRED", "BRICK", "ROBIN", "BABS")
TARGET = 3.0
PEER_ROUTER = "You are the router. Answer with the persona's name as JSON. Personas:"
PEER_ANSWER = "Answer with JSON: reply and commands."
# Both sides route by the request's last words and answer a chat with no commands: BAT OS
# by a scored choice of persona and plan, the peer by JSON answers as LangGraph apps do.
RULES = [{"persona": "ALFRED", "match": rf"{PEER_ROUTER}[\s\S]*for {name}\Z",
          "reply": json.dumps({"persona": name})} for name in PERSONAS] + [
    {"persona": "ALFRED", "match": rf"choose persona[\s\S]*for {name}\Z", "reply": name}
    for name in PERSONAS] + [
    {"match": rf"{PEER_ANSWER}[\s\S]*User: [^\n]*\Z",
     "reply": '{"reply": "hello", "commands": []}'},
    {"match": "choose plan", "reply": "reply"},
    {"match": r"User: [^\n]*\Z", "reply": "hello"}]


def question(n):
    """The n-th request's text: the personas take turns."""
    return f"question {n} for {PERSONAS[n % len(PERSONAS)]}"


# -- the peer: LangGraph + SqliteSaver ----------------------------------------------------------

def build_peer(database, rules_path):
    """The peer's compiled graph on a SQLite checkpointer at `database` (WAL, synchronous=FULL);
    returns (graph, connection)."""
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
    from langchain_core.outputs import ChatGeneration, ChatResult
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph
    from langgraph.graph.message import add_messages
    from langgraph.types import Command
    from pydantic import ConfigDict

    class ScriptedChatModel(BaseChatModel):
        """A LangChain chat model answering by BAT OS's scripted rules (system + dialogue)."""

        model_config = ConfigDict(arbitrary_types_allowed=True)
        script: ScriptedModel
        persona: str

        @property
        def _llm_type(self):
            return "batos-scripted"

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            system = "\n".join(m.content for m in messages if isinstance(m, SystemMessage))
            dialogue = "\n".join(f"{m.name or 'User'}: {m.content}" for m in messages
                                 if not isinstance(m, SystemMessage))
            text = self.script.complete(system, dialogue, persona=self.persona).text
            return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])

    class State(TypedDict):
        messages: Annotated[list, add_messages]

    personas = default_personas()
    script = ScriptedModel(rules_path)
    listing = "\n".join(f"- {name}: {personas[name]['role']}" for name in sorted(personas))
    router_model = ScriptedChatModel(script=script, persona="ALFRED")
    router_system = personas["ALFRED"]["codex"].strip() + "\n\n" + PEER_ROUTER + "\n" + listing

    def router(state: State) -> Command:
        answer = router_model.invoke([SystemMessage(router_system),
                                      HumanMessage(state["messages"][-1].content)])
        return Command(goto=json.loads(answer.content)["persona"])

    def persona_node(name):
        model = ScriptedChatModel(script=script, persona=name)
        system = personas[name]["codex"].strip() + "\n\n" + PEER_ANSWER

        def answer(state: State):
            reply = model.invoke([SystemMessage(system), *state["messages"][-8:]])
            return {"messages": [AIMessage(json.loads(reply.content)["reply"], name=name)]}
        return answer

    builder = StateGraph(State)
    builder.add_node("router", router, destinations=PERSONAS)
    builder.add_edge(START, "router")
    for name in PERSONAS:
        builder.add_node(name, persona_node(name))
        builder.add_edge(name, END)
    connection = sqlite3.connect(database, check_same_thread=False, timeout=30.0)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    return builder.compile(checkpointer=SqliteSaver(connection)), connection


def peer_request(graph, thread, text):
    """One request to the peer: route, answer, checkpoint every step; the answer's text."""
    from langchain_core.messages import HumanMessage
    state = graph.invoke({"messages": [HumanMessage(text)]},
                         {"configurable": {"thread_id": thread}}, durability="sync")
    return state["messages"][-1].content


def peer_commits_per_request(graph, connection):
    """How many SQLite transactions (each fsynced) one fresh request commits."""
    statements = []
    connection.set_trace_callback(statements.append)
    try:
        peer_request(graph, "count-commits", question(1))
    finally:
        connection.set_trace_callback(None)
    return sum(1 for s in statements if s.strip().upper() == "COMMIT")


def peer_client(database, rules_path, k, count, barrier, results):
    """A peer client process: its own graph on the shared file, `count` fresh conversations."""
    graph, connection = build_peer(database, rules_path)
    peer_request(graph, f"client-warm-{k}", question(k))
    barrier.wait()
    started = time.monotonic()
    for n in range(count):
        peer_request(graph, f"conc-{k}-{n}", question(n))
    results.put((started, time.monotonic(), count))
    connection.close()


# -- BAT OS -------------------------------------------------------------------------------------

def batos_request(client, request_id, session, text, phases=None):
    """One routed request (no persona named: ALFRED chooses); records the client-side times of
    its "routed" and "thinking" progress in `phases` when given."""
    marks = {}
    started = time.perf_counter()
    message = client.request({"id": request_id, "session": session, "text": text},
                             on_progress=lambda m: marks.setdefault(m.get("stage"),
                                                                    time.perf_counter()))
    done = time.perf_counter()
    if phases is not None and {"routed", "thinking"} <= marks.keys():
        phases.append((marks["routed"] - started, marks["thinking"] - marks["routed"],
                       done - marks["thinking"]))
    return message


def batos_client(frontend, k, count, barrier, results):
    """A BAT OS client process: its own connection, `count` fresh conversations."""
    with Client(frontend) as client:
        batos_request(client, f"client-warm-{k}", f"client-warm-{k}", question(k))
        barrier.wait()
        started = time.monotonic()
        for n in range(count):
            batos_request(client, f"conc-{k}-{n}", f"conc-{k}-{n}", question(n))
        results.put((started, time.monotonic(), count))


# -- measuring ----------------------------------------------------------------------------------

def interleaved(sides, count, prefix, same_thread=False, blocks=5):
    """`count` requests one at a time on each side (`(send, read_cpu)` pairs), the sides taking
    turns in `blocks` blocks so that the shared machine's load drift hits both alike; fresh
    conversations, or one long one with `same_thread`. Per side: its latencies and its CPU
    milliseconds per request by kind of process."""
    latencies, cpu = [[] for _ in sides], [collections.Counter() for _ in sides]
    size = -(-count // blocks)
    for first in range(0, count, size):
        for side, (send, read_cpu) in enumerate(sides):
            before = read_cpu()
            for n in range(first, min(first + size, count)):
                thread = prefix if same_thread else f"{prefix}-{n}"
                started = time.perf_counter()
                send(f"{prefix}-{n}", thread, question(n))
                latencies[side].append(time.perf_counter() - started)
            after = read_cpu()
            cpu[side].update({kind: after[kind] - before.get(kind, 0.0) for kind in after})
    return [(times, {kind: seconds * 1e3 / count for kind, seconds in used.items()})
            for times, used in zip(latencies, cpu)]


def concurrently(target, args, clients, count):
    """Requests/s of `clients` processes running `target(*args, k, count, barrier, results)`,
    timed from the moment all of them are ready."""
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(clients), spawn.Queue()
    processes = [spawn.Process(target=target, args=(*args, k, count, barrier, results))
                 for k in range(clients)]
    for process in processes:
        process.start()
    spans = []
    while len(spans) < clients:
        try:
            spans.append(results.get(timeout=1.0))
        except queue.Empty:
            failed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
            if failed:
                for process in processes:
                    process.kill()
                raise SystemExit(f"{target.__name__}: a client process failed (exit codes "
                                 f"{failed})")
    for process in processes:
        process.join()
    return sum(n for _, _, n in spans) / (max(e for _, e, _ in spans) - min(s for s, _, _ in spans))


def summary(latencies):
    """Requests/s, p50 and p99 (ms) of one-at-a-time latencies."""
    ordered = sorted(latencies)
    return {"rps": len(ordered) / sum(ordered), "p50_ms": statistics.median(ordered) * 1e3,
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3}


def long_summary(latencies, tail=50):
    """`summary` of a long conversation, plus the requests/s of its last `tail` turns."""
    return {**summary(latencies), "last_turns_rps": summary(latencies[-tail:])["rps"]}


def transactions_since(image, since):
    """How many transactions the image committed after `since` (seconds since the epoch)."""
    return sum(1 for entry in image.history(100000) if entry["time"] >= since)


def fsync_p50(directory, count=100):
    """Median milliseconds of a small append + fsync in `directory`: what each durable commit
    pays on this disk now (the peer pays it per SQLite commit, BAT OS per ZEO transaction)."""
    path = os.path.join(directory, "fsync-probe")
    times = []
    with open(path, "wb") as handle:
        for _ in range(count):
            started = time.perf_counter()
            handle.write(b"x" * 512)
            handle.flush()
            os.fsync(handle.fileno())
            times.append(time.perf_counter() - started)
    os.remove(path)
    return statistics.median(times) * 1e3


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far (from /proc)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cluster_cpu(home):
    """CPU seconds used so far by each kind of program of the cluster (the persona workers
    other than ALFRED together) and by this process, the client."""
    totals = {"client": time.process_time()}
    for program in supervise.programs(home):
        name = program["name"].split(":")[0]
        kind = name if name in ("zeo", "orchestrator", "worker-ALFRED") else \
            "workers" if name.startswith("worker-") else "other"
        if program["pid"]:
            totals[kind] = totals.get(kind, 0.0) + cpu_seconds(program["pid"])
    return totals


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fresh", type=int, default=300, help="fresh conversations, one at a time")
    parser.add_argument("--turns", type=int, default=300, help="turns of the long conversation")
    parser.add_argument("--clients", type=int, default=3, help="concurrent client processes")
    parser.add_argument("--per-client", type=int, default=100, help="requests per client")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory, \
            route.cluster(directory, RULES) as home:
        rules_path = os.path.join(directory, "rules.json")
        database = os.path.join(directory, "peer-checkpoints.sqlite")
        graph, connection = build_peer(database, rules_path)
        frontend = home.orchestrator_endpoints["frontend"]
        image = connect(home.zeo_address, personas=home.personas)
        client = Client(frontend)
        phases = []

        def peer_send(request_id, thread, text):
            return peer_request(graph, thread, text)

        def ours_send(request_id, session, text):
            return batos_request(client, request_id, session, text, phases)

        try:
            answers = (peer_request(graph, "check", question(2)),
                       batos_request(client, "check", "check", question(2)))
            if answers[0] != "hello" or (answers[1]["persona"], answers[1]["reply"]) != \
                    ("ROBIN", "hello"):
                raise SystemExit(f"the two sides do not do the same work: {answers}")
            notes = {"peer_commits": peer_commits_per_request(graph, connection),
                     "fsync_ms": [fsync_p50(directory)]}
            peer, ours = ((peer_send, lambda: {"client": time.process_time()}),
                          (ours_send, lambda: cluster_cpu(home)))
            interleaved((peer, ours), 20, "warm")
            phases.clear()
            before = time.time()
            (peer_fresh, notes["peer_cpu"]), (ours_fresh, notes["ours_cpu"]) = interleaved(
                (peer, ours), args.fresh, "fresh")
            notes["ours_commits"] = transactions_since(image, before) / args.fresh
            notes["phases"] = list(phases)
            figures = {"fresh": (summary(peer_fresh), summary(ours_fresh)),
                       "long": tuple(long_summary(times) for times, _cpu in interleaved(
                           (peer, ours), args.turns, "long", same_thread=True))}
            figures["concurrent"] = tuple({"rps": concurrently(target, target_args,
                                                               args.clients, args.per_client)}
                                          for target, target_args in (
                                              (peer_client, (database, rules_path)),
                                              (batos_client, (frontend,))))
            notes["raw_zeo"] = route.raw_zeo(home.zeo_address)
            notes["fsync_ms"].append(fsync_p50(directory))
        finally:
            client.close()
            image.close()
            connection.close()
    report(figures, args, notes)


def report(figures, args, notes):
    """Print the durability of each side, the side-by-side table, where BAT OS's time goes,
    and the goals line."""
    shapes = {"fresh": f"fresh conversations, 1 at a time (x{args.fresh})",
              "long": f"one conversation, {args.turns} turns",
              "concurrent": f"{args.clients} client processes x {args.per_client}"}
    print("durability, BAT OS:    one ZEO transaction per request (ledger entry + conversation "
          f"turns; {notes['ours_commits']:.2f} commits/request measured); the commit returns "
          "after FileStorage's tpc_finish fsynced live_image.fs")
    print("durability, LangGraph: SqliteSaver, WAL, synchronous=FULL, durability='sync': "
          f"{notes['peer_commits']} SQLite commits/request (a checkpoint per step + each step's "
          "writes), every commit fsyncs the WAL")

    print("an fsync on this disk took {:.2f} ms (p50) before the runs, {:.2f} ms after".format(
        *notes["fsync_ms"]))

    def cell(figure):
        latency = (f" p50 {figure['p50_ms']:5.1f} p99 {figure['p99_ms']:5.1f} ms"
                   if "p50_ms" in figure else "")
        return f"{figure['rps']:5.0f}/s{latency}"

    print(f"{'shape':42} | {'LangGraph + SQLite':29} | {'BAT OS':29} | BAT OS / peer")
    goals = []
    for shape, (peer, ours) in figures.items():
        ratio = ours["rps"] / peer["rps"]
        print(f"{shapes[shape]:42} | {cell(peer):29} | {cell(ours):29} | {ratio:.2f}x")
        goals.append({"name": f"requests/s vs LangGraph+SQLite, {shape}",
                      "ratio": round(ratio, 2), "target": TARGET, "met": ratio >= TARGET})
    peer_long, ours_long = figures["long"]
    print(f"{'  ... its last 50 turns':42} | {peer_long['last_turns_rps']:5.0f}/s{'':22} | "
          f"{ours_long['last_turns_rps']:5.0f}/s{'':22} | "
          f"{ours_long['last_turns_rps'] / peer_long['last_turns_rps']:.2f}x")
    peer_cpu, ours_cpu = notes["peer_cpu"], notes["ours_cpu"]
    cpu_ratio = sum(peer_cpu.values()) / sum(ours_cpu.values())
    print(f"CPU per fresh request: LangGraph {sum(peer_cpu.values()):.1f} ms (one process); "
          f"BAT OS {sum(ours_cpu.values()):.1f} ms = "
          + ", ".join(f"{kind} {ms:.1f}" for kind, ms in sorted(ours_cpu.items(),
                                                                key=lambda item: -item[1]))
          + f"; requests per CPU-second BAT OS / peer {cpu_ratio:.2f}x (the figure a busy "
            "host distorts least: a multi-process system takes a larger share of a loaded host)")
    routed, thinking, replied = (statistics.median(p) * 1e3 for p in zip(*notes["phases"]))
    zeo_p50, zeo_cps = notes["raw_zeo"]
    print(f"BAT OS phases, p50 of the fresh requests: routed {routed:.1f} ms (client -> "
          f"orchestrator -> ALFRED's worker -> orchestrator -> client), thinking +{thinking:.1f}"
          f" ms (-> the persona's worker, its read snapshot), reply +{replied:.1f} ms (model, "
          f"commit, -> client); raw ZEO commit p50 {zeo_p50 * 1e3:.2f} ms, "
          f"{zeo_cps:.0f} commits/s")
    print(json.dumps({"goals": goals, **{
        f"{side}_{shape}_{key}": round(value, 1)
        for shape, pair in figures.items() for side, values in zip(("peer", "batos"), pair)
        for key, value in values.items()},
        "peer_commits_per_request": notes["peer_commits"],
        "batos_commits_per_request": round(notes["ours_commits"], 2),
        "peer_cpu_ms_per_request": round(sum(peer_cpu.values()), 2),
        "batos_cpu_ms_per_request": {kind: round(ms, 2) for kind, ms in ours_cpu.items()},
        "requests_per_cpu_second_ratio": round(cpu_ratio, 2),
        "batos_phase_p50_ms": {"routed": round(routed, 2), "thinking": round(thinking, 2),
                               "reply": round(replied, 2)},
        "raw_zeo_commit_p50_ms": round(zeo_p50 * 1e3, 2),
        "fsync_p50_ms": [round(ms, 2) for ms in notes["fsync_ms"]],
        "raw_zeo_commits_per_s": round(zeo_cps)}))


if __name__ == "__main__":
    main()
