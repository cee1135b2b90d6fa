"""Benchmark: the PersistenceGuardian's audit and a learned method's call, against raw baselines.

Prints figures; asserts nothing. Baselines are measured in the same run: `ast.parse` of the
same source for the audit, and a plainly compiled function for the call.
"""
import ast
import statistics
import time

from kernel import guardian, sandbox
from kernel.uvm import UvmObject


def fifty_line_method():
    """A realistic 50-line method: loops, branches, comprehensions, the Covenant."""
    lines = ["def report(self, limit):", "    '''Summarise the ledger rows.'''",
             "    totals = {}", "    seen = []"]
    for i in range(20):
        lines += [f"    if limit > {i}:", f"        totals['k{i}'] = sum(v * {i} for v in self.values)"]
    lines += ["    seen = [k for k in sorted(totals) if totals[k] > 0]",
              "    self.summary = len(seen)", "    self._p_changed = True",
              "    return {'rows': seen, 'count': len(seen)}"]
    return "\n".join(lines) + "\n"


def timed(fn, repeat):
    """Median seconds of `fn()` over `repeat` runs."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main():
    source = fifty_line_method()
    assert guardian.audit(source).ok and source.count("\n") >= 46
    parse = timed(lambda: ast.parse(source), 200)
    audit = timed(lambda: guardian.audit(source), 200)
    compile_ = timed(lambda: sandbox.compile_method(source, "report"), 50)
    print(f"audit of a {source.count(chr(10))}-line method: {audit * 1e3:.2f} ms "
          f"(ast.parse alone {parse * 1e3:.2f} ms, ratio {audit / parse:.1f}x); "
          f"RestrictedPython compile {compile_ * 1e3:.2f} ms")

    obj = UvmObject(width=3, height=4)
    obj.define("area", "def area(self):\n    return self.width * self.height\n")
    namespace = {}
    exec("def area(self):\n    return self.width * self.height\n", namespace)
    plain = namespace["area"]
    n = 20000
    learned = timed(lambda: [obj.area() for _ in range(n)], 5) / n
    raw = timed(lambda: [plain(obj) for _ in range(n)], 5) / n
    print(f"call of a learned method: {learned * 1e6:.2f} us (plain function {raw * 1e6:.2f} us,"
          f" ratio {learned / raw:.1f}x)")


if __name__ == "__main__":
    main()
