"""Generated hostile methods against a real ZEO server: nothing dies but a disposable process.

Hypothesis writes method bodies from the constructs the guardian accepts — loops, `try`/
`finally`, comprehensions, builtins, string methods, big constants, deep nesting, shared
references, in-place changes of slots — and one long-lived client process (tests/actor.py,
as a worker would) defines each on an object and sends it, under small budgets. Over 2,000
methods: every call comes back (a result or an error), the client never dies, its memory stays
bounded, and the image afterwards loads and checks clean. How long the stops took is printed
(bench figures, not assertions: the machine is shared).
"""
import os
import pathlib
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_batos

METHODS = int(os.environ.get("BATOS_FUZZ_METHODS", 2000))  # fewer for a quick local run
CPU_SECONDS = 0.2

SMALL = st.sampled_from(["0", "1", "2", "3", "7", "-1", "100"])
BIG = st.sampled_from(["10 ** 6", "2 ** 61 - 1", "10 ** 8", "7 ** 2000", "3 ** 100000",
                       "-(10 ** 8)", "300000", "2 ** 30000 + 1"])
ATOMS = st.one_of(SMALL, BIG, st.sampled_from([
    "a", "b", "self.width", "self.name", "self.items", "self.d", "'ab'", "'%s'", "()", "[]",
    "{}", "[1, 2, 3]", "{'k': self.items}", "self.peer", "self"]))


def _compound(inner):
    two = st.tuples(inner, inner)
    return st.one_of(
        st.builds("({0[0]} {1} {0[1]})".format, two,
                  st.sampled_from(["+", "-", "*", "//", "%", "**", "<<", "==", "<"])),
        st.builds("[{}] * {}".format, inner, st.one_of(SMALL, BIG)),
        st.builds("({},)".format, inner),
        st.builds("{}({})".format, st.sampled_from(
            ["len", "str", "abs", "sorted", "list", "tuple", "set", "sum", "min", "max",
             "repr", "bool"]), inner),
        st.builds("round({}, {})".format, inner, st.one_of(SMALL, BIG)),
        st.builds("pow({0[0]}, {0[1]}, {1})".format, two, inner),
        st.builds("list(map(abs, {}))".format, inner),
        st.builds("{0[0]}[{0[1]}]".format, two),
        st.builds("{}.{}".format, inner, st.sampled_from(
            ["upper()", "strip()", "split()", "encode('utf-8')", "encode('cp1252')",
             "translate({97: 'b' * 4000})", "replace('a', 'bb' * 1000)", "zfill(10 ** 7)",
             "count('a')", "keys()", "values()"])),
        st.builds("'-'.join({})".format, inner),
        st.builds("[{} for i in range({})]".format, inner, st.one_of(SMALL, BIG)),
        st.builds("({0[0]} if {0[1]} else a)".format, two),
    )


EXPRESSIONS = st.recursive(ATOMS, _compound, max_leaves=6)


def _statement(expression):
    return st.one_of(
        st.builds("a = {}".format, expression),
        st.builds("b = {}".format, expression),
        st.builds("self.kept = {}".format, expression),
        st.builds("self.items.append({})".format, expression),
        st.builds("self.d['k'] = {}".format, expression),
        st.builds("self.peer.x = {}".format, expression),
        st.builds("for i in range({}):\n        a = {}".format, st.one_of(SMALL, BIG), expression),
        st.builds("while {}:\n        a = {}".format, st.sampled_from(["True", "a"]), expression),
        st.builds("t = ()\n    for i in range({}):\n        t = (t,)\n    a = len({{t}})".format,
                  BIG),
        st.builds("it = [1]\n    for i in range({}):\n        it = map(abs, it)\n"
                  "    a = list(it)".format, BIG),
        st.builds("try:\n        a = {}\n    finally:\n        b = {}".format, expression,
                  expression),
        st.builds("try:\n        while True:\n            a = {}\n    finally:\n"
                  "        while True:\n            b = a".format, expression),
        st.builds("if {}:\n        a = {}\n    else:\n        b = {}".format, expression,
                  expression, expression),
    )


BODIES = st.builds(lambda statements, result: "".join(f"    {s}\n" for s in statements)
                   + "    self._p_changed = True\n" + f"    return {result}\n",
                   st.lists(_statement(EXPRESSIONS), min_size=1, max_size=4), EXPRESSIONS)


def resident_kib(pid):
    """VmRSS of a process, in KiB."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_two_thousand_generated_methods_harm_nothing(home, zeo, actors, capsys):
    client, = actors(1)
    client.call("connect")
    client.call("configure", cpu_seconds=CPU_SECONDS, memory_bytes=64 * 1024 * 1024)
    client.call("clone", proto="traits", path="peer", slots={"x": 0})
    client.call("clone", proto="traits", path="box", slots={
        "width": 3, "name": "box", "items": [1, 2, 3], "d": {"k": 1}, "a": 1, "b": 2})
    client.call("link", path="box", slot="peer", target="peer")
    baseline = resident_kib(client.process.pid)
    outcomes, slowest, last = {}, [0.0, ""], [""]

    @settings(max_examples=METHODS, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(BODIES)
    def define_and_send(body):
        if client.process.poll() is not None:  # report the method that killed it, not a pipe
            raise AssertionError(f"the client died ({client.process.returncode}) on\n"
                                 f"{last[0]}\n{client.process.stderr.read()[-3000:]}")
        source = last[0] = "def m(self):\n    a = 1\n    b = 2\n" + body
        client.write(op="define", path="box", selector="m", source=source)
        answer = client.read(timeout=60)  # an actor that died raises here
        if not answer["ok"]:
            outcomes["rejected by the audit"] = outcomes.get("rejected by the audit", 0) + 1
            return
        started = time.monotonic()
        client.write(op="send", path="box", selector="m")
        answer = client.read(timeout=60)
        took = time.monotonic() - started
        if took > slowest[0]:
            slowest[:] = [took, source]
        kind = "answered" if answer["ok"] else answer["error"].split(":")[0]
        outcomes[kind] = outcomes.get(kind, 0) + 1

    define_and_send()
    assert sum(outcomes.values()) >= METHODS
    assert client.process.poll() is None  # the client process lives and still serves
    client.call("define", path="box", selector="area",
                source="def area(self):\n    return self.width * 2\n")
    assert client.call("send", path="box", selector="area") == 6
    grown_mib = (resident_kib(client.process.pid) - baseline) / 1024
    assert grown_mib < 256, f"the client grew by {grown_mib:.0f} MiB"
    check = run_batos("check", home=home.path, timeout=600)
    assert check.returncode == 0, check.stdout + check.stderr
    with capsys.disabled():
        print(f"\n{sum(outcomes.values())} generated methods: "
              + ", ".join(f"{kind} {count}" for kind, count in sorted(outcomes.items()))
              + f"; slowest call {slowest[0]:.2f} s (budget {CPU_SECONDS} s CPU + 1 s); "
              f"client memory grew {grown_mib:.0f} MiB")
