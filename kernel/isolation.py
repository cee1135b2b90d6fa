"""Disposable processes: where a learned method that loops or calls runs, so that no method —
however hostile — can take down the worker, the CLI or the ZEO server it runs for.

Some harm cannot be stopped inside the process: one C call cannot be interrupted (hashing a
tuple nested 300,000 deep overflows the C stack and segfaults; a set of colliding integers, a
huge `pow` with a modulus run for seconds; a `finally` that loops again). So the outermost call
of every method that is not straight-line (`sandbox.is_bounded`) runs in a fork of the calling
process, made for that call and thrown away after it:

- The fork sees the image exactly as the caller does (copy-on-write: the receiver, its
  lineage, the transaction's uncommitted changes). An object it has not loaded yet it asks the
  caller for over a pipe (`_ParentStorage`): the caller's own connection loads it, so the fork
  never talks to the ZEO server.
- It runs under the kernel's limits: a CPU-time timer that stops the method again and again
  (SIGPROF, then SIGXCPU/SIGKILL by `RLIMIT_CPU` for a C call that will not return), an
  address-space limit (`RLIMIT_AS`) of its present size plus the memory budget, and the
  caller's wall-clock deadline, after which it is killed: the caller hears of any stop within
  the CPU budget plus one second.
- What the method changed comes back as data: the public slots of every image object it was
  allowed to change (`sandbox` records them as it grants each write), objects it made (by
  value, from those slots or the result), and its result — all checked as image values in the
  fork (`slot_values`), so that rendering or storing them is bounded. The caller applies the
  slots to its own objects, within its own transaction. A method that raised leaves nothing
  behind; its exception comes back with short arguments only.
- A fork that crashes, overruns or is killed leaves nothing behind: the caller raises
  `MethodCrashed` or a `BudgetExceeded`, its transaction is unchanged, and it serves on.

Forking costs about a millisecond or two per outermost call (bench/dispatch.py measures it);
straight-line methods, which can neither loop nor call, run in the caller under operand
guards and need none of this.
"""
import contextlib
import faulthandler
import gc
import io
import logging
import math
import os
import pickle
import resource
import select
import signal
import struct
import time
import warnings

import persistent
from ZODB.POSException import POSKeyError

from kernel import sandbox, slot_values, uvm
from kernel.errors import BatosError, MessageNotUnderstood

log = logging.getLogger(__name__)

HEADER = struct.Struct("!Q")
STOP_AGAIN = 0.02  # after the budget, the timer stops the method again every this many seconds
KILL_AFTER = 0.75  # wall seconds past the CPU budget before the fork is killed: the caller
                   # hears of the stop within the budget plus one second, reaping included
CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL, signal.SIGFPE}


class IsolationUnavailable(BatosError):
    """No process could be made for a method (the system refused a fork). Transient."""

    transient = True


def available():
    """True where methods can run in forks of their caller (POSIX)."""
    return hasattr(os, "fork")


# -- the caller's side -------------------------------------------------------------------------

def call(function, receiver, args, kwargs, limits):
    """Run `function(receiver, *args, **kwargs)` in a fork under `limits`; apply what it
    changed to the caller's objects and return its result, or raise what stopped it."""
    jar = _jar_of(receiver)
    answers_in, answers_out = os.pipe()  # the caller's answers to the fork's loads
    asks_in, asks_out = os.pipe()  # the fork's loads, then its outcome
    try:
        with warnings.catch_warnings():  # Python ≥ 3.12 warns about forking with threads
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except OSError as exc:
        for fd in (answers_in, answers_out, asks_in, asks_out):
            os.close(fd)
        raise IsolationUnavailable(f"no process could be made for the method: {exc}") from None
    if pid == 0:
        os.close(answers_out)
        os.close(asks_in)
        _child(function, receiver, args, kwargs, limits, answers_in, asks_out)
    os.close(answers_in)
    os.close(asks_out)
    try:
        blob = _serve(pid, jar, asks_in, answers_out, limits)
    finally:
        os.close(asks_in)
        os.close(answers_out)
    return _apply(_unpickle(blob, jar))


def _jar_of(receiver):
    """The connection the receiver's world is loaded through: its own, or (a new object's)
    the nearest ancestor's."""
    for obj in receiver._lineage() if hasattr(receiver, "_lineage") else (receiver,):
        if getattr(obj, "_p_jar", None) is not None:
            return obj._p_jar
    return None


def _serve(pid, jar, channel, reply, limits):
    """Answer the fork's loads until it sends its outcome; the outcome's bytes, or raise what
    ended it (killed at the deadline, crashed)."""
    started = time.monotonic()
    reader = _Frames(channel)
    try:
        while True:
            frame = reader.next(started + limits.cpu_seconds + KILL_AFTER)
            if frame is None:
                raise _ended(_reap(pid), limits)
            kind, body = pickle.loads(frame)
            if kind == "done":
                _reap(pid)
                return body
            with contextlib.suppress(BrokenPipeError):  # it died: the next read says how
                _send(reply, _load_for_child(jar, body))
    except TimeoutError:
        _kill(pid)
        raise sandbox.CPUBudgetExceeded(
            f"stopped after {time.monotonic() - started:.1f} s; the method's budget is "
            f"{limits.cpu_seconds:g} s of CPU time") from None
    except BaseException:  # the caller was interrupted: its fork goes with it
        _kill(pid)
        raise


def _kill(pid):
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid):
    """Wait for the fork; its wait status."""
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue


def _ended(status, limits):
    """The exception for a fork that ended without an outcome."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name
        if number in (signal.SIGXCPU, signal.SIGKILL):
            return sandbox.CPUBudgetExceeded(f"stopped by {name} in a single long step; the "
                                             f"method's budget is {limits.cpu_seconds:g} s")
        return sandbox.MethodCrashed(f"the method crashed its disposable process ({name}); "
                                     "nothing it did was kept")
    return sandbox.MethodCrashed(f"the method's disposable process ended with status "
                                 f"{os.WEXITSTATUS(status)}; nothing it did was kept")


def _load_for_child(jar, oid):
    """A record the fork asked for, loaded through the caller's connection."""
    try:
        return ("loaded",) + tuple(jar._storage.load(oid))
    except POSKeyError:
        return ("missing", oid)


def _unpickle(blob, jar):
    unpickler = pickle.Unpickler(io.BytesIO(blob))
    unpickler.persistent_load = lambda ref: _resolve(ref, jar)
    return unpickler.load()


def _resolve(ref, jar):
    """The caller's object for a reference the fork made."""
    kind, key = ref
    if kind == "oid" and jar is not None:
        return jar.get(key)
    if kind == "unsaved":
        found = uvm.UNSAVED.get(key)
        if found is not None:
            return found
    raise sandbox.SandboxViolation(f"the method's process referred to an object the caller "
                                   f"does not have ({kind} {key!r})")


def _apply(outcome):
    """Make the caller's objects hold what the fork left in them; return or raise its end."""
    kind, body, changed = outcome
    for obj, slots in changed:
        state = obj.__dict__
        for name in [name for name in state if not name.startswith("_")]:
            del state[name]
        state.update((name, slot_values.own(value, obj)) for name, value in slots.items())
        obj._p_changed = True
        uvm.lineage_changed()
    if kind == "ok":
        return body
    raise _rebuilt(body)


def _rebuilt(record):
    """The exception the fork reported, rebuilt in the caller."""
    kind = record[0]
    if kind == "not-understood":
        return MessageNotUnderstood(*record[1:])
    if kind == "budget":
        return getattr(sandbox, record[1], sandbox.BudgetExceeded)(record[2])
    if kind == "exception":
        return record[1]
    return sandbox.SandboxViolation(record[1])


# -- the fork's side ---------------------------------------------------------------------------

class _Frames:
    """Length-prefixed frames read from a pipe, with a deadline."""

    def __init__(self, fd):
        self.fd = fd
        self.buffer = b""

    def next(self, deadline=None):
        """The next frame, None at the end of the pipe; `TimeoutError` past `deadline`."""
        while True:
            if len(self.buffer) >= HEADER.size:
                size, = HEADER.unpack_from(self.buffer)
                if len(self.buffer) >= HEADER.size + size:
                    frame = self.buffer[HEADER.size:HEADER.size + size]
                    self.buffer = self.buffer[HEADER.size + size:]
                    return frame
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
                    raise TimeoutError
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                return None
            self.buffer += chunk


def _send(fd, message):
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


class _ParentStorage:
    """The fork's storage: every load is asked of the caller, which owns the connection."""

    def __init__(self, asks, answers):
        self.asks = asks
        self.answers = _Frames(answers)

    def load(self, oid, version=""):
        """The record of `oid`, as the caller's connection sees it."""
        _send(self.asks, ("load", oid))
        answer = pickle.loads(self.answers.next())
        if answer[0] != "loaded":
            raise POSKeyError(oid)
        return answer[1], answer[2]

    def prefetch(self, *oids):
        """Nothing: each load is asked for when needed."""

    def __getattr__(self, name):
        raise sandbox.SandboxViolation(f"a method's process cannot use the storage ({name})")


def _child(function, receiver, args, kwargs, limits, answers, asks):
    """In the fork: run the method under the limits, send the outcome, leave at once."""
    code = 70
    try:
        faulthandler.disable()  # its crash is the caller's to report, not the caller's log's
        gc.freeze()  # the caller's objects are never collected (or touched) here
        jar = _jar_of(receiver)
        if jar is not None:
            jar._storage = _ParentStorage(asks, answers)
        _limit(limits)
        _send(asks, ("done", _outcome(function, receiver, args, kwargs)))
        code = 0
    finally:
        os._exit(code)


def _limit(limits):
    """CPU and memory limits of this process, for the method's call."""
    def stop(_signum, _frame):
        raise sandbox.CPUBudgetExceeded(f"stopped after {limits.cpu_seconds:g} s of CPU time, "
                                        "the method's budget")
    signal.signal(signal.SIGPROF, stop)
    signal.setitimer(signal.ITIMER_PROF, limits.cpu_seconds, STOP_AGAIN)
    seconds = math.ceil(limits.cpu_seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    size = _address_space()
    if size:
        cap = size + limits.memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def _address_space():
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _outcome(function, receiver, args, kwargs):
    """Run the method; its outcome pickled, with the objects it changed."""
    sandbox.begin_touching()
    try:
        try:
            result = slot_values.check_result(function(receiver, *args, **kwargs))
            outcome = "ok", result
        except MessageNotUnderstood as exc:
            outcome = "raise", ("not-understood", exc.receiver_name, exc.selector,
                                exc.receiver_oid, exc.arguments)
        except (sandbox.BudgetExceeded, RecursionError, MemoryError) as exc:
            outcome = "raise", _budget_record(exc)
        except BaseException as exc:  # the method's own failure, reported to the caller
            outcome = "raise", _exception_record(exc)
        signal.setitimer(signal.ITIMER_PROF, 0)
        changed = [(obj, _public_slots(obj)) for obj in sandbox.touched()] \
            if outcome[0] == "ok" else []  # a method that failed leaves nothing behind
        return _pickled((*outcome, changed))
    except (sandbox.BudgetExceeded, RecursionError, MemoryError) as exc:
        signal.setitimer(signal.ITIMER_PROF, 0)
        return _pickled(("raise", _budget_record(exc), []))
    except BaseException as exc:  # what it left cannot be sent back: nothing of it is kept
        signal.setitimer(signal.ITIMER_PROF, 0)
        return _pickled(("raise", ("violation", f"what the method left cannot be kept: {exc}"),
                         []))


def _exception_record(exc):
    """The method's own exception as the caller will see it: its type, with arguments that
    are short text or numbers (an argument could be a nest whose rendering explodes)."""
    args = tuple(arg if isinstance(arg, (int, float, bool, type(None))) or (
        isinstance(arg, str) and len(arg) <= 2000) else f"<{type(arg).__name__}>"
        for arg in exc.args)
    try:
        return "exception", type(exc)(*args)
    except Exception:  # a kernel exception made another way: its type's name and message
        return "violation", f"{type(exc).__name__}: {', '.join(map(str, args))}"


def _budget_record(exc):
    if isinstance(exc, RecursionError):
        return "budget", "RecursionBudgetExceeded", "stopped: the method recursed too deeply"
    if isinstance(exc, MemoryError):
        return "budget", "MemoryBudgetExceeded", "stopped allocating: the method reached " \
                                                 "its memory budget"
    return "budget", type(exc).__name__, str(exc)


def _public_slots(obj):
    """The slots of `obj`, checked as image values (in-place changes included)."""
    slots = {name: value for name, value in obj.__dict__.items() if not name.startswith("_")}
    for name, value in slots.items():
        slot_values.check_result(value, f"slot {name!r}")
    return slots


def _pickled(outcome):
    """The outcome as bytes: objects the caller has by reference, new ones by value."""
    stream = io.BytesIO()
    pickler = pickle.Pickler(stream, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.persistent_id = _reference
    try:
        pickler.dump(outcome)
    except sandbox.BudgetExceeded:
        raise
    except Exception as exc:
        kind, body, _changed = outcome
        stream = io.BytesIO()
        pickler = pickle.Pickler(stream, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.persistent_id = _reference
        if kind == "raise" and body[0] == "exception":  # an exception that does not pickle
            body = ("violation", f"{type(body[1]).__name__}: {body[1]}")
        else:
            body = ("violation", f"what the method returned or left cannot be kept: {exc}")
        pickler.dump(("raise", body, []))
    return stream.getvalue()


def _reference(obj):
    """Objects the caller already has go by reference: stored ones by oid, unsaved image
    objects by identity (the fork's memory is a copy of the caller's); the fork's new image
    objects go by value."""
    if not isinstance(obj, persistent.Persistent):
        return None
    if obj._p_oid is not None:
        return ("oid", obj._p_oid)
    if sandbox.made_during_call(obj):
        return None
    if uvm.UNSAVED.get(id(obj)) is obj:
        return ("unsaved", id(obj))
    raise sandbox.SandboxViolation(f"a method cannot hand back an unsaved "
                                   f"{type(obj).__name__}")
