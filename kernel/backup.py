"""Backups of the Living Image with ZODB's own repozo: full and incremental, server running.

Why repozo: a FileStorage only ever appends, so a backup is a copy of the file up to its last
complete transaction, and the next one (an *incremental*) is a copy of what was appended since.
`ZODB.scripts.repozo` does exactly that, names the files by their UTC time, keeps md5 sums of
every piece in a `.dat` file per full backup, falls back to a full backup when the front of the
file changed (a pack), and recovers the state as of any backup by concatenating one full backup
and its incrementals. We call its functions in-process (its `main` exits the interpreter on
error) and add what a command needs around them: locks, names in a new second, an atomic swap of
the live image, and a report of what a backup covers.

What is safe while the ZEO server runs:
- `backup`. repozo opens the image read-only — no lock, nothing written beside it — and copies
  only up to the end of the last committed transaction; a transaction being committed at that
  moment (its record still flagged in progress, or not yet complete) is left for the next
  incremental. A pack that replaces the file during the copy is detected (the file is another
  one afterwards): what was written is removed and a transient `BackupError` says to run again.
- `restore --to FILE` somewhere else.
Restoring over the live image is refused while anything holds the image's lock file (the ZEO
server does, through FileStorage, for as long as it serves it); the restore itself holds that
lock, so a server cannot start on a half-swapped image. `batos restore` also refuses while the
home's supervisord runs: the whole cluster must be down, because ZEO clients that saw newer
transactions than the restored image refuse to reconnect to it (for the same reason, persistent
ZEO client caches — `.zec` files, not used by BAT OS — would have to be removed).

Repository layout (repozo's): `YYYY-MM-DD-HH-MM-SS.fs[z]` full backups, `.deltafs[z]`
incrementals, `.index` (the FileStorage index as of each file) and one `.dat` per full backup.
"""
import dataclasses
import datetime
import gzip
import logging
import os
import pathlib
import struct
import time

import zc.lockfile
from ZODB.FileStorage import FileStorage
from ZODB.FileStorage.format import TRANS_HDR_LEN
from ZODB.scripts import repozo
from ZODB.TimeStamp import TimeStamp

from kernel import supervise
from kernel.errors import BatosError

log = logging.getLogger(__name__)

REPOSITORY_NAME = "backups"
REPOSITORY_LOCK = "repozo.lock"
PRE_RESTORE_SUFFIX = ".pre-restore"
STAMP_FORMAT = "%Y-%m-%d-%H-%M-%S"
FILE_HEADER_LEN = 4  # the FileStorage magic, b"FS21"


class BackupError(BatosError):
    """A backup or restore could not be made; the message says why. Final unless `transient`."""

    def __init__(self, message, transient=False):
        super().__init__(message)
        self.transient = transient


class ServerRunning(BackupError):
    """The image is locked by its ZEO server: restoring over it now would pull it from under
    the server. Final until the server is stopped."""


@dataclasses.dataclass(frozen=True)
class BackupFile:
    """One data file of a repository: a full backup or an incremental."""

    path: pathlib.Path
    kind: str            # "full" or "incremental"
    taken: datetime.datetime  # UTC, from the file name
    size: int            # bytes on disk
    start: int = None    # the range of the image file it holds, from the .dat (None: unknown)
    end: int = None

    @property
    def compressed(self):
        """True for gzip-compressed files (`.fsz`, `.deltafsz`)."""
        return self.path.suffix.endswith("z")

    def as_json(self):
        """Plain data for `--json`."""
        return {"file": str(self.path), "kind": self.kind, "taken": self.taken.isoformat(),
                "bytes": self.size, "compressed": self.compressed, "image_range":
                [self.start, self.end] if self.start is not None else None}


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a backup wrote (`written` None when nothing changed) or a restore read, and the
    last transaction it covers."""

    files: tuple
    tid: bytes = None
    target: pathlib.Path = None
    kept: pathlib.Path = None   # a restore over the live image keeps the image it replaced

    @property
    def time(self):
        """The commit time of the last covered transaction (UTC), or None for an empty image."""
        return tid_time(self.tid) if self.tid else None

    def as_json(self):
        """Plain data for `--json`."""
        return {"files": [f.as_json() for f in self.files],
                "tid": self.tid.hex() if self.tid else None,
                "time": self.time.isoformat() if self.time else None,
                "target": str(self.target) if self.target else None,
                "kept": str(self.kept) if self.kept else None}


def tid_time(tid):
    """The UTC time a transaction id stands for."""
    return datetime.datetime.fromtimestamp(TimeStamp(tid).timeTime(), datetime.UTC)


def default_repository(home):
    """Where backups of `home` go unless told otherwise: HOME/backups/."""
    return home.path / REPOSITORY_NAME


def parse_date(text):
    """`YYYY-MM-DD[-HH[-MM[-SS]]]` (UTC) → repozo's full form; a `BackupError` otherwise."""
    parts = str(text).strip().split("-")
    if not 3 <= len(parts) <= 6 or not all(p.isdigit() for p in parts):
        raise BackupError(f"--date {text!r} is not of the form YYYY-MM-DD-HH-MM-SS (UTC)")
    canonical = "-".join(parts + ["00"] * (6 - len(parts)))
    try:
        datetime.datetime.strptime(canonical, STAMP_FORMAT)
    except ValueError as exc:
        raise BackupError(f"--date {text!r} is not a valid time: {exc}") from None
    return canonical


# -- the repository ----------------------------------------------------------------------------

def list_backups(repository):
    """Every data file of `repository`, oldest first, with the image range from the `.dat`s.

    Cheap: names, sizes and the small `.dat` files only. A missing directory has none.
    """
    repository = pathlib.Path(repository)
    if not repository.is_dir():
        return []
    ranges = _ranges_from_dat_files(repository)
    found = []
    for name in sorted(filter(repozo.is_data_file, os.listdir(repository))):
        path = repository / name
        start, end = ranges.get(name, (None, None))
        found.append(BackupFile(
            path=path, kind="full" if path.suffix in (".fs", ".fsz") else "incremental",
            taken=datetime.datetime.strptime(name.split(".")[0], STAMP_FORMAT).replace(
                tzinfo=datetime.UTC),
            size=path.stat().st_size, start=start, end=end))
    return found


def _ranges_from_dat_files(repository):
    """Data file name → (start, end) in the image, as repozo recorded them."""
    ranges = {}
    for dat in repository.glob("*.dat"):
        for line in dat.read_text().splitlines():
            fields = line.split()
            if len(fields) == 4:
                ranges[os.path.basename(fields[0])] = (int(fields[1]), int(fields[2]))
    return ranges


def _lock_repository(repository):
    """Hold the repository for one backup or restore (repozo writes a fixed `tmp.tmp`)."""
    try:
        return zc.lockfile.LockFile(str(repository / REPOSITORY_LOCK))
    except zc.lockfile.LockError:
        raise BackupError(f"another backup or restore is using {repository}; retry when it "
                          "has finished", transient=True) from None


def _wait_for_a_new_second(repository):
    """repozo names files by the UTC second: make sure this one sorts after every other."""
    newest = max((name.split(".")[0] for name in os.listdir(repository)
                  if repozo.is_data_file(name)), default="")
    now = time.strftime(STAMP_FORMAT, time.gmtime())
    if newest > now:
        raise BackupError(f"{repository} holds a backup from the future ({newest} UTC, now "
                          f"{now}): was the clock changed?")
    while newest == time.strftime(STAMP_FORMAT, time.gmtime()):
        time.sleep(0.05)  # at most one second: the clock is the condition


def _repozo_options(*argv):
    """repozo's own option object, from its own parser."""
    return repozo.parseargs(list(argv))


# -- backup ------------------------------------------------------------------------------------

def backup(image_path, repository, full=False, compress=False, quick=False):
    """Back up the FileStorage at `image_path` into `repository` (created if missing).

    Incremental unless `full` or no full backup exists yet (or the image was packed since,
    which repozo detects). `quick` checks only the md5 of the last increment instead of
    re-reading the whole image. Returns an `Outcome` whose `files` holds the file written (none
    when nothing was committed since the last backup).
    """
    image_path = pathlib.Path(image_path).absolute()
    repository = pathlib.Path(repository).absolute()
    if not image_path.exists():
        raise BackupError(f"{image_path} does not exist: the image has never been served")
    try:
        repository.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot create {repository}: {exc.strerror or exc}") from None
    lock = _lock_repository(repository)
    try:
        _wait_for_a_new_second(repository)
        before = _snapshot(repository)
        identity = _identity(image_path)
        options = _repozo_options("--backup", "--file", str(image_path), "--repository",
                                  str(repository), *(["--full"] if full else []),
                                  *(["--gzip"] if compress else []),
                                  *(["--quick"] if quick else []))
        try:
            repozo.do_backup(options)
        except (repozo.RepozoError, OSError) as exc:
            _undo_changes(repository, before)
            raise BackupError(f"backup of {image_path} failed: {exc}") from None
        if _identity(image_path) != identity:
            _undo_changes(repository, before)
            raise BackupError(f"{image_path} was replaced (packed) during the backup; nothing "
                              "was kept — run the backup again", transient=True)
        written = [f for f in list_backups(repository) if f.path.name not in before]
        chain = _chain_ending_with(repository, written[-1] if written else None)
        return Outcome(files=tuple(written), tid=last_transaction_of(chain))
    finally:
        lock.close()


def _identity(path):
    """Which file `path` is (a pack renames a new file into place)."""
    status = os.stat(path)
    return status.st_dev, status.st_ino


def _snapshot(repository):
    """Name → content of the `.dat` files, and the names of all other files, before a backup."""
    return {path.name: (path.read_bytes() if path.suffix == ".dat" else None)
            for path in repository.iterdir()}


def _undo_changes(repository, before):
    """Put the repository back as `_snapshot` saw it: new files removed, `.dat`s restored."""
    for path in repository.iterdir():
        if path.name == REPOSITORY_LOCK:
            continue
        if path.name not in before:
            path.unlink(missing_ok=True)
        elif before[path.name] is not None and path.read_bytes() != before[path.name]:
            path.write_bytes(before[path.name])


def _chain_ending_with(repository, last):
    """The full backup and incrementals up to `last` (default: the newest), oldest first."""
    files = list_backups(repository)
    if last is not None:
        files = [f for f in files if f.path.name <= last.path.name]
    chain = []
    for f in reversed(files):
        chain.insert(0, f)
        if f.kind == "full":
            break
    return chain


def last_transaction_of(chain):
    """The id of the last transaction a chain of backup files holds (None: no transaction).

    Each file ends on a transaction boundary and a FileStorage transaction record ends with its
    own length, so the last record is found from the tail of the newest non-empty file.
    """
    for f in reversed(chain):
        length = _uncompressed_length(f)
        if length <= (FILE_HEADER_LEN if f.kind == "full" else 0):
            continue
        opener = gzip.open if f.compressed else open
        with opener(f.path, "rb") as data:
            data.seek(length - 8)
            record_length = struct.unpack(">Q", data.read(8))[0]
            data.seek(length - 8 - record_length)
            header = data.read(TRANS_HDR_LEN)
        tid, header_length = struct.unpack(">8sQ", header[:16])
        if header_length != record_length:
            raise BackupError(f"{f.path} does not end with a whole transaction record: the "
                              "backup is damaged")
        return tid
    return None


def _uncompressed_length(f):
    """How many image bytes a backup file holds."""
    if f.start is not None:
        return f.end - f.start
    if not f.compressed:
        return f.size
    with gzip.open(f.path, "rb") as data:
        return repozo.file_size(data)


# -- restore -----------------------------------------------------------------------------------

def restore(repository, target, date=None, replace=False):
    """Recover the state as of `date` (UTC, `YYYY-MM-DD-HH-MM-SS`; default: the newest backup)
    from `repository` into the file `target`, atomically.

    repozo writes the image (checking every piece's size and md5 against the `.dat`) and its
    index beside `target`; the result is opened read-only as a FileStorage before it is renamed
    into place. `target` must not exist unless `replace`, which is for the live image: then
    its lock must be free (no server), and the image it replaces is kept as
    `target + ".pre-restore"` (a hard link, no copy) until the next restore.
    """
    repository = pathlib.Path(repository).absolute()
    target = pathlib.Path(target).absolute()
    when = parse_date(date) if date else None
    if not list_backups(repository):
        raise BackupError(f"no backups in {repository}; make one with: batos backup")
    if target.exists() and not replace:
        raise BackupError(f"{target} exists; restore to a new file or remove it first")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} is not a directory")
    image_lock = _lock_image(target) if replace else None
    try:
        lock = _lock_repository(repository)
        try:
            staged = target.with_name(target.name + ".restoring")
            _remove_staged(staged)
            try:
                chain = _recover(repository, staged, when)
                tid = _open_check(staged)
                kept = _keep_aside(target) if replace else None
                _move_into_place(staged, target)
            finally:
                _remove_staged(staged)
        finally:
            lock.close()
    finally:
        if image_lock is not None:
            image_lock.close()
    log.info("restored %s from %s (%d file(s))", target, repository, len(chain))
    return Outcome(files=tuple(chain), tid=tid, target=target, kept=kept)


def _lock_image(target):
    """Take the image's FileStorage lock, or say that a server holds it."""
    try:
        return zc.lockfile.LockFile(str(target) + ".lock")
    except zc.lockfile.LockError:
        pid = _server_pid(target)
        raise ServerRunning(
            f"the ZEO server{f' (pid {pid})' if pid else ''} is serving {target}: stop the "
            "cluster first (batos down), or restore elsewhere with --to FILE") from None


def _server_pid(target):
    """The pid in the home's run/zeo.pid, when there is one, for the refusal message."""
    try:
        return int((target.parent / "run" / "zeo.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _index_of(path):
    """The FileStorage index file beside `path`."""
    return path.with_name(path.name + ".index")


def _remove_staged(staged):
    """Remove what a (failed) staged restore may have left."""
    for path in (staged, staged.with_name(staged.name + ".part"), _index_of(staged)):
        path.unlink(missing_ok=True)


def _recover(repository, staged, when):
    """repozo's recover into `staged`, verifying each file; returns the files it used."""
    argv = ["--recover", "--with-verify", "--repository", str(repository),
            "--output", str(staged)]
    options = _repozo_options(*argv, *(["--date", when] if when else []))
    needed = set(repozo.find_files(options))
    chain = [f for f in list_backups(repository) if str(f.path) in needed]
    try:
        repozo.do_recover(options)
    except repozo.NoFiles:
        raise BackupError(f"no backup in {repository} was taken at or before {when} UTC "
                          "(see: batos restore --list)") from None
    except repozo.VerificationFail as exc:
        raise BackupError(f"the backup in {repository} is damaged: {exc}") from None
    except (repozo.RepozoError, OSError) as exc:
        raise BackupError(f"restore from {repository} failed: {exc}") from None
    return chain


def _open_check(staged):
    """Open the restored file as a FileStorage (read-only); return its last transaction id."""
    try:
        storage = FileStorage(str(staged), read_only=True)
    except Exception as exc:  # any failure to open means the restore must not be used
        raise BackupError(f"the restored image does not open as a FileStorage: "
                          f"{type(exc).__name__}: {exc}") from None
    try:
        tid = storage.lastTransaction()
    finally:
        storage.close()
    return tid if tid != b"\0" * 8 else None


def _keep_aside(target):
    """Keep the image a restore replaces as `target + ".pre-restore"` (a hard link, no copy)."""
    if not target.exists():
        return None
    kept = target.with_name(target.name + PRE_RESTORE_SUFFIX)
    kept.unlink(missing_ok=True)
    try:
        os.link(target, kept)
    except OSError as exc:
        log.warning("could not keep the replaced image as %s: %s", kept, exc)
        return None
    return kept


def _move_into_place(staged, target):
    """Put the restored file at `target` in one rename, and its index beside it.

    The old index goes first (a stale index must never sit beside the new file); repozo's
    index, which matches the restored file, follows it; a missing one is rebuilt on opening.
    """
    _index_of(target).unlink(missing_ok=True)
    os.replace(staged, target)
    if _index_of(staged).exists():
        os.replace(_index_of(staged), _index_of(target))


def restore_home(home, repository=None, date=None, target=None):
    """`batos restore`: into the home's live image (refused while its server runs) or `target`."""
    repository = repository or default_repository(home)
    live = home.image_path.absolute()
    target = pathlib.Path(target).absolute() if target else live
    if target == live and supervise.is_up(home):
        raise ServerRunning(f"the cluster of {home.path} is up (supervisord answers): its "
                            "clients have seen newer transactions than a backup holds; stop "
                            "the cluster first (batos down), or restore elsewhere with --to "
                            "FILE")
    return restore(repository, target, date=date, replace=target == live)


def describe_outcome(outcome):
    """One line about the last transaction an outcome covers."""
    if outcome.tid is None:
        return "no transaction (an empty image)"
    return (f"up to transaction {outcome.tid.hex()} of "
            f"{outcome.time.strftime('%Y-%m-%d %H:%M:%S')} UTC")

