"""kernel.uvm: slots, parents, delegation, the Covenant and the three-way merge, in-memory."""
import pickle

import pytest
import transaction
import ZODB
from ZODB.POSException import ConflictError

from kernel.errors import MessageNotUnderstood, SlotError
from kernel.uvm import RESERVED_NAMES, UvmObject, merge_states


@pytest.fixture
def root():
    """The root of an in-memory ZODB database, in its own transaction manager."""
    manager = transaction.TransactionManager()
    db = ZODB.DB(None)
    connection = db.open(transaction_manager=manager)
    yield connection.root(), manager
    manager.abort()
    connection.close()
    db.close()


def test_slots_are_attributes_and_clone_delegates_to_its_prototype():
    proto = UvmObject(width=2, height=3)
    child = proto.clone(height=10)
    assert (child.width, child.height) == (2, 10)
    assert child.parents == (proto,)
    assert child.slot_names() == ["height"]
    proto.width = 5
    assert child.width == 5          # differential: not copied, delegated


def test_lookup_goes_own_slots_then_parents_in_order():
    first = UvmObject(colour="red")
    second = UvmObject(colour="blue", size=1)
    child = UvmObject(parents=(first, second))
    assert (child.colour, child.size) == ("red", 1)
    child.set_parents((second, first))
    assert child.colour == "blue"


def test_delegation_is_cycle_safe():
    a, b = UvmObject(x=1), UvmObject()
    a.set_parents((b,))
    b.set_parents((a,))
    assert b.x == 1
    with pytest.raises(MessageNotUnderstood):
        a.missing
    assert not a.responds_to("missing")


def test_a_miss_is_an_attribute_error_with_the_selector():
    obj = UvmObject(label="thing")
    with pytest.raises(AttributeError) as raised:
        obj.colour
    assert raised.value.selector == "colour"
    assert "thing does not understand 'colour'" in str(raised.value)
    assert getattr(obj, "colour", None) is None and not hasattr(obj, "colour")


def test_underscore_names_are_never_slots_and_never_misses():
    obj = UvmObject(parents=(UvmObject(x=1),))
    with pytest.raises(AttributeError) as raised:
        obj._secret
    assert not isinstance(raised.value, MessageNotUnderstood)
    with pytest.raises(SlotError):
        UvmObject(**{"_hidden": 1})
    with pytest.raises(SlotError):
        obj.send("_p_jar")
    assert obj.slot_names() == []


@pytest.mark.parametrize("name", ["clone", "define", "send", "lookup", "1abc", "class"])
def test_reserved_and_invalid_names_cannot_be_slots(name):
    with pytest.raises(SlotError):
        setattr(UvmObject(), name, 1)


def test_reserved_names_are_the_public_api():
    assert {"clone", "define", "send", "slot_names", "parents"} <= RESERVED_NAMES


def test_slot_and_mutation_persist_with_the_covenant(root):
    tree, manager = root
    tree["obj"] = obj = UvmObject(items=[])
    manager.commit()
    obj.define("add", "def add(self, item):\n    self.items.append(item)\n"
                      "    self._p_changed = True\n")
    manager.commit()
    obj.add(3)
    assert obj._p_changed
    manager.commit()
    obj._p_invalidate()     # drop the in-memory state: it must come back from storage
    assert obj.items == [3]


def test_send_calls_methods_reads_slots_and_refuses_arguments_to_slots():
    obj = UvmObject(width=4)
    obj.define("double", "def double(self, n):\n    return self.width * n\n")
    assert obj.send("double", 2) == 8 and obj.double(3) == 12
    assert obj.send("width") == 4
    with pytest.raises(SlotError):
        obj.send("width", 1)
    with pytest.raises(MessageNotUnderstood):
        obj.send("nothing")


def test_methods_are_inherited_and_run_on_the_receiver():
    proto = UvmObject(width=1, height=1)
    proto.define("area", "def area(self):\n    return self.width * self.height\n")
    square = proto.clone(width=3, height=3)
    assert square.area() == 9 and square.responds_to("area")


def test_define_refuses_a_selector_that_is_a_slot():
    obj = UvmObject(area=1)
    with pytest.raises(SlotError):
        obj.define("area", "def area(self):\n    return 2\n")


def test_objects_pickle_without_their_volatile_state(root):
    tree, manager = root
    tree["obj"] = obj = UvmObject(width=2)
    obj.define("twice", "def twice(self):\n    return self.width * 2\n")
    assert obj.twice() == 4
    manager.commit()
    state = obj.__getstate__()
    assert set(state) == {"width", "_methods"}  # the table itself is a separate record
    assert pickle.loads(pickle.dumps(obj.slots())) == {"width": 2}


# -- the three-way merge ---------------------------------------------------------------------

def test_merge_takes_both_sides_changes_to_different_slots():
    old = {"a": 1, "b": 2}
    assert merge_states(old, {"a": 10, "b": 2}, {"a": 1, "b": 20, "c": 3}) == \
        {"a": 10, "b": 20, "c": 3}


def test_merge_accepts_the_same_change_on_both_sides_and_deletions():
    old = {"a": 1, "b": 2}
    assert merge_states(old, {"a": 5, "b": 2}, {"a": 5}) == {"a": 5}


def test_merge_refuses_the_same_slot_changed_differently():
    with pytest.raises(ConflictError):
        merge_states({"a": 1}, {"a": 2}, {"a": 3})


def test_the_method_table_is_a_btree_of_its_own():
    from BTrees.OOBTree import OOBTree
    obj = UvmObject(width=1)
    assert obj._own_methods() == {}
    obj.define("one", "def one(self):\n    return 1\n")
    assert isinstance(obj._methods, OOBTree) and list(obj._own_methods()) == ["one"]


def test_merge_treats_incomparable_values_as_different():
    class Incomparable:
        def __eq__(self, other):
            raise ValueError("cannot compare")
    a, b = Incomparable(), Incomparable()
    with pytest.raises(ConflictError):
        merge_states({"k": 0}, {"k": a}, {"k": b})


def test_a_learned_selector_is_looked_up_directly_and_keeps_every_rule():
    """After the first read of a message, the class answers it without the AttributeError
    detour (a `Selector`); own slots still win, misses still miss, redefinitions show."""
    from kernel.uvm import Selector
    proto = UvmObject(width=3, height=4)
    proto.define("surface", "def surface(self):\n    return self.width * self.height\n")
    child = proto.clone(width=5)
    assert child.surface() == 20
    assert isinstance(UvmObject.__dict__["surface"], Selector)
    assert child.surface() == 20 and proto.surface() == 12
    stranger = UvmObject()
    with pytest.raises(MessageNotUnderstood):
        stranger.surface
    assert getattr(stranger, "surface", None) is None
    shadow = proto.clone(surface=7)  # an own slot of the same name wins
    assert shadow.surface == 7
    proto.define("surface", "def surface(self):\n    return self.width + self.height\n")
    assert child.surface() == 9


def test_lookup_follows_long_and_multi_parent_lineages_in_order():
    """Single-parent chains take the fast path; several parents and cycles the full walk."""
    root = UvmObject(depth=0)
    obj = root
    for _ in range(40):  # longer than the fast path follows
        obj = obj.clone()
    assert obj.depth == 0
    left, right = UvmObject(side="left"), UvmObject(side="right", only="right")
    both = UvmObject(parents=(left, right)).clone()
    assert (both.side, both.only) == ("left", "right")
    a, b = UvmObject(), UvmObject()
    a.set_parents([b])
    b.set_parents([a])
    assert a.lookup("nowhere") is None


def test_cached_lookups_follow_slots_parents_installs_aborts_and_rollbacks(root):
    """Every change that can alter what a lookup finds invalidates the cached lookups."""
    db_root, manager = root
    proto = UvmObject(width=3, height=4)
    middle = proto.clone()
    leaf = middle.clone()
    db_root["leaf"] = leaf
    manager.commit()
    assert leaf.width == 3 and leaf.width == 3  # the second read comes from the cache
    middle.width = 5  # a nearer slot shadows
    assert leaf.width == 5
    del middle.width
    assert leaf.width == 3
    leaf.set_parents([UvmObject(width=9)])
    assert leaf.width == 9
    manager.abort()  # the new parent goes: the committed lineage is back
    assert leaf.width == 3
    proto.define("area", "def area(self):\n    return self.width * self.height\n")
    manager.commit()
    assert leaf.area() == 12
    savepoint = manager.savepoint()
    middle.define("area", "def area(self):\n    return 1\n")
    assert leaf.area() == 1
    savepoint.rollback()
    assert leaf.area() == 12
    middle.define("area", "def area(self):\n    return 2\n")
    assert leaf.area() == 2
    manager.abort()
    assert leaf.area() == 12


def test_a_plain_btree_method_table_becomes_a_method_table_on_the_next_install():
    from BTrees.OOBTree import OOBTree
    from kernel.uvm import MethodTable
    obj = UvmObject(width=2)
    obj.define("one", "def one(self):\n    return 1\n")
    obj._methods = OOBTree(obj._methods)  # as images made before MethodTable hold them
    obj.define("two", "def two(self):\n    return 2\n")
    assert type(obj._methods) is MethodTable and sorted(obj._own_methods()) == ["one", "two"]
    assert (obj.one(), obj.two()) == (1, 2)
