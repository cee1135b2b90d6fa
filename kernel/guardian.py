"""The PersistenceGuardian: the one audit every method passes before it enters the image.

Generated code is hostile until proven otherwise. `audit(source)` reads a method's source with
`ast` and judges it deny-by-default: only an allowlisted set of node types and builtins may
appear; names are judged as Python reads them (NFKC-normalised); no `_` name or attribute but
the Covenant's `self._p_changed = True`; no introspection attribute, no string-keyed attribute
access, no imports, classes, scopes or generators; `self` always names the receiver (it is
never assigned, deleted, looped over, caught into or shadowed by a lambda's parameter); and a
method that changes state in place (`self.items.append(x)`, `self.table[k] = v`, also through
an alias) must end every such path with the Covenant — assigning a slot of `self`
(`self.count = self.count + 1`) needs none, for the assignment marks the receiver changed
itself. The verdict, an `Audit`, collects every finding with its line, column, rule id and a
message a person understands. Every rule id comes from one catalogue, `RULES` (id → one-line
reason, named by `Rule`; `batos audit --rules` prints it), and every `ast` node class is either
in `ALLOWED_NODES` or denied with its rule in `DENIED_NODES`, the way RestrictedPython's
transformer reviews each node type. The audit is pure and fails closed: input it cannot analyse is
rejected, never an exception.

Every install path (`kernel.methods.install`, reached from `UvmObject.define` and the
`_doesNotUnderstand` cycle) calls `audit`; a rejection raises `AuditRejected` and installs
nothing. What the audit cannot know statically — types, sizes, time — the sandbox guards at
run time (`kernel.sandbox`).
"""
import ast
import dataclasses
import functools
import logging
import unicodedata

from kernel.errors import BatosError

log = logging.getLogger(__name__)

COVENANT_ATTRIBUTE = "_p_changed"
RECEIVER = "self"
SELF_FIXED = ("self always names the receiver: a method cannot assign, delete, loop over, "
              "catch into or shadow it")
MAX_SOURCE_CHARS = 20_000
MAX_FORMAT_WIDTH = 1_000

ALLOWED_NODES = frozenset({
    # statements
    ast.Module, ast.FunctionDef, ast.Return, ast.Assign, ast.AugAssign, ast.For, ast.While,
    ast.If, ast.Expr, ast.Pass, ast.Break, ast.Continue, ast.Try, ast.ExceptHandler,
    ast.Raise, ast.Assert, ast.Delete,
    # expressions
    ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Lambda, ast.IfExp, ast.Dict, ast.Set,
    ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Compare, ast.Call,
    ast.FormattedValue, ast.JoinedStr, ast.Constant, ast.Attribute, ast.Subscript,
    ast.Starred, ast.Name, ast.List, ast.Tuple, ast.Slice,
    # parts
    ast.arguments, ast.arg, ast.keyword, ast.comprehension,
    ast.Load, ast.Store, ast.Del,
    ast.And, ast.Or, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.LShift, ast.RShift, ast.BitOr, ast.BitXor, ast.BitAnd,
    ast.Invert, ast.Not, ast.UAdd, ast.USub,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn,
})

# -- the rule catalogue ------------------------------------------------------------------------
#
# Every finding names one rule of this catalogue (`batos audit --rules` prints it); the ids are
# what a verdict records (`Violation.rule`, plain text in a Method's provenance).

RULES = {}


def _rule(rule_id, reason):
    """Enter `rule_id` with its one-line reason in `RULES`; return the id."""
    RULES[rule_id] = reason
    return rule_id


class Rule:
    """The catalogue's ids as names, so that every finding names a rule of `RULES`."""

    SYNTAX = _rule("syntax", "the source must parse as Python")
    NOT_TEXT = _rule("not-text", "a method's source is text")
    TOO_LONG = _rule("too-long", f"a source has at most {MAX_SOURCE_CHARS} characters")
    TOO_COMPLEX = _rule("too-complex", "a source too deeply nested to analyse is rejected")
    UNANALYSABLE = _rule("unanalysable",
                         "the audit fails closed: a source it cannot analyse is rejected")
    SHAPE = _rule("shape", "a method is exactly one top-level def, first parameter self, "
                           "no decorators")
    NESTED_DEF = _rule("nested-def", "no function is defined inside a method (a lambda may be)")
    NODE = _rule("node", "deny by default: only allowlisted kinds of syntax may appear")
    IMPORT = _rule("import", "no imports: a method uses only its receiver and arguments")
    CLASS = _rule("class", "no classes are defined inside a method")
    SCOPE = _rule("scope", "no global or nonlocal: a method reaches no scope but its own")
    GENERATOR = _rule("generator", "no yield: a method returns a value, it is not a generator")
    ASYNC = _rule("async", "no async or await: a method runs to completion in its call")
    WITH = _rule("with", "no with blocks: no files, no context managers")
    MATCH = _rule("match", "no match statements: class patterns read attributes by name")
    WALRUS = _rule("walrus", "no assignment expressions (:=)")
    TRY_STAR = _rule("try-star", "no except*: exception groups are not a method's business")
    TYPING = _rule("typing", "no type aliases or type parameters")
    TEMPLATE = _rule("template", "no template strings (t-strings)")
    ANNOTATION = _rule("annotation", "no annotations: they are code the method never needs")
    SELF = _rule("self", "self always names the receiver: never assigned, deleted, looped over, "
                         "caught into or shadowed")
    UNDERSCORE = _rule("underscore", "no name or attribute starting with _ but the Covenant's "
                                     "self._p_changed = True")
    FORBIDDEN_NAME = _rule("forbidden-name", "no string-keyed access, introspection or I/O "
                                             "builtins (getattr, eval, open, type, ...)")
    UNKNOWN_NAME = _rule("unknown-name", "a name is a local, a parameter or an allowlisted "
                                         "builtin or exception")
    INTROSPECTION = _rule("introspection", "no introspection or string-keyed attributes "
                                           "(mro, format, f_*, co_*, ...)")
    COVENANT = _rule("covenant", "a method that changes state in place ends every such path "
                                 "with self._p_changed = True")
    DEFAULT = _rule("default", "parameter defaults are constants")
    BARE_EXCEPT = _rule("bare-except", "no bare except: it would swallow the sandbox's stops")
    EXCEPT = _rule("except", "only ordinary, named exceptions may be caught")
    FINALLY = _rule("finally", "no return, break or continue inside finally: they would cancel "
                               "the sandbox's stops")
    FORMAT_SPEC = _rule("format-spec", f"f-string format specs are literal, widths at most "
                                       f"{MAX_FORMAT_WIDTH}")
    AUGASSIGN = _rule("augassign", "an augmented assignment's target contains no call "
                                   "(it is evaluated twice)")
    CONSTANT = _rule("constant", "integer literals have at most 4096 bits")


NO_IMPORTS = (Rule.IMPORT, "imports are not allowed: a method uses only its receiver and "
                           "arguments")
NO_MATCH = (Rule.MATCH, "match statements are not allowed (class patterns read attributes)")
NO_TYPING = (Rule.TYPING, "type aliases and type parameters are not allowed")
# The node classes outside ALLOWED_NODES, each with the rule it breaks, by name, so that a node
# class this Python does not have is simply absent (tests/test_guardian.py checks that every
# node class of the running Python is allowed or named here).
DENIED_NODES = {
    # what the parser makes only outside `exec` mode or with type comments, never here
    "Interactive": (Rule.NODE, "only a module holding one def is audited"),
    "Expression": (Rule.NODE, "only a module holding one def is audited"),
    "FunctionType": (Rule.NODE, "only a module holding one def is audited"),
    "TypeIgnore": (Rule.NODE, "type comments are not read"),
    "MatMult": (Rule.NODE, "the @ operator (MatMult) is not allowed"),
    "Import": NO_IMPORTS,
    "ImportFrom": NO_IMPORTS,
    "alias": NO_IMPORTS,
    "ClassDef": (Rule.CLASS, "classes cannot be defined inside a method"),
    "Global": (Rule.SCOPE, "global is not allowed"),
    "Nonlocal": (Rule.SCOPE, "nonlocal is not allowed"),
    "Yield": (Rule.GENERATOR, "yield is not allowed: a method returns a value"),
    "YieldFrom": (Rule.GENERATOR, "yield from is not allowed"),
    "Await": (Rule.ASYNC, "await is not allowed"),
    "AsyncFunctionDef": (Rule.ASYNC, "async functions are not allowed"),
    "AsyncFor": (Rule.ASYNC, "async for is not allowed"),
    "AsyncWith": (Rule.ASYNC, "async with is not allowed"),
    "With": (Rule.WITH, "with blocks are not allowed (no files, no context managers)"),
    "withitem": (Rule.WITH, "with blocks are not allowed (no files, no context managers)"),
    "Match": NO_MATCH, "match_case": NO_MATCH, "MatchValue": NO_MATCH,
    "MatchSingleton": NO_MATCH, "MatchSequence": NO_MATCH, "MatchMapping": NO_MATCH,
    "MatchClass": NO_MATCH, "MatchStar": NO_MATCH, "MatchAs": NO_MATCH, "MatchOr": NO_MATCH,
    "NamedExpr": (Rule.WALRUS, "assignment expressions (:=) are not allowed"),
    "AnnAssign": (Rule.ANNOTATION, "annotations are not allowed"),
    "TryStar": (Rule.TRY_STAR, "except* is not allowed"),
    # Python 3.12+: `type X = ...` and `def m[T](self)`
    "TypeAlias": NO_TYPING, "TypeVar": NO_TYPING, "ParamSpec": NO_TYPING,
    "TypeVarTuple": NO_TYPING,
    # Python 3.14+: t-strings
    "TemplateStr": (Rule.TEMPLATE, "template strings are not allowed"),
    "Interpolation": (Rule.TEMPLATE, "template strings are not allowed"),
}
NODE_REASONS = {getattr(ast, name): reason for name, reason in DENIED_NODES.items()
                if hasattr(ast, name)}


def node_verdict(kind):
    """None when the `ast` node class `kind` is allowed, else its (rule, message): deny by
    default — a class neither allowed nor named in `DENIED_NODES` breaks `Rule.NODE`."""
    if kind in ALLOWED_NODES:
        return None
    return NODE_REASONS.get(kind, (Rule.NODE, f"{kind.__name__} is not allowed"))


ALLOWED_BUILTINS = frozenset({
    "abs", "all", "any", "bin", "bool", "callable", "chr", "dict", "divmod", "enumerate",
    "filter", "float", "frozenset", "hex", "int", "isinstance", "len", "list", "map", "max",
    "min", "oct", "ord", "pow", "range", "repr", "reversed", "round", "set", "sorted", "str",
    "sum", "tuple", "zip", "True", "False", "None",
})
CATCHABLE_EXCEPTIONS = frozenset({
    "Exception", "ArithmeticError", "AssertionError", "AttributeError", "IndexError",
    "KeyError", "LookupError", "OverflowError", "RuntimeError", "StopIteration", "TypeError",
    "ValueError", "ZeroDivisionError",
})
ALLOWED_GLOBALS = ALLOWED_BUILTINS | CATCHABLE_EXCEPTIONS | {"NotImplementedError"}

STRING_KEYED = frozenset({
    "getattr", "setattr", "delattr", "hasattr", "vars", "dir", "globals", "locals", "eval",
    "exec", "compile", "open", "input", "breakpoint", "help", "print", "type", "object",
    "super", "classmethod", "staticmethod", "property", "memoryview", "bytearray", "iter",
    "next", "id", "exit", "quit", "copyright", "credits", "license", "format", "Formatter",
    "string", "sys", "os", "builtins",
})
INTROSPECTION_ATTRIBUTES = frozenset({
    "mro", "format", "format_map", "obj", "with_traceback", "get_field", "get_value",
    "vformat", "Formatter", "im_func", "im_self", "im_class", "func_globals", "func_code",
    "to_bytes", "define", "lookup",
})
INTROSPECTION_PREFIXES = ("gi_", "cr_", "ag_", "f_", "tb_", "co_", "func_")

MUTATING_METHODS = frozenset({
    "append", "extend", "insert", "remove", "pop", "clear", "sort", "reverse", "update",
    "setdefault", "popitem", "add", "discard", "difference_update", "intersection_update",
    "symmetric_difference_update", "change", "set", "set_parents",
})
ALIASING_METHODS = frozenset({"get", "setdefault", "values", "items", "pop", "popitem"})


class AuditRejected(BatosError):
    """The guardian refused a method's source; `audit` holds the verdict. Final for that source."""

    def __init__(self, verdict):
        self.audit = verdict
        super().__init__("method rejected by the guardian: "
                         + "; ".join(str(v) for v in verdict.violations))


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

    def report(self):
        """The verdict for a person: one line per violation, anchored at its line."""
        if self.ok:
            return "accepted"
        return "rejected:\n" + "\n".join(f"  {v}" for v in self.violations)


def audit(source):
    """Judge `source`; never raises — anything that cannot be analysed is rejected.

    A verdict depends on the text alone and is immutable, so the latest ones are remembered:
    a transaction that installs a method and is retried after a conflict is not audited twice.
    (An analysis that fails — too deep for this stack, out of memory — is not remembered.)
    """
    try:
        if isinstance(source, str) and len(source) <= MAX_REMEMBERED_SOURCE:
            return _remembered_audit(source)
        return _audit(source)
    except (RecursionError, MemoryError):
        return _reject(source, 0, 0, Rule.TOO_COMPLEX,
                       "the source is too deeply nested to analyse")
    except Exception as exc:  # fail closed: an audit that cannot finish rejects
        log.warning("guardian could not analyse a source: %r", exc)
        return _reject(source, 0, 0, Rule.UNANALYSABLE,
                       f"the source could not be analysed ({exc})")


MAX_REMEMBERED_SOURCE = 20_000


@functools.lru_cache(maxsize=256)
def _remembered_audit(source):
    return _audit(source)


def _reject(source, line, column, rule, message):
    return Audit(source if isinstance(source, str) else repr(source)[:200],
                 (Violation(line, column, rule, message),))


def _audit(source):
    if not isinstance(source, str):
        return _reject(source, 0, 0, Rule.NOT_TEXT, "a method's source must be text")
    if len(source) > MAX_SOURCE_CHARS:
        return _reject(source, 0, 0, Rule.TOO_LONG,
                       f"the source has {len(source)} characters; the limit is {MAX_SOURCE_CHARS}")
    try:
        tree = ast.parse(source, mode="exec")
    except (SyntaxError, ValueError) as exc:
        return _reject(source, getattr(exc, "lineno", 0) or 0, getattr(exc, "offset", 0) or 0,
                       Rule.SYNTAX, f"the source does not parse: {getattr(exc, 'msg', exc)}")
    findings = Findings()
    function = _check_shape(tree, findings)
    if function is not None:
        nodes = list(ast.walk(function))
        _check_nodes(function, nodes, findings)
        CovenantCheck(function, nodes, findings).run()
    return Audit(source, findings.sorted(), function.name if function is not None else None)


class Findings:
    """Violations collected during one audit, one per (place, rule)."""

    def __init__(self):
        self._seen = {}

    def add(self, node, rule, message):
        """Record a violation of `rule` (an id of `RULES`) at `node` (an AST node, or None for
        the whole source). A rule outside the catalogue is an error: the audit fails closed."""
        if rule not in RULES:
            raise KeyError(f"{rule!r} is not a rule of the guardian's catalogue")
        line, column = getattr(node, "lineno", 0), getattr(node, "col_offset", 0)
        self._seen.setdefault((line, column, rule), Violation(line, column, rule, message))

    def has(self, rule):
        """True when some violation of `rule` was recorded."""
        return any(key[2] == rule for key in self._seen)

    def sorted(self):
        """All violations in source order."""
        return tuple(self._seen[key] for key in sorted(self._seen))


def normalised(name):
    """An identifier as Python reads it (NFKC), so look-alike letters cannot hide a name."""
    return unicodedata.normalize("NFKC", name)


# -- shape -------------------------------------------------------------------------------------

def _check_shape(tree, findings):
    """Exactly one top-level `def` whose first parameter is `self`, and nothing else."""
    body = tree.body
    functions = [node for node in body if isinstance(node, ast.FunctionDef)]
    for node in body:
        if not isinstance(node, ast.FunctionDef) and not _is_docstring(node):
            findings.add(node, Rule.SHAPE,
                         "only one def may stand at the top level of a method")
    if len(functions) != 1:
        findings.add(body[0] if body else None, Rule.SHAPE,
                     f"a method is exactly one def; found {len(functions)}")
        return None
    function = functions[0]
    args = function.args
    params = args.posonlyargs + args.args
    if not params or params[0].arg != "self":
        findings.add(function, Rule.SHAPE, "the first parameter must be self")
    if function.decorator_list:
        findings.add(function.decorator_list[0], Rule.SHAPE, "decorators are not allowed")
    if function.returns is not None:
        findings.add(function.returns, Rule.ANNOTATION, "annotations are not allowed")
    return function


def _is_docstring(node):
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
        and isinstance(node.value.value, str)


def _is_constant(node):
    """Literal constants, negative numbers and tuples of those."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return isinstance(node.operand, ast.Constant)
    if isinstance(node, ast.Tuple):
        return all(_is_constant(e) for e in node.elts)
    return False


# -- deny by default ---------------------------------------------------------------------------

def _check_nodes(function, nodes, findings):
    """Every node of the method's body against the allowlists."""
    context = AuditContext(
        covenant_targets={id(node.targets[0]) for node in nodes
                          if isinstance(node, ast.Assign) and is_covenant(node)},
        bound=_bound_names(nodes), receiver_arguments=function.args)
    stack = [function]
    while stack:  # iterative, and a denied node's insides are not judged again
        node = stack.pop()
        kind = type(node)
        if node is not function and kind is ast.FunctionDef:
            findings.add(node, Rule.NESTED_DEF, "a method cannot define functions inside itself; "
                                                "use a lambda or another method")
            continue
        denied = node_verdict(kind)
        if denied is not None:
            findings.add(node, *denied)
            continue
        check = NODE_CHECKS.get(kind)
        if check is not None:
            check(node, findings, context)
        stack.extend(ast.iter_child_nodes(node))


@dataclasses.dataclass(frozen=True)
class AuditContext:
    """What the node checks need to know about the whole method."""

    covenant_targets: set
    bound: frozenset
    receiver_arguments: ast.arguments = None  # the def's own, whose first one is `self`


def _bound_names(nodes):
    """Every name the method binds itself: parameters, assignment and loop targets, handlers."""
    bound = set()
    for node in nodes:
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(normalised(node.id))
        elif isinstance(node, ast.arg):
            bound.add(normalised(node.arg))
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(normalised(node.name))
    return frozenset(bound)


def _check_name(node, findings, context):
    """Names: no `_` names, nothing string-keyed, only allowlisted builtins, and `self` is
    never bound or deleted."""
    name = normalised(node.id)
    if name == RECEIVER and not isinstance(node.ctx, ast.Load):
        findings.add(node, Rule.SELF, SELF_FIXED)
    elif name.startswith("_"):
        findings.add(node, Rule.UNDERSCORE, f"the name {name!r} is private")
    elif name in STRING_KEYED:
        findings.add(node, Rule.FORBIDDEN_NAME, f"{name!r} is not available to methods")
    elif name not in context.bound and name not in ALLOWED_GLOBALS:
        findings.add(node, Rule.UNKNOWN_NAME, f"{name!r} is neither a local name nor one of the "
                                              "builtins a method may use")


def _check_attribute(node, findings, context):
    """Attributes: no `_` attributes but the Covenant, no introspection."""
    name = normalised(node.attr)
    if name.startswith("_"):
        if id(node) not in context.covenant_targets:
            if name == COVENANT_ATTRIBUTE:
                findings.add(node, Rule.COVENANT, "the only use of _p_changed is the line "
                                                  "`self._p_changed = True`")
            else:
                findings.add(node, Rule.UNDERSCORE, f"the attribute {name!r} is private")
    elif name in INTROSPECTION_ATTRIBUTES or name.startswith(INTROSPECTION_PREFIXES):
        findings.add(node, Rule.INTROSPECTION, f"the attribute {name!r} is not available to "
                                               "methods (introspection or string-keyed access)")


def _check_arguments(node, findings, context):
    """Parameters (of the def and of lambdas): no `_` names, no annotations, and no `self`
    but the def's first."""
    arguments = node.posonlyargs + node.args + node.kwonlyargs + \
        [a for a in (node.vararg, node.kwarg) if a is not None]
    for position, arg in enumerate(arguments):
        if normalised(arg.arg) == RECEIVER and (node is not context.receiver_arguments
                                                or position):
            findings.add(arg, Rule.SELF, SELF_FIXED)
        if normalised(arg.arg).startswith("_"):
            findings.add(arg, Rule.UNDERSCORE, f"the parameter {arg.arg!r} is private")
        if normalised(arg.arg) in STRING_KEYED:
            findings.add(arg, Rule.FORBIDDEN_NAME, f"{arg.arg!r} cannot be a parameter name")
        if arg.annotation is not None:
            findings.add(arg, Rule.ANNOTATION, "annotations are not allowed")
    for default in node.defaults + [d for d in node.kw_defaults if d is not None]:
        if not _is_constant(default):
            findings.add(default, Rule.DEFAULT, "parameter defaults must be constants")


def _check_handler(node, findings, _context):
    """Handlers catch named ordinary exceptions only — never the sandbox's own stops."""
    if node.type is None:
        findings.add(node, Rule.BARE_EXCEPT, "a bare except would swallow the sandbox's stops; "
                                             "name the exceptions to catch")
        return
    names = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
    for name in names:
        if not isinstance(name, ast.Name) or normalised(name.id) not in CATCHABLE_EXCEPTIONS:
            findings.add(name, Rule.EXCEPT, "only ordinary exceptions may be caught: "
                                            + ", ".join(sorted(CATCHABLE_EXCEPTIONS)))
    if node.name is not None and normalised(node.name).startswith("_"):
        findings.add(node, Rule.UNDERSCORE, f"the name {node.name!r} is private")
    if node.name is not None and normalised(node.name) == RECEIVER:
        findings.add(node, Rule.SELF, SELF_FIXED)


def _check_try(node, findings, _context):
    """No return, break or continue inside finally: they would cancel the sandbox's stops."""
    for statement in node.finalbody:
        for inner in ast.walk(statement):
            if isinstance(inner, (ast.Return, ast.Break, ast.Continue)):
                findings.add(inner, Rule.FINALLY, "return, break and continue are not allowed "
                                                  "inside finally")


def _check_formatted(node, findings, _context):
    """f-string format specs must be literal and of modest width."""
    spec = node.format_spec
    if spec is None:
        return
    parts = spec.values if isinstance(spec, ast.JoinedStr) else [spec]
    for part in parts:
        if not isinstance(part, ast.Constant):
            findings.add(part, Rule.FORMAT_SPEC, "f-string format specs must be literal")
        else:
            digits = "".join(c if c.isdigit() else " " for c in str(part.value)).split()
            if any(int(d) > MAX_FORMAT_WIDTH for d in digits if len(d) < 20) \
                    or any(len(d) >= 20 for d in digits):
                findings.add(part, Rule.FORMAT_SPEC, f"format widths above {MAX_FORMAT_WIDTH} "
                                                     "are not allowed")


def _check_augassign(node, findings, _context):
    """An augmented assignment's target must not call anything (it is evaluated twice)."""
    if any(isinstance(inner, ast.Call) for inner in ast.walk(node.target)):
        findings.add(node, Rule.AUGASSIGN, "the target of an augmented assignment cannot "
                                           "contain a call")


def _check_constant(node, findings, _context):
    """Bytes and huge literals have no place in a method."""
    if isinstance(node.value, int) and not isinstance(node.value, bool) \
            and node.value.bit_length() > 4096:
        findings.add(node, Rule.CONSTANT, "integer literals are limited to 4096 bits")


NODE_CHECKS = {
    ast.Name: _check_name,
    ast.Attribute: _check_attribute,
    ast.arguments: _check_arguments,
    ast.ExceptHandler: _check_handler,
    ast.Try: _check_try,
    ast.FormattedValue: _check_formatted,
    ast.AugAssign: _check_augassign,
    ast.Constant: _check_constant,
}


# -- the Persistence Covenant ------------------------------------------------------------------

def is_covenant(node):
    """True for exactly `self._p_changed = True`."""
    if not isinstance(node, ast.Assign) or len(node.targets) != 1:
        return False
    target = node.targets[0]
    return (isinstance(target, ast.Attribute) and target.attr == COVENANT_ATTRIBUTE
            and isinstance(target.value, ast.Name) and target.value.id == "self"
            and isinstance(node.value, ast.Constant) and node.value.value is True)


CLEAN, DIRTY = False, True


class CovenantCheck:
    """Every path that mutates the receiver's state in place must end with the Covenant.

    A flow analysis over the method's statements: the state is DIRTY after an in-place
    mutation (an item write or deletion, an attribute write or `+=` on a value reached from
    `self` — `self.a.b = 1`, `self.items[0] = 2` —, a deletion of a slot, or a mutating call,
    directly or through a local alias) and CLEAN again after `self._p_changed = True`.
    Returning, or falling off the end, while DIRTY is a violation. Assigning a slot of `self`
    (`self.count = self.count + 1`, `self.count += 1`) needs no Covenant: the assignment
    itself marks the receiver changed.
    """

    def __init__(self, function, nodes, findings):
        self.function = function
        self.findings = findings
        self.aliases = self._find_aliases(nodes)

    def run(self):
        """Analyse the body; report a violation for each path that leaves dirty."""
        end = self.block(self.function.body, CLEAN, loop=None)
        if end is DIRTY:
            self.findings.add(self.function, Rule.COVENANT,
                              "the method changes state but does not end with "
                              "`self._p_changed = True` on every path")

    # aliases: local names that may hold (parts of) the receiver's state
    def _find_aliases(self, nodes):
        aliases = {"self"}
        bindings = [n for n in nodes if isinstance(n, (ast.Assign, ast.For, ast.comprehension))]
        for _ in range(len(bindings) + 1):  # a fixpoint: each round adds a name or stops
            before = len(aliases)
            for node in bindings:
                if isinstance(node, ast.Assign) and self._rooted(node.value, aliases):
                    for target in node.targets:
                        aliases.update(_names_in(target))
                elif isinstance(node, (ast.For, ast.comprehension)) \
                        and self._rooted(node.iter, aliases):
                    aliases.update(_names_in(node.target))
            if len(aliases) == before:
                break
        return aliases

    def _rooted(self, node, aliases):
        """True when `node` evaluates to an object reached from the receiver's state."""
        if isinstance(node, ast.Name):
            return node.id in aliases
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            return self._rooted(node.value, aliases)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            return node.func.attr in ALIASING_METHODS and self._rooted(node.func.value, aliases)
        if isinstance(node, ast.IfExp):
            return self._rooted(node.body, aliases) or self._rooted(node.orelse, aliases)
        if isinstance(node, ast.BoolOp):
            return any(self._rooted(v, aliases) for v in node.values)
        if isinstance(node, (ast.Tuple, ast.List)):
            return any(self._rooted(e, aliases) for e in node.elts)
        return False

    def mutates(self, statement):
        """True when evaluating `statement` itself (not nested blocks) may change state in a
        way that needs the Covenant (assigning a slot of `self` marks it changed itself)."""
        if isinstance(statement, (ast.Assign, ast.Delete)):
            assigns = isinstance(statement, ast.Assign)
            if any(isinstance(t, (ast.Attribute, ast.Subscript))
                   and not (assigns and _is_own_slot(t)) and self._rooted(t.value, self.aliases)
                   for target in statement.targets for t in _store_targets(target)):
                return True
        if isinstance(statement, ast.AugAssign):
            target = statement.target
            if isinstance(target, ast.Name) and target.id in self.aliases - {"self"}:
                return True
            if isinstance(target, (ast.Attribute, ast.Subscript)) \
                    and not _is_own_slot(target) and self._rooted(target.value, self.aliases):
                return True
        for node in _own_expressions(statement):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) \
                        and inner.func.attr in MUTATING_METHODS \
                        and self._rooted(inner.func.value, self.aliases):
                    return True
        return False

    def block(self, statements, state, loop):
        """The state after `statements`, or None when every path has left (return/raise)."""
        for statement in statements:
            if state is None:
                return None
            state = self.statement(statement, state, loop)
        return state

    def statement(self, node, state, loop):
        if is_covenant(node):
            return CLEAN
        if self.mutates(node):
            state = DIRTY
        if isinstance(node, ast.Return):
            if state is DIRTY:
                self.findings.add(node, Rule.COVENANT, "this return follows a change of state "
                                                       "without `self._p_changed = True`")
            return None
        if isinstance(node, ast.Raise):
            return None
        if isinstance(node, (ast.Break, ast.Continue)):
            loop.append(state)
            return None
        if isinstance(node, ast.If):
            return _join(self.block(node.body, state, loop), self.block(node.orelse, state, loop))
        if isinstance(node, (ast.For, ast.While)):
            exits = []
            body = self.block(node.body, state, exits)
            again = self.block(node.body, _join(state, body, *exits), exits)
            after = _join(state, body, again, *exits)
            return _join(self.block(node.orelse, after, loop), after) \
                if node.orelse else after
        if isinstance(node, ast.Try):
            body = self.block(node.body, state, loop)
            handler_in = _join(state, body) if body is not None else DIRTY if self._dirty_inside(
                node.body) else state
            outcomes = [self.block(h.body, handler_in, loop) for h in node.handlers]
            outcomes.append(self.block(node.orelse, body, loop) if body is not None else None)
            after = _join(*outcomes)
            if node.finalbody:
                start = after if after is not None else handler_in
                end = self.block(node.finalbody, start, loop)
                return end if after is not None else None
            return after
        return state

    def _dirty_inside(self, statements):
        return any(self.mutates(inner) for s in statements for inner in ast.walk(s)
                   if isinstance(inner, ast.stmt))


def _join(*states):
    """Paths meet: dirty if any live path is dirty; None if no path is live."""
    live = [s for s in states if s is not None]
    if not live:
        return None
    return DIRTY if any(live) else CLEAN


def _is_own_slot(target):
    """True for `self.<name>` as an assignment target: a slot of the receiver, whose
    assignment marks the receiver changed (`self` is never rebound: the audit sees to it)."""
    return isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
        and normalised(target.value.id) == RECEIVER


def _names_in(target):
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def _store_targets(target):
    if isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _store_targets(element)
    elif isinstance(target, ast.Starred):
        yield from _store_targets(target.value)
    else:
        yield target


def _own_expressions(statement):
    """The expressions a statement evaluates itself, not those of its nested blocks."""
    for field, value in ast.iter_fields(statement):
        if field in ("body", "orelse", "finalbody", "handlers"):
            continue
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, ast.AST):
                yield item
