"""kernel.isolation: a method that loops runs in a disposable fork; what it changed comes back.

These run on an in-memory image (ZODB's MappingStorage); tests/test_hostile.py and
tests/test_fuzz_methods.py run the same against a real ZEO server.
"""
import os

import pytest
import transaction
import ZODB

from kernel import genesis, sandbox
from kernel.image import default_personas

LOOPING = "    for i in range(2):\n        pass\n"  # not straight-line: it runs in a fork


@pytest.fixture
def image():
    """A committed box (items [1, 2]) seen through a second, fresh connection: its objects
    are ghosts there until something loads them."""
    db = ZODB.DB(None)
    genesis.ensure_awake(db, default_personas())
    writer = transaction.TransactionManager()
    lobby = genesis.lobby_of(db.open(transaction_manager=writer))
    lobby.box = lobby.traits.clone(items=[1, 2], name="box")
    lobby.box.define("grow", "def grow(self, n):\n" + LOOPING
                     + "    made = self.clone(n=n)\n    self.child = made\n"
                     "    self.items.append(n)\n    self._p_changed = True\n    return made\n")
    lobby.box.define("fail", "def fail(self):\n" + LOOPING
                     + "    self.name = 'changed'\n    return {}['missing']\n")
    lobby.box.define("crash", "def crash(self):\n    t = ()\n    for i in range(300000):\n"
                              "        t = (t,)\n    return len({t})\n")
    writer.commit()
    manager = transaction.TransactionManager()
    reader = db.open(transaction_manager=manager)
    yield genesis.lobby_of(reader), manager
    manager.abort()
    db.close()


def test_what_the_fork_changed_comes_back_with_its_identity(image):
    lobby, manager = image
    box = lobby.box
    made = box.grow(3)
    assert box.items == [1, 2, 3] and box.child is made and made.n == 3
    assert made.parents == (box,) and box._p_changed
    manager.commit()
    assert lobby.box.child.n == 3


def test_a_method_that_fails_leaves_nothing_behind(image):
    lobby, _manager = image
    with pytest.raises(KeyError):
        lobby.box.fail()
    assert lobby.box.name == "box" and not lobby.box._p_changed


def test_a_crash_ends_only_the_fork_and_changes_nothing(image):
    lobby, _manager = image
    with pytest.raises(sandbox.MethodCrashed, match="SIGSEGV"):
        lobby.box.crash()
    assert lobby.box.items == [1, 2] and lobby.box.grow(4).n == 4


def test_many_calls_leave_no_descriptor_or_process_behind(image):
    lobby, _manager = image
    before = len(os.listdir("/proc/self/fd"))
    for n in range(20):
        lobby.box.grow(n)
        with pytest.raises(sandbox.MethodCrashed):
            lobby.box.crash()
    assert len(os.listdir("/proc/self/fd")) == before
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # every fork was reaped
