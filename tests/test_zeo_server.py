"""zeo_server: ZEO's own server for a home — config, readiness, server-side merge, bad images."""
import subprocess
import sys

import pytest

from kernel.image import connect
from zeo_server import launcher, maintenance
from zeo_server.launcher import ServerStartError
from zeo_server.server import render_config


def test_the_effective_config_defines_home_and_address(home):
    path = render_config(home, ("127.0.0.1", 0))
    text = path.read_text()
    assert f"%define home {home.path}" in text and "%define address 127.0.0.1:0" in text
    assert "<filestorage 1>" in text


def test_port_zero_serves_on_a_free_port_and_announces_it(home):
    address, stop, process = launcher.start(home, address="127.0.0.1:0")
    try:
        assert address[0] == "127.0.0.1" and address[1] > 0
        image = connect(address, personas=home.personas)
        assert image.awakened
        image.close()
    finally:
        stop()
    assert process.returncode == 0
    assert not (home.run_dir / "zeo.address").exists()   # a clean exit withdraws it


def test_the_server_resolves_conflicts_with_the_kernel(image, home):
    """Two connections change different slots of one object: the server merges them."""
    with image.transaction() as lobby:
        lobby.shared = lobby.traits.clone()
    other = connect(home.zeo_address, personas=home.personas)
    try:
        with image.transaction() as mine:
            mine.shared.a = 1
            with other.transaction() as theirs:
                theirs.shared.b = 2
        with image.transaction() as lobby:
            assert lobby.shared.slots() == {"a": 1, "b": 2}
    finally:
        other.close()


def test_concurrent_definitions_of_different_selectors_both_survive(image, home):
    with image.transaction() as lobby:
        lobby.shared = lobby.traits.clone()
        lobby.shared.define("first", "def first(self):\n    return 1\n")
    other = connect(home.zeo_address, personas=home.personas)
    try:
        with image.transaction() as mine:
            mine.shared.define("a", "def a(self):\n    return 'a'\n")
            with other.transaction() as theirs:
                theirs.shared.define("b", "def b(self):\n    return 'b'\n")
        with image.transaction() as lobby:
            assert sorted(lobby.shared._own_methods()) == ["a", "b", "first"]
            assert (lobby.shared.a(), lobby.shared.b()) == ("a", "b")
    finally:
        other.close()


def test_a_corrupt_image_stops_the_server_with_one_line(home):
    home.image_path.write_bytes(b"this is not a FileStorage")
    with pytest.raises(ServerStartError, match="exited with code 1"):
        launcher.start(home)
    result = subprocess.run([sys.executable, "-m", "zeo_server", "--home", str(home.path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("zeo_server: cannot serve")


def test_a_foreign_home_is_refused(tmp_path):
    result = subprocess.run([sys.executable, "-m", "zeo_server", "--home", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "not a BAT OS data directory" in result.stderr


def test_check_passes_on_a_served_image(image, home):
    with image.transaction() as lobby:
        lobby.thing = lobby.traits.clone(n=1)
    assert maintenance.check(home.image_path).ok
