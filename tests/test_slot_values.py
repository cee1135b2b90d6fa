"""kernel.slot_values: only image values enter a slot, and lists and dicts know their owner.

The property: every value `admit` accepts pickles, unpickles in a fresh process to an equal
value, and merges on the server's three-way merge; everything else is a `SlotError` before
anything is stored.
"""
import math
import pickle
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel import slot_values
from kernel.errors import SlotError
from kernel.primitives import Primitive
from kernel.uvm import UvmObject, merge_states

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 80, 2 ** 80),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
KEYS = st.one_of(st.text(max_size=8), st.integers(-100, 100), st.booleans())
IMAGE_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.tuples(inner, inner), st.dictionaries(KEYS, inner,
                                                                          max_size=5)),
    max_leaves=25)
NOT_IMAGE_VALUES = [
    len, print, Primitive("describe"), UvmObject().clone, iter([1]), {1, 2}, float("nan"),
    float("inf"), object(), b"bytes", 10 ** 5000, range(3), {(1, 2): [1], frozenset(): 1}]


@settings(max_examples=300, deadline=None)
@given(st.lists(IMAGE_VALUES, min_size=1, max_size=10))
def test_accepted_values_pickle_load_in_a_fresh_process_and_merge(values):
    owner = UvmObject()
    stored = [slot_values.admit(value, owner) for value in values]
    assert stored == [value for value in values]
    blob = pickle.dumps(stored, protocol=3)
    loaded = subprocess.run(
        [sys.executable, "-c", "import pickle, sys; values = pickle.load(sys.stdin.buffer); "
                               "print(repr(values))"],
        input=blob, capture_output=True, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    assert eval(loaded.stdout.decode()) == [slot_values.plain_copy(v) for v in stored]
    old = {"k": 0}
    saved = {"k": 0, **{f"s{n}": v for n, v in enumerate(stored)}}
    assert merge_states(old, saved, {"k": 1}) == {**saved, "k": 1}


@pytest.mark.parametrize("value", NOT_IMAGE_VALUES, ids=lambda v: type(v).__name__)
def test_everything_else_is_refused_before_it_is_stored(value):
    owner = UvmObject(kept=1)
    with pytest.raises(SlotError):
        owner.bad = value
    with pytest.raises(SlotError):
        owner.bad = [1, {"nested": [value]}]
    assert owner.slots() == {"kept": 1}


def test_size_and_depth_are_counted_as_a_tree():
    shared = ["x"] * 1000
    with pytest.raises(SlotError, match="more than 100,000 items"):
        slot_values.admit([shared] * 200)  # 200,200 items once expanded, 1,201 distinct
    deep = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(SlotError, match="nested more than 32"):
        slot_values.admit(deep)
    with pytest.raises(SlotError, match="characters"):
        slot_values.admit(["x" * 1_000_000] * 5)


def test_an_admitted_value_is_a_copy_that_its_owner_owns():
    owner, other = UvmObject(), UvmObject()
    original = [1, [2, 3], {"k": [4]}]
    owner.items = original
    assert owner.items == original and owner.items is not original
    assert owner.items[1].owner is owner and owner.items[2]["k"].owner is owner
    other.items = owner.items  # another object's slot gets its own copy
    assert other.items.owner is other and other.items[1] is not owner.items[1]


def test_changing_an_owned_container_in_place_marks_its_owner_changed(lobby):
    lobby.box = lobby.traits.clone(items=[1], table={"a": [1]})
    lobby._p_jar.transaction_manager.commit()
    box = lobby.box
    assert not box._p_changed
    alias = {"k": box.items}
    alias["k"].append(2)
    assert box._p_changed and box.items == [1, 2]
    lobby._p_jar.transaction_manager.commit()
    box.table["a"].extend([math.pi])
    assert box._p_changed
    with pytest.raises(SlotError):
        box.items.append(len)  # what enters an owned container is admitted too
