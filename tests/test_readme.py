"""The README's two commands, run in a fresh clone with no virtual environment yet."""
import pathlib
import re
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent


def readme_commands():
    """The commands of the README's first code block."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_the_readme_opens_with_the_two_commands():
    assert readme_commands() == ["make run", "make test"]
    assert "make test" in (REPO / ".ci" / "run").read_text()


@pytest.mark.timeout(1800)
def test_the_two_commands_work_in_a_fresh_clone(tmp_path):
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.fail("this test needs the repository's git history to clone it")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    assert not (clone / ".venv").exists()
    ran = subprocess.run(["make", "run"], cwd=clone, capture_output=True, text=True,
                         timeout=1500, input="hello\n/personas\n")
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert (clone / ".venv" / "bin" / "batos").exists()
    for name in ("ALFRED", "BRICK", "ROBIN", "BABS"):
        assert f"personas.{name}" in ran.stdout
    assert "BRICK: result 12" in ran.stdout and "learned rect.area" in ran.stdout
    assert "ROBIN: result 12" in ran.stdout and "cluster stopped" in ran.stdout
    assert "personas: ALFRED, BABS, BRICK, ROBIN" in ran.stdout  # the console answered
    # the test command in the same clone, reusing its .venv, on one small test module
    tested = subprocess.run(["make", "test", "PYTEST_ARGS=tests/test_home.py"], cwd=clone,
                            capture_output=True, text=True, timeout=600)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]
    assert re.search(r"\d+ passed", tested.stdout)
