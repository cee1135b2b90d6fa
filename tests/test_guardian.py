"""kernel.guardian: the foundation's rules — method shape, no imports, no private names — and
the rule catalogue every finding names."""
import ast
import pathlib

import pytest

from kernel import guardian
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
    ("def f(self):\n    self._p_changed = False\n", "covenant"),
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


# -- the Covenant's flow analysis --------------------------------------------------------------

@pytest.mark.parametrize("body", [
    "return self.width",
    "items = list(self.items)\nitems.append(1)\nreturn items",
    "if self.n:\n    self.n = 0\n    self._p_changed = True\nreturn self.n",
    "for i in range(3):\n    self.items.append(i)\nself._p_changed = True",
    "try:\n    x = self.table['a']\nexcept KeyError:\n    return None\nself.table['b'] = x\nself._p_changed = True",
    "self.a = 1\nif self.b:\n    self._p_changed = True\n    return 1\nself._p_changed = True\nreturn 2",
    "if self.n:\n    raise ValueError('no')\nreturn 1",
    # assigning a slot of self marks the receiver changed: no Covenant line needed
    "self.items = []",
    "self.count = self.count + 1\nreturn self.count",
    "self.count += 1",
    "self.a, self.b = 1, 2",
    "self.a = 1\nif self.b:\n    return 1\nself._p_changed = True",
    "while self.n:\n    self.n = self.n - 1\n    if self.n == 3:\n        break",
])
def test_covenant_accepts(body):
    source = "def m(self):\n" + "".join(f"    {line}\n" for line in body.splitlines())
    assert audit(source).ok, audit(source).report()


@pytest.mark.parametrize("body", [
    "self.items.append(1)\nif self.b:\n    return 1\nself._p_changed = True",
    "for row in self.rows:\n    row.append(1)\n    self._p_changed = True\n    break\nrow = self.rows[0]\nrow.append(2)",
    "while self.n:\n    self.items.pop()\n    if self.n == 3:\n        break\n    self._p_changed = True",
    "x = self.table.get('k')\nx.append(1)",
    "self.table['k'] = 1",
    "self.box.size = 1",
    "self.items += [1]\nself.table['k'] = 1",
    "del self.width",
    "other = self\nother.width = 1",
    "[r.append(1) for r in self.rows]",
    "try:\n    self.table['a'] = 1\nexcept KeyError:\n    return None\nself._p_changed = True",
])
def test_covenant_rejects(body):
    source = "def m(self):\n" + "".join(f"    {line}\n" for line in body.splitlines())
    verdict = audit(source)
    assert not verdict.ok and {v.rule for v in verdict.violations} == {"covenant"}


@pytest.mark.parametrize("body", [
    "self = self.peer\nself._p_changed = True",  # the red team's: the Covenant on another
    "self += 1",
    "self, x = self.peer, 1",
    "for self in self.peers:\n    self.items.append(1)\nself._p_changed = True",
    "try:\n    return 1 / 0\nexcept ZeroDivisionError as self:\n    return self",
    "del self",
    "return [self.width for self in self.peers]",
    "f = lambda self: self.width\nreturn f(self.peer)",
    "f = lambda *self: self\nreturn f(1)",
    "f = lambda x, self=1: x\nreturn f(1)",
])
def test_self_is_never_rebound(body):
    source = "def m(self):\n" + "".join(f"    {line}\n" for line in body.splitlines())
    verdict = audit(source)
    assert not verdict.ok and "self" in {v.rule for v in verdict.violations}, verdict.report()


def test_violations_are_line_anchored_and_readable():
    verdict = audit("def m(self):\n    x = 1\n    return self.__class__\n")
    (violation,) = verdict.violations
    assert (violation.line, violation.column, violation.rule) == (3, 11, "underscore")
    assert verdict.report() == ("rejected:\n  line 3:11 [underscore] the attribute "
                                "'__class__' is private")


def test_identifiers_are_judged_after_nfkc():
    assert audit("def m(self):\n    return \uff45\uff56\uff41\uff4c('1')\n").violations[0].rule \
        == "forbidden-name"


# -- fuzzing: the audit always answers -------------------------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

from method_corpus import BENIGN, HOSTILE  # noqa: E402

SOURCES = [h[1] for h in HOSTILE] + [b[1] for b in BENIGN]


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=400))
def test_random_text_always_gets_a_verdict(text):
    verdict = audit(text)
    assert isinstance(verdict.ok, bool)


@st.composite
def mutated_sources(draw):
    source = draw(st.sampled_from(SOURCES))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(source)))
        action = draw(st.sampled_from(["insert", "delete", "duplicate"]))
        if action == "insert":
            piece = draw(st.sampled_from(["_", "(", ")", ":", "\n", "    ", "self.", "__",
                                          "lambda: ", "yield ", "[", "]", "'", "*", "\uff3f"])
                         | st.text(max_size=5))
            source = source[:position] + piece + source[position:]
        elif action == "delete":
            source = source[:position] + source[position + draw(st.integers(1, 8)):]
        else:
            source = source[:position] + source[position:position + 20] + source[position:]
    return source


@settings(max_examples=1500, deadline=None)
@given(mutated_sources())
def test_mutated_methods_always_get_a_verdict(source):
    verdict = audit(source)
    assert isinstance(verdict.ok, bool)
    assert all(isinstance(v.line, int) and v.rule and v.message for v in verdict.violations)


def test_a_verdict_is_remembered_for_the_same_source():
    """A transaction retried after a conflict does not pay for the audit again."""
    source = "def remembered(self):\n    return self.width + 1\n"
    first = audit(source)
    assert first.ok and audit(source) is first
    assert audit(source + "\n") is not first


# -- the rule catalogue ------------------------------------------------------------------------

def parser_node_classes():
    """Every concrete `ast` node class of the running Python: the classes of `_ast` (the
    parser's own; the deprecated aliases such as `ast.Num` live in `ast.py` and are never
    made) reached from `ast.AST`, without the abstract ones (`stmt`, `expr`, `operator`, …)
    that other parser classes derive from."""
    import _ast
    made = {value for value in vars(_ast).values() if isinstance(value, type)}
    found, stack = set(), [ast.AST]
    while stack:
        for subclass in stack.pop().__subclasses__():
            if subclass not in found:
                found.add(subclass)
                stack.append(subclass)
    parsed = found & made
    return {kind for kind in parsed if not any(sub in parsed for sub in kind.__subclasses__())}


def test_every_node_class_of_this_python_is_allowed_or_denied_with_a_reason():
    """Deny by default is not enough for a new Python's syntax: each node class the parser can
    make is reviewed — allowed, or denied with a rule of the catalogue and a message — as
    RestrictedPython's transformer has a visitor (or an error) for every node type."""
    classes = parser_node_classes()
    assert {ast.FunctionDef, ast.Constant, ast.Add, ast.MatchAs} <= classes
    assert ast.stmt not in classes and ast.Num not in classes
    unreviewed = sorted(kind.__name__ for kind in classes
                        if kind not in guardian.ALLOWED_NODES and kind not in guardian.NODE_REASONS)
    assert unreviewed == []
    assert not guardian.ALLOWED_NODES & set(guardian.NODE_REASONS)
    for kind in classes - guardian.ALLOWED_NODES:
        rule, message = guardian.node_verdict(kind)
        assert rule in guardian.RULES and message, kind
    assert all(guardian.node_verdict(kind) is None for kind in guardian.ALLOWED_NODES)


def test_every_finding_names_a_rule_of_the_catalogue():
    """No loose rule ids: every `findings.add` and `_reject` in the guardian names a `Rule`, each
    `Rule` is in `RULES` with a one-line reason, and an id outside it fails the audit closed."""
    tree = ast.parse(pathlib.Path(guardian.__file__).read_text())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, (ast.Attribute, ast.Name))
             and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("add", "_reject")]
    rule_args = [call.args[1] if getattr(call.func, "attr", None) == "add" else call.args[3]
                 for call in calls if len(call.args) > 1]
    assert len(rule_args) >= 27
    loose = [ast.unparse(arg) for arg in rule_args
             if not (ast.unparse(arg).startswith("Rule.") or ast.unparse(arg) == "*denied")]
    assert loose == []
    names = {name: value for name, value in vars(guardian.Rule).items() if name.isupper()}
    assert set(names.values()) == set(guardian.RULES)
    assert all(reason and "\n" not in reason for reason in guardian.RULES.values())
    findings = guardian.Findings()
    with pytest.raises(KeyError):
        findings.add(None, "no-such-rule", "a rule outside the catalogue")


@pytest.mark.parametrize("source, rule", [
    ("def m(self):\n    return self.a @ self.b\n", "node"),
    ("def m(self):\n    match self.a:\n        case 1:\n            return 1\n", "match"),
    ("def m(self):\n    with self.a as b:\n        return b\n", "with"),
])
def test_denied_nodes_name_their_rule(source, rule):
    verdict = audit(source)
    assert not verdict.ok and rule in {v.rule for v in verdict.violations}
    assert all(type(v.rule) is str for v in verdict.violations)  # plain text in provenance
