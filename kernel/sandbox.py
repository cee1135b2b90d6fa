"""Restricted execution of learned methods: guarded code under CPU-time and memory budgets.

A learned method's source reaches `compile_method` only after the PersistenceGuardian
accepted it. It is compiled with RestrictedPython (the Zope project's library for exactly
this), whose transformer routes every attribute read through `_getattr_`, every item read
through `_getitem_`, every iteration through `_getiter_` and every write through `_write_`;
`MethodPolicy` adds the Covenant line, augmented assignment of attributes and items, and
routes the operators that can explode in one C call (`**`, `*`, `<<`, `+`, `%`, `//`) through
`_binop_`, f-string fields through `_format_` and `{*items}` through `_set_`, which refuse
before the call a result larger than the memory budget or a computation longer than one C
call may take (nothing interrupts a C call); builtins such as `pow`, `round`, `divmod`,
`str`, `set` and `dict`, and text methods such as `translate` and `encode`, are guarded the
same way. The code runs with a short list of builtins and never sees the kernel's modules,
the database connection, the filesystem or the network.

Every call of a learned method runs inside a `Budget`: a watchdog thread measures the calling
thread's CPU time and the process's resident memory (from the call's start), and stops a
method that overruns by raising `CPUBudgetExceeded` or `MemoryBudgetExceeded` inside it, again
at every tick while its code still runs (a `finally` that loops); call depth and Python
recursion are bounded too. These derive from `BudgetExceeded`, a `BaseException`, so a
method's own `except Exception` cannot swallow them; the transaction they cross is aborted
and the process keeps serving.
"""
import ast
import builtins
import collections.abc
import contextlib
import copy
import ctypes
import dataclasses
import logging
import operator
import os
import re
import sys
import threading
import time
import types
import weakref

from RestrictedPython import compile_restricted
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence
from RestrictedPython.transformer import (IOPERATOR_TO_STR, RestrictingNodeTransformer,
                                          copy_locations)

from kernel import slot_values
from kernel.errors import BatosError
from kernel.guardian import (ALLOWED_BUILTINS, CATCHABLE_EXCEPTIONS, COVENANT_ATTRIBUTE,
                             INTROSPECTION_ATTRIBUTES, INTROSPECTION_PREFIXES, MAX_FORMAT_WIDTH)

log = logging.getLogger(__name__)


# -- errors ------------------------------------------------------------------------------------

class SandboxError(BatosError):
    """An audited source could not be compiled for restricted execution. Final for that source."""


class SandboxViolation(BatosError):
    """A running method reached for something methods may not touch. Final for that method."""


class BudgetExceeded(BaseException):
    """A learned method was stopped for overrunning a budget. Final for that call.

    A `BaseException`, like `KeyboardInterrupt`, so that the method's own handlers cannot
    catch it; the kernel catches it at the boundary of the request.
    """

    def __init__(self, message="a learned method overran its budget"):
        super().__init__(message)


class CPUBudgetExceeded(BudgetExceeded):
    """The method used more CPU time than its budget (an endless loop, say)."""


class MemoryBudgetExceeded(BudgetExceeded):
    """The method allocated, or asked for a result, beyond its memory budget."""


class RecursionBudgetExceeded(BudgetExceeded):
    """The method recursed deeper than its budget allows."""


class MethodCrashed(BudgetExceeded):
    """The method's disposable process died (a crash in C code, say); nothing it did was kept,
    and the caller serves on (`kernel.isolation`)."""


# -- limits ------------------------------------------------------------------------------------

@dataclasses.dataclass
class Limits:
    """The budgets of every learned-method call in this process."""

    cpu_seconds: float = 2.0
    memory_bytes: int = 256 * 1024 * 1024
    max_call_depth: int = 64
    isolation: str = "process"  # or "thread": in the caller, under the watchdog only
    max_int_bits: int = 1 << 22
    watchdog_interval: float = 0.005

    @property
    def max_range(self):
        """The longest `range` a method may make: one that fits the budget as a list of ints."""
        return self.memory_bytes // 64


LIMITS = Limits()


def configure(**settings):
    """Change this process's budgets (keys of `Limits`); unknown keys are a `ValueError`."""
    for key, value in settings.items():
        if not hasattr(LIMITS, key):
            raise ValueError(f"unknown sandbox limit {key!r}")
        setattr(LIMITS, key, type(getattr(LIMITS, key))(value))
    return LIMITS


# -- which objects methods may touch -----------------------------------------------------------

WRITABLE_TYPES = (dict, list, set)
SEALED_TYPES = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
                types.MethodType, types.CodeType, types.FrameType, types.GeneratorType,
                types.CoroutineType, types.AsyncGeneratorType, types.TracebackType,
                types.MappingProxyType, types.SimpleNamespace)


def allow_writes(cls):
    """Let methods assign attributes and items of instances of `cls` (kernel classes opt in)."""
    global WRITABLE_TYPES
    WRITABLE_TYPES += (cls,)
    _KINDS.clear()
    return cls


def seal(cls):
    """Deny methods every attribute of instances of `cls` (kernel bookkeeping)."""
    global SEALED_TYPES
    SEALED_TYPES += (cls,)
    _KINDS.clear()
    return cls


SEALED, EXCEPTION, TEXT, WRITABLE, PLAIN = range(5)
_KINDS = {}


def _kind(obj):
    """What methods may do with objects of `obj`'s class, decided once per class."""
    cls = type(obj)  # never obj.__class__: an object could lie about it
    kind = _KINDS.get(cls)
    if kind is None:
        if issubclass(cls, SEALED_TYPES):
            kind = SEALED
        elif issubclass(cls, BaseException):
            kind = EXCEPTION
        elif issubclass(cls, (str, bytes)):
            kind = TEXT
        elif issubclass(cls, WRITABLE_TYPES) or cls.__module__.startswith(
                ("BTrees.", "persistent.mapping", "persistent.list")):
            kind = WRITABLE
        else:
            kind = PLAIN
        _KINDS[cls] = kind
    return kind


KERNEL_ATTRIBUTES = frozenset({"set_parents"})  # parents are the kernel's to change


def _attribute_denied(name):
    """Names no method may read on any object."""
    return (type(name) is not str or name.startswith("_") or name in INTROSPECTION_ATTRIBUTES
            or name in KERNEL_ATTRIBUTES or name.startswith(INTROSPECTION_PREFIXES))


def guarded_getattr(obj, name):
    """`obj.name` for a method: no private, introspection or kernel-internal attributes."""
    if _attribute_denied(name):
        raise SandboxViolation(f"the attribute {name!r} is not available to methods")
    kind = _kind(obj)
    if kind == SEALED:
        raise SandboxViolation(f"attributes of {type(obj).__name__} objects are not available "
                               "to methods")
    if kind == EXCEPTION and name != "args":
        raise SandboxViolation("an exception offers only its args to methods")
    value = getattr(obj, name)
    if kind == TEXT and name in SIZE_GUARDED_METHODS:
        return SIZE_GUARDED_METHODS[name](obj, value)
    return value


def guarded_getitem(obj, key):
    """`obj[key]` for a method; kernel internals have no items to read."""
    if _kind(obj) == SEALED:
        raise SandboxViolation(f"{type(obj).__name__} objects have no items for methods")
    return obj[key]


def guarded_getiter(obj):
    """`iter(obj)` for a method."""
    if _kind(obj) == SEALED:
        raise SandboxViolation(f"{type(obj).__name__} objects cannot be iterated by methods")
    return iter(obj)


def guarded_write(obj, receiver=None):
    """The object itself when the method running on `receiver` may change it (the compiled
    method passes its `self`): the receiver, objects made during the current call, containers
    owned by either (marking their owner changed), and plain containers of its own making.
    Every other image object is changed only by sending it a message; the kernel's persistent
    containers (BTrees, counters) never by a method."""
    if _kind(obj) != WRITABLE:
        raise SandboxViolation(f"methods cannot change {type(obj).__name__} objects")
    if isinstance(obj, slot_values.IMAGE_OBJECT_TYPES):
        _check_authority(obj, receiver)
    elif type(obj) in OWNED_CONTAINERS:
        if obj.owner is not None:
            _check_authority(obj.owner, receiver)
            obj.owner._p_changed = True
    elif hasattr(obj, "_p_oid"):
        raise SandboxViolation(f"a {type(obj).__name__} is the kernel's: methods cannot change "
                               "it")
    return obj


OWNED_CONTAINERS = (slot_values.OwnedList, slot_values.OwnedDict)


def _check_authority(target, receiver):
    """Refuse a change of image object `target` by the method running on `receiver`, unless
    it is that receiver or an object the current call made; note what may change."""
    if target in getattr(_local, "created", ()):
        return
    if target is not receiver:
        raise SandboxViolation(f"a method changes its receiver and the objects it makes; "
                               f"{target.label} can only be changed by sending it a message")
    touched = getattr(_local, "touched", None)
    if touched is not None:
        touched[id(target)] = target


def begin_touching():
    """From now on, note every image object a method is granted to change (in a method's
    disposable process: what it changed is sent back)."""
    _local.touched = {}


def touched():
    """The image objects methods were granted to change since `begin_touching`."""
    return list(getattr(_local, "touched", {}).values())


def made_during_call(obj):
    """True when `obj` was made during the current outermost method call."""
    return obj in getattr(_local, "created", ())


def running_method_may_change(owner):
    """`slot_values.authority_check`: while a learned method runs, only its receiver's and
    its new objects' containers may be changed in place."""
    receivers = getattr(_local, "receivers", None)
    if receivers:
        _check_authority(owner, receivers[-1])


def note_created(obj):
    """Record an image object made while a learned method runs: the call may change it."""
    if getattr(_local, "depth", 0):
        _local.created.add(obj)


def guarded_apply(function, *args, **kwargs):
    """A call with `*args` / `**kwargs`."""
    return function(*args, **kwargs)


# -- operators that can explode in one C call --------------------------------------------------

BINARY_OPERATORS = {"+": operator.add, "*": operator.mul, "**": operator.pow,
                    "<<": operator.lshift, "%": operator.mod, "-": operator.sub,
                    "/": operator.truediv, "//": operator.floordiv, ">>": operator.rshift,
                    "&": operator.and_, "|": operator.or_, "^": operator.xor,
                    "@": operator.matmul}
INPLACE_OPERATORS = {"+=": operator.iadd, "*=": operator.imul, "**=": operator.ipow,
                     "<<=": operator.ilshift, "%=": operator.imod, "-=": operator.isub,
                     "/=": operator.itruediv, "//=": operator.ifloordiv,
                     ">>=": operator.irshift, "&=": operator.iand, "|=": operator.ior,
                     "^=": operator.ixor, "@=": operator.imatmul}
# one `%` field as Python parses it: (key, width, precision, conversion); a key nested deeper
# than one level of parentheses is misread as a field without a key, so the whole mapping is
# counted for it (more than Python will write)
PERCENT_FIELD = re.compile(r"%(?:\(((?:[^()]|\([^()]*\))*)\))?[-#0 +]*(\*|[0-9]+)?"
                           r"(?:\.(\*|[0-9]+))?[hlL]?(.?)", re.DOTALL)
PERCENT_FIELD_BYTES = re.compile(PERCENT_FIELD.pattern.encode(), re.DOTALL)
BYTES_PER_ITEM = {str: 4, bytes: 1, list: 8, tuple: 8}

# What one integer operation may cost. Nothing interrupts a C call (the watchdog's stop lands
# between bytecodes, and a straight-line method runs with no watchdog at all), so operands of
# the superlinear operations are bounded before the call: to about 0.05-0.1 s of CPU on the
# machine these were measured on (2 shared cores, CPython 3.11), 0.1-0.2 s on one half as fast.
# - Division (`//`, `%`, `divmod`, `round`, `pow`'s reduction) is schoolbook: its time grows
#   with divisor bits × quotient bits; 2**35 bit² took 0.05 s, 2**36 0.1 s. Dividends up to
#   2**18 bits always fit, so small ones cost one comparison.
# - Products are Karatsuba: 4M × 64k bits took 0.075 s, 512k × 512k 0.03 s, 1M × 1M 0.12 s,
#   2M × 2M 0.28 s. Once both factors pass 2**16 bits, the product may have at most 2**20.
# - `**` ends by squaring half its result: a 2**20-bit power took 0.035 s, 2**22 bits 0.33 s.
# - Modular `pow(b, e, m)` takes bits(e) multiply-and-reduce steps: its time grows with
#   bits(e) × (bits(m) + 256)² (the 256 is each step's overhead); 2**35 took about 0.08 s and
#   admits an RSA-2048 exponentiation (2**33.4).
# `/` on ints (it divides for a double's 55 bits of quotient), `+`, `-`, shifts, bitwise
# operators, comparisons, hex/oct/bin are linear: about a millisecond for 4M-bit operands.
# Decimal int↔str conversion is quadratic, but Python refuses it beyond
# `sys.get_int_max_str_digits()` digits (4,300 unless the process changes it).
DIVISION_WORK = 1 << 35
SAFE_DIVIDEND_BITS = 1 << 18
BIG_FACTOR_BITS = 1 << 16
MAX_PRODUCT_BITS = 1 << 20
MODULAR_POW_WORK = 1 << 35
# Building a set or dict in one C call compares each key with the earlier keys of its hash:
# about 15 ns each (40,000 distinct ints of one hash took 12 s); 2**22 comparisons ~ 0.06 s.
# Sources of at most 2**10 items cannot reach it.
SHARED_HASH_WORK = 1 << 22
SHARED_HASH_FREE = 1 << 10
HASH_MODULUS = sys.hash_info.modulus  # 2**61 - 1: an int's hash is the int modulo this
TEXT_OF_FLOAT = 32      # len(repr(-2.2250738585072014e-308)) is 24; `%f` of 1e308 is counted apart
TEXT_OF_OBJECT = 1_000  # the repr of an image object or kernel object ("<UvmObject box>")


def _too_big(what, size, limit):
    raise MemoryBudgetExceeded(f"{what} would need about {size:,} bytes; the method's memory "
                               f"budget is {limit:,}")


def _too_slow(what):
    raise CPUBudgetExceeded(f"{what} would take more CPU time than one step of a method may "
                            "(nothing interrupts one C call); refused before it runs")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_division(dividend_bits, divisor_bits):
    """Refuse an int division whose schoolbook cost (divisor × quotient bits) passes
    `DIVISION_WORK`."""
    quotient_bits = dividend_bits - divisor_bits
    if quotient_bits > 0 and divisor_bits * quotient_bits > DIVISION_WORK:
        _too_slow(f"dividing a {dividend_bits:,}-bit int by a {divisor_bits:,}-bit one")


def _sequence_bytes(seq, count):
    per_item = next((size for kind, size in BYTES_PER_ITEM.items() if isinstance(seq, kind)), 0)
    return len(seq) * max(count, 0) * per_item


def check_operands(symbol, left, right):
    """Refuse `left <symbol> right` when its result would overrun the budget."""
    limits = LIMITS
    if symbol == "**" and _is_int(left) and _is_int(right) and right > 1 and abs(left) > 1:
        bits = left.bit_length() * right
        if bits > limits.max_int_bits:
            _too_big("this power", bits // 8, limits.max_int_bits // 8)
        if bits > MAX_PRODUCT_BITS:
            _too_slow(f"a power of {bits:,} bits")
    elif symbol == "<<" and _is_int(left) and _is_int(right) and left:
        if left.bit_length() + right > limits.max_int_bits:
            _too_big("this shift", (left.bit_length() + right) // 8, limits.max_int_bits // 8)
    elif symbol == "*":
        if _is_int(left) and _is_int(right):
            bits = left.bit_length() + right.bit_length()
            if bits > limits.max_int_bits:
                _too_big("this product", bits // 8, limits.max_int_bits // 8)
            if bits > MAX_PRODUCT_BITS \
                    and min(left.bit_length(), right.bit_length()) > BIG_FACTOR_BITS:
                _too_slow(f"multiplying a {left.bit_length():,}-bit int by a "
                          f"{right.bit_length():,}-bit one")
        else:
            seq, count = (left, right) if _is_int(right) else (right, left)
            if _is_int(count) and isinstance(seq, tuple(BYTES_PER_ITEM)):
                size = _sequence_bytes(seq, count)
                if size > limits.memory_bytes:
                    _too_big("this repetition", size, limits.memory_bytes)
                if count > 1 and isinstance(seq, (list, tuple)):
                    _check_expansion("this repetition", seq, count)
    elif symbol == "+" and isinstance(left, tuple(BYTES_PER_ITEM)) \
            and isinstance(right, tuple(BYTES_PER_ITEM)):
        size = _sequence_bytes(left, 1) + _sequence_bytes(right, 1)
        if size > limits.memory_bytes:
            _too_big("this concatenation", size, limits.memory_bytes)
        if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
            _check_expansion("this concatenation", (left, right), 1)
    elif symbol == "%" and isinstance(left, (str, bytes)):
        _check_percent(left, right)
    elif (symbol == "//" or symbol == "%") and type(left) is int \
            and left.bit_length() > SAFE_DIVIDEND_BITS and _is_int(right):
        _check_division(left.bit_length(), right.bit_length())


MAX_EXPANSION = 1_000_000  # items a value built by repetition may hold, counted as a tree
CONTAINER_TYPES = (list, tuple, dict, set, frozenset)


def _check_expansion(what, seq, count):
    """Refuse a repetition or concatenation whose result, counted with its shared references
    expanded, would hold more than `MAX_EXPANSION` items: comparing, hashing or rendering such
    a value costs its expansion in one C call (`[[x] * 100] * 100` nested six deep is 10¹²)."""
    limit = MAX_EXPANSION // count
    if _expanded(seq, {}, limit, 0) > limit:
        raise MemoryBudgetExceeded(f"{what} would hold more than {MAX_EXPANSION:,} items "
                                   "counted with its shared references, the limit of a value "
                                   "a method builds")


def _expanded(value, memo, limit, depth):
    """The items of `value` counted as a tree, each distinct container walked once (so the
    count costs the distinct containers, not the expansion); past `limit` it stops early."""
    if not isinstance(value, CONTAINER_TYPES):
        return 1
    key = id(value)
    if key in memo:
        return memo[key]
    if depth > 64:
        return limit + 1
    memo[key] = limit + 1  # a container inside itself counts as too large
    total = 1
    for item in (value.values() if isinstance(value, dict) else value):
        total += _expanded(item, memo, limit, depth + 1)
        if total > limit:
            break
    memo[key] = total
    return total


def _check_percent(template, args):
    """Refuse `template % args` when a field is wider than `MAX_FORMAT_WIDTH` or the text it
    makes could overrun the memory budget: the template plus every field's value as rendered
    (shared references counted each time, widths and precisions added)."""
    per_char = BYTES_PER_ITEM[str] if isinstance(template, str) else 1
    limit = LIMITS.memory_bytes // per_char
    fields = PERCENT_FIELD if isinstance(template, str) else PERCENT_FIELD_BYTES
    values = args if isinstance(args, tuple) else (args,)
    mapping = isinstance(args, (dict, collections.abc.Mapping))
    size, position, memo = len(template), 0, {}
    for match in fields.finditer(template):
        key, width, precision, conversion = match.groups()
        for part in (width, precision):
            if part is None:
                continue
            if part in ("*", b"*"):
                raise SandboxViolation("'*' widths in % formatting are not available")
            if len(part) > 6 or int(part) > MAX_FORMAT_WIDTH:
                raise SandboxViolation(f"% format widths above {MAX_FORMAT_WIDTH} are "
                                       "not available")
            size += int(part)
        if isinstance(conversion, bytes):
            conversion = conversion.decode("latin-1")
        if conversion == "%":
            continue
        if key is not None:
            if not mapping:
                continue  # Python refuses it: "format requires a mapping"
            value = args[key]  # a missing key is Python's KeyError too
        elif mapping:
            value = args  # each time: it may be a key the pattern misread
        elif position < len(values):
            value, position = values[position], position + 1
        else:
            break  # Python refuses it: "not enough arguments"
        size += _field_bound(value, conversion, limit - size, memo, per_char == 1)
        if size > limit:
            _too_big("this % formatting", size * per_char, LIMITS.memory_bytes)


def _field_bound(value, conversion, limit, memo, in_bytes):
    """At least the length of one `%` field's rendering of `value`."""
    if conversion == "c":
        return 1
    if conversion in ("s", "r", "a", "b"):
        if in_bytes and conversion in ("s", "b") and isinstance(value, bytes):
            return len(value)
        quoted = False if conversion == "s" else "ascii" if conversion == "a" else True
        return _text_bound(value, limit, quoted, memo)
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() // 3 + 4 if conversion in ("x", "X", "o") \
            else _decimal_bound(value)
    if isinstance(value, float):
        return 320 + TEXT_OF_FLOAT  # `%f` of 1e308 has 309 digits; precision counted apart
    return _text_bound(value, limit, True, memo)  # Python refuses it; count it anyway


def _decimal_bound(number):
    """At least the length of `str(number)` for an int: Python refuses to write more digits
    than its limit (`sys.get_int_max_str_digits`)."""
    digits = number.bit_length() * 31 // 100 + 2  # log10(2) < 0.31; a sign
    cap = sys.get_int_max_str_digits()
    return min(digits, cap + 1) if cap else digits


def _text_bound(value, limit, quoted=False, memo=None):
    """At least the length of `str(value)` — of `repr(value)` when `quoted`, of `ascii(value)`
    when it is "ascii" — counting a shared reference each time it is reached, as rendering
    does, in time linear in the distinct objects; counting stops once past `limit`."""
    if isinstance(value, str):
        size = len(value)
        if not quoted:
            return size
        key = (id(value), quoted) if memo is not None and size > 256 else None
        if key is not None and key in memo:
            return memo[key]  # one text reached again: its characters are scanned once
        if value.isascii():
            size = (2 * size if value.isprintable() else 4 * size) + 2
        else:
            size = (2 * size if quoted is True and value.isprintable() else 10 * size) + 2
        if key is not None:
            memo[key] = size
        return size
    if value is None or isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return _decimal_bound(value)
    if isinstance(value, float):
        return TEXT_OF_FLOAT
    if isinstance(value, complex):
        return 2 * TEXT_OF_FLOAT + 4
    if isinstance(value, bytes):
        return 4 * len(value) + 3
    if isinstance(value, range):
        return 3 * max(_decimal_bound(value.start), _decimal_bound(value.stop),
                       _decimal_bound(value.step)) + 12
    if type(value).__module__.startswith(("persistent.mapping", "persistent.list")):
        return _text_bound(value.data, limit, quoted, memo)
    if isinstance(value, BaseException):
        return TEXT_OF_OBJECT + _text_bound(value.args, limit, True, memo)
    if not isinstance(value, (list, tuple, dict, set, frozenset)):
        return TEXT_OF_OBJECT
    memo = {} if memo is None else memo
    quoted = quoted or True  # items print quoted
    key = (id(value), quoted)
    known = memo.get(key, 0)
    if known is None:
        return 5  # a container inside itself prints as [...]
    if known:
        return known
    memo[key] = None
    total = 16  # brackets, "frozenset({})"
    items = (part for pair in value.items() for part in pair) if isinstance(value, dict) \
        else value  # keys and values one by one: a pair tuple is new each time, its id reused
    for item in items:
        kind = type(item)
        if kind is float or kind is int and -1 << 63 < item < 1 << 63:
            total += 26
        else:
            total += _text_bound(item, limit - total, quoted, memo) + 2
            if total > limit:
                return total
    memo[key] = total
    return total


def guarded_binop(symbol, left, right):
    """`left <symbol> right`, checked first when it could explode."""
    check_operands(symbol, left, right)
    return BINARY_OPERATORS[symbol](left, right)


def guarded_inplace(symbol, left, right):
    """`left <symbol>= right` (RestrictedPython's `_inplacevar_`), checked like `_binop_`."""
    check_operands(symbol[:-1], left, right)
    return INPLACE_OPERATORS[symbol](left, right)


def _guard_width(name):
    def guarded(text, method):
        def call(width, *args):
            if _is_int(width) and width * BYTES_PER_ITEM.get(type(text), 4) > LIMITS.memory_bytes:
                _too_big(f"{name}({width})", width, LIMITS.memory_bytes)
            return method(width, *args)
        return call
    return guarded


def _guard_join(text, method):
    def join(items):
        items = list(items)
        size = (len(text) * max(len(items) - 1, 0)
                + sum(len(i) for i in items if isinstance(i, (str, bytes)))) * 4
        if size > LIMITS.memory_bytes:
            _too_big("this join", size, LIMITS.memory_bytes)
        return method(items)
    return join


def _guard_replace(text, method):
    def replace(old, new, count=-1):
        if isinstance(old, type(text)) and isinstance(new, type(text)):
            hits = len(text) + 1 if not old else text.count(old)
            hits = hits if count < 0 else min(hits, count)
            size = (len(text) + hits * max(len(new) - len(old), 0)) * 4
            if size > LIMITS.memory_bytes:
                _too_big("this replace", size, LIMITS.memory_bytes)
        return method(old, new, count)
    return replace


def _guard_expandtabs(text, method):
    def expandtabs(tabsize=8):
        if _is_int(tabsize) and len(text) * tabsize * 4 > LIMITS.memory_bytes:
            _too_big("expandtabs", len(text) * tabsize * 4, LIMITS.memory_bytes)
        return method(tabsize)
    return expandtabs


def _guard_translate(text, method):
    def translate(table, *args, **kwargs):
        if isinstance(text, str):
            size = len(text) * max(_longest_replacement(table), 1) * BYTES_PER_ITEM[str]
            if size > LIMITS.memory_bytes:
                _too_big("this translate", size, LIMITS.memory_bytes)
        return method(table, *args, **kwargs)
    return translate


def _longest_replacement(table):
    """The most characters `str.translate` may write for one character of its text."""
    if isinstance(table, str):
        return 1
    if isinstance(table, (dict, collections.abc.Mapping)):
        replacements = table.values()
    elif isinstance(table, (list, tuple)):
        replacements = table
    else:
        raise SandboxViolation("in a method, str.translate takes a dict, list, tuple or str "
                               "table")
    return max((len(r) for r in replacements if isinstance(r, str)), default=1)


# Codecs CPython runs by a fast path in C, by these names as it normalises them: anything else
# goes through the codec search, which imports a module of `encodings` at run time.
NO_IMPORT_CODECS = frozenset({"utf8", "utf_8", "utf16", "utf_16", "utf32", "utf_32", "ascii",
                              "us_ascii", "latin1", "latin_1", "iso_8859_1", "iso8859_1"})
NO_IMPORT_ERRORS = frozenset({"strict", "ignore", "replace", "backslashreplace",
                              "xmlcharrefreplace", "surrogateescape", "surrogatepass"})
CODEC_NAME_PART = re.compile(r"[A-Za-z0-9.]+")


def _check_codec(data, encoding, errors):
    """Refuse encoding or decoding `data` when it would import a codec, or an error handler's
    module (`namereplace` imports `unicodedata`), or could overrun the memory budget."""
    if not isinstance(encoding, str) or not isinstance(errors, str):
        return  # the call itself refuses it
    if "_".join(CODEC_NAME_PART.findall(encoding)).lower() not in NO_IMPORT_CODECS:
        raise SandboxViolation(f"the encoding {encoding!r} is not available to methods; "
                               "utf-8, ascii and latin-1 are")
    if errors not in NO_IMPORT_ERRORS:
        raise SandboxViolation(f"the error handler {errors!r} is not available to methods")
    escapes = errors in ("backslashreplace", "xmlcharrefreplace")  # up to 10 chars each
    per_item = (16 if escapes else 4) if isinstance(data, bytes) else (40 if escapes else 4)
    if len(data) * per_item > LIMITS.memory_bytes:
        _too_big("this conversion", len(data) * per_item, LIMITS.memory_bytes)


def _guard_codec(text, method):
    def convert(encoding="utf-8", errors="strict"):
        _check_codec(text, encoding, errors)
        return method(encoding, errors)
    return convert


SIZE_GUARDED_METHODS = {"ljust": _guard_width("ljust"), "rjust": _guard_width("rjust"),
                        "center": _guard_width("center"), "zfill": _guard_width("zfill"),
                        "join": _guard_join, "replace": _guard_replace,
                        "expandtabs": _guard_expandtabs, "translate": _guard_translate,
                        "encode": _guard_codec, "decode": _guard_codec}


def guarded_range(*args):
    """`range`, no longer than the memory budget could hold as a list."""
    made = range(*args)
    try:
        length = len(made)
    except OverflowError:
        length = sys.maxsize
    if length > LIMITS.max_range:
        _too_big(f"a range of {length:,} numbers", length * 64, LIMITS.memory_bytes)
    return made


def guarded_pow(base, exp, mod=None):
    """`pow`; without a modulus it is `**` and checked like it; with one, its steps (bits of
    the exponent) times their cost (the modulus's bits, squared) are bounded, and reducing the
    base is a division."""
    if mod is None:
        return guarded_binop("**", base, exp)
    if _is_int(base) and _is_int(exp) and _is_int(mod):
        modulus_bits = mod.bit_length()
        if abs(exp).bit_length() * (modulus_bits + 256) ** 2 > MODULAR_POW_WORK:
            _too_slow(f"pow() with a {abs(exp).bit_length():,}-bit exponent and a "
                      f"{modulus_bits:,}-bit modulus")
        _check_division(base.bit_length(), modulus_bits)
    return pow(base, exp, mod)


def guarded_round(number, ndigits=None):
    """`round`; an int rounded to -n digits is divided by 10 ** n, a power and a division
    bounded like `**` and `//`."""
    if isinstance(number, int) and isinstance(ndigits, int) and ndigits < 0:
        power_bits = -ndigits * 10 // 3 + 1  # the bits of 10 ** -ndigits
        if power_bits > LIMITS.max_int_bits:
            _too_big(f"round(…, {ndigits:,})", power_bits // 8, LIMITS.max_int_bits // 8)
        if power_bits > MAX_PRODUCT_BITS:
            _too_slow(f"round(…, {ndigits:,})")
        _check_division(number.bit_length(), power_bits)
    return round(number, ndigits)


def guarded_divmod(dividend, divisor):
    """`divmod`, its int division bounded like `//`."""
    if _is_int(dividend) and _is_int(divisor) and dividend.bit_length() > SAFE_DIVIDEND_BITS:
        _check_division(dividend.bit_length(), divisor.bit_length())
    return divmod(dividend, divisor)


def guarded_sum(iterable, start=0):
    """`sum` of numbers (summing lists or strings this way is quadratic in C)."""
    if not isinstance(start, (int, float, complex)):
        raise SandboxViolation("in a method, sum() adds numbers; use a loop or join for "
                               "sequences")
    return sum(iterable, start)


def _check_text(value, what, quoted=False, share=1):
    """Refuse rendering `value` when its text could overrun `1/share` of the memory budget."""
    limit = LIMITS.memory_bytes // (BYTES_PER_ITEM[str] * share)
    size = _text_bound(value, limit, quoted)
    if size > limit:
        _too_big(what, size * BYTES_PER_ITEM[str] * share, LIMITS.memory_bytes)


_ABSENT = object()


def guarded_str(object="", encoding=_ABSENT, errors=_ABSENT):  # noqa: A002 - str's own name
    """`str`: a value's text is bounded by the memory budget (shared references counted each
    time); decoding takes only the encodings that need no import."""
    if encoding is _ABSENT and errors is _ABSENT:
        if type(object) is not str:
            _check_text(object, "str() of this value")
        return str(object)
    encoding = "utf-8" if encoding is _ABSENT else encoding
    errors = "strict" if errors is _ABSENT else errors
    if isinstance(object, bytes):
        _check_codec(object, encoding, errors)
    return str(object, encoding, errors)


def guarded_repr(obj):
    """`repr`, its text bounded by the memory budget like `str`'s."""
    _check_text(obj, "repr() of this value", quoted=True)
    return repr(obj)


def guarded_format_value(value, fields, conversion):
    """The value of an f-string field (`_format_`), refused when its text could overrun the
    field's share of the memory budget: the f-string has `fields` fields; `conversion` is the
    field's `!s`/`!r`/`!a` as a character code, or -1."""
    limit = LIMITS.memory_bytes // (BYTES_PER_ITEM[str] * fields)
    if type(value) is str and conversion in (-1, 115):
        size = len(value)
    elif _is_int(value) and conversion == -1:
        size = value.bit_length() * 5 // 4 + 8  # `{n:_b}` writes every bit, and separators
    else:
        size = _text_bound(value, limit, False if conversion in (-1, 115)
                           else "ascii" if conversion == 97 else True)
    size += 2 * MAX_FORMAT_WIDTH  # the spec's width and precision
    if size > limit:
        _too_big("this f-string", size * BYTES_PER_ITEM[str] * fields, LIMITS.memory_bytes)
    return value


def _check_shared_hashes(keys, what):
    """Refuse building a set or dict of `keys` in one C call when many distinct keys share a
    hash (40,000 multiples of 2**61 - 1, say): CPython compares each key with every earlier
    one of its hash, a quadratic loop that nothing interrupts. A key equal to an earlier one
    costs about as many comparisons as there are distinct keys of its hash, so the work is
    counted as items × distinct keys / 2 per hash, the distinct keys found through
    `_strong_key`s (whose hashes no one can steer); all in linear time. Unhashable keys raise
    the `TypeError` the call would."""
    if len(keys) <= SHARED_HASH_FREE or isinstance(keys, range) \
            and max(abs(keys.start), abs(keys.stop)) < HASH_MODULUS:
        return
    types_ = set(map(type, keys))
    if types_ <= {str, bytes}:
        return  # salted hashes: distinct texts share one only by chance
    if types_ <= {int, bool} and -HASH_MODULUS < min(keys) and max(keys) < HASH_MODULUS:
        return  # these ints are their own hashes (but -1 and -2: two keys)
    hashes = list(map(hash, keys))
    shared = len(hashes) - len(set(hashes))  # a hash of a hash is itself: these never collide
    if (shared + 1) ** 2 // 2 <= SHARED_HASH_WORK:
        return  # even all in one hash, too few to matter
    strong = list(map(hex, keys) if types_ <= {int, bool} else map(_strong_key, keys))
    if len(set(strong)) == len(hashes) - shared:
        return  # as many distinct keys as hashes: one key per hash, however often repeated
    counts = collections.Counter(hashes)
    distinct = collections.Counter(map(hash, dict(zip(strong, keys)).values()))
    work = sum(counts[hashed] * number for hashed, number in distinct.items() if number > 1) // 2
    if work > SHARED_HASH_WORK:
        _too_slow(f"building this {what}, whose keys share hashes ({max(distinct.values()):,} "
                  "distinct keys of one hash),")


def _strong_key(key):
    """A stand-in for a key, equal only for equal keys (equal keys of different types, or
    equal objects of other types, may differ: that only counts more), and hashed by what no
    one can steer: salted text hashes, or an identity (so every NaN stays apart)."""
    kind = type(key)
    if kind is int or kind is bool:
        return hex(key)
    if kind is str or kind is bytes:
        return key
    if kind is float and key == key:
        return key.hex()
    if kind is tuple:
        return tuple(map(_strong_key, key))
    if kind is frozenset:
        return frozenset(map(_strong_key, key))
    if kind is complex and key == key:
        return key.real.hex(), key.imag.hex()
    return "id", id(key)


def _hashed_source(iterable, what):
    """`iterable` ready for one C call that hashes its items, checked by `_check_shared_hashes`
    (an iterator is read into a list first). A generator runs method code between items, where
    the watchdog can stop it, so it is passed as it is; so is text (its hash is salted)."""
    if isinstance(iterable, (types.GeneratorType, str, bytes)):
        return iterable
    if not isinstance(iterable, collections.abc.Sized):
        iterable = list(iterable)
    _check_shared_hashes(iterable, what)
    return iterable


def guarded_set(*iterable):
    """`set`, its items checked for keys that share a hash before the one call that adds them."""
    return set(*(_hashed_source(source, "set") for source in iterable))


def guarded_frozenset(*iterable):
    """`frozenset`, checked like `set`."""
    return frozenset(*(_hashed_source(source, "frozenset") for source in iterable))


def guarded_set_display(items):
    """`{*a, b}` (`_set_`): the items gathered in a list, then checked like `set`'s."""
    _check_shared_hashes(items, "set")
    return set(items)


def guarded_dict(*args, **kwargs):
    """`dict`, its keys checked like `set`'s items (a sequence of pairs is read first)."""
    if len(args) == 1 and not isinstance(args[0], (types.GeneratorType, str, bytes)):
        source = args[0]
        if isinstance(source, (dict, collections.abc.Mapping)):
            _check_shared_hashes(source if isinstance(source, dict) else list(source.keys()),
                                 "dict")
        elif isinstance(source, collections.abc.Iterable):
            pairs = list(source)
            if len(pairs) > SHARED_HASH_FREE:
                try:
                    pairs = [pair if type(pair) is tuple else tuple(pair) for pair in pairs]
                    keys = [key for key, _value in pairs]
                except (TypeError, ValueError):
                    keys = ()  # not pairs: the call says what is wrong
                _check_shared_hashes(keys, "dict")
            args = (pairs,)
    return dict(*args, **kwargs)


class GuardedType(type):
    """A builtin type as methods see it: `isinstance` answers for the real type, and calling
    it runs a guard first."""

    def __instancecheck__(cls, instance):
        return isinstance(instance, cls.real)

    def __subclasscheck__(cls, subclass):
        return issubclass(subclass, cls.real)

    def __call__(cls, *args, **kwargs):
        return cls.guard(*args, **kwargs)

    def __repr__(cls):
        return repr(cls.real)


def _guarded_type(real, guard):
    """`real` as methods see it: calling it calls `guard`."""
    return GuardedType(real.__name__, (), {"real": real, "guard": staticmethod(guard),
                                           "__doc__": guard.__doc__})


SAFE_BUILTINS = {name: getattr(builtins, name) for name in ALLOWED_BUILTINS
                 | CATCHABLE_EXCEPTIONS | {"NotImplementedError"}}
SAFE_BUILTINS.update(range=guarded_range, pow=guarded_pow, sum=guarded_sum, round=guarded_round,
                     divmod=guarded_divmod, repr=guarded_repr,
                     str=_guarded_type(str, guarded_str), dict=_guarded_type(dict, guarded_dict),
                     set=_guarded_type(set, guarded_set),
                     frozenset=_guarded_type(frozenset, guarded_frozenset))


# -- compilation -------------------------------------------------------------------------------

GUARDED_BINOPS = {ast.Pow: "**", ast.Mult: "*", ast.LShift: "<<", ast.Add: "+", ast.Mod: "%",
                  ast.FloorDiv: "//"}


class MethodPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy, plus the Covenant, augmented item/attribute assignment and
    guarded operators."""

    receiver_fixed = False

    def visit_FunctionDef(self, node):
        """Note whether `self` keeps naming the receiver throughout the method (it must: the
        receiver is what a method has authority over), and hand `self` to every write guard."""
        self.receiver_fixed = receiver_never_rebound(node)
        if not self.receiver_fixed:
            raise SyntaxError("a method's first parameter must be self, and self is never "
                              "rebound")
        node = super().visit_FunctionDef(node)
        for call in ast.walk(node):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) \
                    and call.func.id == "_write_" and len(call.args) == 1:
                call.args.append(ast.Name("self", ast.Load()))
                ast.copy_location(call.args[-1], call)
        return node

    def visit_Attribute(self, node):
        """Allow exactly `self._p_changed = ...` (the guardian allows only `= True`); read
        `self.<public name>` directly where `self` provably stays the receiver."""
        if node.attr == COVENANT_ATTRIBUTE and isinstance(node.ctx, ast.Store) \
                and isinstance(node.value, ast.Name) and node.value.id == "self":
            node.value = ast.Call(func=ast.Name("_write_", ast.Load()), args=[node.value],
                                  keywords=[])
            copy_locations(node.value, node)
            return node
        if self.receiver_fixed and isinstance(node.ctx, ast.Load) \
                and isinstance(node.value, ast.Name) and node.value.id == "self" \
                and not _attribute_denied(node.attr):
            return node  # what guarded_getattr would do for an image object, minus the call
        return super().visit_Attribute(node)

    def visit_AugAssign(self, node):
        """`a.b += c` and `a[k] += c` become guarded read, `_inplacevar_`, guarded write."""
        if not isinstance(node.target, (ast.Attribute, ast.Subscript)):
            return super().visit_AugAssign(node)
        current = copy.deepcopy(node.target)
        current.ctx = ast.Load()
        current = self.visit(current)
        target = self.visit(node.target)
        value = self.visit(node.value)
        assign = ast.Assign(targets=[target], value=ast.Call(
            func=ast.Name("_inplacevar_", ast.Load()),
            args=[ast.Constant(IOPERATOR_TO_STR[type(node.op)]), current, value],
            keywords=[]))
        copy_locations(assign, node)
        ast.fix_missing_locations(assign)
        return assign

    def visit_BinOp(self, node):
        """Operators that can build huge results in one step go through `_binop_`."""
        node = self.node_contents_visit(node)
        symbol = GUARDED_BINOPS.get(type(node.op))
        if symbol is None:
            return node
        call = ast.Call(func=ast.Name("_binop_", ast.Load()),
                        args=[ast.Constant(symbol), node.left, node.right], keywords=[])
        copy_locations(call, node)
        return call

    def visit_JoinedStr(self, node):
        """Each f-string field's value goes through `_format_`, which bounds its text by the
        field's share of the memory budget (so a thousand fields cannot add up past it)."""
        node = self.node_contents_visit(node)
        fields = [v for v in node.values if isinstance(v, ast.FormattedValue)]
        for field in fields:
            field.value = ast.Call(func=ast.Name("_format_", ast.Load()), args=[
                field.value, ast.Constant(len(fields)), ast.Constant(field.conversion)],
                keywords=[])
            copy_locations(field.value, field)
        return node

    def visit_Set(self, node):
        """A set display that unpacks (`{*items}`) adds them all in one C call: it is built
        by `_set_`, checked like `set()`."""
        node = self.node_contents_visit(node)
        if not any(isinstance(element, ast.Starred) for element in node.elts):
            return node
        call = ast.Call(func=ast.Name("_set_", ast.Load()),
                        args=[ast.List(elts=node.elts, ctx=ast.Load())], keywords=[])
        copy_locations(call, node)
        return call


# -- what the audit proves needs no run-time guard ---------------------------------------------

BOUNDED_BUILTINS = frozenset({"len", "abs", "round", "int", "float", "bool", "min", "max"})
UNBOUNDED_NODES = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp,
                   ast.GeneratorExp, ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef,
                   ast.ClassDef, ast.Yield, ast.YieldFrom, ast.Await)


def receiver_never_rebound(function):
    """True when no statement of `function` (an `ast.FunctionDef`) binds or deletes the name
    `self`: then `self.<name>` always reads the receiver, an image object, whose public
    attributes `guarded_getattr` would hand out unchanged."""
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and node.id == "self" \
                and not isinstance(node.ctx, ast.Load):
            return False
        if isinstance(node, ast.arg) and node.arg == "self" and node is not function.args.args[0]:
            return False
        if getattr(node, "name", None) == "self" and node is not function:  # except/match as
            return False
    return bool(function.args.args) and function.args.args[0].arg == "self"


def is_bounded(source):
    """True when a method provably ends in time proportional to the data it touches: no loop,
    comprehension, lambda or nested definition, and no call but to a few builtins without
    keyword arguments — so it cannot recurse, call another method or spin. Such a method runs
    without the watchdog's bookkeeping; its operators, items and writes stay guarded."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef):
        return False
    parameters = {arg.arg for arg in ast.walk(tree.body[0].args) if isinstance(arg, ast.arg)}
    rebound = {node.id for node in ast.walk(tree.body[0])
               if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load)}
    parameters -= rebound
    for node in ast.walk(tree.body[0]):
        if node is not tree.body[0] and isinstance(node, UNBOUNDED_NODES):
            return False
        if isinstance(node, ast.Call) and (node.keywords or not (
                isinstance(node.func, ast.Name) and node.func.id in BOUNDED_BUILTINS)):
            return False  # a `key=` could hand a builtin another method to call
        if isinstance(node, DISPLAYS) and not all(
                _plain_element(element, parameters) for element in _elements(node)):
            return False  # displays of computed values build shared-reference nests
    return True


DISPLAYS = (ast.List, ast.Tuple, ast.Set, ast.Dict)


def _elements(display):
    if isinstance(display, ast.Dict):
        return [part for part in display.keys + display.values if part is not None] + (
            [None] if None in display.keys else [])
    return display.elts


def _plain_element(node, parameters):
    """A display element that cannot carry a nest built by the method: a constant, an
    argument never reassigned (arguments arrive as plain data), or a slot of the receiver
    (slots hold trees of bounded size)."""
    return isinstance(node, ast.Constant) or (
        isinstance(node, ast.Name) and node.id in parameters) or (
        isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
        and node.value.id == "self" and isinstance(node.ctx, ast.Load))


def restricted_globals(selector):
    """A fresh namespace for one method: safe builtins and the guards, nothing else."""
    return {"__builtins__": SAFE_BUILTINS, "__name__": f"batos.method.{selector}",
            "_getattr_": guarded_getattr, "_getitem_": guarded_getitem,
            "_getiter_": guarded_getiter, "_write_": guarded_write,
            "_inplacevar_": guarded_inplace, "_binop_": guarded_binop,
            "_format_": guarded_format_value, "_set_": guarded_set_display,
            "_apply_": guarded_apply, "_unpack_sequence_": guarded_unpack_sequence,
            "_iter_unpack_sequence_": guarded_iter_unpack_sequence}


def compile_method(source, selector):
    """Compile one audited `def` with RestrictedPython and return the function it defines."""
    try:
        result = compile_restricted(source, filename=f"<method {selector}>", mode="exec",
                                    policy=MethodPolicy)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise SandboxError(f"method {selector!r} does not compile: {exc}") from None
    namespace, defined = restricted_globals(selector), {}
    # The function goes into its own dict, not the globals: a method named `sorted` or `max`
    # would otherwise hide the builtin of that name from its own body.
    exec(result, namespace, defined)  # defines the function only: the guardian allows no more
    functions = [v for v in defined.values() if isinstance(v, types.FunctionType)]
    if len(functions) != 1:
        raise SandboxError(f"method {selector!r} must define exactly one function")
    return functions[0]


# -- budgets -----------------------------------------------------------------------------------

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


_statm = None  # /proc/self/statm, kept open: one pread is a few microseconds
_statm_lock = threading.Lock()


def _forget_statm():
    """In a forked child: the inherited /proc/self/statm reads the parent; open our own."""
    global _statm, _statm_lock
    if _statm is not None:
        with contextlib.suppress(OSError):
            os.close(_statm)
    _statm, _statm_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_statm)


def resident_bytes():
    """This process's resident memory now (Linux, cheap enough for every call's start), else
    its peak."""
    global _statm
    try:
        if _statm is None:
            with _statm_lock:
                if _statm is None:
                    _statm = os.open("/proc/self/statm", os.O_RDONLY)
        return int(os.pread(_statm, 128, 0).split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError, AttributeError):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Budget:
    """One thread's allowance for the outermost learned-method call it is running.

    Made once per thread and reused: entering and leaving a call only sets a few fields
    under the budget's own lock, the lock the watchdog also holds when it decides to stop
    the thread — so a stop can never land after the call has been left. The memory baseline
    is the process's resident size when the call is entered.
    """

    def __init__(self):
        self.thread_id = threading.get_ident()
        self.clock = time.pthread_getcpuclockid(self.thread_id)
        self.lock = threading.Lock()
        self.active = False
        self.cpu_start = 0.0
        self.cpu_limit = 0.0
        self.memory_limit = 0
        self.rss_start = 0
        self.stop = None

    def overrun(self, rss):
        """The budget exception to raise now, or None while within budget."""
        used = time.clock_gettime(self.clock) - self.cpu_start
        if used > self.cpu_limit:
            return CPUBudgetExceeded(f"stopped after {used:.2f} s of CPU time; the method's "
                                     f"budget is {self.cpu_limit:g} s")
        grown = rss - self.rss_start
        if grown > self.memory_limit:
            return MemoryBudgetExceeded(f"stopped after allocating about {grown:,} bytes; the "
                                        f"method's budget is {self.memory_limit:,}")
        return None


def _raise_in_thread(thread_id, exception_class):
    """Schedule `exception_class` to be raised in another thread (None cancels)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exception_class) if exception_class
        else ctypes.c_void_p(None))


METHOD_FILENAME = "<method "  # how `compile_method` names a method's code


def _in_method(frame):
    """True when a learned method's code is on the stack that ends at `frame`."""
    while frame is not None:
        if frame.f_code.co_filename.startswith(METHOD_FILENAME):
            return True
        frame = frame.f_back
    return False


class Watchdog:
    """One daemon thread per process that stops the learned-method calls that overrun.

    A stopped call that keeps running (a `finally` or handler that loops again) is stopped
    again at every tick while the method's code is still on its thread's stack — so nested
    `finally` blocks cannot outlive the budget — and never once the call has been left.
    """

    def __init__(self):
        self._budgets = {}
        self._registry_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None
        self._idle = True

    def budget(self):
        """This thread's `Budget`, made and registered on its first learned-method call."""
        budget = getattr(_local, "budget", None)
        if budget is None:
            budget = _local.budget = Budget()
            with self._registry_lock:
                self._budgets[budget.thread_id] = budget
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="batos-watchdog",
                                                    daemon=True)
                    self._thread.start()
        return budget

    def enter(self, budget, limits):
        """Start the clock of `budget`'s thread, and take its memory baseline."""
        rss = resident_bytes()
        with budget.lock:
            budget.cpu_limit, budget.memory_limit = limits.cpu_seconds, limits.memory_bytes
            budget.rss_start, budget.stop = rss, None
            budget.cpu_start = time.clock_gettime(budget.clock)
            budget.active = True
        if self._idle:
            self._wake.set()

    def leave(self, budget):
        """Stop the clock; cancel a stop that was scheduled but not yet delivered."""
        with budget.lock:
            budget.active = False
            if budget.stop is not None:
                _raise_in_thread(budget.thread_id, None)

    def _run(self):
        while True:
            active = [b for b in list(self._budgets.values()) if b.active]
            if not active:
                self._prune()
                self._idle = True
                self._wake.wait()
                self._wake.clear()
                self._idle = False
                continue
            rss, frames = resident_bytes(), None
            for budget in active:
                with budget.lock:
                    if not budget.active:
                        continue
                    if budget.stop is None:
                        stop = budget.overrun(rss)
                        if stop is not None:
                            budget.stop = stop
                            _raise_in_thread(budget.thread_id, type(stop))
                        continue
                    frames = sys._current_frames() if frames is None else frames
                    if _in_method(frames.get(budget.thread_id)):
                        _raise_in_thread(budget.thread_id, type(budget.stop))  # again
                    else:
                        budget.active = False  # it has left the method, if not yet `leave`
            time.sleep(LIMITS.watchdog_interval)

    def _prune(self):
        """Forget the budgets of threads that have ended."""
        alive = {thread.ident for thread in threading.enumerate()}
        with self._registry_lock:
            for thread_id in [t for t in self._budgets if t not in alive]:
                del self._budgets[thread_id]


WATCHDOG = Watchdog()
_local = threading.local()


def call(function, receiver, *args, **kwargs):
    """Call a learned method's function under this process's budgets, with authority over
    `receiver` (and what the call makes)."""
    depth = getattr(_local, "depth", 0)
    if depth >= LIMITS.max_call_depth:
        raise RecursionBudgetExceeded(f"learned methods nested deeper than "
                                      f"{LIMITS.max_call_depth} calls")
    if not depth:
        _local.receivers, _local.created = [], weakref.WeakSet()
    _local.depth = depth + 1
    _local.receivers.append(receiver)
    try:
        if depth:
            return function(receiver, *args, **kwargs)
        return _call_outermost(function, receiver, args, kwargs)
    finally:
        _local.receivers.pop()
        _local.depth = depth
        if not depth:
            _local.created = ()


def _call_outermost(function, receiver, args, kwargs):
    if LIMITS.isolation == "process":
        from kernel import isolation  # here: it needs the kernel's classes, loaded by now
        if isolation.available():
            try:
                return isolation.call(function, receiver, args, kwargs, LIMITS)
            except BudgetExceeded as stop:
                log.info("learned method stopped: %s", stop)
                raise
    budget = WATCHDOG.budget()
    WATCHDOG.enter(budget, LIMITS)
    failure = None
    try:
        result = function(receiver, *args, **kwargs)
    except BudgetExceeded as exc:
        failure = exc
    except RecursionError:
        failure = RecursionBudgetExceeded("stopped: the method recursed too deeply")
    finally:
        _leave(budget)
    stop = budget.stop or failure
    if stop is not None:
        log.info("learned method stopped: %s", stop)
        raise stop from None
    return result


def _leave(budget):
    """Stop watching `budget`, even if its stop is delivered while we leave."""
    while True:
        try:
            WATCHDOG.leave(budget)
            return
        except BudgetExceeded:
            continue


@contextlib.contextmanager
def budgets(**settings):
    """Temporarily change budgets (tests and trial runs)."""
    saved = dataclasses.replace(LIMITS)
    configure(**settings)
    try:
        yield LIMITS
    finally:
        for field in dataclasses.fields(Limits):
            setattr(LIMITS, field.name, getattr(saved, field.name))


slot_values.authority_check = running_method_may_change
