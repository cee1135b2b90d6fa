"""kernel.sandbox: hostile methods stopped, benign methods right, budgets that keep a process
serving."""
import sys

import pytest
import transaction
import ZODB

from kernel import guardian, sandbox
from kernel.uvm import UvmObject

from method_corpus import BENIGN, HOSTILE

AREA = "def area(self):\n    return self.width * self.height\n"
STOPS = (sandbox.BudgetExceeded, sandbox.SandboxViolation)


@pytest.fixture
def db():
    """An in-memory database with a committed receiver under `root['obj']`."""
    database = ZODB.DB(None)
    manager = transaction.TransactionManager()
    connection = database.open(transaction_manager=manager)
    proto = UvmObject(label="proto")
    proto.define("area", AREA)
    connection.root()["obj"] = proto.clone(width=3, height=4, items=[1, 2], rows=[[1]],
                                           table={"a": 1})
    manager.commit()
    yield database, manager, connection
    manager.abort()
    connection.close()
    database.close()


@pytest.fixture(autouse=True)
def quick_budgets():
    """Half a second of CPU per call keeps the suite quick; the limits stay generous."""
    with sandbox.budgets(cpu_seconds=0.5):
        yield


def transactions(database):
    return sum(1 for _ in database.storage.iterator())


@pytest.mark.parametrize("name, source, args", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_methods_never_complete_and_commit_nothing(db, name, source, args):
    database, manager, connection = db
    before = transactions(database)
    verdict = guardian.audit(source)
    if not verdict.ok:
        assert all(v.message and v.rule for v in verdict.violations)
        return
    receiver = connection.root()["obj"]
    state = dict(receiver.__getstate__())
    with pytest.raises(STOPS):
        receiver.define("m", source)
        receiver.m(*args)
    manager.abort()
    assert transactions(database) == before
    assert receiver.__getstate__() == state


def test_the_corpus_is_large_enough():
    assert len(HOSTILE) >= 80 and len(BENIGN) >= 40


@pytest.mark.parametrize("name, source, slots, args, expected", BENIGN,
                         ids=[b[0] for b in BENIGN])
def test_benign_methods_are_accepted_and_right(db, name, source, slots, args, expected):
    database, manager, connection = db
    verdict = guardian.audit(source)
    assert verdict.ok, verdict.report()
    receiver = connection.root()["obj"].parents[0].clone(**slots)
    selector = verdict.function_name
    receiver.define(selector, source)
    assert receiver.send(selector, *args) == expected


def test_a_runaway_method_is_stopped_and_the_next_call_is_served(db):
    _database, manager, connection = db
    receiver = connection.root()["obj"]
    receiver.define("spin", "def spin(self):\n    self.width = 0\n    self._p_changed = True\n"
                            "    while True:\n        pass\n")
    with pytest.raises(sandbox.CPUBudgetExceeded, match="CPU time"):
        receiver.spin()
    manager.abort()
    assert receiver.width == 3 and receiver.area() == 12


def test_budget_stops_are_not_caught_by_the_methods_own_handlers(db):
    _database, _manager, connection = db
    receiver = connection.root()["obj"]
    receiver.define("stubborn", "def stubborn(self):\n    while True:\n        try:\n"
                                "            while True:\n                pass\n"
                                "        except Exception:\n            pass\n")
    with pytest.raises(sandbox.CPUBudgetExceeded):
        receiver.stubborn()


def test_memory_growth_is_stopped(db):
    _database, _manager, connection = db
    receiver = connection.root()["obj"]
    receiver.define("hog", "def hog(self):\n    x = []\n    while True:\n"
                           "        x.append('a' * 100000 + str(len(x)))\n")
    with sandbox.budgets(memory_bytes=32 * 1024 * 1024, cpu_seconds=30):
        with pytest.raises(sandbox.MemoryBudgetExceeded, match="allocating"):
            receiver.hog()


def test_nested_calls_share_one_budget_and_depth_is_bounded(db):
    _database, _manager, connection = db
    receiver = connection.root()["obj"]
    receiver.define("down", "def down(self, n):\n    return 0 if n == 0 else 1 + self.down(n - 1)\n")
    assert receiver.down(30) == 30
    with pytest.raises(sandbox.RecursionBudgetExceeded):
        receiver.down(1000)
    assert receiver.down(3) == 3


def test_restricted_code_cannot_reach_the_database(db):
    _database, _manager, connection = db
    receiver = connection.root()["obj"]
    with pytest.raises(sandbox.SandboxViolation):
        sandbox.guarded_getattr(receiver, "_p_jar")
    with pytest.raises(sandbox.SandboxViolation):
        sandbox.guarded_getattr(receiver.parents[0]._own_methods()["area"], "source")
    with pytest.raises(sandbox.SandboxViolation):
        sandbox.guarded_write((1, 2))
    assert sandbox.guarded_write(receiver, receiver) is receiver
    with pytest.raises(sandbox.SandboxViolation, match="sending it a message"):
        sandbox.guarded_write(receiver.parents[0], receiver)  # authority: the receiver only


def test_configure_rejects_unknown_limits():
    with pytest.raises(ValueError):
        sandbox.configure(wall_seconds=3)


def test_a_runaway_method_in_a_long_lived_process_is_stopped_and_it_keeps_serving(actors):
    """A real client process on a real ZEO server: the stop aborts only that transaction."""
    client, = actors(1)
    client.call("connect")
    client.call("configure", cpu_seconds=1.0)
    client.call("clone", proto="traits", path="box", slots={"n": 1})
    client.call("define", path="box", selector="runaway",
                source="def runaway(self):\n    self.n = 2\n    self._p_changed = True\n"
                       "    while True:\n        pass\n")
    client.write(op="send", path="box", selector="runaway")
    answer = client.read(timeout=120)   # generous: the budget is 1 s of CPU
    assert answer["ok"] is False and answer["error"].startswith("CPUBudgetExceeded")
    assert client.call("send", path="box", selector="n") == 1
    client.call("define", path="box", selector="double",
                source="def double(self):\n    return self.n * 2\n")
    assert client.call("send", path="box", selector="double") == 2


@pytest.mark.parametrize("source, bounded", [
    ("def m(self):\n    return self.width * self.height\n", True),
    ("def m(self, n):\n    x = max(self.a, n)\n    self.a = x\n    self._p_changed = True\n"
     "    return len(self.items) + abs(x)\n", True),
    ("def m(self):\n    while True:\n        pass\n", False),
    ("def m(self):\n    return [x for x in self.items]\n", False),
    ("def m(self):\n    return self.other()\n", False),
    ("def m(self):\n    return max(self.items, key=len)\n", False),
    ("def m(self):\n    return sorted(self.items)\n", False),
    ("def m(self):\n    return (lambda: 1)()\n", False),
])
def test_only_straight_line_methods_run_without_the_watchdog(source, bounded):
    """No loop, comprehension, lambda or call but a few builtins: provably bounded."""
    assert sandbox.is_bounded(source) is bounded


def test_a_method_named_like_a_builtin_still_calls_the_builtin():
    """`def sorted(self): return sorted(self.items)` once called itself (with the list)."""
    class Receiver:
        items = [3, 1, 2]
    for name in ("sorted", "max", "len"):
        method = sandbox.compile_method(f"def {name}(self):\n    return {name}(self.items)\n",
                                        name)
        assert method(Receiver()) == {"sorted": [1, 2, 3], "max": 3, "len": 3}[name]


def test_self_attribute_reads_skip_the_guard_and_self_is_never_rebound():
    plain = sandbox.compile_method("def m(self):\n    return self.width\n", "m")
    assert "_getattr_" not in plain.__code__.co_names
    with pytest.raises(sandbox.SandboxError, match="self is never rebound"):
        sandbox.compile_method("def m(self, other):\n    for self in [other]:\n        pass\n"
                               "    return self.width\n", "m")
    private = sandbox.compile_method("def m(self):\n    return self.width.real\n", "m")
    assert "_getattr_" in private.__code__.co_names  # `.real` of the value stays guarded


def test_a_bounded_method_still_meets_every_operator_guard(db):
    database, manager, connection = db
    receiver = connection.root()["obj"]
    receiver.define("m", "def m(self):\n    return 10 ** 10 ** 10\n")
    assert sandbox.is_bounded(receiver.lookup("m")[1].source)
    with pytest.raises(sandbox.MemoryBudgetExceeded):
        receiver.m()
    manager.abort()


# -- issue 18: one C call that nothing interrupts is refused before it runs -----------------------

COLLIDING = [k * (2 ** 61 - 1) for k in range(40000)]  # 40,000 ints of one hash
SMALL_MEMORY = 16 * 1024 * 1024  # so that a regression allocates little before failing

STRAIGHT_LINE_BOMBS = [
    ("def m(self):\n    return round(self.width, -(10 ** 8))\n", (),
     sandbox.MemoryBudgetExceeded),
    ("def m(self):\n    return ((7 << 4000000) // (3 << 2000000)) % 1000\n", (),
     sandbox.CPUBudgetExceeded),
    ("def m(self):\n    a = 7 << 4000000\n    a %= (3 << 2000000) + 1\n    return a\n", (),
     sandbox.CPUBudgetExceeded),
    ("def m(self):\n    return (7 << 2000000) * (5 << 2000000)\n", (),
     sandbox.CPUBudgetExceeded),
    ("def m(self):\n    return 3 ** 1000000\n", (), sandbox.CPUBudgetExceeded),
    ("def m(self):\n    s = 'x' * 10 ** 5\n    return ('%s' * 1500) % ((s,) * 1500)\n", (),
     sandbox.MemoryBudgetExceeded),
    ("def m(self):\n    s = 'x' * 10 ** 5\n    return '%r' % ([s] * 1000,)\n", (),
     sandbox.MemoryBudgetExceeded),
    ("def m(self):\n    s = 'x' * 10 ** 5\n    return ('%(a(b(c))d)s' * 1500) % {'a(b(c))d': s}\n",
     (), sandbox.MemoryBudgetExceeded),
    ("def m(self):\n    s = 'x' * 10 ** 5\n    return f'" + "{s}" * 300 + "'\n", (),
     sandbox.MemoryBudgetExceeded),
    ("def m(self):\n    x = ['x' * 10 ** 5] * 1000\n    return f'{x!r}'\n", (),
     sandbox.MemoryBudgetExceeded),
    ("def m(self, keys):\n    return len({*keys})\n", (COLLIDING,), sandbox.CPUBudgetExceeded),
]


@pytest.mark.parametrize("source, args, stop", STRAIGHT_LINE_BOMBS)
def test_straight_line_methods_are_refused_before_the_c_call(db, source, args, stop):
    """No watchdog runs a straight-line method: the operand bounds alone must refuse these,
    before the call ("would"), not after it."""
    _database, manager, connection = db
    receiver = connection.root()["obj"]
    receiver.define("m", source)
    with sandbox.budgets(memory_bytes=SMALL_MEMORY, isolation="thread"), \
            pytest.raises(stop, match="would"):
        receiver.m(*args)
    manager.abort()


def method_of(body):
    """`def m(self):` around `body` (lines at the method's indentation)."""
    return "def m(self):\n" + "".join(f"    {line}\n" for line in body.splitlines())


C_CALL_BOMBS = [
    ("m = 3 ** 19000\nreturn pow(3, m, m + 6)", sandbox.CPUBudgetExceeded),
    ("return pow(3, (1 << 4000000) - 1, (1 << 64) + 13)", sandbox.CPUBudgetExceeded),
    ("return divmod(7 << 4000000, (3 << 2000000) + 1)", sandbox.CPUBudgetExceeded),
    ("return ('a' * 10 ** 4).translate({97: 'b' * 4000})", sandbox.MemoryBudgetExceeded),
    ("return ('a' * 10 ** 4).translate(['b' * 4000] * 128)", sandbox.MemoryBudgetExceeded),
    ("return str(['x' * 10 ** 5] * 1000)", sandbox.MemoryBudgetExceeded),
    ("return repr({'k': ['x' * 10 ** 5] * 1000})", sandbox.MemoryBudgetExceeded),
    ("return len(set([k * (2 ** 61 - 1) for k in range(40000)]))", sandbox.CPUBudgetExceeded),
    ("return len(frozenset([(k * (2 ** 61 - 1), 0) for k in range(40000)]))",
     sandbox.CPUBudgetExceeded),
    ("keys = [k * (2 ** 61 - 1) for k in range(40000)]\nreturn len(dict(zip(keys, keys)))",
     sandbox.CPUBudgetExceeded),
]


@pytest.mark.parametrize("body, stop", C_CALL_BOMBS)
def test_c_calls_that_would_overrun_are_refused_before_they_run(db, body, stop):
    _database, manager, connection = db
    receiver = connection.root()["obj"]
    receiver.define("m", method_of(body))
    with sandbox.budgets(memory_bytes=SMALL_MEMORY, isolation="thread"), \
            pytest.raises(stop, match="would"):
        receiver.m()
    manager.abort()


@pytest.mark.parametrize("body", [
    "return 'abc'.encode('cp1252')",
    "return 'abc'.encode(encoding='idna')",
    "return 'abc'.encode().decode('cp1252')",
    "return str('abc'.encode(), 'utf-8-sig')",
    "return '\u00e9'.encode('ascii', 'namereplace')",
])
def test_only_codecs_that_need_no_import_are_available(db, body):
    _database, _manager, connection = db
    receiver = connection.root()["obj"]
    receiver.define("m", f"def m(self):\n    {body}\n")
    with pytest.raises(sandbox.SandboxViolation, match="not available"):
        receiver.m()


def test_int_to_decimal_text_stays_bounded_by_pythons_digit_limit(db):
    _database, _manager, connection = db
    assert 0 < sys.get_int_max_str_digits() <= 4300
    receiver = connection.root()["obj"]
    receiver.define("m", "def m(self):\n    return f'{1 << 100000}'\n")
    with pytest.raises(ValueError, match="limit"):
        receiver.m()


def test_builtin_types_keep_answering_isinstance():
    assert isinstance("a", sandbox.SAFE_BUILTINS["str"])
    assert isinstance({}, (sandbox.SAFE_BUILTINS["set"], sandbox.SAFE_BUILTINS["dict"]))
    assert not isinstance([], sandbox.SAFE_BUILTINS["frozenset"])
    assert sandbox.SAFE_BUILTINS["dict"](a=1) == {"a": 1}


@pytest.fixture
def in_thread():
    """Methods run in the caller, under the watchdog (not in a disposable process)."""
    with sandbox.budgets(isolation="thread"):
        yield


FINALLY_LOOPS = [
    "try:\n    while True:\n        pass\nfinally:\n    while True:\n        pass",
    "try:\n    try:\n        while True:\n            pass\n    finally:\n        while True:\n"
    "            pass\nfinally:\n    try:\n        while True:\n            pass\n    finally:\n"
    "        while True:\n            pass",
    "try:\n    while True:\n        pass\nfinally:\n    self.m()",  # stopped again, 64 deep
]


@pytest.mark.parametrize("body", FINALLY_LOOPS)
def test_the_watchdog_stops_a_call_again_until_it_ends(db, in_thread, body):
    """A `finally` that loops again is stopped again; once the call has ended, no stop lands."""
    _database, manager, connection = db
    receiver = connection.root()["obj"]
    receiver.define("m", method_of(body))
    with sandbox.budgets(cpu_seconds=0.2), pytest.raises(sandbox.CPUBudgetExceeded):
        receiver.m()
    manager.abort()
    total = 0
    for i in range(2_000_000):  # a few watchdog ticks of kernel code: nothing stops it
        total += i
    assert not sandbox.WATCHDOG.budget().active
    assert receiver.area() == 12


def test_the_memory_baseline_is_taken_when_the_call_is_entered(db):
    """Before the method's first step (in the caller, under the watchdog); and in a method's
    disposable process the address-space limit stops allocations from the first one on."""
    _database, _manager, connection = db
    budget = sandbox.WATCHDOG.budget()
    sandbox.WATCHDOG.enter(budget, sandbox.LIMITS)
    sandbox.WATCHDOG.leave(budget)
    assert budget.rss_start > 0
    receiver = connection.root()["obj"]
    receiver.define("m", "def m(self):\n    kept = []\n    while True:\n"
                         "        kept.append('x' * (14 * 2 ** 20))\n")
    with sandbox.budgets(memory_bytes=64 * 1024 * 1024, cpu_seconds=10, isolation="process"):
        with pytest.raises(sandbox.MemoryBudgetExceeded, match="allocating"):
            receiver.m()


@pytest.mark.parametrize("source, bounded", [
    ("def m(self):\n    return [self.width, self.height, 1]\n", True),
    ("def m(self):\n    level = [self.name] * 100\n    return [level] * 100\n", False),
    ("def m(self):\n    return [[self.name] * 100] * 100\n", False),
    ("def m(self, a):\n    return {'k': a}\n", True),
    ("def m(self, a):\n    a = [a] * 100\n    return [a] * 100\n", False),
    ("def tally(self, n):\n    self.items = self.items + [n]\n    return len(self.items)\n", True),
])
def test_straight_line_methods_build_no_nests(source, bounded):
    """A display of computed values could wrap a nest of shared references (comparing one
    costs its expansion in one C call): such methods run where a crash or overrun is safe."""
    assert sandbox.is_bounded(source) is bounded


def test_repetition_that_would_expand_past_the_bound_is_refused():
    level = sandbox.guarded_binop("*", [["x"] * 100], 100)  # 10,000 strings: fine
    with pytest.raises(sandbox.MemoryBudgetExceeded, match="repetition"):
        sandbox.guarded_binop("*", [level], 100)
    with pytest.raises(sandbox.MemoryBudgetExceeded, match="concatenation"):
        sandbox.guarded_binop("+", [level] * 50, [level] * 50)
