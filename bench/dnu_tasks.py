"""Benchmark: `_doesNotUnderstand` with the real default model on missing-method tasks.

Part 1 times `batos send rect area` and `… perimeter` as a person runs them: a fresh process
each, model load included, without an expectation and then with `--expect 14`. Part 2 runs the task list below in one
process (one model load) with the caller's expectation, and prints the success rate, mean
attempts and median seconds per task. A real ZEO server on a free port serves a fresh home.
Set BATOS_LLM to benchmark another backend; by default the configured GGUF model runs.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from kernel import dnu, llm
from kernel.home import Home
from kernel.image import connect
from zeo_server import launcher

TASKS = [  # (slots, selector, arguments, expected result)
    ({"width": 3, "height": 4}, "area", [], 12),
    ({"width": 3, "height": 4}, "perimeter", [], 14),
    ({"width": 2, "height": 3, "depth": 4}, "volume", [], 24),
    ({"radius": 2}, "diameter", [], 4),
    ({"count": 5}, "double", [], 10),
    ({"count": 5}, "half", [], 2.5),
    ({"a": 7, "b": 5}, "total", [], 12),
    ({"a": 7, "b": 5}, "difference", [], 2),
    ({"a": 7, "b": 5}, "product", [], 35),
    ({"a": 7, "b": 5}, "average", [], 6),
    ({"price": 10, "quantity": 3}, "cost", [], 30),
    ({"width": 3, "height": 4}, "scaled_width", [2], 6),
    ({"balance": 100}, "after_deposit", [50], 150),
    ({"balance": 100}, "after_withdrawal", [30], 70),
    ({"side": 5}, "square_area", [], 25),
    ({"side": 3}, "cube_volume", [], 27),
    ({"base": 6, "height": 4}, "triangle_area", [], 12),
    ({"distance": 100, "hours": 4}, "speed", [], 25),
    ({"value": 7}, "plus", [3], 10),
    ({"value": 7}, "times", [3], 21),
    ({"value": -5}, "magnitude", [], 5),
    ({"first": "Ada", "last": "Lovelace"}, "full_name", [], "Ada Lovelace"),
    ({"name": "Robin"}, "greeting", [], "Hello, Robin"),
    ({"items": [1, 2, 3, 4]}, "total_items", [], 10),
    ({"items": [1, 2, 3, 4]}, "count_items", [], 4),
    ({"items": [3, 9, 4]}, "largest", [], 9),
    ({"items": [3, 9, 4]}, "smallest", [], 3),
    ({"width": 3, "height": 4}, "is_square", [], False),
    ({"celsius": 100}, "fahrenheit", [], 212),
]


def cold_sends(home):
    """`batos send` in a fresh process each: area and perimeter without an expectation, then
    perimeter on a second object with `--expect 14`; (label, seconds, outcome) each."""
    for path in ("rect", "rect2"):
        subprocess.run([sys.executable, "-m", "kernel.cli", "new", path, "--home",
                        str(home.path), "--slots", '{"width": 3, "height": 4}'], check=True,
                       capture_output=True)
    results = []
    for path, selector, extra in (("rect", "area", []), ("rect", "perimeter", []),
                                  ("rect2", "perimeter", ["--expect", "14"])):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "kernel.cli", "send", path, selector,
                               "--json", "--home", str(home.path)] + extra,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - started
        outcome = json.loads(done.stdout) if done.stdout.strip() else {"reason": done.stderr}
        results.append((f"{selector} {' '.join(extra)}".strip(), seconds, outcome))
    return results


def run_tasks(home, image):
    """Every task through one Learner; a row per task."""
    registry = llm.ModelRegistry(home.config["models"])
    learner = dnu.Learner(image, registry, attempts=3)
    rows = []
    for n, (slots, selector, args, expected) in enumerate(TASKS):
        path = f"task{n}"
        with image.transaction(note=f"bench object {path}") as lobby:
            setattr(lobby, path, lobby.traits.clone(**slots))
        started = time.perf_counter()
        try:
            outcome = learner.send(path, selector, args, expected)
            ok, attempts, source = True, outcome.attempts, outcome.source
        except dnu.LearningFailed as failure:
            ok, attempts, source = False, failure.outcome.attempts, failure.outcome.reason
        rows.append((selector, ok, attempts, time.perf_counter() - started, source))
    return rows


def main():
    with tempfile.TemporaryDirectory() as directory:
        home = Home.init(os.path.join(directory, "home"))
        address, stop, _ = launcher.start(home)
        try:
            print("cold `batos send` (a fresh process each, model load included):")
            for label, seconds, outcome in cold_sends(home):
                print(f"  {label:<24} result {outcome.get('result')!r:<6} "
                      f"learned {outcome.get('learned')} in {outcome.get('attempts')} "
                      f"attempt(s), {seconds:.1f} s")
            image = connect(address, personas=home.personas)
            try:
                rows = run_tasks(home, image)
            finally:
                image.close()
        finally:
            stop()
    print(f"\n{len(rows)} missing-method tasks with the caller's expectation:")
    for selector, ok, attempts, seconds, source in rows:
        summary = (source or "").strip().splitlines()[-1] if source else ""
        print(f"  {'ok  ' if ok else 'FAIL'} {selector:<17} {attempts} attempt(s) "
              f"{seconds:5.1f} s  {summary[:70]}")
    succeeded = [r for r in rows if r[1]]
    print(f"\nsuccess {len(succeeded)}/{len(rows)} = {100 * len(succeeded) / len(rows):.0f}%, "
          f"mean attempts {statistics.mean(r[2] for r in rows):.2f} "
          f"(successes {statistics.mean(r[2] for r in succeeded) if succeeded else 0:.2f}), "
          f"median {statistics.median(r[3] for r in rows):.1f} s per task")


if __name__ == "__main__":
    main()
