"""kernel.cli: the `batos` command on a real home and ZEO server, and its one-line errors."""
import argparse
import io
import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import BATOS, REPO, one_line_error, run_batos, wait_until
from kernel import cli, guardian, supervise
from kernel.cli import build_parser
from kernel.demo import ProgressLines
from kernel.home import Home

AREA = "def area(self):\n    return self.width * self.height\n"

# these tests share the module's one home and server, each on a fresh lobby (tests/conftest.py)
shared = pytest.mark.shared_server


def history_length(home):
    return len(json.loads(run_batos("log", "--limit", "100000", "--json", home=home.path,
                                    check=True).stdout))


@shared
def test_new_inspect_define_send_log(home, zeo):
    made = run_batos("new", "rect", "--slots", '{"width": 3, "height": 4}', "--json",
                     home=home.path, check=True)
    assert json.loads(made.stdout)["slots"] == {"width": 3, "height": 4}
    run_batos("define", "rect", "area", "--source", AREA, home=home.path, check=True)
    sent = run_batos("send", "rect", "area", "--json", home=home.path, check=True)
    assert json.loads(sent.stdout)["result"] == 12
    run_batos("new", "rect.small", "--proto", "rect", "--slots", '{"width": 1}',
              home=home.path, check=True)
    assert run_batos("send", "rect.small", "area", home=home.path, check=True).stdout == "4\n"
    inspected = json.loads(run_batos("inspect", "rect", "--json", home=home.path,
                                     check=True).stdout)
    assert inspected["parents"] == ["traits"]
    assert inspected["methods"]["area"]["source"] == AREA
    assert inspected["methods"]["area"]["provenance"]["author"] == "batos-cli"
    human = run_batos("inspect", "personas.BRICK", home=home.path, check=True).stdout
    assert "model_id" in human and "parents: persona" in human
    notes = [row["note"] for row in json.loads(
        run_batos("log", "--json", home=home.path, check=True).stdout)]
    # a send that changes nothing leaves no transaction behind
    assert notes[:3] == ["new rect.small from rect", "define rect.area", "new rect from traits"]
    assert "genesis: the Prototypal Awakening" in notes


@shared
def test_send_with_json_arguments(home, zeo):
    run_batos("new", "calc", "--slots", '{"base": 10}', home=home.path, check=True)
    run_batos("define", "calc", "add", "--source",
              "def add(self, items, extra):\n    return self.base + sum(items) + extra\n",
              home=home.path, check=True)
    sent = run_batos("send", "calc", "add", "[1, 2]", "3", "--json", home=home.path,
                     check=True)
    assert json.loads(sent.stdout)["result"] == 16


@shared
def test_pack_and_check(home, zeo):
    run_batos("new", "a", "--slots", '{"v": 1}', home=home.path, check=True)
    assert "packed" in run_batos("pack", home=home.path, check=True).stdout
    assert run_batos("check", home=home.path, check=True).stdout.endswith(": ok\n")
    assert run_batos("send", "a", "v", home=home.path, check=True).stdout == "1\n"


@shared
def test_a_missing_path_is_one_line_and_writes_nothing(home, zeo):
    before = history_length(home)
    assert "no object at 'nowhere.thing'" in one_line_error(
        run_batos("inspect", "nowhere.thing", home=home.path))
    one_line_error(run_batos("new", "nowhere.thing", home=home.path))
    one_line_error(run_batos("send", "nowhere.thing", "fly", home=home.path))
    assert history_length(home) == before


@shared
def test_malformed_slots_json_is_one_line_and_writes_nothing(home, zeo):
    before = history_length(home)
    result = run_batos("new", "thing", "--slots", "{width: 3", home=home.path)
    assert "--slots is not valid JSON" in one_line_error(result)
    assert result.returncode == 2
    one_line_error(run_batos("new", "thing", "--slots", "[1, 2]", home=home.path))
    one_line_error(run_batos("new", "thing", "--slots", '{"_p_jar": 1}', home=home.path))
    one_line_error(run_batos("send", "personas", "slotNames", "{oops", home=home.path))
    assert history_length(home) == before


@shared
def test_a_failing_method_is_one_line_and_commits_nothing(home, zeo):
    run_batos("new", "box", "--slots", '{"n": 0}', home=home.path, check=True)
    run_batos("define", "box", "spoil", "--source",
              "def spoil(self):\n    self.n = 99\n    self._p_changed = True\n    return 1 / 0\n", home=home.path,
              check=True)
    before = history_length(home)
    line = one_line_error(run_batos("send", "box", "spoil", home=home.path))
    assert line == "batos: box.spoil raised ZeroDivisionError: division by zero"
    assert run_batos("send", "box", "n", home=home.path, check=True).stdout == "0\n"
    assert history_length(home) == before


@shared
def test_a_rejected_method_is_one_line_and_installs_nothing(home, zeo):
    before = history_length(home)
    line = one_line_error(run_batos("define", "traits", "boom", "--source",
                                    "def boom(self):\n    import os\n", home=home.path))
    assert "rejected by the guardian" in line
    assert history_length(home) == before


def test_no_server_is_one_line(home):
    line = one_line_error(run_batos("inspect", "lobby", home=home.path))
    assert "no ZEO server answers" in line and "python -m zeo_server" in line


@pytest.mark.parametrize("command", [("inspect", "lobby"), ("check",), ("log",)])
def test_foreign_and_missing_directories_are_one_line_and_untouched(tmp_path, command):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert "not a BAT OS data directory" in one_line_error(run_batos(*command, home=foreign))
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert "does not exist" in one_line_error(run_batos(*command, home=tmp_path / "none"))
    assert not (tmp_path / "none").exists()


def test_a_corrupt_configuration_is_one_line(home):
    (home.path / "batos.toml").write_text("[zeo\n")
    assert "corrupt" in one_line_error(run_batos("inspect", "lobby", home=home.path))


def test_a_corrupt_image_is_reported_by_check(home):
    home.image_path.write_bytes(b"FS21" + b"\x00garbage" * 10)
    result = run_batos("check", home=home.path)
    assert result.returncode == 1
    *findings, verdict = result.stderr.strip().splitlines()
    assert findings == ["fstest: invalid file header"]
    assert verdict.startswith("batos: ") and verdict.endswith("is damaged (1 problem(s))")


def test_init_twice_is_one_line(home):
    assert "already" in one_line_error(run_batos("init", home=home.path))


@shared
def test_home_comes_from_the_environment(home, zeo, monkeypatch):
    monkeypatch.setenv("BATOS_HOME", str(home.path))
    assert run_batos("send", "personas.ALFRED", "role", check=True).stdout == '"steward"\n'


def test_without_a_home_status_takes_make_runs_newest_and_others_name_it(tmp_path,
                                                                        monkeypatch):
    monkeypatch.delenv("BATOS_HOME", raising=False)
    for stamp in ("20261201-090000", "20261202-080000"):  # what `make run` makes
        Home.init(tmp_path / "var" / f"run-{stamp}")
    newest = "var/run-20261202-080000"
    status = run_batos("status", cwd=tmp_path)
    assert status.stderr.splitlines() == [
        f"batos: showing the newest home, {newest} (choose one with --home)",
        f"batos: the cluster of {tmp_path / newest} is not running (start it with: batos up)"]
    line = one_line_error(run_batos("log", cwd=tmp_path))
    assert line.endswith(f"; the newest home here is {newest}: pass --home {newest}")


def test_log_shows_the_ids_undo_takes_and_ends_quietly_when_its_reader_does(home, zeo, image):
    for n in range(1200):  # more than a pipe holds: the log is still being written when
        with image.transaction(note=f"step {n}") as lobby:  # `head` goes away
            lobby.step = n
    newest = image.history(1)[0]
    first = run_batos("log", "--limit", "1", home=home.path, check=True).stdout.split()
    assert first[2:] == [newest["tid"], "-", "step", "1199"]  # date, time, id, user, note
    piped = subprocess.run(f"{shlex.join(BATOS)} log --limit 2000 --home {home.path} | head -1"
                           f"; echo \"status ${{PIPESTATUS[0]}}\"", shell=True,
                           executable="/bin/bash", capture_output=True, text=True, cwd=REPO,
                           timeout=120)
    assert piped.stderr == ""
    assert piped.stdout.splitlines()[1] == "status 141"  # as if SIGPIPE ended it, quietly


def test_every_registered_command_is_listed_once_in_the_help_order():
    assert sorted(cli.COMMANDS) == sorted(cli.ORDER) and len(set(cli.ORDER)) == len(cli.ORDER)
    assert all(handler.__name__ == f"cmd_{name}" for name, (handler, _help, _arguments)
               in cli.COMMANDS.items())


def test_every_argument_and_option_has_help():
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {action.option_strings or action.dest}"
               for name, command in commands.choices.items() for action in command._actions
               if not action.help and not isinstance(action, argparse._HelpAction)]
    assert missing == []


def test_audit_prints_line_anchored_violations(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def m(self):\n    import os\n    return self._p_jar\n")
    result = run_batos("audit", str(bad))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{bad}: rejected:", "  line 2:4 [import] imports are not allowed: a method uses only "
        "its receiver and arguments", "  line 3:11 [underscore] the attribute '_p_jar' is private"]
    good = tmp_path / "good.py"
    good.write_text("def area(self):\n    return self.width * self.height\n")
    result = run_batos("audit", str(good), "--json")
    assert result.returncode == 0 and json.loads(result.stdout) == {"ok": True, "violations": []}
    assert "cannot read" in one_line_error(run_batos("audit", str(tmp_path / "none.py")))


def test_audit_rules_prints_the_catalogue():
    """`batos audit --rules`: one line per rule of the guardian's catalogue, id then reason."""
    result = run_batos("audit", "--rules")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(guardian.RULES)
    assert any(line.startswith("import ") and "no imports" in line for line in lines)
    shown = json.loads(run_batos("audit", "--rules", "--json").stdout)
    assert shown == guardian.RULES
    missing = run_batos("audit")
    assert missing.returncode == 2 and "FILE" in one_line_error(missing)


@shared
def test_a_runaway_send_is_stopped_in_one_line(home, zeo):
    config = home.path / "batos.toml"
    config.write_text(config.read_text().replace("cpu_seconds = 2.0", "cpu_seconds = 0.5"))
    run_batos("new", "box", home=home.path, check=True)
    run_batos("define", "box", "spin", "--source", "def spin(self):\n    while True:\n"
              "        pass\n", home=home.path, check=True)
    line = one_line_error(run_batos("send", "box", "spin", home=home.path))
    assert line.startswith("batos: box.spin was stopped: stopped after") and "0.5 s" in line


def read_until(process, text, timeout=180.0):
    """stdout of `process` up to the line containing `text` (failing if it ends first)."""
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout] + [
        lines.put(None)], daemon=True).start()
    seen = []
    deadline = time.monotonic() + timeout
    while not any(text in line for line in seen):
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            raise AssertionError(f"no {text!r} within {timeout} s: {''.join(seen)}") from None
        if line is None:
            raise AssertionError(f"ended before {text!r}: {''.join(seen)}")
        seen.append(line)
    return "".join(seen)


@pytest.mark.parametrize("signum, moment", [
    (signal.SIGTERM, "opening the console"),  # the cluster up, the console waiting
    (signal.SIGINT, "starting the cluster"),  # while it comes up
])
@pytest.mark.cluster
def test_awaken_interrupted_brings_its_cluster_down(tmp_path, signum, moment):
    rules = tmp_path / "rules.json"
    rules.write_text("[]")
    path = tmp_path / "home"
    with subprocess.Popen(
            [sys.executable, "-c", "import sys; from kernel.cli import main; sys.exit(main())",
             "awaken", "--home", str(path)], cwd=REPO, text=True, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=dict(os.environ, BATOS_LLM=f"scripted:{rules}", PYTHONUNBUFFERED="1")) \
            as process:
        try:
            read_until(process, moment)
            home = Home.open(path)
            pid_file = home.run_dir / "supervisord.pid"
            wait_until(pid_file.exists, timeout=60)
            supervisord = int(pid_file.read_text())
            process.send_signal(signum)
            err = process.stderr.read()  # stdout is the reading thread's
            process.wait(timeout=120)
        finally:
            process.kill()
    assert process.returncode == 130 and "batos: interrupted" in err
    assert not supervise.is_up(home)
    assert not os.path.exists(f"/proc/{supervisord}")


def test_progress_lines_show_each_stage_once_and_each_redelivery():
    out = io.StringIO()
    show = ProgressLines(out)
    for stage, delivery in [("routed", None), ("writing-method", None), ("audit", None),
                            ("trial", None), ("audit", None), ("trial", None),
                            ("redelivered", 2), ("writing-method", None), ("audit", None),
                            ("redelivered", 3), ("installed", None)]:
        show({"stage": stage, "persona": "BRICK", "delivery": delivery})
    assert out.getvalue().splitlines() == [
        "  … routed (BRICK)", "  … writing-method (BRICK)", "  … audit (BRICK)",
        "  … trial (BRICK)",
        "  … a BRICK worker died holding the request; handed out again (delivery 2)",
        "  … a BRICK worker died holding the request; handed out again (delivery 3)",
        "  … installed (BRICK)"]


# -- time travel and method history (issue 15) ---------------------------------------------

AREA_2 = "def area(self):\n    return self.height * self.width\n"


def log_ids(home):
    return json.loads(run_batos("log", "--json", home=home.path, check=True).stdout)


def test_inspect_and_send_at_a_moment_are_read_only_and_a_miss_there_learns_nothing(home, zeo):
    run_batos("new", "rect", "--slots", '{"width": 3, "height": 4}', home=home.path, check=True)
    made = log_ids(home)[0]["tid"]
    run_batos("define", "rect", "area", "--source", AREA, home=home.path, check=True)
    defined = log_ids(home)[0]["tid"]
    run_batos("new", "rect.small", "--proto", "rect", home=home.path, check=True)
    sent = run_batos("send", "rect", "area", "--at", defined, home=home.path, check=True)
    assert sent.stdout.splitlines()[0] == "12"
    assert sent.stdout.splitlines()[1].startswith("(as of transaction ")
    data = json.loads(run_batos("send", "rect", "area", "--at", defined, "--json",
                                home=home.path, check=True).stdout)
    assert data["result"] == 12 and data["at"]["label"].startswith("as of transaction")
    shown = run_batos("inspect", "rect", "--at", made, home=home.path, check=True).stdout
    assert "(read-only)" in shown.splitlines()[0] and "methods: (none)" in shown
    before = len(log_ids(home))
    miss = one_line_error(run_batos("send", "rect", "area", "--at", f"before:{defined}",
                                    home=home.path))
    assert "did not understand 'area' before transaction" in miss
    assert "a view of the past cannot learn a method" in miss
    missing = one_line_error(run_batos("inspect", "rect.small", "--at", defined,
                                       home=home.path))
    assert "no object at 'rect.small'" in missing
    assert len(log_ids(home)) == before  # no mandate, nothing committed
    bad = run_batos("send", "rect", "area", "--at", "last tuesday", home=home.path)
    assert bad.returncode == 2 and "is not a moment: use a UTC time" in one_line_error(bad)
    expect = run_batos("send", "rect", "area", "--at", defined, "--expect", "12",
                       home=home.path)
    assert expect.returncode == 2 and "with --at nothing is learned" in one_line_error(expect)
    early = one_line_error(run_batos("inspect", "rect", "--at", "2001-01-01", home=home.path))
    assert "there is no image as of 2001-01-01 00:00:00 UTC" in early


def test_history_revert_undo_and_pack_at_the_command_line(home, zeo):
    run_batos("new", "rect", "--slots", '{"width": 3, "height": 4}', home=home.path, check=True)
    run_batos("define", "rect", "area", "--source", AREA, home=home.path, check=True)
    first = log_ids(home)[0]["tid"]
    run_batos("define", "rect", "perimeter", "--source",
              "def perimeter(self):\n    return 2 * (self.width + self.height)\n",
              home=home.path, check=True)
    run_batos("define", "rect", "area", "--source", AREA_2, home=home.path, check=True)
    shown = run_batos("history", "rect", "area", "--diff", home=home.path, check=True).stdout
    assert shown.startswith("rect.area: 2 version(s)")
    assert "v2 (current)" in shown and "+    return self.height * self.width" in shown
    assert "by batos-cli, audit ok" in shown
    slots = run_batos("history", "rect", home=home.path, check=True).stdout
    assert "changed: height, width" in slots
    refused = one_line_error(run_batos("undo", first, home=home.path))
    assert "cannot undo" in refused  # a later transaction changed rect's method table
    reverted = run_batos("revert", "rect", "area", home=home.path, check=True).stdout
    assert reverted.startswith("revert rect.area to version 1 (was version 2")
    assert run_batos("send", "rect", "area", home=home.path, check=True).stdout == "12\n"
    undone = run_batos("undo", log_ids(home)[0]["tid"], home=home.path, check=True).stdout
    assert undone == "undone: revert rect.area to version 1\n"
    area = json.loads(run_batos("inspect", "rect", "--json", home=home.path,
                                check=True).stdout)["methods"]["area"]
    assert area["source"] == AREA_2
    bad = one_line_error(run_batos("revert", "rect", "area", "--to", "9", home=home.path))
    assert "there is no version 9" in bad
    packed = run_batos("pack", home=home.path, check=True).stdout
    assert "is gone" in packed
    gone = one_line_error(run_batos("inspect", "rect", "--at", first, home=home.path))
    assert "was removed by batos pack --days 0" in gone
    assert "the oldest moment you can ask for is" in gone
