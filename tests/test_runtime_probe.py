"""kernel.runtime_probe: the installed llama.cpp build runs here, and a broken one is one line.

The crash is real: tests/segfault/sitecustomize.py makes llama.cpp's decode read address 0 in
the probe's child, as a build for the wrong CPU does.
"""
import pathlib
import subprocess
import sys

import pytest

from conftest import REPO, run_batos
from kernel import runtime_probe, supervise

SEGFAULT = str(REPO / "tests" / "segfault")


@pytest.fixture(scope="module")
def gguf():
    return runtime_probe.default_gguf()


def crashing_decode(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", SEGFAULT)
    monkeypatch.setenv("BATOS_TEST_SEGFAULT", "decode")


@pytest.mark.model
def test_the_installed_build_is_portable_and_completes_under_a_grammar(gguf):
    result = runtime_probe.probe(gguf)
    assert result.ok, result.line()
    assert result.tokens >= 2 and result.detail.startswith("The sky is ")
    # the install's default flags: AVX2/FMA/F16C, nothing a VM may advertise and not deliver
    assert "AVX2 = 1" in result.system_info and "FMA = 1" in result.system_info
    assert "AVX512" not in result.system_info and "AMX" not in result.system_info


@pytest.mark.model
def test_a_runtime_that_crashes_is_one_line_with_features_and_the_rebuild(gguf, monkeypatch):
    crashing_decode(monkeypatch)
    result = runtime_probe.probe(gguf)
    assert not result.ok and "crashed the process (SIGSEGV)" in result.detail
    line = result.line()
    assert "\n" not in line
    assert "Build features: " in line and "AVX2 = 1" in line  # printed before the crash
    assert f"CPU advertises: {runtime_probe.cpu_features()}" in line
    assert "make rebuild-llama" in line
    with pytest.raises(runtime_probe.RuntimeBroken, match="SIGSEGV"):
        runtime_probe.check(gguf)


@pytest.mark.model
def test_the_command_line_probe_exits_1_with_the_line(gguf, monkeypatch):
    ok = subprocess.run([sys.executable, "-m", "kernel.runtime_probe"], capture_output=True,
                        text=True, cwd=REPO, timeout=300)
    assert ok.returncode == 0 and ok.stdout.startswith("llama.cpp runtime ok")
    crashing_decode(monkeypatch)
    broken = subprocess.run([sys.executable, "-m", "kernel.runtime_probe", str(gguf)],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert broken.returncode == 1
    assert broken.stderr.strip().splitlines() == [broken.stderr.strip()]
    assert "SIGSEGV" in broken.stderr


def test_a_file_that_is_no_model_is_a_failure_not_a_crash(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + bytes(64))
    result = runtime_probe.probe(junk)
    assert not result.ok and "failed (exit 1)" in result.detail


def test_cpu_features_are_read_from_the_kernel(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx avx2 fma avx512f amx_tile\n")
    assert runtime_probe.cpu_features(cpuinfo) == "avx avx2 fma avx512f amx_tile"
    assert runtime_probe.cpu_features(tmp_path / "absent") == "unknown"
    cpuinfo.write_text("flags\t\t: fpu sse\n")
    assert runtime_probe.cpu_features(cpuinfo) == "no AVX"


@pytest.mark.cluster
def test_up_refuses_a_broken_runtime_before_starting_anything(home, monkeypatch):
    crashing_decode(monkeypatch)
    result = run_batos("up", home=home.path, env={"BATOS_LLM": ""}, timeout=300)
    assert result.returncode == 1
    assert result.stderr.startswith("batos: the llama.cpp runtime fails on this machine")
    assert "make rebuild-llama" in result.stderr
    assert not supervise.is_up(home)
    assert not pathlib.Path(home.run_dir / "supervisord.pid").exists()


CRASHING_TESTS = '''
import ctypes

import pytest


@pytest.mark.real_model
def test_the_model_crashes():
    ctypes.string_at(0)  # SIGSEGV, as a llama.cpp built for another CPU gives


@pytest.mark.real_model
def test_the_model_answers():
    assert True


def test_the_run_goes_on():
    assert True
'''


@pytest.mark.model
def test_a_real_model_test_that_crashes_fails_alone_and_the_run_goes_on(tmp_path):
    (tmp_path / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text())
    (tmp_path / "test_crash.py").write_text(CRASHING_TESTS)
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-c", str(REPO / "pyproject.toml"), "--rootdir", str(tmp_path),
                          str(tmp_path / "test_crash.py")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert "1 failed, 2 passed" in ran.stdout, ran.stdout + ran.stderr
    assert "the test's process died (signal SIGSEGV)" in ran.stdout
    assert "Fatal Python error: Segmentation fault" in ran.stderr  # pytest's faulthandler
