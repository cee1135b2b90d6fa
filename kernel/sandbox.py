"""Restricted execution of learned methods: guarded code under CPU-time and memory budgets.

A learned method's source reaches `compile_method` only after the PersistenceGuardian
accepted it. It is compiled with RestrictedPython (the Zope project's library for exactly
this), whose transformer routes every attribute read through `_getattr_`, every item read
through `_getitem_`, every iteration through `_getiter_` and every write through `_write_`;
`MethodPolicy` adds the Covenant line, augmented assignment of attributes and items, and
routes the operators that can explode in one C call (`**`, `*`, `<<`, `+`, `%`) through
`_binop_`, which refuses results larger than the budget before computing them. The code runs
with a short list of builtins and never sees the kernel's modules, the database connection,
the filesystem or the network.

Every call of a learned method runs inside a `Budget`: a watchdog thread measures the calling
thread's CPU time and the process's resident memory, and stops a method that overruns by
raising `CPUBudgetExceeded` or `MemoryBudgetExceeded` inside it; call depth and Python
recursion are bounded too. These derive from `BudgetExceeded`, a `BaseException`, so a
method's own `except Exception` cannot swallow them; the transaction they cross is aborted
and the process keeps serving.
"""
import ast
import builtins
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

from RestrictedPython import compile_restricted
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence
from RestrictedPython.transformer import (IOPERATOR_TO_STR, RestrictingNodeTransformer,
                                          copy_locations)

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


# -- limits ------------------------------------------------------------------------------------

@dataclasses.dataclass
class Limits:
    """The budgets of every learned-method call in this process."""

    cpu_seconds: float = 2.0
    memory_bytes: int = 256 * 1024 * 1024
    max_call_depth: int = 64
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


def _attribute_denied(name):
    """Names no method may read on any object."""
    return (type(name) is not str or name.startswith("_") or name in INTROSPECTION_ATTRIBUTES
            or name.startswith(INTROSPECTION_PREFIXES))


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


def guarded_write(obj):
    """The object itself when methods may change it: image objects, dicts, lists, BTrees."""
    if _kind(obj) != WRITABLE:
        raise SandboxViolation(f"methods cannot change {type(obj).__name__} objects")
    return obj


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
PERCENT_FIELD = re.compile(rb"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
BYTES_PER_ITEM = {str: 4, bytes: 1, list: 8, tuple: 8}


def _too_big(what, size, limit):
    raise MemoryBudgetExceeded(f"{what} would need about {size:,} bytes; the method's memory "
                               f"budget is {limit:,}")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _sequence_bytes(seq, count):
    per_item = next((size for kind, size in BYTES_PER_ITEM.items() if isinstance(seq, kind)), 0)
    return len(seq) * max(count, 0) * per_item


def check_operands(symbol, left, right):
    """Refuse `left <symbol> right` when its result would overrun the budget."""
    limits = LIMITS
    if symbol == "**" and _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
        bits = left.bit_length() * right
        if bits > limits.max_int_bits:
            _too_big("this power", bits // 8, limits.max_int_bits // 8)
    elif symbol == "<<" and _is_int(left) and _is_int(right) and left:
        if left.bit_length() + right > limits.max_int_bits:
            _too_big("this shift", (left.bit_length() + right) // 8, limits.max_int_bits // 8)
    elif symbol == "*":
        if _is_int(left) and _is_int(right):
            bits = left.bit_length() + right.bit_length()
            if bits > limits.max_int_bits:
                _too_big("this product", bits // 8, limits.max_int_bits // 8)
        else:
            seq, count = (left, right) if _is_int(right) else (right, left)
            if _is_int(count) and isinstance(seq, tuple(BYTES_PER_ITEM)):
                size = _sequence_bytes(seq, count)
                if size > limits.memory_bytes:
                    _too_big("this repetition", size, limits.memory_bytes)
    elif symbol == "+" and isinstance(left, tuple(BYTES_PER_ITEM)) \
            and isinstance(right, tuple(BYTES_PER_ITEM)):
        size = _sequence_bytes(left, 1) + _sequence_bytes(right, 1)
        if size > limits.memory_bytes:
            _too_big("this concatenation", size, limits.memory_bytes)
    elif symbol == "%" and isinstance(left, (str, bytes)):
        template = left.encode("utf-8", "replace") if isinstance(left, str) else left
        for match in PERCENT_FIELD.finditer(template):
            for part in match.groups():
                if part == b"*":
                    raise SandboxViolation("'*' widths in % formatting are not available")
                if part is not None and int(part) > MAX_FORMAT_WIDTH:
                    raise SandboxViolation(f"% format widths above {MAX_FORMAT_WIDTH} are "
                                           "not available")


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


SIZE_GUARDED_METHODS = {"ljust": _guard_width("ljust"), "rjust": _guard_width("rjust"),
                        "center": _guard_width("center"), "zfill": _guard_width("zfill"),
                        "join": _guard_join, "replace": _guard_replace,
                        "expandtabs": _guard_expandtabs}


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


def guarded_pow(base, exponent, modulus=None):
    """`pow`; without a modulus it is `**` and checked like it."""
    if modulus is None:
        return guarded_binop("**", base, exponent)
    return pow(base, exponent, modulus)


def guarded_sum(iterable, start=0):
    """`sum` of numbers (summing lists or strings this way is quadratic in C)."""
    if not isinstance(start, (int, float, complex)):
        raise SandboxViolation("in a method, sum() adds numbers; use a loop or join for "
                               "sequences")
    return sum(iterable, start)


SAFE_BUILTINS = {name: getattr(builtins, name) for name in ALLOWED_BUILTINS
                 | CATCHABLE_EXCEPTIONS | {"NotImplementedError"}}
SAFE_BUILTINS.update(range=guarded_range, pow=guarded_pow, sum=guarded_sum)


# -- compilation -------------------------------------------------------------------------------

GUARDED_BINOPS = {ast.Pow: "**", ast.Mult: "*", ast.LShift: "<<", ast.Add: "+", ast.Mod: "%"}


class MethodPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy, plus the Covenant, augmented item/attribute assignment and
    guarded operators."""

    receiver_fixed = False

    def visit_FunctionDef(self, node):
        """Note whether `self` keeps naming the receiver throughout the method."""
        self.receiver_fixed = receiver_never_rebound(node)
        return super().visit_FunctionDef(node)

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
    for node in ast.walk(tree.body[0]):
        if node is not tree.body[0] and isinstance(node, UNBOUNDED_NODES):
            return False
        if isinstance(node, ast.Call) and (node.keywords or not (
                isinstance(node.func, ast.Name) and node.func.id in BOUNDED_BUILTINS)):
            return False  # a `key=` could hand a builtin another method to call
    return True


def restricted_globals(selector):
    """A fresh namespace for one method: safe builtins and the guards, nothing else."""
    return {"__builtins__": SAFE_BUILTINS, "__name__": f"batos.method.{selector}",
            "_getattr_": guarded_getattr, "_getitem_": guarded_getitem,
            "_getiter_": guarded_getiter, "_write_": guarded_write,
            "_inplacevar_": guarded_inplace, "_binop_": guarded_binop,
            "_apply_": guarded_apply, "_unpack_sequence_": guarded_unpack_sequence,
            "_iter_unpack_sequence_": guarded_iter_unpack_sequence}


def compile_method(source, selector):
    """Compile one audited `def` with RestrictedPython and return the function it defines."""
    try:
        result = compile_restricted(source, filename=f"<method {selector}>", mode="exec",
                                    policy=MethodPolicy)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise SandboxError(f"method {selector!r} does not compile: {exc}") from None
    namespace = restricted_globals(selector)
    exec(result, namespace)  # defines the function only: the guardian allows nothing else
    functions = [v for k, v in namespace.items()
                 if isinstance(v, types.FunctionType) and v.__globals__ is namespace]
    if len(functions) != 1:
        raise SandboxError(f"method {selector!r} must define exactly one function")
    return functions[0]


# -- budgets -----------------------------------------------------------------------------------

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes():
    """This process's resident memory now (Linux), else its peak."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Budget:
    """One thread's allowance for the outermost learned-method call it is running.

    Made once per thread and reused: entering and leaving a call only sets a few fields
    under the budget's own lock, the lock the watchdog also holds when it decides to stop
    the thread — so a stop can never land after the call has been left.
    """

    def __init__(self):
        self.thread_id = threading.get_ident()
        self.clock = time.pthread_getcpuclockid(self.thread_id)
        self.lock = threading.Lock()
        self.active = False
        self.cpu_start = 0.0
        self.cpu_limit = 0.0
        self.memory_limit = 0
        self.rss_start = None  # taken by the watchdog, off the caller's hot path
        self.stop = None

    def overrun(self, rss):
        """The budget exception to raise now, or None while within budget."""
        used = time.clock_gettime(self.clock) - self.cpu_start
        if used > self.cpu_limit:
            return CPUBudgetExceeded(f"stopped after {used:.2f} s of CPU time; the method's "
                                     f"budget is {self.cpu_limit:g} s")
        if self.rss_start is None:
            self.rss_start = rss
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


class Watchdog:
    """One daemon thread per process that stops the learned-method calls that overrun."""

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
        """Start the clock of `budget`'s thread."""
        with budget.lock:
            budget.cpu_limit, budget.memory_limit = limits.cpu_seconds, limits.memory_bytes
            budget.rss_start, budget.stop = None, None
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
            rss = resident_bytes()
            for budget in active:
                with budget.lock:
                    if budget.active and budget.stop is None:
                        stop = budget.overrun(rss)
                        if stop is not None:
                            budget.stop = stop
                            _raise_in_thread(budget.thread_id, type(stop))
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
    """Call a learned method's function under this process's budgets."""
    depth = getattr(_local, "depth", 0)
    if depth >= LIMITS.max_call_depth:
        raise RecursionBudgetExceeded(f"learned methods nested deeper than "
                                      f"{LIMITS.max_call_depth} calls")
    _local.depth = depth + 1
    try:
        if depth:
            return function(receiver, *args, **kwargs)
        return _call_outermost(function, receiver, args, kwargs)
    finally:
        _local.depth = depth


def _call_outermost(function, receiver, args, kwargs):
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
