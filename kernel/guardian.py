"""The PersistenceGuardian: the one audit every method passes before it enters the image.

Every install path (`UvmObject.define`, and later the `_doesNotUnderstand` cycle) calls
`audit(source)` and installs nothing unless the verdict is `ok`. This module holds the
foundation's rules — the shape of a method and the first deny rules; the guardian issue grows
it into the full deny-by-default visitor without changing its interface.
"""
import ast
import dataclasses
import logging

from kernel.errors import BatosError

log = logging.getLogger(__name__)

COVENANT_ATTRIBUTE = "_p_changed"

# Attributes that reach frames, code or globals without an underscore, and string-keyed
# formatting that reads attributes by name ("{0.__class__}".format(x)).
INTROSPECTION_ATTRIBUTES = frozenset({
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "ag_frame",
    "ag_code", "ag_await", "f_back", "f_globals", "f_locals", "f_builtins", "f_code",
    "tb_frame", "tb_next", "co_code", "func_globals", "mro", "format", "format_map",
})


@dataclasses.dataclass(frozen=True)
class Violation:
    """One finding: where it is, which rule it breaks, and what a person should know."""

    line: int
    column: int
    rule: str
    message: str

    def __str__(self):
        return f"line {self.line}:{self.column} [{self.rule}] {self.message}"


@dataclasses.dataclass(frozen=True)
class Audit:
    """The guardian's verdict on one source text: `ok` and the violations found."""

    source: str
    violations: tuple = ()
    function_name: str = None

    @property
    def ok(self):
        """True when the source may be installed."""
        return not self.violations

    def as_record(self):
        """The verdict as plain data, for a Method's provenance."""
        return {"ok": self.ok, "violations": [dataclasses.asdict(v) for v in self.violations]}


class AuditRejected(BatosError):
    """The guardian refused a method's source; `audit` holds the verdict. Final for that source."""

    def __init__(self, verdict):
        self.audit = verdict
        super().__init__("method rejected by the guardian: "
                         + "; ".join(str(v) for v in verdict.violations))


def audit(source):
    """Judge `source`; never raises — anything that cannot be analysed is rejected."""
    if not isinstance(source, str):
        return Audit(repr(source), (Violation(0, 0, "not-text", "source must be text"),))
    try:
        tree = ast.parse(source, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        line = getattr(exc, "lineno", 0) or 0
        return Audit(source, (Violation(line, 0, "syntax", f"cannot parse: {exc}"),))
    findings = []
    function = _check_shape(tree, findings)
    if function is not None:
        _check_names(function, findings)
    return Audit(source, tuple(findings), function.name if function is not None else None)


def _check_shape(tree, findings):
    """Exactly one top-level `def` whose first parameter is `self`, nothing else."""
    body = tree.body
    if len(body) != 1 or not isinstance(body[0], ast.FunctionDef):
        node = body[0] if body else tree
        findings.append(Violation(getattr(node, "lineno", 0), getattr(node, "col_offset", 0),
                                  "shape", "source must be exactly one top-level def"))
        return None
    function = body[0]
    params = function.args.posonlyargs + function.args.args
    if not params or params[0].arg != "self":
        findings.append(Violation(function.lineno, function.col_offset, "shape",
                                  "the first parameter must be self"))
    if function.decorator_list:
        findings.append(Violation(function.lineno, function.col_offset, "shape",
                                  "decorators are not allowed"))
    return function


def _check_names(function, findings):
    """No imports, no introspection attributes, no `_` names but the Covenant's line."""
    covenant_targets = {
        id(node.targets[0]) for node in ast.walk(function)
        if isinstance(node, ast.Assign) and _is_covenant(node)}
    for node in ast.walk(function):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            findings.append(Violation(node.lineno, node.col_offset, "import",
                                      "imports are not allowed"))
        elif isinstance(node, ast.Attribute) and node.attr in INTROSPECTION_ATTRIBUTES:
            findings.append(Violation(node.lineno, node.col_offset, "introspection",
                                      f"attribute {node.attr!r} is not allowed"))
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            if id(node) not in covenant_targets:
                findings.append(Violation(node.lineno, node.col_offset, "underscore",
                                          f"attribute {node.attr!r} is private"))
        elif isinstance(node, ast.Name) and node.id.startswith("_"):
            findings.append(Violation(node.lineno, node.col_offset, "underscore",
                                      f"name {node.id!r} is private"))


def _is_covenant(node):
    """True for exactly `self._p_changed = True`."""
    if len(node.targets) != 1:
        return False
    target = node.targets[0]
    return (isinstance(target, ast.Attribute) and target.attr == COVENANT_ATTRIBUTE
            and isinstance(target.value, ast.Name) and target.value.id == "self"
            and isinstance(node.value, ast.Constant) and node.value.value is True)
