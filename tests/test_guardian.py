"""kernel.guardian: the foundation's rules — method shape, no imports, no private names."""
import pytest

from kernel.guardian import audit


def test_a_plain_method_passes():
    verdict = audit("def area(self):\n    return self.width * self.height\n")
    assert verdict.ok and verdict.function_name == "area"


def test_the_covenant_line_is_allowed():
    assert audit("def grow(self):\n    self.size = self.size + 1\n"
                 "    self._p_changed = True\n").ok


@pytest.mark.parametrize("source, rule", [
    ("x = 1", "shape"),
    ("def f(self):\n    return 1\ndef g(self):\n    return 2\n", "shape"),
    ("def f(x):\n    return x\n", "shape"),
    ("@staticmethod\ndef f(self):\n    return 1\n", "shape"),
    ("def f(self):\n    import os\n", "import"),
    ("def f(self):\n    return self._p_jar\n", "underscore"),
    ("def f(self):\n    return __builtins__\n", "underscore"),
    ("def f(self):\n    self._p_changed = False\n", "underscore"),
    ("def f(self:\n", "syntax"),
    ("def f(self):\n    return (x for x in ()).gi_frame.f_back\n", "introspection"),
    ("def f(self):\n    return '{0.__class__}'.format(self)\n", "introspection"),
])
def test_rejections_name_their_rule(source, rule):
    verdict = audit(source)
    assert not verdict.ok
    assert rule in {v.rule for v in verdict.violations}
    assert all(v.message for v in verdict.violations)


def test_non_text_and_deep_input_fail_closed():
    assert not audit(None).ok
    assert not audit("def f(self):\n    return " + "(" * 100000 + ")" * 100000).ok
