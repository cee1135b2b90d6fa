"""kernel.model_parts: a model shipped in slices is assembled once, whole and checked, or not at all."""
import hashlib
import json
import os
import subprocess
import sys

import pytest

from kernel import llm, model_parts

SLICES = [b"GGUF" + b"a" * 3000, b"b" * 5000, b"c" * 17]


def _install_parts(folder, slices, prefix="fakepart"):
    """Packages `fakepart1…` as the model's packages lay them out (`data/partNN.bin`)."""
    for number, data in enumerate(slices, 1):
        package = folder / f"{prefix}{number}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise ImportError('never imported')\n")
        (package / "data" / f"part{number:02d}.bin").write_bytes(data)
    return tuple(f"{prefix}{n}" for n in range(1, len(slices) + 1))


def _parted(packages, whole):
    return model_parts.PartedModel("tiny", packages, len(whole),
                                   hashlib.sha256(whole).hexdigest(), "a test model")


@pytest.fixture
def parts(tmp_path, monkeypatch):
    """Three installed slices of a 'tiny' model, and an empty model cache."""
    folder = tmp_path / "site"
    packages = _install_parts(folder, SLICES)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv(model_parts.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setitem(model_parts.MODELS, "tiny", _parted(packages, b"".join(SLICES)))
    return tmp_path


def test_the_slices_are_assembled_once_in_order_and_reused(parts):
    seen = []
    path = model_parts.path("tiny", lambda done, total: seen.append((done, total)))
    assert path == parts / "cache" / "tiny.gguf" and path.read_bytes() == b"".join(SLICES)
    assert seen[-1] == (8021, 8021)
    before = path.stat().st_mtime_ns
    assert model_parts.path("tiny") == path and path.stat().st_mtime_ns == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.gguf", "tiny.gguf.sha256",
                                                           "tiny.lock"]


def test_parts_that_do_not_make_the_recorded_file_are_refused_and_leave_nothing(parts,
                                                                                monkeypatch):
    packages = model_parts.MODELS["tiny"].packages
    monkeypatch.setitem(model_parts.MODELS, "tiny", _parted(packages, b"something else"))
    with pytest.raises(model_parts.PartsUnavailable, match="not the recorded 14 bytes"):
        model_parts.path("tiny")
    assert [p.name for p in (parts / "cache").iterdir()] == ["tiny.lock"]


def test_a_missing_part_and_an_unknown_model_say_what_to_do(parts, monkeypatch):
    assert llm.ModelSpec("m", "parts:tiny").path().read_bytes() == b"".join(SLICES)
    packages = model_parts.MODELS["tiny"].packages + ("fakepart_absent",)
    monkeypatch.setitem(model_parts.MODELS, "more", _parted(packages, b"".join(SLICES)))
    with pytest.raises(model_parts.PartsUnavailable,
                       match="'fakepart_absent' is not installed .*pip install fakepart-absent"):
        model_parts.path("more")
    with pytest.raises(model_parts.PartsUnavailable, match="no parted model is called 'huge'"):
        model_parts.path("huge")
    with pytest.raises(llm.ModelUnavailable, match=r"models.m.gguf: no parted model"):
        llm.ModelSpec("m", "parts:huge").path()


def test_processes_starting_together_assemble_the_file_once(tmp_path):
    whole = bytes(range(256)) * 40_000  # 10 MB, so the assemblies overlap
    slices = [whole[:4_000_000], whole[4_000_000:]]
    site = tmp_path / "site"
    packages = _install_parts(site, slices)
    parted = json.dumps([list(packages), len(whole), hashlib.sha256(whole).hexdigest()])
    script = (
        "import json, logging, sys\n"
        "from kernel import model_parts\n"
        "logging.basicConfig(level=logging.INFO, format='%(message)s')\n"
        f"packages, size, digest = json.loads({parted!r})\n"
        "model_parts.MODELS['tiny'] = model_parts.PartedModel('tiny', tuple(packages), size,"
        " digest, 'a test model')\n"
        "print(model_parts.path('tiny'))\n")
    env = {**os.environ, model_parts.ENV_CACHE: str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(site), os.getcwd()])}
    runs = [subprocess.Popen([sys.executable, "-c", script], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    results = [run.communicate(timeout=120) for run in runs]
    assert all(run.returncode == 0 for run in runs), results
    assert {out.strip() for out, _ in results} == {str(tmp_path / "cache" / "tiny.gguf")}
    assert sum(err.count("assembling tiny") for _, err in results) == 1
    assert (tmp_path / "cache" / "tiny.gguf").read_bytes() == whole


def test_the_writers_model_is_assembled_from_its_installed_parts():
    path = model_parts.path("qwen2.5-coder-1.5b-instruct")
    assert path.stat().st_size == 1117320768 and path.read_bytes()[:4] == b"GGUF"
