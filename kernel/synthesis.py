"""Choose, don't generate, for code: the small methods that meet a caller's expectation.

When a caller says what result it expects and BRICK's sampled candidates miss it,
`_doesNotUnderstand` does not keep asking a 135M-parameter model to guess a formula. It
enumerates the small expressions over the receiver's slots, the call's arguments and a few
common constants — arithmetic, comparisons, text and list operations, the aggregates — keeps
one per behaviour (what it returns on the real call and on the probe calls of
`kernel.behaviour`: expressions that behave alike are one), and keeps those whose result on
the real call meets the expectation. Larger arithmetic (`self.celsius * 9 / 5 + 32`) is
reached from the expectation backwards: a known leaf and operator give the value the rest
must have, looked up among the smaller expressions.

Many expressions meet one expected value (`self.height + 10` is 14 as well as
`2 * (self.width + self.height)`), so the search only proposes: the model *chooses* among the
proposals (`MethodWriter.fit`, the likelihood of each method's code after the mandate), and
the chosen source goes through the guardian and the trial like any other candidate. The
expressions are built and evaluated here on plain copies of slot values, never from model
output, under a budget of expressions and seconds.
"""
import dataclasses
import logging
import math
import time

from kernel.behaviour import Call
from kernel.grammars import kind_of, parameter_names
from kernel.values import matches, plain

log = logging.getLogger(__name__)

NUMBERS = (0, 1, 2, 3, 4, 5, 7, 9, 10, 12, 24, 32, 60, 100, 1000, 0.5)
SEPARATORS = (" ", ", ", ",", "")
MAX_EXPRESSIONS = 60000
MAX_CONSTANTS = 2
DEFAULT_SECONDS = 3.0
PROPOSALS = 40
RENDERINGS = 3              # ways of writing one behaviour the model reads


ATOM = 100
BINDING = {"**": 70, "-x": 65, "*": 60, "/": 60, "//": 60, "%": 60, "+": 50, "-": 50,
           "<": 40, "<=": 40, ">": 40, ">=": 40, "==": 40, "!=": 40, "in": 40, "not": 30,
           "and": 20, "or": 10}


class _Failed(Exception):
    """An expression that cannot be evaluated on some call."""


FAILED = ("failed",)


@dataclasses.dataclass(frozen=True)
class Expr:
    """One expression: its source, node count, kind, the inputs it reads, and its value on
    every call (the real call first; `FAILED` where it raised)."""

    source: str
    size: int
    kind: str
    inputs: frozenset
    values: tuple
    binding: int = ATOM       # how tightly its outermost operator binds (Python's order)
    constants: int = 0        # how many of its leaves are constants

    def operand(self, binding, right=False):
        """The source as an operand of an operator that binds `binding`-tightly: in
        parentheses only where Python needs them (`self.celsius * 9 / 5 + 32`)."""
        loose = self.binding < binding or (right and self.binding == binding)
        return f"({self.source})" if loose else self.source


def _kind(value):
    kind = kind_of(value)
    return "bool" if isinstance(value, bool) else kind


def _key(values):
    """Values as a hashable behaviour key (2 and 2.0 alike, floats to 9 digits)."""
    return tuple(_canon(v) for v in values)


def _canon(value):
    if value is FAILED or isinstance(value, (bool, str)) or value is None:
        return (type(value).__name__, value) if value is not FAILED else ("failed",)
    if isinstance(value, (int, float)):
        return ("num", float(f"{value:.9g}"))
    if isinstance(value, (list, tuple)):
        return ("list", tuple(_canon(v) for v in value))
    return ("other", repr(value))


# -- operations --------------------------------------------------------------------------------

def _guard_number(value):
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise _Failed
    if isinstance(value, int) and abs(value) > 10 ** 15:
        raise _Failed
    return value


def _power(a, b):
    if abs(b) > 8 or abs(a) > 10 ** 6 or (a == 0 and b < 0) or isinstance(b, float):
        raise _Failed
    return a ** b


ARITHMETIC = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
              "/": lambda a, b: a / b, "//": lambda a, b: a // b, "%": lambda a, b: a % b,
              "**": _power}
COMPARISONS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
               ">=": lambda a, b: a >= b, "==": lambda a, b: a == b,
               "!=": lambda a, b: a != b}


def _unaries(kind):
    """(format, function, result kind) for the one-operand operations on a kind."""
    if kind == "num":
        return [("abs({})", abs, "num"), ("round({})", round, "num"),
                ("-{}", lambda v: -v, "num")]
    if kind == "nums":
        return [("sum({})", sum, "num"), ("len({})", len, "num"), ("max({})", max, "num"),
                ("min({})", min, "num"), ("sorted({})", sorted, "nums"),
                ("{}[0]", lambda v: v[0], "num"), ("{}[-1]", lambda v: v[-1], "num")]
    if kind == "txts":
        return [("len({})", len, "num"), ("sorted({})", sorted, "txts"),
                ("{}[0]", lambda v: v[0], "txt"), ("{}[-1]", lambda v: v[-1], "txt")] + [
            (f"{sep!r}.join({{}})", lambda v, s=sep: s.join(v), "txt") for sep in SEPARATORS]
    if kind == "txt":
        return [("len({})", len, "num"), ("{}.upper()", str.upper, "txt"),
                ("{}.lower()", str.lower, "txt"), ("{}.strip()", str.strip, "txt"),
                ("{}.title()", str.title, "txt"), ("{}.capitalize()", str.capitalize, "txt"),
                ("{}[::-1]", lambda v: v[::-1], "txt"), ("{}[0]", lambda v: v[0], "txt"),
                ("{}.split()", str.split, "txts")]
    if kind == "list":
        return [("len({})", len, "num")]
    if kind == "bool":
        return [("not {}", lambda v: not v, "bool")]
    return []


def _binaries(left, right):
    """(operator, function, result kind) for two operand kinds."""
    pairs = []
    if left == right == "num":
        pairs += [(op, fn, "num") for op, fn in ARITHMETIC.items()]
        pairs += [(op, fn, "bool") for op, fn in COMPARISONS.items()]
    if left == right == "txt":
        pairs += [("+", lambda a, b: a + b, "txt"), ("==", lambda a, b: a == b, "bool"),
                  ("in", lambda a, b: a in b, "bool")]
    if left == "txt" and right == "num":
        pairs.append(("*", _repeat, "txt"))
    if left in ("nums", "txts") and right == "num":
        pairs.append(("[]", lambda a, b: a[b], "num" if left == "nums" else "txt"))
    if left == right and left in ("nums", "txts"):
        pairs.append(("+", lambda a, b: a + b, left))
    if (left, right) in (("num", "nums"), ("txt", "txts")):
        pairs.append(("in", lambda a, b: a in b, "bool"))
    if left == right == "bool":
        pairs += [("and", lambda a, b: a and b, "bool"), ("or", lambda a, b: a or b, "bool")]
    return pairs


def _repeat(text, times):
    if not isinstance(times, int) or times > 20:
        raise _Failed
    return text * times


# -- the search ------------------------------------------------------------------------------

class Search:
    """The expressions of one mandate, grown by size, one per behaviour."""

    def __init__(self, calls, want=None, seconds=DEFAULT_SECONDS, limit=MAX_EXPRESSIONS):
        self.calls = calls
        self.want = want  # the kind of result sought: truth values are built only for it
        self.deadline = time.monotonic() + seconds
        self.limit = limit
        self.by_size = {}
        self.seen = {}  # behaviour key -> the other ways found of writing it
        self.smallest = {}

    @property
    def exhausted(self):
        """True once the budget of expressions or seconds is spent."""
        return len(self.seen) >= self.limit or time.monotonic() > self.deadline

    def add(self, expr):
        """Keep `expr` unless an expression already seen behaves the same."""
        if expr is None or expr.values[0] is FAILED:
            return
        key = (expr.kind, _key(expr.values))
        if key in self.seen:
            if len(self.seen[key]) < RENDERINGS - 1 and expr.size <= self.smallest[key]:
                self.seen[key].append(expr)
            return
        self.seen[key] = []
        self.smallest[key] = expr.size
        self.by_size.setdefault(expr.size, []).append(expr)

    def renderings(self, expr):
        """`expr` and the other ways of writing its behaviour found at its size."""
        return [expr] + self.seen[(expr.kind, _key(expr.values))]

    def sized(self, size):
        """The kept expressions of exactly `size` nodes."""
        return self.by_size.get(size, [])

    def apply(self, fmt, fn, kind, child):
        """A one-operand expression over `child`, evaluated on every call; None when the
        form is one nobody writes (`round` of what is no quotient, `-` of a compound)."""
        if (fmt.startswith("-") and child.size > 1) or (
                fmt.startswith("round") and "/" not in child.source) or (
                fmt.startswith("abs") and not child.inputs):
            return None
        values = tuple(_evaluate(fn, (v,)) for v in child.values)
        binding = BINDING["-x"] if fmt.startswith("-") else BINDING["not"] \
            if fmt.startswith("not") else ATOM
        operand = child.source if fmt.startswith(("abs", "round", "len", "sum", "max", "min",
                                                  "sorted", "'", '"')) \
            else child.operand(binding if binding < ATOM else ATOM, right=binding < ATOM)
        return Expr(fmt.format(operand), child.size + 1, kind, child.inputs, values,
                    binding=binding, constants=child.constants)

    def combine(self, op, fn, kind, left, right, most_constants=MAX_CONSTANTS):
        """A two-operand expression, or None when it is a form nobody writes: constants
        only or more than `most_constants`; a compound remainder, quotient or power; a
        constant's copies; an index that is no argument."""
        inputs = left.inputs | right.inputs
        constants = left.constants + right.constants
        if not inputs or constants > most_constants or _unnatural(op, left, right):
            return None
        values = tuple(_evaluate(fn, (a, b)) for a, b in zip(left.values, right.values))
        size = left.size + right.size + 1
        if op == "[]":
            return Expr(f"{left.operand(ATOM)}[{right.source}]", size, kind, inputs, values,
                        constants=constants)
        binding = BINDING[op]
        return Expr(f"{left.operand(binding)} {op} {right.operand(binding, right=True)}",
                    size, kind, inputs, values, binding=binding, constants=constants)


def _unnatural(op, left, right):
    if left.source == right.source and op not in ("+", "*"):
        return True  # `x - x`, `x < x`: a constant in disguise
    if op in ("%", "//", "**") and (right.size > 1 or not left.inputs):
        return True
    if op == "**" and left.size > 1:
        return True
    if op == "*" and left.kind == "txt" and not left.inputs:
        return True
    return op == "[]" and not right.inputs


def _evaluate(fn, operands):
    if any(o is FAILED for o in operands):
        return FAILED
    try:
        value = fn(*operands)
        return _guard_number(value) if isinstance(value, (int, float)) else value
    except (_Failed, ArithmeticError, TypeError, ValueError, IndexError, OverflowError):
        return FAILED


def leaves(slots, args, calls, expect):
    """The inputs (slots and parameters, their value on every call) and the constants:
    common numbers, separators, and the text of a text expectation that no input supplies."""
    found = []
    for name, value in slots.items():
        if _kind(value) is not None:
            found.append(Expr(f"self.{name}", 1, _kind(value), frozenset({name}),
                              tuple(call.slots.get(name, value) for call in calls)))
    for index, (name, value) in enumerate(zip(parameter_names(len(args)), args)):
        if _kind(value) is not None:
            found.append(Expr(name, 1, _kind(value), frozenset({name}),
                              tuple(call.args[index] for call in calls)))
    copied = {plain(v) for v in list(slots.values()) + list(args)
              if _kind(v) == "num" and v not in (0, 1, 2)}
    constants = [n for n in NUMBERS if n not in copied] + list(SEPARATORS[:2])
    if isinstance(expect, str):
        constants += _literals(expect, [plain(v) for v in slots.values()] + list(args))
    for value in dict.fromkeys(constants):
        found.append(Expr(repr(value), 1, _kind(value), frozenset(), (value,) * len(calls),
                          constants=1))
    return found


def _equal_call(slots, args):
    """A probe where every number is the same: it tells `a == b` from `a < a` apart, which
    probes of random numbers rarely do."""
    def same(value):
        return 6 if _kind(value) == "num" else value
    return Call({k: same(v) for k, v in slots.items()}, tuple(same(a) for a in args))


def _literals(expect, values):
    """The pieces of an expected text left when the inputs' texts (in any case) are cut out:
    "Hello, Robin!" with a name "Robin" gives "Hello, " and "!"."""
    pieces = [expect]
    for value in values:
        if not isinstance(value, str) or not value:
            continue
        for form in {value, value.upper(), value.lower(), value.title(), value.strip()}:
            if form:
                pieces = [part for piece in pieces for part in piece.split(form)]
    return [piece for piece in dict.fromkeys(pieces) if piece and len(piece) <= 40]


def grow(search, leaves_):
    """Fill `search` with the expressions of up to 5 nodes."""
    for leaf in leaves_:
        search.add(leaf)
    for size in range(2, 6):
        for child in search.sized(size - 1):
            for fmt, fn, kind in _unaries(child.kind):
                search.add(search.apply(fmt, fn, kind, child))
        for left_size in range(1, size - 1):
            right_size = size - 1 - left_size
            for left in list(search.sized(left_size)):
                for right in list(search.sized(right_size)):
                    for op, fn, kind in _binaries(left.kind, right.kind):
                        if kind != "bool" or search.want == "bool":
                            search.add(search.combine(op, fn, kind, left, right))
                    if search.exhausted:
                        return
    return


INVERSES = {"+": [(lambda t, l: t - l, "right")],           # e + l = t
            "-": [(lambda t, l: t + l, "right"), (lambda t, l: l - t, "left")],
            "*": [(lambda t, l: t / l if l else None, "right")],
            "/": [(lambda t, l: t * l, "right"), (lambda t, l: l / t if t else None, "left")]}


def backwards(search, expect, leaves_):
    """Arithmetic of 6-7 nodes that meets a numeric `expect`: `e op leaf` or `leaf op e`,
    with `e` one of the kept expressions whose real value is the one needed."""
    by_value = {}
    for size in range(3, 6):
        for expr in search.sized(size):
            if expr.kind == "num":
                by_value.setdefault(_canon(expr.values[0]), []).append(expr)
    for leaf in leaves_:
        if leaf.kind != "num":
            continue
        for op, inverses in INVERSES.items():
            for inverse, side in inverses:
                try:
                    needed = inverse(expect, leaf.values[0])
                except (ArithmeticError, TypeError):
                    needed = None
                if needed is None:
                    continue
                for expr in by_value.get(_canon(needed), ()):
                    for rendering in search.renderings(expr):
                        left, right = (rendering, leaf) if side == "right" else \
                            (leaf, rendering)
                        search.add(search.combine(op, ARITHMETIC[op], "num", left, right,
                                                  most_constants=MAX_CONSTANTS + 1))
                    if search.exhausted:
                        return


def proposals(slots, args, calls, expect, seconds=DEFAULT_SECONDS, count=PROPOSALS):
    """The behaviours whose result on the real call meets `expect`, simplest first (fewest
    nodes, fewest constants, most inputs read), each as the `return` lines that write it (up
    to `RENDERINGS`): what the model is then asked to choose among. A constant equal to an
    input's value is no proposal (`self.balance - 30` when x is 30 copies the argument)."""
    calls = list(calls) + [_equal_call(slots, args)]
    search = Search(calls, want=_kind(expect), seconds=seconds)
    leaves_ = leaves(slots, args, calls, expect)
    grow(search, leaves_)
    if isinstance(expect, (int, float)) and not isinstance(expect, bool) \
            and not search.exhausted:
        backwards(search, expect, leaves_)
    met = [e for size in sorted(search.by_size) for e in search.by_size[size]
           if e.inputs and matches(e.values[0], expect)]
    met.sort(key=lambda e: (e.size, e.constants, -len(e.inputs)))
    log.info("search: %d expressions, %d meet the expectation", len(search.seen), len(met))
    return [[f"return {source}" for source in dict.fromkeys(
        r.source for r in search.renderings(e))] for e in met[:count]]
