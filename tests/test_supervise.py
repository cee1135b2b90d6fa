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


SEGFAULT_LOG = """\
2026-12-01 10:00:00,000 INFO BRICK kernel.worker: registered for BRICK at tcp://127.0.0.1:1
Fatal Python error: Segmentation fault

Thread 0x00007f (most recent call first):
  File "/venv/lib/python3.11/site-packages/llama_cpp/_internals.py", line 335 in decode
  File "/venv/lib/python3.11/site-packages/llama_cpp/llama.py", line 690 in eval
  File "/usr/lib/python3.11/threading.py", line 1002 in _bootstrap
2026-12-01 10:00:02,000 INFO BRICK kernel.worker: registered for BRICK at tcp://127.0.0.1:1
"""


def test_last_words_find_the_crash_even_after_the_restart_logged_more(tmp_path):
    log = tmp_path / "worker-BRICK-0.log"
    log.write_text(SEGFAULT_LOG)
    assert supervise.last_words(log) == (
        'Fatal Python error: Segmentation fault (File "/venv/lib/python3.11/site-packages/'
        'llama_cpp/_internals.py", line 335 in decode)')
    log.write_text("starting\nTraceback (most recent call last):\n  File \"x.py\", line 1, "
                   "in <module>\n    import nothing\nModuleNotFoundError: No module named "
                   "'nothing'\n")
    assert supervise.last_words(log) == "ModuleNotFoundError: No module named 'nothing'"
    log.write_text("batos-worker: setting models.x.gguf is missing\n\n")
    assert supervise.last_words(log) == "batos-worker: setting models.x.gguf is missing"
    assert supervise.last_words(tmp_path / "absent.log") is None


def test_worker_last_words_come_from_its_newest_log(tmp_path):
    home = Home.init(tmp_path / "h")
    home.log_dir.mkdir(exist_ok=True)
    (home.log_dir / "worker-BRICK-0.log").write_text(SEGFAULT_LOG)
    assert supervise.worker_last_words(home, "BRICK").startswith(
        "worker-BRICK-0: Fatal Python error: Segmentation fault")
    assert supervise.worker_last_words(home, "ROBIN") is None


def test_the_crash_report_counts_restarts_since_supervisord_started(tmp_path):
    home = Home.init(tmp_path / "h")
    home.log_dir.mkdir(exist_ok=True)
    (home.log_dir / "supervisord.log").write_text(
        "x INFO supervisord started with pid 1\nx INFO spawned: 'worker-BRICK-0' with pid 2\n"
        "x WARN exited: worker-BRICK-0 (terminated by SIGKILL; not expected)\n"
        "x INFO supervisord started with pid 10\n"
        "x INFO spawned: 'zeo' with pid 11\nx INFO spawned: 'worker-BRICK-0' with pid 12\n"
        "x WARN exited: worker-BRICK-0 (terminated by SIGSEGV (core dumped); not expected)\n"
        "x INFO spawned: 'worker-BRICK-0' with pid 13\n"
        "x WARN exited: worker-BRICK-0 (terminated by SIGSEGV (core dumped); not expected)\n"
        "x INFO spawned: 'worker-BRICK-0' with pid 14\n")
    report = supervise.crash_report(home)
    assert report["worker-BRICK-0"] == {"restarts": 2,
                                        "last_exit": "terminated by SIGSEGV (core dumped)"}
    assert report["zeo"] == {"restarts": 0, "last_exit": None}
