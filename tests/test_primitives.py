"""kernel.primitives: kernel functions referred to by name, never pickled as functions."""
import pickle

import pytest

from kernel.primitives import Primitive, UnknownPrimitive, names
from kernel.uvm import UvmObject


def test_a_primitive_pickles_as_its_name_only():
    data = pickle.dumps(Primitive("describe"), protocol=3)
    assert b"describe" in data and pickle.loads(data) == Primitive("describe")


def test_primitives_bind_to_the_receiver():
    traits = UvmObject()
    for name in names():
        traits._install_method(name, Primitive(name))
    obj = UvmObject(parents=(traits,), label="thing", width=1)
    assert obj.slotNames() == ["width"]
    assert obj.respondsTo("width") and not obj.respondsTo("height")
    assert obj.describe()["label"] == "thing"
    assert obj.send("parentCount") == 1


def test_an_unknown_primitive_is_a_clear_error():
    obj = UvmObject()
    obj._install_method("vanished", Primitive("vanished"))
    with pytest.raises(UnknownPrimitive, match="vanished"):
        obj.vanished()
