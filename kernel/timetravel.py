"""Time travel: the Living Image as it was at a moment of its history, read-only.

ZODB keeps every committed state of every object until a pack, and `DB.open(before=TID)`
gives a *historical connection*: a read-only view of the whole image as of the transactions
committed before TID, loaded through the storage's `loadBefore` (ZEO's `ClientStorage`
serves it from the server and keeps the records in its client cache). This module is the
only place that opens such views:

- `parse_when(text)` reads a moment, WHEN: a UTC time (`2026-12-02 06:40`,
  `2026-12-02T06:40:05.5Z`, a date alone is its midnight), a transaction id (the id `batos
  log` prints for `/undo`, or the 16 hex digits `batos history` prints: the image as that
  transaction left it) or `before:TID` (the image just before it, e.g. before `rect.area` was
  learned). A bad WHEN is one line saying which forms there are.
- `View` opens the view (`view(image, when)` as a context manager) with a transaction
  manager of its own that is only ever aborted. ZODB refuses to commit a historical
  connection (`ReadOnlyHistoryError`) but lets its objects change in memory; the view refuses
  the change itself, before the object changes (its connection's `register`), and
  `view(...)` turns that into `ReadOnlyPast` — also when the method caught the refusal. On
  closing the view ghostifies its objects, so that nothing done to them in memory reaches
  the next view of the same moment.
- `inspect_at` and `send_at` are `batos inspect/send --at` and the console's `/at` mode. A
  message the past does not understand is `PastMiss`: a view of the past cannot install a
  method, so `_doesNotUnderstand` (kernel.dnu) is never started from here.
- The bounds of history: a moment before the image's first transaction is `BeforeHistory`;
  a moment before the last pack's bound is `HistoryPacked`. `batos pack` records that bound
  in the image (`note_pack`, the root's `PACKED_KEY`); a pack made by other means is found
  when a record is missing (`POSKeyError`: after a pack an object's state as of a moment is
  either exactly right or gone, never wrong).

All of these errors are final: the same moment gives the same answer.
"""
import base64
import binascii
import contextlib
import dataclasses
import datetime
import logging
import re
import time

import transaction
from ZODB.POSException import POSKeyError, ReadOnlyHistoryError
from ZODB.TimeStamp import TimeStamp
from ZODB.utils import p64, u64, z64

from kernel import genesis, paths
from kernel.errors import BatosError, MessageNotUnderstood

log = logging.getLogger(__name__)

PACKED_KEY = "batos.packed"  # root entry: the bound of the last `batos pack` (see note_pack)
HEX_RE = re.compile(r"^(?:[0-9a-fA-F]{2}){8,16}$")
BEFORE_PREFIX = "before:"
WHEN_FORMS = ("a UTC time such as 2026-12-02 06:40:05, a transaction id from batos log "
              "or batos history, or before:TID")


class TimeTravelError(BatosError):
    """Base of the errors of historical views. Final: the same moment answers the same."""


class BadWhen(TimeTravelError):
    """WHEN is none of the forms a moment can take. Final: correct the input."""


class BeforeHistory(TimeTravelError):
    """WHEN lies before the image's first transaction: there was no image then. Final."""


class HistoryPacked(TimeTravelError):
    """A pack removed the history WHEN needs. Final: only a backup from before the pack
    (`batos restore --to FILE`) still holds it."""


class ReadOnlyPast(TimeTravelError):
    """Something tried to change an object of a historical view; nothing was changed.
    Final: send the message without --at to run it on the image as it is now."""


class PastMiss(TimeTravelError):
    """The message was not understood by the image as it was; a view of the past cannot
    learn (install) a method. Final for that moment."""


# -- moments ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class When:
    """A parsed WHEN: the text given and the exclusive transaction bound `before` of the
    view (the view holds the transactions whose ids are lower)."""

    text: str
    before: bytes
    kind: str  # "time", "tid" or "before"

    def label(self):
        """How the moment reads in output, e.g. `as of 2026-12-02 06:40:05 UTC`."""
        if self.kind == "time":
            return f"as of {self.text} UTC"
        if self.kind == "tid":
            return f"as of transaction {self.text} ({tid_text(p64(u64(self.before) - 1))})"
        tid = self.before.hex()
        return f"before transaction {tid} ({tid_text(self.before)})"


def parse_when(text):
    """The `When` of `text` (see the module docstring), or a one-line `BadWhen`."""
    if not isinstance(text, str) or not text.strip():
        raise BadWhen(f"a moment is needed: {WHEN_FORMS}")
    text = text.strip()
    if text.lower().startswith(BEFORE_PREFIX):
        tid = transaction_id(text[len(BEFORE_PREFIX):].strip())
        if tid is None:
            raise BadWhen(f"{text!r} is not before:TID with a transaction id from batos log "
                          "or batos history")
        return When(f"{BEFORE_PREFIX}{tid.hex()}", tid, "before")
    tid = transaction_id(text)
    if tid is not None:
        return When(tid.hex(), p64(u64(tid) + 1), "tid")
    moment = _parse_time(text)
    return When(moment.strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0").rstrip("."),
                after_time(moment), "time")


def transaction_id(text):
    """The 8-byte transaction id `text` names, or None: 16 hex digits (`batos history`), or
    the id `batos log` and `/undo` use — the hex of the storage's undo id, which for
    FileStorage is the base64 of the transaction id."""
    if not HEX_RE.match(text):
        return None
    raw = bytes.fromhex(text)
    if len(raw) == 8:
        return raw
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if len(decoded) == 8 else None


def _parse_time(text):
    """A UTC `datetime` (naive, in UTC) from an ISO-8601 text; `BadWhen` otherwise."""
    cleaned = text[:-1] + "+00:00" if text[-1:] in "zZ" else text
    cleaned = cleaned.replace(" UTC", "").replace(" utc", "")
    try:
        moment = datetime.datetime.fromisoformat(cleaned)
    except ValueError:
        raise BadWhen(f"{text!r} is not a moment: use {WHEN_FORMS}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    if moment.year < 1900:
        raise BadWhen(f"{text!r} is before any transaction could have been made")
    return moment


def after_time(moment):
    """The exclusive bound for the state as of `moment` (naive UTC `datetime`): the first
    transaction id after it."""
    stamp = TimeStamp(*moment.timetuple()[:5], moment.second + moment.microsecond / 1e6)
    return p64(u64(stamp.raw()) + 1)


def tid_time(tid):
    """The UTC `datetime` of a transaction id."""
    return datetime.datetime.fromtimestamp(TimeStamp(tid).timeTime(), datetime.timezone.utc)


def tid_text(tid):
    """A transaction id's time as people read it: `2026-12-02 06:40:05 UTC`."""
    return tid_time(tid).strftime("%Y-%m-%d %H:%M:%S UTC")


def time_tid(seconds):
    """The transaction id of a moment given in seconds since the epoch (as `pack` takes)."""
    return TimeStamp(*time.gmtime(seconds)[:5], seconds % 60).raw()


# -- the bounds of history ----------------------------------------------------------------------

def note_pack(root, seconds, days):
    """Record in the image's `root` that history before `seconds` (epoch) is gone: the bound
    of a pack (kept when an earlier pack removed more). Called by `Image.pack` in the
    transaction it commits after the pack."""
    bound = time_tid(seconds)
    known = root.get(PACKED_KEY)
    if known and bytes.fromhex(known["before"]) >= bound:
        return
    root[PACKED_KEY] = {"before": bound.hex(), "time": seconds, "days": days,
                        "packed": datetime.datetime.now(datetime.timezone.utc).isoformat()}


def packed_bound(image):
    """The last pack's record (`note_pack`) as the image holds it now, or None."""
    manager = transaction.TransactionManager()
    connection = image.db.open(transaction_manager=manager)
    try:
        record = connection.root().get(PACKED_KEY)
        return dict(record) if record else None
    finally:
        manager.abort()
        connection.close()


def first_transaction(image):
    """The id of the oldest transaction whose state the image still holds: the oldest kept
    revision of its root object (made by the image's first transaction)."""
    return image.db.history(z64, size=1_000_000)[-1]["tid"]


def packed_error(when, record):
    """The one line for a moment a pack removed."""
    bound = bytes.fromhex(record["before"])
    return HistoryPacked(
        f"the image's history before {tid_text(bound)} was removed by batos pack --days "
        f"{record['days']:g} (on {record['packed'][:19].replace('T', ' ')} UTC): there is no "
        f"state {when.label()}; the oldest moment you can ask for is {tid_text(bound)} "
        "(a backup from before the pack still holds it: batos restore --to FILE)")


# -- views --------------------------------------------------------------------------------------

class View:
    """A read-only historical connection to the image as of a `When`.

    `lobby` is the lobby as it was. The view's transaction manager is never committed; any
    attempt to change one of its objects is refused by ZODB before the object changes.
    Use it as a context manager (or call `close`).
    """

    def __init__(self, image, when, bounded=True):
        self.image = image
        self.when = when
        self.manager = transaction.TransactionManager()
        self.before = self._bound(when, bounded)
        self.connection = image.db.open(transaction_manager=self.manager, before=self.before)
        self.refused = False
        # ZODB itself refuses a historical connection only at commit; the view refuses the
        # first change, before the object changes (persistent asks its jar to register an
        # object before it lets the change happen)
        self.connection.register = self._refuse
        try:
            self.lobby = self._lobby()
        except BaseException:
            self.close()
            raise

    def _bound(self, when, bounded):
        """`when.before`, checked against the last pack (when `bounded`) and moved back from
        the future to the newest state (ZODB opens no view of the future)."""
        record = packed_bound(self.image) if bounded else None
        if record and when.before < bytes.fromhex(record["before"]):
            raise packed_error(when, record)
        newest = self.image.db.lastTransaction()
        if newest != z64 and when.before > p64(u64(newest) + 1):
            return p64(u64(newest) + 1)
        return when.before

    def _lobby(self):
        """The lobby as of the view's moment; `BeforeHistory` when there was no image yet."""
        try:
            lobby = genesis.lobby_of(self.connection)
        except POSKeyError:
            first = first_transaction(self.image)
            raise BeforeHistory(
                f"there is no image {self.when.label()}: its oldest transaction kept is "
                f"{first.hex()} at {tid_text(first)} (earlier history, if any, was removed by "
                "a pack)") from None
        if lobby is None:
            raise BeforeHistory(f"the image had not awakened yet {self.when.label()} "
                                "(genesis came later)")
        return lobby

    def _refuse(self, obj):
        """The connection's `register`: a change to an object of the past is refused."""
        self.refused = True
        raise ReadOnlyHistoryError(f"{obj!r} belongs to a view of the past")

    def check_unchanged(self):
        """Raise `ReadOnlyHistoryError` when something tried to change the view (even if the
        method that tried caught the refusal)."""
        if self.refused:
            raise ReadOnlyHistoryError("a change was refused")

    @property
    def label(self):
        """The moment of the view, as people read it."""
        return self.when.label()

    def close(self):
        """Abort, drop what was loaded (and anything a method did to it in memory) and give
        the connection back to ZODB's pool of historical connections."""
        connection = getattr(self, "connection", None)
        if connection is None:
            return
        self.manager.abort()
        connection.cacheMinimize()
        connection.close()
        self.connection = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


@contextlib.contextmanager
def view(image, when):
    """A `View` of the image as of `when` (a `When` or WHEN text), with the errors of the
    past translated: a change is `ReadOnlyPast`, a missing record `HistoryPacked`."""
    when = when if isinstance(when, When) else parse_when(when)
    with View(image, when) as past:
        try:
            yield past
            past.check_unchanged()
        except ReadOnlyHistoryError:
            raise ReadOnlyPast(f"the image {past.label} is read-only: the message tried to "
                               "change it and nothing was changed (send it without --at to "
                               "run it on the image as it is now)") from None
        except POSKeyError as exc:
            oid = exc.args[0] if exc.args else None
            oid = f"{u64(oid):#x}" if isinstance(oid, bytes) and len(oid) == 8 else oid
            raise HistoryPacked(f"the image no longer holds object {oid} {past.label}: its "
                                "history was removed by a pack") from None


def inspect_at(image, path, when, describe):
    """`describe(obj)` of the object at `path` in the image as of `when`, rendered while the
    view is open; with the view's moment under "at"."""
    with view(image, when) as past:
        description = describe(paths.resolve(past.lobby, path))
        return {**description, "at": at_record(past)}


def send_at(image, path, selector, args, when, render):
    """Send `selector(*args)` to the object at `path` in the image as of `when`; return
    `render(result)` (made while the view is open) and the view's moment. A miss is
    `PastMiss`; nothing is learned, nothing is changed."""
    with view(image, when) as past:
        try:
            receiver = paths.resolve(past.lobby, path)
            result = render(receiver.send(selector, *args))
        except MessageNotUnderstood as miss:
            raise PastMiss(f"{miss.receiver_name} did not understand {miss.selector!r} "
                           f"{past.label}; a view of the past cannot learn a method (send it "
                           "without --at to learn it now)") from None
        return result, at_record(past)


def at_record(past):
    """Plain data naming a view's moment, for replies and JSON output."""
    return {"when": past.when.text, "label": past.label, "before": past.before.hex()}
