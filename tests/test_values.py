"""kernel.values: plain renderings and the caller's-expectation check."""
from BTrees.Length import Length
from BTrees.OOBTree import OOBTree

from kernel.uvm import UvmObject
from kernel.values import matches, plain


def test_plain_renders_objects_btrees_and_counters():
    assert plain({"a": (1, UvmObject(label="x"))}) == {"a": [1, {"object": "x"}]}
    assert plain(OOBTree({"k": 1})) == {"btree": "OOBTree", "items": 1}
    assert plain(Length(3)) == {"counter": 3}


def test_matches_as_a_person_means_it():
    assert matches(0.1 + 0.2, 0.3) and matches((1, 2), [1, 2]) and matches(2.0, 2)
    assert not matches(True, 1) and not matches(1, True) and not matches("1", 1)
    assert matches({"a": [1.0]}, {"a": [1]}) and not matches({"a": 1}, {"a": 1, "b": 2})
