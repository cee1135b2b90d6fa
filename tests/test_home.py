"""kernel.home: making and opening data directories, and refusing foreign or corrupt ones."""
import socket

import pytest

from kernel.errors import ConfigError, HomeError
from kernel.home import FIXED_PORTS_FROM, Home, _ephemeral_low, free_port, parse_address


def test_init_copies_the_configuration_with_a_free_loopback_port(tmp_path):
    home = Home.init(tmp_path / "h")
    host, port = home.zeo_address
    assert host == "127.0.0.1" and port > 0
    assert (home.path / "zeo.conf").exists() and home.run_dir.is_dir()
    assert sorted(home.personas) == ["ALFRED", "BABS", "BRICK", "ROBIN"]
    assert Home.open(home.path).zeo_address == (host, port)


def test_a_free_port_is_bindable_and_below_the_ports_outgoing_connections_take():
    """An endpoint's port from the ephemeral range could be taken by a client connection's
    local end before the endpoint binds it."""
    for _ in range(20):
        port = free_port()
        assert FIXED_PORTS_FROM <= port < _ephemeral_low()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_init_takes_a_given_address(tmp_path):
    assert Home.init(tmp_path / "h", "127.0.0.1:7777").zeo_address == ("127.0.0.1", 7777)


def test_init_refuses_an_existing_home_and_a_non_empty_directory(tmp_path):
    home = Home.init(tmp_path / "h")
    with pytest.raises(HomeError, match="already"):
        Home.init(home.path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file").write_text("mine")
    with pytest.raises(HomeError, match="not empty"):
        Home.init(tmp_path / "other")
    assert [p.name for p in (tmp_path / "other").iterdir()] == ["file"]


def test_open_refuses_missing_foreign_and_corrupt_directories(tmp_path):
    with pytest.raises(HomeError, match="does not exist"):
        Home.open(tmp_path / "nothing")
    (tmp_path / "foreign").mkdir()
    with pytest.raises(HomeError, match="not a BAT OS data directory"):
        Home.open(tmp_path / "foreign")
    home = Home.init(tmp_path / "h")
    (home.path / "batos.toml").write_text("[zeo\naddress = ")
    with pytest.raises(HomeError, match="corrupt"):
        Home.open(home.path)
    (home.path / "batos.toml").write_text('[instance]\nkind = "something-else"\n')
    with pytest.raises(HomeError, match="does not belong"):
        Home.open(home.path)


@pytest.mark.parametrize("text", ["localhost", "host:99999", ":80", "a:b"])
def test_bad_addresses_are_config_errors(text):
    with pytest.raises(ConfigError):
        parse_address(text)


def test_ipv6_addresses_parse():
    assert parse_address("[::1]:8100") == ("::1", 8100)


def test_zeo_cache_settings_become_connect_arguments(tmp_path):
    home = Home.init(tmp_path / "h")
    assert home.zeo_cache == {"cache_objects": 10000, "client_cache_bytes": 20 * 1024 * 1024}
    config = home.path / "batos.toml"
    text = config.read_text()
    config.write_text(text.replace("cache_objects = 10000", "cache_objects = 500")
                      .replace("client_cache_mib = 20", "client_cache_mib = 1.5"))
    assert Home.open(home.path).zeo_cache == {"cache_objects": 500,
                                              "client_cache_bytes": 1536 * 1024}
    for bad in ('cache_objects = "many"', "cache_objects = 0"):
        config.write_text(text.replace("cache_objects = 10000", bad))
        with pytest.raises(ConfigError, match=r"\[zeo\] cache"):
            Home.open(home.path).zeo_cache
