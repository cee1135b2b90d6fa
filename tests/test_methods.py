"""kernel.methods: immutable Method records, lazy per-process compilation, one install path."""
import pytest

from kernel import guardian
from kernel.methods import Method
from kernel.uvm import UvmObject

SOURCE = "def area(self):\n    return self.width * self.height\n"


def test_install_records_source_and_provenance():
    obj = UvmObject(width=2, height=5)
    method = obj.define("area", SOURCE, author="BRICK", model="builder-smollm2", attempts=1)
    assert obj.area() == 10
    assert method.source == SOURCE and method.selector == "area"
    assert method.provenance["author"] == "BRICK"
    assert method.provenance["model"] == "builder-smollm2"
    assert method.provenance["audit"] == {"ok": True, "violations": []}
    assert "created" in method.provenance


def test_methods_are_immutable():
    method = UvmObject(width=1, height=1).define("area", SOURCE)
    with pytest.raises(AttributeError):
        method.source = "def area(self):\n    return 0\n"
    with pytest.raises(AttributeError):
        del method.selector


def test_code_is_compiled_once_and_cached_in_a_volatile_attribute():
    method = UvmObject(width=1, height=1).define("area", SOURCE)
    function = method.function
    assert method._v_function is function and method.function is function
    assert "_v_function" not in method.__getstate__()


def test_redefinition_keeps_history():
    obj = UvmObject(width=2, height=3)
    first = obj.define("area", SOURCE)
    second = obj.define("area", "def area(self):\n    return 0\n")
    assert obj.area() == 0
    assert list(second.history()) == [second, first]
    assert second.describe()["versions"] == 2


def test_a_rejected_source_installs_nothing():
    obj = UvmObject(width=1)
    with pytest.raises(guardian.AuditRejected) as raised:
        obj.define("area", "import os\ndef area(self):\n    return 1\n")
    assert not raised.value.audit.ok
    assert obj._own_methods() == {} and not obj._p_changed


def test_the_def_must_match_the_selector():
    with pytest.raises(guardian.AuditRejected) as raised:
        UvmObject().define("area", "def perimeter(self):\n    return 1\n")
    assert raised.value.audit.violations[0].rule == "selector"


def test_every_install_goes_through_the_guardian(monkeypatch):
    audited = []
    real = guardian.audit

    def spy(source):
        audited.append(source)
        return real(source)

    monkeypatch.setattr(guardian, "audit", spy)
    UvmObject(width=1, height=1).define("area", SOURCE)
    assert audited == [SOURCE]


def test_a_method_record_holds_no_function():
    method = Method("area", SOURCE, {"author": "x"})
    assert set(method.__getstate__()) == {"selector", "source", "provenance", "previous"}
