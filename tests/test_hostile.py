"""Hostile methods cannot harm the image, the ZEO server or the process that runs them.

Every finding of the red team (issue 18), replayed as it was found: a real client process
(tests/actor.py) on a real ZEO server defines the method and sends it. Afterwards that same
process still serves, every object of the image loads, and `batos check` (which loads every
object) is clean.
"""
import json

import pytest
import transaction

from conftest import run_batos
from kernel import genesis
from kernel.image import connect

AREA = "def area(self):\n    return self.width * self.height\n"
STOPS = ("CPUBudgetExceeded", "MemoryBudgetExceeded", "MethodCrashed", "SandboxViolation",
         "RecursionBudgetExceeded", "SlotError")


@pytest.fixture
def client(home, zeo, actors):
    """A long-lived client process with `box` (width 3, height 4, items [1, 2, 3]) and `peer`."""
    process, = actors(1)
    process.call("connect")
    process.call("clone", proto="traits", path="box",
                 slots={"name": "box", "items": [1, 2, 3], "width": 3, "height": 4})
    process.call("clone", proto="traits", path="peer", slots={"name": "peer", "x": 0})
    process.call("define", path="box", selector="area", source=AREA)
    process.call("link", path="box", slot="peer", target="peer")
    process.home = home
    return process


def attempt(client, op, **fields):
    """One command whose failure is expected: its answer, ok or not."""
    client.write(op=op, **fields)
    return client.read(timeout=120)


def run(client, source, *args):
    """Define `source` on box (it must pass the audit) and send it; the answer."""
    selector = source.split("(")[0].split()[-1]
    client.call("define", path="box", selector=selector, source=source)
    return attempt(client, "send", path="box", selector=selector, args=list(args))


def stopped(answer):
    """The error's kind, asserting the call was refused or stopped, not answered."""
    assert not answer["ok"], answer
    kind = answer["error"].split(":")[0]
    assert kind in STOPS, answer["error"]
    return answer["error"]


def still_sound(client):
    """The process serves, every object loads, and the image checks clean."""
    assert client.call("send", path="box", selector="area") == 12
    for path in ("box", "peer", "traits", "lobby"):
        client.call("look", path=path)
    check = run_batos("check", home=client.home.path, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr


def test_1_no_function_or_method_enters_a_slot_and_no_method_writes_another_object(client):
    error = stopped(run(client, "def steal(self):\n    self.parents[0].keep = self.parentCount\n"
                                "    self._p_changed = True\n    return 1\n"))
    assert "sending it a message" in error
    error = stopped(run(client, "def keep(self):\n    self.kept = self.area\n    self._p_changed = True\n"
                                "    return 1\n"))
    assert error.startswith("SlotError") and "holds a method" in error
    assert "keep" not in client.call("look", path="traits")["slots"]
    still_sound(client)


NEST = ("def nest(self):\n    level = [self.name] * 100\n    level = [level] * 100\n"
        "    level = [level] * 100\n    level = [level] * 100\n    level = [level] * 100\n"
        "    level = [level] * 100\n")


def test_2_6_a_shared_reference_nest_is_neither_built_nor_stored_nor_rendered(client):
    error = stopped(run(client, NEST + "    self.kept = level\n    self._p_changed = True\n"
                                       "    return 1\n"))
    assert "this repetition would hold more than" in error
    client.call("define", path="box", selector="nest2",
                source=NEST.replace("nest(", "nest2(") + "    return level\n")
    shown = run_batos("send", "box", "nest2", home=client.home.path, timeout=120)
    assert shown.returncode == 1 and "this repetition would hold more than" in shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1
    still_sound(client)


def test_2_9_the_server_merges_an_old_nest_and_a_nan_at_bounded_cost(client, zeo):
    """An image written before values were checked: the ZEO server still merges concurrent
    changes of other slots of the object, and nothing hangs."""
    nest = ["x"]
    for _ in range(6):
        nest = [nest] * 100
    first, second = connect(zeo), connect(zeo)
    try:
        with first.transaction(note="an old image") as lobby:
            box = lobby.box
            box._p_activate()
            box.__dict__.update(nest=nest, odd=float("nan"))  # as it was before the checks
            box._p_changed = True
        one = first.db.open(transaction_manager=transaction.TransactionManager())
        two = second.db.open(transaction_manager=transaction.TransactionManager())
        box_one, box_two = (genesis.lobby_of(c).box for c in (one, two))
        box_one.width, box_two.height = 5, 6
        one.transaction_manager.commit()
        two.transaction_manager.commit()  # conflicts, merged on the server
        one.close()
        two.close()
    finally:
        first.close()
        second.close()
    looked = client.call("look", path="box")
    assert (looked["slots"]["width"], looked["slots"]["height"]) == (5, 6)
    inspected = run_batos("inspect", "box", "--json", home=client.home.path, timeout=120)
    assert inspected.returncode == 0, inspected.stderr
    assert "cannot be shown" in json.loads(inspected.stdout)["slots"]["nest"]


def test_3_a_segfault_takes_down_only_the_methods_own_process(client):
    error = stopped(run(client, "def deep(self):\n    t = ()\n    for i in range(300000):\n"
                                "        t = (t,)\n    return len({t})\n"))
    assert error.startswith("MethodCrashed") and "SIGSEGV" in error
    error = stopped(run(client, "def maps(self):\n    it = [1]\n    for i in range(1000000):\n"
                                "        it = map(abs, it)\n    return list(it)\n"))
    still_sound(client)


@pytest.mark.parametrize("source", [
    "def fin(self):\n    try:\n        while True:\n            pass\n    finally:\n"
    "        while True:\n            pass\n",
    "def rnd(self):\n    return round(self.width, -(10 ** 8))\n",
    "def pw(self):\n    m = 2 ** 30000 + 1\n    return pow(3, m, m + 6)\n",
    "def collide(self):\n    m = 2 ** 61 - 1\n    xs = [m * i for i in range(40000)]\n"
    "    return len(set(xs))\n",
    "def div(self):\n    a = 7 ** 2000000\n    b = 3 ** 1000000\n    return (a // b) % 1000\n",
], ids=["finally-loop", "round", "pow-mod", "hash-collisions", "big-division"])
def test_4_cpu_escapes_are_stopped(client, source):
    client.call("configure", cpu_seconds=1.0)
    stopped(run(client, source))
    still_sound(client)


@pytest.mark.parametrize("source", [
    "def tr(self):\n    return len(('a' * 10 ** 6).translate({97: 'b' * 4000}))\n",
    "def fmt(self):\n    s = 'x' * 10 ** 6\n    return len(('%s' * 1500) % ((s,) * 1500))\n",
    "def first(self):\n    x = 'a' * (200 * 1024 * 1024)\n    return len(x)\n",
], ids=["translate", "percent-format", "first-step"])
def test_5_memory_escapes_are_stopped(client, source):
    client.call("configure", memory_bytes=64 * 1024 * 1024)
    stopped(run(client, source))
    still_sound(client)


def test_7_one_object_cannot_take_over_another(client):
    error = stopped(run(client, "def adopt(self):\n    self.parents[0].set_parents([self])\n"
                                "    self._p_changed = True\n    return 1\n"))
    assert "set_parents" in error
    client.call("define", path="box", selector="poke",
                source="def poke(self, other):\n    other.x = 99\n    self._p_changed = True\n"
                       "    return 1\n")
    error = stopped(run(client, "def poke_peer(self):\n    return self.poke(self.peer)\n"))
    assert "sending it a message" in error
    assert client.call("look", path="peer")["slots"]["x"] == 0
    assert client.call("look", path="traits")["parents"] == []
    still_sound(client)


def test_8_what_a_method_returned_is_what_committed(client, zeo):
    answer = run(client, "def sneak(self):\n    box = {'k': self.items}\n"
                         "    box['k'].append(99)\n    self._p_changed = True\n"
                         "    return self.items\n")
    assert answer["ok"] and answer["result"] == [1, 2, 3, 99]
    assert client.call("look", path="box")["slots"]["items"] == [1, 2, 3, 99]  # its cache
    other = connect(zeo)
    try:
        assert other.run(lambda lobby: list(lobby.box.items)) == [1, 2, 3, 99]  # the image
    finally:
        other.close()
    still_sound(client)


def test_9_nan_labels_and_self_rebinding(client):
    error = stopped(run(client, "def nan(self):\n    self.odd = float('nan')\n"
                                "    self._p_changed = True\n    return 1\n"))
    assert "finite" in error
    error = stopped(run(client, "def spoof(self):\n    made = self.clone(label='lobby')\n"
                                "    return 1\n"))
    assert "reserved" in error
    rebind = attempt(client, "define", path="box", selector="rebind",
                     source="def rebind(self):\n    self = self.peer\n    self._p_changed = True\n"
                            "    return 1\n")
    assert not rebind["ok"] and "self" in rebind["error"]
    still_sound(client)


def test_9_text_encodings_that_import_codecs_are_refused(client):
    error = stopped(run(client, "def enc(self):\n    return len(self.name.encode('cp1252'))\n"))
    assert error.startswith("SandboxViolation")
    assert run(client, "def utf(self):\n    return len(self.name.encode('utf-8'))\n")["result"] == 3
    still_sound(client)
