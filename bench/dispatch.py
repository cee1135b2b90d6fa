"""Benchmark: message dispatch on image objects vs plain Persistent objects, same run.

Measures, on objects loaded in a ZODB connection: an own-slot read, a slot read delegated
three parents deep, and a learned-method call (`return self.width * self.height`), against a
plain `persistent.Persistent` attribute read and method call. Prints the figures and ends
with one JSON line of goals (issue 7: own slot ≤ 2×, 3-deep ≤ 10×, learned call ≤ 10×).

It also reports what isolation costs (issue 18): a method with a loop (not straight-line)
called in its disposable process (`[sandbox] isolation = "process"`, the default) and in the
caller under the watchdog alone (`"thread"`), against the same code as a plain method.
"""
import json
import statistics
import time

import persistent
import transaction
import ZODB

from kernel import sandbox
from kernel.uvm import UvmObject

AREA = "def area(self):\n    return self.width * self.height\n"
TOTAL = "def total(self):\n    t = 0\n    for i in range(10):\n        t = t + i\n    return t\n"


class Plain(persistent.Persistent):
    """The baseline: an ordinary persistent class with an ordinary method."""

    def __init__(self):
        self.width, self.height = 3, 4

    def area(self):
        return self.width * self.height

    def total(self):
        t = 0
        for i in range(10):
            t = t + i
        return t


def per_call(fn, n=200_000, repeat=5):
    """Median nanoseconds per call of `fn` (a loop of n calls, `repeat` times)."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn(n)
        samples.append((time.perf_counter() - started) / n * 1e9)
    return statistics.median(samples)


def main():
    db = ZODB.DB(None)
    manager = transaction.TransactionManager()
    root = db.open(transaction_manager=manager).root()
    root["plain"] = plain = Plain()
    top = UvmObject(width=3, height=4)
    top.define("area", AREA)
    top.define("total", TOTAL)
    root["own"] = own = top.clone(width=3, height=4)
    root["deep"] = deep = top.clone().clone().clone()
    manager.commit()

    def loop(expression):
        namespace = {"plain": plain, "own": own, "deep": deep}
        exec(f"def run(n):\n    for _ in range(n):\n        {expression}\n", namespace)
        return namespace["run"]

    figures = {
        "persistent_read_ns": per_call(loop("plain.width")),
        "persistent_call_ns": per_call(loop("plain.area()")),
        "own_slot_read_ns": per_call(loop("own.width")),
        "deep_read_ns": per_call(loop("deep.width")),
        "learned_call_ns": per_call(loop("own.area()"), n=50_000),
        "persistent_loop_call_ns": per_call(loop("plain.total()"), n=50_000),
    }
    with sandbox.budgets(isolation="thread"):
        figures["looping_call_in_caller_ns"] = per_call(loop("own.total()"), n=20_000)
    with sandbox.budgets(isolation="process"):
        figures["looping_call_isolated_ns"] = per_call(loop("own.total()"), n=300)
    goals = [
        ("own-slot read vs Persistent read", figures["own_slot_read_ns"]
         / figures["persistent_read_ns"], 2.0),
        ("3-deep delegated read vs Persistent read", figures["deep_read_ns"]
         / figures["persistent_read_ns"], 10.0),
        ("learned-method call vs Persistent method call", figures["learned_call_ns"]
         / figures["persistent_call_ns"], 10.0),
    ]
    for name, value in figures.items():
        print(f"{name:<26} {value:12.1f}")
    print(f"isolation of a looping method: {figures['looping_call_isolated_ns'] / 1e6:.2f} ms "
          f"per call, {figures['looping_call_isolated_ns'] / figures['persistent_loop_call_ns']:.0f}"
          f"x a plain call, {figures['looping_call_isolated_ns'] / figures['looping_call_in_caller_ns']:.0f}"
          "x the same method in the caller")
    for name, ratio, target in goals:
        print(f"{name:<48} {ratio:7.1f}x  (goal ≤ {target:g}x)")
    print(json.dumps({"goals": [{"name": n, "ratio": round(r, 2), "target": t, "met": r <= t}
                                for n, r, t in goals],
                      **{k: round(v, 1) for k, v in figures.items()}}))
    db.close()


if __name__ == "__main__":
    main()
