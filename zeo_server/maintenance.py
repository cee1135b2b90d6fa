"""Offline consistency checks of a home's FileStorage: records, references, every object loaded.

`check(path)` runs fstest in-process (the file's transaction and data records are well
formed), ZODB's fsrefs in a child process (every reference from a current object leads to an
object that exists) and `scan_objects`, which loads every current object the way a kernel
process does — with the kernel's classes importable, but refusing to invent ZODB's `Broken`
stand-ins for classes that no longer exist — and reports each one that cannot be loaded: its
oid, class, label, the error, and the transaction that last wrote it. It opens the file
read-only and streams (the object cache is emptied as it goes), so it is safe beside a running
server and usable on an image of a million objects; a transaction being committed at that
very moment can show as a false alarm, so rerun before acting on one.

The repair of what the scan cannot load lives in `zeo_server.repair`; the tolerant reading
it shares with the scan (`TolerantUnpickler`, `Unreadable`) lives here.
"""
import base64
import contextlib
import dataclasses
import datetime
import io
import logging
import pickle
import subprocess
import sys

import persistent
import ZODB
from ZODB.FileStorage import FileStorage
from ZODB.POSException import POSKeyError, StateLoadError
from ZODB.scripts import fstest
from ZODB.utils import get_pickle_metadata, load_current, p64, u64

from kernel.errors import BatosError

log = logging.getLogger(__name__)

PROGRESS_EVERY = 10_000     # objects between two progress reports of a scan
CACHE_EVERY = 1_000         # objects between two empty-outs of the scan's object cache
MAX_ERROR_CHARS = 300       # one line of error text
MAX_REPR_CHARS = 2000       # a quarantined value's repr


class MissingClass(BatosError, ImportError):
    """A record names a class (or other global) this kernel cannot import. Final until the
    class is back or the value is repaired away."""


class StateUnreadable(BatosError):
    """An object's stored state cannot be read as a whole, so no slot can be blamed. Final."""


# -- reports -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Written:
    """The transaction that last wrote an object's state: id, time, user and note."""

    tid: str
    time: float
    user: str
    note: str

    @property
    def undo_id(self):
        """The id `batos log --json` and the console's `/undo` use for this transaction
        (a FileStorage's undo id: the base64 of the tid, here in hex)."""
        return base64.encodebytes(bytes.fromhex(self.tid)).rstrip(b"\n").hex()

    def line(self):
        """One line for people: tid, local time (as `batos log` shows it), user, note."""
        when = datetime.datetime.fromtimestamp(self.time).isoformat(" ", "seconds")
        return (f"transaction {self.tid} at {when} by {self.user or '-'}: {self.note!r} "
                f"(undo id {self.undo_id})")

    def as_record(self):
        """Plain data for the quarantine and for JSON."""
        when = datetime.datetime.fromtimestamp(self.time, datetime.timezone.utc)
        return {"tid": self.tid, "undo_id": self.undo_id,
                "time": when.isoformat(timespec="seconds"), "user": self.user,
                "note": self.note}


@dataclasses.dataclass(frozen=True)
class Unloadable:
    """One current object of the image that cannot be loaded, and what is known about it."""

    oid: int
    class_name: str
    error: str
    label: str = None
    written: Written = None

    @property
    def name(self):
        """The label if it could be read, else the oid, as `UvmObject.label` shows it."""
        return self.label or f"<object {self.oid:#x}>"

    def line(self):
        """One line: oid, class, label, error, and the transaction that last wrote it."""
        label = f" {self.label!r}" if self.label else ""
        written = f"; last written by {self.written.line()}" if self.written else ""
        return f"oid {self.oid:#x} {self.class_name}{label}: {self.error}{written}"


@dataclasses.dataclass(frozen=True)
class ScanReport:
    """What `scan_objects` found: how many objects it loaded, and those it could not."""

    objects: int = 0
    unloadable: tuple = ()


@dataclasses.dataclass(frozen=True)
class CheckReport:
    """The findings of one check; `ok` when there are none."""

    path: str
    problems: tuple = ()
    unloadable: tuple = ()
    objects: int = 0

    @property
    def ok(self):
        """True when fstest, fsrefs and the load of every object found nothing wrong."""
        return not self.problems


# -- check -------------------------------------------------------------------------------------

def check(path, progress=None):
    """Check the FileStorage at `path`; never raises for a damaged file, reports it.

    `progress(count)` is called every `PROGRESS_EVERY` objects loaded.
    """
    problems = []
    try:
        fstest.check(str(path))
    except fstest.FormatError as exc:
        problems.append(f"fstest: {exc}")
    except OSError as exc:
        problems.append(f"fstest: cannot read {path}: {exc.strerror or exc}")
    if problems:
        return CheckReport(str(path), tuple(problems))
    problems.extend(_fsrefs(path))
    try:
        scan = scan_objects(path, progress=progress)
    except Exception as exc:  # a file fstest passed but FileStorage cannot open: report it
        log.debug("scan of %s failed", path, exc_info=True)
        problems.append(f"load: cannot open {path}: {one_line(exc)}")
        return CheckReport(str(path), tuple(problems))
    problems.extend("load: " + found.line() for found in scan.unloadable)
    return CheckReport(str(path), tuple(problems), scan.unloadable, scan.objects)


def _fsrefs(path):
    """Run ZODB's fsrefs in a child process (it leaves its storage open) and collect its report."""
    result = subprocess.run([sys.executable, "-m", "ZODB.scripts.fsrefs", str(path)],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    found = result.stdout.strip()
    if result.returncode != 0:
        return [f"fsrefs failed with code {result.returncode}: "
                f"{(result.stderr.strip().splitlines() or ['?'])[-1]}"]
    return ["fsrefs: " + found] if found else []


def scan_objects(path, oids=None, progress=None):
    """Load every current object of the FileStorage at `path` (or only `oids`), read-only.

    Returns a `ScanReport`. Objects are loaded one at a time and the object cache is emptied
    every `CACHE_EVERY` of them, so memory stays bounded on any size of image.
    """
    storage = FileStorage(str(path), read_only=True)
    try:
        if len(storage) == 0:  # served but never awakened: no root, nothing to load
            return ScanReport()
        db = _StrictDB(storage, pool_size=1, cache_size=CACHE_EVERY)
        try:
            return _scan(db, storage, oids, progress)
        finally:
            db.close()
    finally:
        storage.close()


class _StrictDB(ZODB.DB):
    """A read-only DB whose connections report a class that cannot be imported as an error,
    where ZODB would quietly make a `Broken` stand-in for it."""

    def classFactory(self, connection, modulename, globalname):
        """The class (or other global) a record names, or `MissingClass`."""
        return strict_find_class(modulename, globalname)


def strict_find_class(modulename, globalname):
    """Import `modulename.globalname` or raise `MissingClass` saying why not."""
    try:
        __import__(modulename)
        return getattr(sys.modules[modulename], globalname)
    except Exception as exc:
        raise MissingClass(f"the image names {modulename}.{globalname}, which this kernel "
                           f"cannot import ({one_line(exc)})") from None


def _scan(db, storage, oids, progress):
    """The scan proper: load each object in one connection, collect the failures."""
    connection = db.open()
    unloadable = []
    count = 0
    try:
        with quiet_load_failures():
            for oid, data in _records(storage, oids):
                failure = _load_failure(connection, oid)
                if failure is not None:
                    unloadable.append(describe_failure(storage, oid, data, failure))
                count += 1
                if count % CACHE_EVERY == 0:
                    connection.cacheMinimize()
                if progress is not None and count % PROGRESS_EVERY == 0:
                    progress(count)
    finally:
        connection.close()
    return ScanReport(count, tuple(unloadable))


def _records(storage, oids=None):
    """(oid, record) of every current object, in oid order, one at a time (or of `oids`)."""
    if oids is not None:
        for oid in oids:
            try:
                yield oid, load_current(storage, oid)[0]
            except POSKeyError:
                continue
        return
    next_oid = None
    while True:
        try:
            oid, _tid, data, next_oid = storage.record_iternext(next_oid)
        except POSKeyError as exc:  # the current record is a deletion (an undone creation)
            next_oid = p64(u64(exc.args[0]) + 1)
            continue
        except ValueError:  # no (further) oid in the index
            return
        yield oid, data
        if next_oid is None:
            return


def _load_failure(connection, oid):
    """None when the object `oid` loads in `connection`, else the exception that stopped it."""
    try:
        obj = connection.get(oid)
        obj._p_activate()
    except Exception as exc:
        return exc
    return None


def describe_failure(storage, oid, data, failure):
    """An `Unloadable` for the object `oid` whose record is `data` and whose load raised
    `failure`: its class and label as far as the record shows them, and who last wrote it."""
    module, name = get_pickle_metadata(data)
    return Unloadable(u64(oid), f"{module}.{name}" if module else name, one_line(failure),
                      read_label(data), last_written(storage, oid))


def one_line(exc):
    """An exception as one bounded line; ZODB's empty `StateLoadError` shows its cause."""
    while isinstance(exc, StateLoadError) and exc.__cause__ is not None and not str(exc):
        exc = exc.__cause__
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS - 1] + "…"


def read_label(data):
    """The `_label` of a UvmObject record, read without loading anything else, or None."""
    try:
        state = TolerantUnpickler(data, Reference).state()
    except Exception:
        return None
    label = state.get("_label") if isinstance(state, dict) else None
    return label if isinstance(label, str) else None


def last_written(storage, oid):
    """The `Written` of the transaction that wrote the current state of `oid`, or None."""
    try:
        entry = storage.history(oid, size=1)[0]
    except Exception:
        log.debug("no history for oid %#x", u64(oid), exc_info=True)
        return None
    return Written(entry["tid"].hex(), entry["time"], _text(entry.get("user_name")),
                   _text(entry.get("description")))


def progress_printer(stream, what="loaded"):
    """A `progress` callback for scans that writes one line per report to `stream`."""
    def report(count):
        print(f"{what} {count} objects…", file=stream, flush=True)
    return report


def _text(value):
    """Transaction metadata arrives as bytes from the storage; show it as text."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")


class _DropLoadTracebacks(logging.Filter):
    """Drops ZODB's own traceback of a failed load; the scan reports it as one line."""

    def filter(self, record):
        return not str(record.msg).startswith(("Couldn't load state", "Unpickling error"))


@contextlib.contextmanager
def quiet_load_failures():
    """While it is active, ZODB does not log a traceback for each object that fails to load."""
    dropper = _DropLoadTracebacks()
    loggers = [logging.getLogger(name) for name in ("ZODB.Connection", "ZODB.serialize")]
    for logger in loggers:
        logger.addFilter(dropper)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(dropper)


# -- tolerant unpickling -----------------------------------------------------------------------

class Reference:
    """A persistent reference of a state pickle, kept as ZODB wrote it (like
    `ZODB.ConflictResolution.PersistentReference`): nothing is loaded for it."""

    def __init__(self, data):
        self.data = data

    def __repr__(self):
        return f"<reference {describe_reference(self.data)}>"


def describe_reference(data):
    """A persistent reference as ZODB writes it (`(oid, class)`, `oid`, `['w', (oid,)]`, …),
    for people: `to 0x18 (module.Class)`."""
    oid, klass = (data + (None,))[:2] if isinstance(data, tuple) else (data, None)
    if not (isinstance(oid, bytes) and len(oid) == 8):
        return safe_repr(data, 100)
    of = f" ({safe_repr(klass, 100)})" if klass is not None else ""
    return f"to {u64(oid):#x}{of}"


class Unreadable:
    """Stands in for a value the `TolerantUnpickler` could not make: what the pickle asked for
    (`parts`: the callable or class and its arguments), and the exception it raised or the
    placeholder it needed (`cause`). It is never stored: the quarantine keeps its repr."""

    def __init__(self, kind, parts=(), error=None, cause=None):
        self.kind = kind
        self.parts = parts
        self.error = error
        self.cause = cause
        self.state = None

    def reason(self):
        """Why the value cannot be made, at its root: the first failure, in one line."""
        if self.cause is not None:
            return self.cause.reason()
        text = f"{self.describe()}: {one_line(self.error)}" if self.error is not None \
            else self.describe()
        return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS - 1] + "…"

    def describe(self, limit=200):
        """What the pickle asked for, e.g. `getattr(<kernel.uvm.UvmObject 0x2>, 'x')`."""
        if self.kind == "global":
            return f"{self.parts[0]}.{self.parts[1]}"
        if self.kind == "reference":
            return f"reference {describe_reference(self.parts[0])}"
        head, *rest = self.parts or ("?",)
        args = ", ".join(safe_repr(part, limit // 2) for part in rest)
        return f"{safe_repr(head, limit // 2)}{'.__new__' if self.kind == 'new' else ''}({args})"

    def __repr__(self):
        state = f" with state {safe_repr(self.state, 200)}" if self.state is not None else ""
        return f"<unreadable {self.describe()}{state}>"

    # what the pickle machine may ask of the object it wanted: ignore it, never fail
    def append(self, item):
        """APPEND into a value that could not be made: ignored."""

    def extend(self, items):
        """APPENDS into a value that could not be made: ignored."""

    def add(self, item):
        """ADDITEMS into a value that could not be made: ignored."""

    def __setitem__(self, key, value):
        """SETITEM(S) into a value that could not be made: ignored."""


class TolerantUnpickler(pickle._Unpickler):
    """Unpickles a ZODB record as ZODB does, except that what cannot be made becomes an
    `Unreadable` placeholder instead of an exception: a global that cannot be imported, a
    reference `persistent_load` cannot resolve, and a call (REDUCE, NEWOBJ, OBJ/INST, BUILD)
    that raises or needs a placeholder. `persistent_load` resolves a reference as ZODB's
    `ObjectReader` would (with a connection) or keeps it as a `Reference`.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, data, persistent_load):
        super().__init__(io.BytesIO(data))
        self._resolve = persistent_load

    def state(self):
        """The object's state: the record's second pickle (the first is its class)."""
        self.load()
        return self.load()

    def persistent_load(self, pid):
        try:
            return self._resolve(pid)
        except Exception as exc:
            return Unreadable("reference", (pid,), exc)

    def find_class(self, module, name):
        try:
            return super().find_class(module, name)
        except Exception as exc:
            return Unreadable("global", (module, name), exc)

    def _make(self, kind, parts, build):
        """`build()`, or a placeholder when a part is one or when it raises."""
        blocked = first_unreadable(parts)
        if blocked is not None:
            return Unreadable(kind, parts, cause=blocked)
        try:
            return build()
        except Exception as exc:
            return Unreadable(kind, parts, exc)

    def load_reduce(self):
        args = self.stack.pop()
        func = self.stack[-1]
        self.stack[-1] = self._make("call", (func, *_as_args(args)), lambda: func(*args))
    dispatch[pickle.REDUCE[0]] = load_reduce

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._make("new", (cls, *_as_args(args)), lambda: cls.__new__(cls, *args)))
    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(self._make("new", (cls, *_as_args(args), kwargs),
                               lambda: cls.__new__(cls, *args, **kwargs)))
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex

    def _instantiate(self, klass, args):
        def build():
            if args or not isinstance(klass, type) or hasattr(klass, "__getinitargs__"):
                return klass(*args)
            return klass.__new__(klass)
        self.append(self._make("call", (klass, *args), build))

    def load_build(self):
        state, inst = self.stack[-1], self.stack[-2]
        if isinstance(inst, Unreadable):
            self.stack.pop()
            inst.state = state  # kept for its repr
            return
        blocked, error = first_unreadable(state), None
        if blocked is None:
            try:
                return pickle._Unpickler.load_build(self)  # pops the state first
            except Exception as exc:
                error = exc
        else:
            self.stack.pop()
        self.stack[-1] = Unreadable("call", (_SetState(inst), state), error, blocked)
    dispatch[pickle.BUILD[0]] = load_build


def _as_args(args):
    """The arguments of a pickled call as a tuple, whatever the pickle put there."""
    return tuple(args) if isinstance(args, (tuple, list)) else (args,)


class _SetState:
    """Names `inst.__setstate__` in a placeholder's description without touching `inst`."""

    def __init__(self, inst):
        self.inst = inst

    def __repr__(self):
        return f"{safe_repr(self.inst, 100)}.__setstate__"


def first_unreadable(value):
    """The first `Unreadable` inside `value` (through tuples, lists, dicts and sets), or None."""
    stack, seen = [value], set()
    while stack:
        item = stack.pop()
        if isinstance(item, Unreadable):
            return item
        if id(item) in seen or not isinstance(item, (tuple, list, dict, set, frozenset)):
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            stack.extend(item)
    return None


def safe_repr(value, limit=MAX_REPR_CHARS):
    """A repr of an unpickled value that never loads an object nor fails, at most `limit`
    characters: persistent objects by class and oid, placeholders by what they wanted."""
    try:
        text = _safe_repr(value, limit, 0)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _safe_repr(value, limit, depth):
    if isinstance(value, Unreadable) and value.kind == "global":
        return value.describe()
    if isinstance(value, persistent.Persistent):  # never activates the object
        oid = value._p_oid
        where = f" {u64(oid):#x}" if oid else ""
        return f"<{type(value).__module__}.{type(value).__qualname__}{where}>"
    if isinstance(value, (tuple, list)) and depth < 6:
        inner = ", ".join(_safe_repr(v, limit, depth + 1) for v in value[:50])
        more = ", …" if len(value) > 50 else ""
        if isinstance(value, tuple):
            return f"({inner}{',' if len(value) == 1 else ''}{more})"
        return f"[{inner}{more}]"
    if isinstance(value, dict) and depth < 6:
        items = list(value.items())[:50]
        return "{" + ", ".join(f"{_safe_repr(k, limit, depth + 1)}: "
                               f"{_safe_repr(v, limit, depth + 1)}" for k, v in items) + "}"
    if isinstance(value, type) or callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', None) or '?'}.{value.__qualname__}"
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 1] + "…"
