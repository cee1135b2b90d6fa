"""kernel.supervise: the supervisord configuration a home gets (running it: test_cluster)."""
import pytest

from kernel import supervise
from kernel.home import Home


def test_the_rendered_configuration_runs_everything_from_the_home(tmp_path):
    home = Home.init(tmp_path / "h")
    text = supervise.render(home).read_text()
    assert "[program:zeo]" in text and "[program:orchestrator]" in text
    for persona in ("ALFRED", "BRICK", "ROBIN", "BABS"):
        assert f"[program:worker-{persona}]" in text
        assert f"--persona {persona}" in text
    assert "priority=10" in text and "priority=20" in text and "priority=30" in text
    assert f"file={home.run_dir / 'supervisor.sock'}" in text
    assert "%(here)s/log/zeo.log" in text


def test_a_home_with_a_long_path_still_gets_a_control_socket(tmp_path):
    home = Home.init(tmp_path / ("deep" * 30) / "home")
    socket = supervise.socket_path(home)
    assert len(str(socket)) <= 100
    assert f"file={socket}" in supervise.render(home).read_text()


def test_controlling_a_cluster_that_is_not_up_is_a_clear_error(tmp_path):
    home = Home.init(tmp_path / "h")
    assert not supervise.is_up(home)
    with pytest.raises(supervise.ClusterError, match="not running"):
        supervise.down(home)
    with pytest.raises(supervise.ClusterError, match="no workers are configured"):
        supervise.restart(home, "NOBODY")
