"""Benchmark: 4 processes installing methods into ONE shared prototype vs into 4 objects.

Each process defines N distinct methods (audit, compile, install, commit each) through its own
ZEO client. Into one prototype, every commit conflicts with its neighbours' on the same object;
`UvmObject._p_resolveConflict` merges the method tables on the server, so the goal is that
sharing costs little. Ends with one JSON line of goals (issue 7: shared ≥ 80% of separate
throughput, 0 lost installs, no commit needing more than 3 attempts).
"""
import json
import multiprocessing
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from kernel.home import Home  # noqa: E402
from kernel.image import connect  # noqa: E402
from zeo_server import launcher  # noqa: E402

WORKERS, METHODS = 4, 60


def install(address, personas, worker, target, results, start):
    """One process: define METHODS methods on `target`, one transaction each."""
    image = connect(address, personas=personas)
    start.wait()  # every process is connected: the clock starts for all at once
    worst = 1
    for n in range(METHODS):
        selector = f"m_{worker}_{n}"
        source = f"def {selector}(self):\n    return {n}\n"
        before = image.retries
        image.run(lambda lobby: getattr(lobby, target).define(selector, source),
                  note=f"define {target}.{selector}")
        worst = max(worst, image.retries - before + 1)
    results.put((worker, image.retries, worst))
    image.close()


def run(address, personas, shared):
    context = multiprocessing.get_context("spawn")
    results, start = context.Queue(), context.Barrier(WORKERS + 1)
    image = connect(address, personas=personas)
    targets = ["shared"] * WORKERS if shared else [f"own{w}" for w in range(WORKERS)]
    with image.transaction() as lobby:
        for target in set(targets):
            setattr(lobby, target, lobby.traits.clone())
    processes = [context.Process(target=install, args=(address, personas, w, targets[w],
                                                       results, start))
                 for w in range(WORKERS)]
    for process in processes:
        process.start()
    start.wait(timeout=120)
    started = time.perf_counter()
    outcomes = [results.get(timeout=600) for _ in processes]
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join()
    installed = image.run(lambda lobby: sum(len(getattr(lobby, t)._own_methods())
                                            for t in set(targets)))
    image.close()
    return {"installs_per_s": WORKERS * METHODS / elapsed, "lost": WORKERS * METHODS - installed,
            "retries": sum(o[1] for o in outcomes), "worst_attempts": max(o[2] for o in outcomes)}


def main():
    with tempfile.TemporaryDirectory() as directory:
        home = Home.init(os.path.join(directory, "home"))
        address, stop, _ = launcher.start(home)
        try:
            separate = run(address, home.personas, shared=False)
            shared = run(address, home.personas, shared=True)
        finally:
            stop()
    ratio = shared["installs_per_s"] / separate["installs_per_s"]
    print(f"separate objects: {separate['installs_per_s']:.0f} installs/s, "
          f"retries {separate['retries']}")
    print(f"one shared prototype: {shared['installs_per_s']:.0f} installs/s ({ratio:.0%}), "
          f"retries {shared['retries']}, worst commit {shared['worst_attempts']} attempt(s), "
          f"lost {shared['lost']}")
    goals = [("shared vs separate throughput", ratio, 0.8, ratio >= 0.8),
             ("lost installs", shared["lost"], 0, shared["lost"] == 0),
             ("worst attempts per commit", shared["worst_attempts"], 3,
              shared["worst_attempts"] <= 3)]
    print(json.dumps({"goals": [{"name": n, "ratio": round(r, 3), "target": t, "met": m}
                                for n, r, t, m in goals],
                      "separate": separate, "shared": shared}))


if __name__ == "__main__":
    main()
