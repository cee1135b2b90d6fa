"""The repair of an image whose objects cannot all be loaded: poisoned slots into quarantine.

`repair(image, path)` is the way back for an image that holds a value which pickles but cannot
be unpickled (a bound method, an instance of a class that is gone): for every object the scan
cannot load it unpickles the stored state again with a `TolerantUnpickler` — what cannot be
made becomes an `Unreadable` placeholder instead of an exception, as ZODB's conflict
resolution does with classes it cannot import — and, in ONE transaction through the ZEO
server, moves the slots whose values hold a placeholder out of the object into the image's
quarantine (`lobby.quarantine`, made on first use). Each quarantine entry is plain data: the
object's oid and label, the slot, why it cannot be loaded, a repr of the value as far as it
could be read and the hex of its raw pickle bytes, and the transaction that wrote it — never
the unloadable value itself. Objects whose state cannot be read as a whole (their class is
gone, the kernel's own `_` entries are damaged, the state is not a slot dict) are reported and
left untouched: ZODB's undo of the transaction that wrote them, or a backup, is the way back
for those.
"""
import contextlib
import dataclasses
import datetime
import io
import logging
import pickletools

from persistent.wref import WeakRef
from transaction.interfaces import TransientError
from ZODB.broken import Broken
from ZODB.utils import load_current, p64, u64

from kernel.errors import BatosError
from zeo_server.maintenance import (MissingClass, StateUnreadable, TolerantUnpickler,
                                    Unloadable, Unreadable, Written, first_unreadable,
                                    last_written, one_line, quiet_load_failures, safe_repr,
                                    scan_objects)

log = logging.getLogger(__name__)

QUARANTINE_SLOT = "quarantine"
REPAIR_USER = "batos-repair"
REPAIR_ATTEMPTS = 3
MAX_PICKLE_BYTES = 2048     # raw pickle bytes of a quarantined value kept (as hex)
MAX_NOTE_CHARS = 1000


class RepairError(BatosError):
    """`batos repair` could not do its work; the message says why. Final."""


def slot_spans(record):
    """Where the value of each key of an object's state dict lies in its record, as
    {key: (start, end)} byte offsets; {} when the state is no dict or cannot be followed.

    Follows the pickle machine's stack with `pickletools` (nothing is unpickled): each stack
    item remembers the offset of the first opcode that made it, and each SETITEM(S) into the
    state dict (the bottom of the stack) gives its values' spans.
    """
    try:
        return _slot_spans(record)
    except Exception:
        log.debug("cannot follow the pickle of a record", exc_info=True)
        return {}


class _Mark:
    """A MARK on the simulated stack."""

    def __init__(self, start):
        self.start = start


def _slot_spans(record):
    stream = io.BytesIO(record)
    memo, spans = {}, {}
    for in_state in (False, True):  # class pickle, then state pickle, sharing one memo
        stack = []
        for op, arg, pos in pickletools.genops(stream):
            popped = _pop_inputs(stack, op)
            if in_state and op.name in ("SETITEM", "SETITEMS") and not stack:
                _note_pairs(popped[1:], pos, spans)
            _push_outputs(stack, op, arg, pos, popped, memo)
    return spans


def _pop_inputs(stack, op):
    """Pop what `op` consumes; return it bottom first (a mark included, as `_Mark`)."""
    before = op.stack_before
    if pickletools.markobject in before:
        items = []
        while not isinstance(stack[-1], _Mark):
            items.append(stack.pop())
        items.append(stack.pop())
        below = before.index(pickletools.markobject)
        items.extend(stack.pop() for _ in range(below))
        return items[::-1]
    return [stack.pop() for _ in range(len(before))][::-1]


def _push_outputs(stack, op, arg, pos, popped, memo):
    """Push what `op` produces: each item as [start offset, str literal or None]."""
    if op.name == "MARK":
        stack.append(_Mark(pos))
        return
    if op.name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
        memo[arg if op.name != "MEMOIZE" else len(memo)] = stack[-1][1] if stack else None
    start = min([pos] + [item.start if isinstance(item, _Mark) else item[0] for item in popped])
    literal = arg if isinstance(arg, str) and op.stack_after == [pickletools.pyunicode] \
        else memo.get(arg) if op.name in ("GET", "BINGET", "LONG_BINGET") else None
    for _ in op.stack_after:
        stack.append([start, literal])


def _note_pairs(items, end, spans):
    """Record the span of each value of SETITEM(S)'s key/value `items`, up to `end`."""
    items = [item for item in items if not isinstance(item, _Mark)]
    for i in range(0, len(items) - 1, 2):
        key, value = items[i], items[i + 1]
        stop = items[i + 2][0] if i + 2 < len(items) else end
        if key[1] is not None:
            spans[key[1]] = (value[0], stop)


# -- repair ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Quarantined:
    """One slot value moved out of an object into the quarantine, as plain data."""

    oid: int
    label: str
    slot: str
    error: str
    value: str
    pickle_hex: str
    pickle_bytes: int
    written: Written = None

    @property
    def where(self):
        """`label.slot`, as the note and the report name it."""
        return f"{self.label}.{self.slot}"

    def as_entry(self, user=None):
        """The quarantine's record of this value: slot name → image value (plain data)."""
        written = self.written.as_record() if self.written else {}
        return {"oid": f"{self.oid:#x}", "object_label": self.label, "slot": self.slot,
                "error": self.error, "value_repr": self.value, "pickle_hex": self.pickle_hex,
                "pickle_bytes": self.pickle_bytes,
                **{f"written_{key}": value for key, value in written.items()},
                "quarantined_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec="seconds"),
                "quarantined_by": user or ""}


@dataclasses.dataclass(frozen=True)
class Untouched:
    """An unloadable object repair left as it is, and why."""

    found: Unloadable
    reason: str


@dataclasses.dataclass(frozen=True)
class RepairReport:
    """What `repair` did (or, dry, would do)."""

    objects: int
    quarantined: tuple = ()
    untouched: tuple = ()
    still_unloadable: tuple = ()
    note: str = ""
    dry_run: bool = False

    @property
    def ok(self):
        """True when every object of the image loads (or, dry, would load) afterwards."""
        return not self.untouched and not self.still_unloadable

    def as_json(self):
        """Plain data for `batos repair --json`."""
        return {"objects": self.objects, "dry_run": self.dry_run, "note": self.note,
                "quarantined": [q.as_entry(None) for q in self.quarantined],
                "untouched": [{**dataclasses.asdict(u.found), "reason": u.reason}
                              for u in self.untouched],
                "still_unloadable": [dataclasses.asdict(u) for u in self.still_unloadable],
                "ok": self.ok}


def repair(image, path, dry_run=False, user=REPAIR_USER, progress=None):
    """Quarantine every unloadable slot value of the image in one transaction through the ZEO
    server of `image`; `path` is the image's file, scanned read-only to find the objects.

    With `dry_run` the transaction is aborted: the report says what would be done.
    """
    scan = scan_objects(path, progress=progress)
    if not scan.unloadable:
        return RepairReport(scan.objects, dry_run=dry_run)
    for attempt in range(1, REPAIR_ATTEMPTS + 1):
        try:
            report = _repair_once(image, scan, dry_run, user)
            break
        except TransientError as exc:
            if attempt == REPAIR_ATTEMPTS:
                raise RepairError(f"the image kept changing while repairing ({one_line(exc)}); "
                                  "nothing was changed: run batos repair again") from None
            log.info("repair attempt %d met %s; trying again", attempt, type(exc).__name__)
    if dry_run or not report.quarantined:
        return report
    repaired = sorted({p64(q.oid) for q in report.quarantined})
    after = scan_objects(path, oids=repaired)
    return dataclasses.replace(report, still_unloadable=after.unloadable)


def _repair_once(image, scan, dry_run, user):
    """One attempt: analyse, quarantine and (unless dry) commit in one transaction."""
    targets = {p64(found.oid): found for found in scan.unloadable}
    with image.transaction(user=user, dry_run=dry_run) as lobby:
        connection = lobby._p_jar
        loader = TolerantLoader(connection, image.db.storage, targets)
        with loader.installed(), quiet_load_failures():
            untouched = [Untouched(found, reason) for found, reason in loader.load_all()]
            quarantined = loader.quarantine()
        note = ""
        if quarantined:
            _keep_in_quarantine(lobby, quarantined, user)
            note = repair_note(quarantined)
            connection.transaction_manager.get().note(note)
    return RepairReport(scan.objects, tuple(quarantined), tuple(untouched), note=note,
                        dry_run=dry_run)


class TolerantLoader:
    """Loads the objects under repair in one connection of the image with the
    `TolerantUnpickler`, leaving out the slots whose values cannot be made.

    `installed()` makes it the connection's loader of ghosts for those objects (persistent
    asks `jar.setstate(obj)` to load a ghost; every other object still loads as usual), so
    an object under repair becomes a normal, changeable object without its poison.
    """

    def __init__(self, connection, storage, targets):
        self.connection = connection
        self.storage = storage
        self.targets = targets
        self.found = {}  # oid → (object, {slot: Quarantined})

    @contextlib.contextmanager
    def installed(self):
        """While active, ghosts of the objects under repair load through `setstate` below."""
        self.connection.setstate = self.setstate
        try:
            yield self
        finally:
            del self.connection.setstate

    def load_all(self):
        """Load every object under repair; yield (Unloadable, reason) for those left as they
        are."""
        from kernel.uvm import UvmObject
        for oid, found in self.targets.items():
            try:
                obj = self.connection.get(oid)
                if isinstance(obj, Broken):
                    raise MissingClass(f"its class {found.class_name} cannot be imported")
                if not isinstance(obj, UvmObject):
                    raise StateUnreadable(f"it is a {found.class_name}, not an object with "
                                          "slots")
                if oid not in self.found:
                    obj._p_invalidate()  # loaded in this connection before: load it again
                obj._p_activate()
            except Exception as exc:
                yield found, one_line(exc)
                continue
            if oid not in self.found:
                yield found, "it loads in the server's image now: nothing to quarantine"
            elif not self.found[oid][1]:
                yield found, f"no slot value to blame for: {found.error}"

    def quarantine(self):
        """Mark each repaired object changed; return its quarantined slots, in oid order."""
        moved = []
        for oid in sorted(self.found):
            obj, slots = self.found[oid]
            if slots:
                obj._p_changed = True
                moved.extend(slots[name] for name in sorted(slots))
        return moved

    def setstate(self, obj):
        """The connection's loader: tolerant for the objects under repair."""
        from kernel.uvm import UvmObject
        oid = obj._p_oid
        if oid not in self.targets or not isinstance(obj, UvmObject):
            return type(self.connection).setstate(self.connection, obj)
        data, serial = load_current(self.storage, oid)
        state, bad = split_state(TolerantUnpickler(data, self.resolve).state())
        label = state.get("_label") if isinstance(state.get("_label"), str) else None
        written = last_written(self.storage, oid) if bad else None
        spans = slot_spans(data) if bad else {}
        slots = {name: _quarantined(oid, label, name, value, data, spans.get(name), written)
                 for name, value in bad.items()}
        obj.__setstate__(state)
        obj._p_serial = serial
        self.found[oid] = (obj, slots)

    def resolve(self, ref):
        """The object a persistent reference names, as ZODB's `ObjectReader` resolves it; a
        reference to an object whose class is gone is `MissingClass`, as in `scan_objects`."""
        if isinstance(ref, tuple):
            if isinstance(ref[1], Unreadable):
                raise MissingClass(f"it refers to an object of {ref[1].describe()}, which this "
                                   "kernel cannot import")
            return self._existing(_oid(ref[0]))
        if isinstance(ref, (bytes, str)):
            return self._existing(_oid(ref))
        if isinstance(ref, list) and len(ref) == 2 and ref[0] == "w" and len(ref[1]) == 1:
            weak = WeakRef.__new__(WeakRef)
            weak.oid, weak.dm = _oid(ref[1][0]), self.connection
            return weak
        raise StateUnreadable(f"unsupported reference {ref!r} (another database?)")

    def _existing(self, oid):
        """The connection's object for `oid`, unless its class cannot be imported."""
        obj = self.connection.get(oid)
        if isinstance(obj, Broken):
            raise MissingClass(f"it refers to {u64(oid):#x}, an object of "
                               f"{type(obj).__module__}.{type(obj).__name__}, which this "
                               "kernel cannot import")
        return obj


def _oid(value):
    """An oid as ZODB's reader takes it: bytes (old records may hold ASCII text)."""
    return value.encode("ascii") if isinstance(value, str) else value


def split_state(state):
    """(the state without its unloadable slots, {slot: value holding a placeholder});
    `StateUnreadable` when the state is no slot dict or a kernel entry cannot be made."""
    if isinstance(state, Unreadable):
        raise StateUnreadable(f"its state cannot be made: {state.reason()}")
    if not isinstance(state, dict):
        raise StateUnreadable(f"its state is a {type(state).__name__}, not a slot dict")
    bad = {}
    for key, value in state.items():
        blocked = first_unreadable((key, value))
        if blocked is None:
            continue
        if not isinstance(key, str) or key.startswith("_"):
            raise StateUnreadable(f"the kernel's entry {safe_repr(key, 60)} cannot be made: "
                                  f"{blocked.reason()}")
        bad[key] = value
    return {k: v for k, v in state.items() if k not in bad}, bad


def _quarantined(oid, label, slot, value, data, span, written):
    """The `Quarantined` record of one slot value."""
    raw = data[span[0]:span[1]] if span else b""
    return Quarantined(u64(oid), label or f"<object {u64(oid):#x}>", slot,
                       first_unreadable(value).reason(), safe_repr(value),
                       raw[:MAX_PICKLE_BYTES].hex(), len(raw), written)


def quarantine_of(lobby):
    """The image's quarantine (`lobby.quarantine`), made on first use: an object with one
    slot `entry_N` per value repairs moved out of other objects, and `count`."""
    from kernel.uvm import UvmObject
    try:
        quarantine = lobby.slots().get(QUARANTINE_SLOT)
    except Exception as exc:  # a lobby repair had to leave alone
        raise RepairError(f"cannot keep a quarantine: the lobby cannot be loaded "
                          f"({one_line(exc)}); nothing was changed") from None
    if quarantine is None:
        quarantine = UvmObject(parents=lobby.parents, label=QUARANTINE_SLOT, count=0)
        setattr(lobby, QUARANTINE_SLOT, quarantine)
    elif not isinstance(quarantine, UvmObject):
        raise RepairError(f"lobby.{QUARANTINE_SLOT} is a {type(quarantine).__name__}, not the "
                          "quarantine object; move it away and repair again")
    return quarantine


def _keep_in_quarantine(lobby, quarantined, user):
    """Add one entry object per quarantined value to the quarantine: `quarantine.entry_N`,
    whose slots are the `Quarantined` record (plain data, never the value itself)."""
    from kernel.uvm import UvmObject
    quarantine = quarantine_of(lobby)
    count = quarantine.slots().get("count")
    count = count if isinstance(count, int) else 0
    for record in quarantined:
        count += 1
        name = f"entry_{count}"
        entry = UvmObject(parents=quarantine.parents, label=f"{QUARANTINE_SLOT}.{name}",
                          **record.as_entry(user))
        setattr(quarantine, name, entry)
    quarantine.count = count


def repair_note(quarantined):
    """The repair transaction's note: the objects and slots it quarantined."""
    names = ", ".join(q.where for q in quarantined)
    objects = len({q.oid for q in quarantined})
    note = (f"repair: quarantined {len(quarantined)} unloadable slot value(s) of {objects} "
            f"object(s) in lobby.{QUARANTINE_SLOT}: {names}")
    return note if len(note) <= MAX_NOTE_CHARS else note[:MAX_NOTE_CHARS - 1] + "…"
