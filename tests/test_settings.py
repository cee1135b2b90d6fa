"""kernel.settings: one settings object per process, built from the home by the one start-up
that the `batos` command, the worker and the orchestrator all run."""
import json
import re
import selectors
import subprocess
import sys

from kernel import limits, sandbox, settings
from kernel.home import Home
from tests.conftest import REPO, run_batos

# (shipped line of conf/batos.toml, the line this test's home has instead)
CHANGES = [("max_request_bytes = 262144", "max_request_bytes = 200000"),
           ("max_turns = 200", "max_turns = 77"),
           ("keep = 10000", "keep = 321"),
           ("cpu_seconds = 2.0", "cpu_seconds = 1.5"),
           ("memory_mib = 256", "memory_mib = 96"),
           ('isolation = "process"', 'isolation = "thread"')]
IN_FORCE = re.compile(r"settings in force: (\{.*\})$")


def unusual_home(home):
    """`home` with every size bound and budget of `CHANGES` away from its default."""
    config = home.path / "batos.toml"
    text = config.read_text()
    for shipped, changed in CHANGES:
        assert shipped in text, shipped
        text = text.replace(shipped, changed)
    config.write_text(text)
    return Home.open(home.path)


def reported(process, timeout=60.0):
    """The settings a starting process logs (`settings.start`), read from its stderr."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        while selector.select(timeout):
            line = process.stderr.readline()
            if not line:
                break
            found = IN_FORCE.search(line.rstrip())
            if found:
                return json.loads(found.group(1))
    raise AssertionError(f"{process.args} reported no settings")


def started(*module_args):
    """The settings an entry point (`python -m MODULE ARGS`) starts with; it is stopped then."""
    process = subprocess.Popen([sys.executable, "-m", *module_args], cwd=REPO, text=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        return reported(process)
    finally:
        process.kill()
        process.wait()
        process.stderr.close()


def test_start_installs_the_homes_settings_over_the_defaults(home, monkeypatch):
    for module in (limits, sandbox):
        for name, value in vars(module.Limits()).items():
            monkeypatch.setattr(module.LIMITS, name, value)
    monkeypatch.setattr(sandbox.LIMITS, "max_call_depth", 5)  # set before: start resets it
    home = unusual_home(home)
    in_force = settings.start(home)
    assert in_force == settings.Settings.in_force() == settings.Settings.from_home(home)
    assert limits.LIMITS.max_turns == 77 and limits.LIMITS.ledger_keep == 321
    assert limits.LIMITS.max_request_bytes == 200000
    assert sandbox.LIMITS.cpu_seconds == 1.5 and sandbox.LIMITS.isolation == "thread"
    assert sandbox.LIMITS.memory_bytes == 96 * 1024 * 1024
    assert sandbox.LIMITS.max_call_depth == sandbox.Limits().max_call_depth
    assert limits.LIMITS.window_turns == limits.Limits().window_turns


def test_the_cli_the_worker_and_the_orchestrator_start_with_the_same_settings(home, zeo):
    home = unusual_home(home)
    expected = settings.Settings.from_home(home).as_json()
    assert expected != settings.Settings(limits.Limits(), sandbox.Limits()).as_json()
    cli = run_batos("-v", "inspect", "lobby", home=home.path)
    assert cli.returncode == 0, cli.stderr
    cli_settings = [json.loads(found.group(1)) for found in map(
        IN_FORCE.search, cli.stderr.splitlines()) if found]
    assert cli_settings and all(each == expected for each in cli_settings)
    assert started("kernel.worker", "--home", str(home.path), "--persona", "ALFRED") == expected
    assert started("kernel.orchestrator", "--home", str(home.path)) == expected
