"""The Living Image from a client's side: connect to ZEO, run transactions, retry the transient.

`connect(address)` opens a ZEO `ClientStorage` (with `server_sync`, so a retry always sees
the state that made it fail) and a ZODB `DB`, awakening the image on first contact
(`genesis.ensure_awake`). `Image.transaction()` gives each caller its own connection and
transaction manager — never a shared thread-local transaction — and commits with a note and
user recorded in the image's history. `Image.run(fn)` retries `fn(lobby)` on transient errors
(`ConflictError`, disconnects) with jittered exponential backoff and counts the retries.
A commit refused because the server's disk is full raises `StorageFull` (not retried: it needs
space freed first); the storage writes nothing of it, and the next commit after space returns
succeeds on the image as it was.
"""
import contextlib
import errno
import logging
import random
import socket
import time

import transaction
import ZODB
from transaction.interfaces import TransientError
from ZEO.ClientStorage import ClientStorage
from ZEO.Exceptions import ClientDisconnected, ServerException
from ZODB import POSException
from ZODB.POSException import ConflictError

from kernel import genesis
from kernel.errors import BatosError, RetriesExhausted, ServerUnavailable, StorageFull
from kernel.home import CONF_DIR, CONFIG_NAME, format_address, personas_from, read_toml

log = logging.getLogger(__name__)


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_transient(exc):
    """True when trying the same transaction again may succeed."""
    return isinstance(exc, TransientError) or (isinstance(exc, BatosError) and exc.transient)


def is_disk_full(exc):
    """True when `exc` says the storage's disk is full or over quota: the `OSError` a local
    FileStorage raises, or the same error relayed by the ZEO server as a `ServerException`
    (whose arguments are the server-side class name and its arguments)."""
    if isinstance(exc, OSError):
        return exc.errno in DISK_FULL_ERRNOS
    if isinstance(exc, ServerException) and len(exc.args) == 2:
        name, args = exc.args
        return (name in ("builtins.OSError", "builtins.IOError")
                and isinstance(args, (list, tuple)) and bool(args)
                and args[0] in DISK_FULL_ERRNOS)
    return False


@contextlib.contextmanager
def storage_full_as_error(what):
    """Turn a full disk under the storage into `StorageFull` saying what was refused.

    The storage leaves no trace of the refused write (FileStorage truncates a transaction it
    could not write completely), so the image is as it was, and the server keeps serving.
    """
    try:
        yield
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        raise StorageFull(f"the disk holding the image is full: {what} was refused and "
                          "nothing of it was written; free space on the ZEO server's disk, "
                          f"then retry ({_disk_error_text(exc)})") from exc


def _disk_error_text(exc):
    """The operating system's words for a disk-full error, wherever it was raised."""
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    args = exc.args[1]
    return str(args[1]) if len(args) > 1 else str(args[0])


def _commit(manager, txn, note, user, what):
    """Commit `txn` under its note and user; a full disk is one clear error naming `what`."""
    if note:
        txn.note(note)
    if user:
        txn.user = user
    with storage_full_as_error(what):
        manager.commit()


class ImageStorage(ClientStorage):
    """ZEO's client storage, minus one hazard of a server crash.

    A client pre-fetches new oids from the server, 100 at a time. A ZEO server restarted after
    a crash (kill -9, power loss) recomputes its next oid from the committed records, so it
    hands out again the oids it gave away but that no commit used: a client that kept its
    pre-fetched oids across the reconnect would give a new object the oid of an object another
    client has since committed ("A different object already has the same oid", found by
    bench/chaos.py). Every (re)connection therefore starts with no pre-fetched oids.
    """

    def notify_connected(self, conn, info):
        self._oids = []
        super().notify_connected(conn, info)


class Image:
    """A process's handle on the Living Image: one ZODB DB over one ZEO client storage."""

    def __init__(self, db, address, attempts=10, backoff=(0.01, 1.0)):
        self.db = db
        self.address = address
        self.attempts = attempts
        self.backoff = backoff
        self.retries = 0
        self.awakened = False

    @contextlib.contextmanager
    def transaction(self, note=None, user=None, dry_run=False):
        """Yield the lobby in a fresh transaction; commit on exit with `note` and `user`.

        Any exception aborts the transaction — nothing of it becomes visible — and propagates.
        With `dry_run` the transaction is always aborted (trial runs).
        """
        manager = transaction.TransactionManager()
        connection = self.db.open(transaction_manager=manager)
        try:
            txn = manager.begin()
            lobby = genesis.lobby_of(connection)
            if lobby is None:
                raise BatosError("the image has no lobby: it was never awakened")
            yield lobby
            if dry_run:
                manager.abort()
                return
            _commit(manager, txn, note, user, f"the commit {note!r}" if note else "the commit")
        except BaseException:
            manager.abort()
            raise
        finally:
            connection.close()

    def run(self, fn, note=None, user=None, attempts=None):
        """Call `fn(lobby)` in a transaction, retrying on transient errors; return its result."""
        attempts = attempts or self.attempts
        delay, ceiling = self.backoff
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction(note=note, user=user) as lobby:
                    result = fn(lobby)
                return result
            except Exception as exc:
                if not is_transient(exc):
                    raise
                if attempt == attempts:
                    raise RetriesExhausted(
                        f"gave up after {attempts} attempts: {type(exc).__name__}: {exc}"
                    ) from exc
                self.retries += 1
                log.info("transient %s on attempt %d of %r; retrying",
                         type(exc).__name__, attempt, note)
                time.sleep(random.uniform(delay / 2, delay))
                delay = min(delay * 2, ceiling)
        raise AssertionError("unreachable")

    def history(self, limit=100):
        """The newest `limit` transactions: time, user and note of each, newest first."""
        return [{"tid": entry["id"].hex(), "time": entry["time"],
                 "user": _text(entry.get("user_name")),
                 "note": _text(entry.get("description"))}
                for entry in self.db.undoLog(0, limit)]

    def undo(self, tid_hex, user=None):
        """Undo the transaction `tid_hex` (from `history`) with ZODB's undo; return its note.

        A `BatosError` (final) when the id is unknown or later changes prevent the undo.
        """
        try:
            tid = bytes.fromhex(tid_hex)
        except ValueError:
            raise BatosError(f"{tid_hex!r} is not a transaction id (see batos log)") from None
        entry = next((e for e in self.history(1000) if e["tid"] == tid_hex), None)
        if entry is None:
            raise BatosError(f"no transaction {tid_hex} in the image's recent history")
        manager = transaction.TransactionManager()
        try:
            txn = manager.begin()
            self.db.undo(tid, txn)
            _commit(manager, txn, f"undo {tid_hex}: {entry['note']}", user,
                    f"the undo of {tid_hex}")
        except POSException.UndoError as exc:
            manager.abort()
            raise BatosError(f"cannot undo {tid_hex}: {exc}") from None
        except BaseException:
            manager.abort()
            raise
        return entry["note"]

    def pack(self, days=0, user=None):
        """Remove history older than `days` days (0: keep only current state) on the server,
        then record the bound in the image (`timetravel.note_pack`), so that asking for a
        moment before it is one plain error. Returns the bound in seconds since the epoch."""
        from kernel import timetravel  # timetravel imports genesis and paths, not this module
        bound = time.time() - days * 86400
        with storage_full_as_error("packing the image"):
            self.db.pack(t=bound)
        manager = transaction.TransactionManager()
        connection = self.db.open(transaction_manager=manager)
        try:
            txn = manager.begin()
            timetravel.note_pack(connection.root(), bound, days)
            _commit(manager, txn, f"pack: history before "
                    f"{timetravel.tid_text(timetravel.time_tid(bound))} removed", user,
                    "recording the pack")
        except BaseException:
            manager.abort()
            raise
        finally:
            connection.close()
        return bound

    @property
    def connected(self):
        """True while the ZEO client is connected to its server (a read then never waits)."""
        return self.db.storage.is_connected()

    def close(self):
        """Close the database and its connection to the server."""
        self.db.close()


def _text(value):
    """Transaction metadata arrives as bytes from the storage; show it as text."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")


def default_personas():
    """The personas of the project's own `conf/batos.toml`, for images made without a home."""
    path = CONF_DIR / CONFIG_NAME
    return personas_from(read_toml(path, "configuration"), path)


def probe(address, timeout=2.0):
    """Raise `ServerUnavailable` at once when nothing accepts TCP connections at `address`."""
    try:
        with socket.create_connection(address, timeout=timeout):
            pass
    except OSError as exc:
        raise ServerUnavailable(f"no ZEO server answers at {format_address(address)} "
                                f"({exc.strerror or exc})") from None


def connect(address, personas=None, wait_timeout=10.0, ssl=None, ssl_server_hostname=None,
            client_label=None, attempts=10, backoff=(0.01, 1.0), fail_fast=True,
            cache_objects=400, client_cache_bytes=20 * 1024 * 1024):
    """Open the image served at `address` (`(host, port)`); awaken it if it is empty.

    With `fail_fast` (commands) a server that is not listening is reported at once; without
    it (long-running processes started beside the server) the client waits `wait_timeout`.
    `cache_objects` (ZODB's `cache_size`: objects each connection keeps loaded between
    transactions) and `client_cache_bytes` (the ZEO client cache of object records) bound the
    process's memory; the defaults are ZODB's and ZEO's, a home's come from `[zeo]`.
    """
    if fail_fast and isinstance(address, tuple):
        probe(address)
    personas = personas or default_personas()
    for attempt in range(1, 11):
        try:
            storage = ImageStorage(address, server_sync=True, wait_timeout=wait_timeout,
                                    ssl=ssl, ssl_server_hostname=ssl_server_hostname,
                                    client_label=client_label, cache_size=client_cache_bytes)
        except ClientDisconnected:
            raise ServerUnavailable(f"no ZEO server answered at {address} within "
                                    f"{wait_timeout:g} s") from None
        try:
            db = ZODB.DB(storage, cache_size=cache_objects)
        except ConflictError:
            storage.close()  # another process created the root first; open again and load it
            log.info("root creation raced another process (attempt %d); reconnecting", attempt)
            continue
        except BaseException:
            storage.close()
            raise
        image = Image(db, address, attempts=attempts, backoff=backoff)
        try:
            with storage_full_as_error("genesis"):
                image.awakened = genesis.ensure_awake(db, personas)
        except BaseException:
            image.close()
            raise
        return image
    raise RetriesExhausted("could not open the image: the root kept conflicting")


def connect_home(home, **options):
    """Open the image of a home (`kernel.home.Home`) as its processes do: its server, its
    personas for genesis, its cache sizes and, in remote mode, its SSL client certificate;
    `options` go to `connect` (wait_timeout, fail_fast, client_label, …)."""
    from kernel import certs  # cryptography is loaded only by processes that open a home
    return connect(home.zeo_address, personas=home.personas, **home.zeo_cache,
                   **certs.connect_options(home), **options)
