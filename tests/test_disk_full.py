"""A full disk under the Living Image: a clear error, nothing half-written, recovery when space
returns. Each test makes a small ext4 filesystem image, mounts it, and runs a real ZEO server
whose home lives on it; a ballast file fills the disk.
"""
import errno
import json
import os
import shutil
import subprocess

import pytest
from conftest import run_batos

from kernel.errors import StorageFull
from kernel.home import Home
from kernel.image import connect
from zeo_server import launcher, maintenance

DISK_BYTES = 12 * 1024 * 1024
NEVER_COMMITTED = "never-committed:"


@pytest.fixture
def small_disk(tmp_path):
    """A freshly made 12 MiB ext4 filesystem, mounted for the test and unmounted after it."""
    if not (shutil.which("mkfs.ext4") and shutil.which("mount")):
        pytest.skip("mkfs.ext4 and mount are needed to make a small filesystem")
    disk_file = tmp_path / "disk.img"
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    with open(disk_file, "wb") as handle:
        handle.truncate(DISK_BYTES)
    made = subprocess.run(["mkfs.ext4", "-q", "-F", str(disk_file)], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot make an ext4 filesystem here: {made.stderr.strip()}")
    mounted = subprocess.run(["mount", "-o", "loop", str(disk_file), str(mount_point)],
                             capture_output=True, text=True, stdin=subprocess.DEVNULL,
                             check=False)
    if mounted.returncode != 0:
        pytest.skip(f"mounting a loop filesystem is not permitted here: "
                    f"{mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        unmounted = subprocess.run(["umount", str(mount_point)], capture_output=True,
                                   text=True, stdin=subprocess.DEVNULL, check=False)
        if unmounted.returncode != 0:  # detach it anyway, then say which test leaked
            subprocess.run(["umount", "-l", str(mount_point)], stdin=subprocess.DEVNULL,
                           check=False)
            pytest.fail(f"the small filesystem was still in use: {unmounted.stderr.strip()}")


def fill(path, leave=0):
    """Write `path` until the disk is full, then give back `leave` bytes; return the path."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        chunk = 1 << 20
        while chunk:
            try:
                os.write(fd, bytes(chunk))
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk //= 2
        os.fsync(fd)
        if leave:
            os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
            os.fsync(fd)
    finally:
        os.close(fd)
    return path


def put(name, payload):
    """A transaction function storing an object with `payload` in the lobby under `name`."""
    return lambda lobby: setattr(lobby, name, lobby.traits.clone(payload=payload))


def test_a_full_disk_refuses_the_commit_clearly_and_the_image_recovers(small_disk):
    home = Home.init(small_disk / "home")
    address, stop, server = launcher.start(home)
    image = connect(address, personas=home.personas)
    try:
        image.run(put("kept", "k" * 600_000), note="kept")
        # the storage's temporary file now spans 600 kB, so the next big commit gets as far
        # as writing the image file itself before the disk runs out
        ballast = fill(small_disk / "ballast", leave=100_000)
        size_before = home.image_path.stat().st_size
        with pytest.raises(StorageFull, match="disk holding the image is full: the commit "
                                              "'lost' was refused.*free space"):
            image.run(put("lost", NEVER_COMMITTED * 25_000), note="lost")
        assert home.image_path.stat().st_size == size_before
        brim = fill(small_disk / "brim")
        with pytest.raises(StorageFull):
            image.run(put("small", "s" * 10_000), note="small")
        command = run_batos("new", "crowd", "--slots", json.dumps({"text": "c" * 10_000}),
                            home=home.path)
        assert command.returncode == 1 and command.stderr.count("\n") == 1
        assert command.stderr.startswith("batos: the disk holding the image is full")
        with pytest.raises(StorageFull, match="packing the image was refused"):
            image.pack()
        assert not home.image_path.with_name("live_image.fs.pack").exists()
        assert server.poll() is None
        assert image.run(lambda lobby: len(lobby.kept.payload)) == 600_000

        ballast.unlink()
        brim.unlink()
        image.run(put("after", "a"), note="after space returned")
        names = image.run(lambda lobby: set(lobby.slot_names()))
        assert {"kept", "after"} <= names and not {"lost", "small", "crowd"} & names
        assert maintenance.check(home.image_path).ok
    finally:
        image.close()
        stop()
    assert server.returncode == 0
    assert maintenance.check(home.image_path).ok
    assert NEVER_COMMITTED.encode() not in home.image_path.read_bytes()


def test_the_server_stops_on_a_full_disk_and_serves_again_when_space_returns(small_disk):
    home = Home.init(small_disk / "home")
    address, stop, server = launcher.start(home)
    image = connect(address, personas=home.personas)
    try:
        image.run(put("kept", "k" * 200_000), note="kept")
    finally:
        image.close()
    ballast = fill(small_disk / "ballast")
    stop()
    assert server.returncode == 0
    brim = fill(small_disk / "brim")  # and what the stopping server freed is taken too
    with pytest.raises(launcher.ServerStartError, match="the disk holding .* is full"):
        _address, stop_unexpected, _server = launcher.start(home)
        stop_unexpected()

    ballast.unlink()
    brim.unlink()
    address, stop, server = launcher.start(home)
    image = connect(address, personas=home.personas)
    try:
        assert image.run(lambda lobby: lobby.kept.payload) == "k" * 200_000
        image.run(put("after", "a"), note="after space returned")
    finally:
        image.close()
        stop()
    assert maintenance.check(home.image_path).ok
