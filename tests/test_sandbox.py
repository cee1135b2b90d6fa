"""kernel.sandbox: hostile methods stopped, benign methods right, budgets that keep a process
serving."""
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
    assert sandbox.guarded_write(receiver) is receiver


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


def test_self_attribute_reads_skip_the_guard_only_while_self_is_the_receiver():
    plain = sandbox.compile_method("def m(self):\n    return self.width\n", "m")
    assert "_getattr_" not in plain.__code__.co_names
    rebound = sandbox.compile_method(
        "def m(self, other):\n    for self in [other]:\n        pass\n    return self.width\n",
        "m")
    assert "_getattr_" in rebound.__code__.co_names
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
