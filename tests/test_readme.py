"""The README kept true: its two commands, run in a fresh clone with no virtual environment
yet, and its table of modules, compared with the tree."""
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


def module_table():
    """The first-column entries of the README's table of modules (`| package | role |`)."""
    lines = (REPO / "README.md").read_text().splitlines()
    start = lines.index("| package | role |")
    entries = set()
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        entries |= set(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return entries


def test_the_module_table_names_every_module():
    """Every module of kernel/ and console/ (but the packages' __init__) is in the table, and
    every entry of the table is a module or a directory of the tree."""
    modules = {f"{path.parent.name}/{path.name}"
               for package in ("kernel", "console") for path in (REPO / package).glob("*.py")
               if path.name != "__init__.py"}
    entries = module_table()
    listed = {entry for entry in entries if entry.endswith(".py")}
    assert sorted(modules - listed) == [], "modules missing from the README's table"
    assert sorted(listed - modules) == [], "the README's table names modules that do not exist"
    others = entries - listed
    assert all(entry.endswith("/") and (REPO / entry).is_dir() for entry in others), others


def test_the_package_docstrings_name_every_module():
    """`kernel/__init__.py` and `console/__init__.py` name each module of their package."""
    for package in ("kernel", "console"):
        text = (REPO / package / "__init__.py").read_text()
        for path in (REPO / package).glob("*.py"):
            if path.name != "__init__.py":
                assert f"`{path.stem}`" in text, f"{package}/__init__.py does not name {path.stem}"


def test_the_readme_opens_with_the_two_commands():
    assert readme_commands() == ["make run", "make test"]
    assert "make test" in (REPO / ".ci" / "run").read_text()


@pytest.mark.install
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
