"""kernel/backup.py through the real `batos backup` / `batos restore`: repozo's full and
incremental backups of a served, changing image; destroy; restore; every object the same."""
import json
import shutil
import threading

import pytest
from BTrees.Length import Length
from BTrees.OOBTree import OOBTree
from ZODB.FileStorage import FileStorage
from ZODB.utils import p64, u64

from conftest import run_batos, running_cluster, wait_until
from kernel.image import connect
from zeo_server import launcher, maintenance

AREA = "def area(self):\n    return self.width * self.height\n"
AREA_V2 = "def area(self):\n    return self.width * self.height * self.depth\n"
SCALE = ("def scale(self, factor):\n    self.width = self.width * factor\n"
         "    self._p_changed = True\n    return self.width\n")
DESCRIBE = "def summary(self):\n    return self.name + ':' + str(self.area())\n"


class Server:
    """The home's real ZEO server, stopped and started again by the test."""

    def __init__(self, home):
        self.home = home
        self.stop_server = None

    def start(self):
        """Start serving the home's image; return the address."""
        address, self.stop_server, _process = launcher.start(self.home)
        return address

    def stop(self):
        """Stop the server if it runs."""
        if self.stop_server is not None:
            self.stop_server()
            self.stop_server = None


@pytest.fixture
def server(home):
    """A started server for `home`, stopped after the test."""
    running = Server(home)
    yield running
    running.stop()


class Churn:
    """A thread that keeps committing (growing the image) through its own ZEO connection."""

    def __init__(self, address, home):
        self.image = connect(address, personas=home.personas)
        self.commits = 0
        self.failure = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        """Commit batches of 20 KB entries into a BTree until told to stop."""
        try:
            while not self.stopping.is_set():
                self.image.run(self.commit_one, note=f"churn {self.commits}", user="churn")
                self.commits += 1
        except Exception as exc:  # reported by stop(); the test fails there
            self.failure = exc

    def commit_one(self, lobby):
        """One transaction: a few new entries and the counter."""
        for i in range(5):
            lobby.churn.entries[f"{self.commits:05d}-{i}"] = "x" * 20000
        lobby.churn.count.change(1)

    def wait_for(self, commits):
        """Wait until at least `commits` transactions have been committed."""
        wait_until(lambda: self.commits >= commits or self.failure is not None, timeout=120)
        assert self.failure is None, self.failure

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopping.set()
        self.thread.join(120)
        self.image.close()
        assert not self.thread.is_alive() and self.failure is None, self.failure


def populate(image):
    """Objects, learned methods (one redefined), BTrees and a counter."""
    def make(lobby):
        lobby.shapes = lobby.traits.clone()
        lobby.shapes.define("area", AREA, author="test")
        lobby.shapes.define("summary", DESCRIBE, author="test")
        lobby.rect = lobby.shapes.clone(width=3, height=4, name="rect", tags=["a", "b"])
        lobby.rect.define("scale", SCALE, author="test")
        lobby.catalog = lobby.traits.clone(entries=OOBTree(), size=Length())
        for i in range(300):
            lobby.catalog.entries[f"k{i:04d}"] = {"n": i, "square": i * i}
        lobby.catalog.size.change(300)
        lobby.churn = lobby.traits.clone(entries=OOBTree(), count=Length())
    image.run(make, note="populate", user="test")


def change_more(image):
    """Changes after the full backup: a new object, a redefinition, slots, BTree entries."""
    def change(lobby):
        lobby.box = lobby.shapes.clone(width=2, height=5, depth=7, name="box")
        lobby.box.define("area", AREA_V2, author="test")
        lobby.rect.scale(2)
        for i in range(300, 350):
            lobby.catalog.entries[f"k{i:04d}"] = {"n": i, "square": i * i}
        del lobby.catalog.entries["k0007"]
        lobby.catalog.size.change(49)
    image.run(change, note="more changes", user="test")


def current_records(path):
    """Every object of a FileStorage: oid → (serial, pickle), through its record iterator."""
    storage = FileStorage(str(path), read_only=True)
    try:
        records, next_oid = {}, None
        while True:
            oid, tid, data, next_oid = storage.record_iternext(next_oid)
            records[oid] = (tid, data)
            if next_oid is None:
                return records
    finally:
        storage.close()


def records_as_of(path, tid, oids):
    """The state of `oids` as of transaction `tid`, from the history in a FileStorage."""
    storage = FileStorage(str(path), read_only=True)
    try:
        records = {}
        for oid in oids:
            found = storage.loadBefore(oid, p64(u64(tid) + 1))
            if found is not None:
                data, serial, _end = found
                records[oid] = (serial, data)
        return records
    finally:
        storage.close()


def transactions(path):
    """(tid, user, description) of every transaction of a FileStorage, oldest first."""
    storage = FileStorage(str(path), read_only=True)
    try:
        iterator = storage.iterator()
        try:
            return [(t.tid, t.user, t.description) for t in iterator]
        finally:
            iterator.close()
    finally:
        storage.close()


def destroy_image(home):
    """The disaster: the image and everything FileStorage keeps beside it are gone."""
    for suffix in ("", ".index", ".tmp", ".lock"):
        home.image_path.with_name(home.image_path.name + suffix).unlink(missing_ok=True)


def batos_json(*args, home):
    """Run a `batos` command with `--json` and return its parsed output."""
    result = run_batos(*args, "--json", home=home.path, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def answers(image):
    """What the image answers: learned methods called, slots read, BTrees walked."""
    def ask(lobby):
        return {"rect.area": lobby.rect.area(), "rect.summary": lobby.rect.summary(),
                "box.area": lobby.box.area(), "box.summary": lobby.box.summary(),
                "rect.slots": lobby.rect.slots(), "catalog.size": lobby.catalog.size(),
                "catalog.k0042": lobby.catalog.entries["k0042"],
                "catalog.has_k0007": "k0007" in lobby.catalog.entries,
                "catalog.keys": list(lobby.catalog.entries.keys()),
                "churn.count": lobby.churn.count(), "churn.entries": len(lobby.churn.entries)}
    return image.run(ask)


def backed_up_home(home, server):
    """Populate a served image, take a full backup while another thread commits, change more,
    take an incremental (gzip) backup. Returns (full, incremental) as `batos --json` printed
    them; the server is still running and nothing is committed after the incremental."""
    address = server.start()
    image = connect(address, personas=home.personas)
    try:
        populate(image)
        with Churn(address, home) as churn:
            churn.wait_for(3)
            full = batos_json("backup", home=home)
            churn.wait_for(churn.commits + 3)  # and it went on committing after the backup
        change_more(image)
        incremental = batos_json("backup", "--gzip", home=home)
    finally:
        image.close()
    return full, incremental


def test_backup_destroy_restore_gives_back_every_object(home, server, tmp_path):
    full, incremental = backed_up_home(home, server)
    assert [f["kind"] for f in full["files"]] == ["full"]
    assert [f["kind"] for f in incremental["files"]] == ["incremental"]
    assert incremental["files"][0]["compressed"] and incremental["tid"] > full["tid"]
    server.stop()
    original_records = current_records(home.image_path)
    original_history = transactions(home.image_path)
    original_bytes = home.image_path.read_bytes()
    assert incremental["tid"] == original_history[-1][0].hex()   # it covers the last commit

    destroy_image(home)
    result = run_batos("restore", home=home.path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"restored {home.image_path} from 2 file(s)" in result.stdout
    assert incremental["tid"] in result.stdout

    assert current_records(home.image_path) == original_records   # every object, every byte
    assert transactions(home.image_path) == original_history
    assert home.image_path.read_bytes() == original_bytes
    assert maintenance.check(home.image_path).ok

    address = server.start()
    image = connect(address, personas=home.personas)
    try:
        assert not image.awakened  # the restored image is loaded, not made anew
        restored = answers(image)
        assert restored["rect.area"] == 24 and restored["box.area"] == 70
        assert restored["rect.summary"] == "rect:24" and restored["box.summary"] == "box:70"
        assert restored["rect.slots"] == {"width": 6, "height": 4, "name": "rect",
                                          "tags": ["a", "b"]}
        assert restored["catalog.size"] == 349 and not restored["catalog.has_k0007"]
        assert restored["catalog.k0042"] == {"n": 42, "square": 1764}
        assert restored["churn.count"] >= 6
        assert restored["churn.entries"] == 5 * restored["churn.count"]
        with image.transaction() as lobby:  # and it goes on living
            lobby.rect.scale(2)
        assert image.run(lambda lobby: lobby.rect.area()) == 48
    finally:
        image.close()


def test_date_restores_the_state_the_full_backup_covered(home, server, tmp_path):
    full, _incremental = backed_up_home(home, server)
    taken = full["files"][0]["taken"][:19].replace("T", "-").replace(":", "-")
    earlier = tmp_path / "as_of_full.fs"
    result = run_batos("restore", "--date", taken, "--to", str(earlier), home=home.path)
    assert result.returncode == 0, result.stderr   # --to is allowed while the server runs
    assert full["tid"] in result.stdout and "from 1 file(s)" in result.stdout

    server.stop()
    original = tmp_path / "original.fs"
    shutil.copyfile(home.image_path, original)
    restored = current_records(earlier)
    expected = records_as_of(original, bytes.fromhex(full["tid"]), current_records(original))
    assert restored == expected
    assert transactions(earlier)[-1][0].hex() == full["tid"]
    assert len(transactions(earlier)) < len(transactions(original))
    assert maintenance.check(earlier).ok


def test_restore_over_the_image_of_a_running_server_is_refused(home, server):
    address = server.start()
    image = connect(address, personas=home.personas)
    image.close()
    run_batos("backup", home=home.path, check=True)
    before = home.image_path.read_bytes()
    result = run_batos("restore", home=home.path)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "ZEO server" in result.stderr and "stop the cluster first" in result.stderr
    assert home.image_path.read_bytes() == before
    assert not list(home.path.glob("live_image.fs.restoring*"))


def test_restore_without_backups_is_one_clear_line(home, tmp_path):
    for args in [(), ("--from", str(tmp_path / "missing"))]:
        result = run_batos("restore", *args, home=home.path)
        assert result.returncode == 1
        assert result.stderr.startswith("batos: no backups in ") and \
            "make one with: batos backup" in result.stderr
        assert not home.image_path.exists()
    result = run_batos("backup", home=home.path)
    assert result.returncode == 1 and "has never been served" in result.stderr


def test_a_date_before_every_backup_or_malformed_is_refused(home, server):
    server.start()
    connect(home.zeo_address, personas=home.personas).close()
    run_batos("backup", home=home.path, check=True)
    server.stop()
    before = home.image_path.read_bytes()
    early = run_batos("restore", "--date", "2001-01-01", home=home.path)
    assert early.returncode == 1 and "at or before 2001-01-01-00-00-00 UTC" in early.stderr
    bad = run_batos("restore", "--date", "yesterday", home=home.path)
    assert bad.returncode == 1 and "YYYY-MM-DD-HH-MM-SS" in bad.stderr
    assert home.image_path.read_bytes() == before


def test_list_and_a_backup_with_nothing_new(home, server):
    address = server.start()
    connect(address, personas=home.personas).close()
    assert batos_json("restore", "--list", home=home) == []
    full = batos_json("backup", home=home)
    again = batos_json("backup", home=home)
    assert again["files"] == [] and again["tid"] == full["tid"]
    text = run_batos("backup", home=home.path, check=True).stdout
    assert text.startswith("nothing committed since the last backup")
    image = connect(address, personas=home.personas)
    try:
        image.run(lambda lobby: setattr(lobby, "note", "new"), note="a change")
        quick = batos_json("backup", "--quick", home=home)
        image.run(lambda lobby: setattr(lobby, "note", "newer"), note="another change")
    finally:
        image.close()
    assert [f["kind"] for f in quick["files"]] == ["incremental"]
    forced = batos_json("backup", "--full", home=home)
    listed = batos_json("backup", "--list", home=home)
    assert [f["kind"] for f in listed] == ["full", "incremental", "full"]
    assert listed[-1]["file"] == forced["files"][0]["file"]
    assert listed[-1]["image_range"][0] == 0
    assert listed[-1]["image_range"][1] == home.image_path.stat().st_size


def test_a_pack_between_backups_makes_the_next_one_full(home, server):
    address = server.start()
    image = connect(address, personas=home.personas)
    try:
        for i in range(3):
            image.run(lambda lobby, i=i: setattr(lobby, "note", i), note=f"note {i}")
        assert batos_json("backup", home=home)["files"][0]["kind"] == "full"
        run_batos("pack", home=home.path, check=True)
        image.run(lambda lobby: setattr(lobby, "note", "after the pack"), note="after")
        after = batos_json("backup", home=home)
    finally:
        image.close()
    assert after["files"][0]["kind"] == "full"   # the front of the file changed: repozo saw it
    server.stop()
    original = current_records(home.image_path)
    destroy_image(home)
    run_batos("restore", home=home.path, check=True)
    assert current_records(home.image_path) == original


@pytest.mark.cluster
def test_backup_beside_a_running_cluster(tmp_path):
    with running_cluster(tmp_path, rules=[]) as (home, env, image):
        image.run(lambda lobby: setattr(lobby, "rect", lobby.traits.clone(width=3, height=4)),
                  note="rect")
        result = run_batos("backup", home=home.path, env=env)
        assert result.returncode == 0 and result.stdout.startswith("full backup"), result.stderr
        refused = run_batos("restore", home=home.path, env=env)
        assert refused.returncode == 1 and "stop the cluster first" in refused.stderr
        copy = tmp_path / "copy.fs"
        restored = run_batos("restore", "--to", str(copy), home=home.path, env=env)
        assert restored.returncode == 0, restored.stderr
        assert maintenance.check(copy).ok
        oids = current_records(copy)
        assert image.run(lambda lobby: lobby.rect._p_oid) in oids
