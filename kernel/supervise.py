"""Running a home's cluster under supervisord: up, down, status, restart.

`render` writes `HOME/supervisord.conf` from `conf/supervisord.conf` plus one worker program
per persona (`[workers]` in the home's batos.toml); everything the instance needs — sockets,
pid file, logs — lives under the home, so instances with different homes run side by side.
Control goes through supervisord's own XML-RPC interface on the home's unix socket.

A cluster brought up is brought down again by whoever brought it up when that command fails or
is interrupted (`up` itself, and `running` for commands that need a cluster for their own use).
A worker that keeps crashing is visible: `crash_report` counts its restarts from supervisord's
log, and `last_words` reads the line of a worker's log that says why it ended — what the
orchestrator tells the client whose request died with it.
"""
import contextlib
import hashlib
import os
import pathlib
import re
import signal
import string
import subprocess
import sys
import tempfile
import time
import xmlrpc.client

from supervisor.xmlrpc import SupervisorTransport

from kernel import keys
from kernel.client import NoAnswer, RequestFailed
from kernel.errors import BatosError, Terminated
from kernel.home import CONF_DIR

CONF_NAME = "supervisord.conf"
WORKER_PROGRAM = """
[program:worker-{persona}]
command=${{python}} -m kernel.worker --home %(here)s --persona {persona}
process_name=%(program_name)s-%(process_num)d
numprocs={count}
priority=30
startsecs=1
stopsignal=TERM
stopwaitsecs=30
redirect_stderr=true
stdout_logfile=%(here)s/log/%(program_name)s-%(process_num)d.log
"""
RUNNING, FATAL_STATES = "RUNNING", {"FATAL", "EXITED", "STOPPED", "UNKNOWN"}


class ClusterError(BatosError):
    """The cluster could not be started, reached or stopped; the message says what to look at."""


def render(home):
    """Write the home's supervisord.conf; return its path."""
    text = (CONF_DIR / CONF_NAME).read_text(encoding="utf-8")
    for persona, count in sorted(home.worker_counts.items()):
        text += WORKER_PROGRAM.format(persona=persona, count=count)
    text = string.Template(text).substitute(python=sys.executable, socket=socket_path(home))
    path = home.path / CONF_NAME
    path.write_text(text, encoding="utf-8")
    return path


def socket_path(home):
    """supervisord's control socket: in the home, unless that path is too long for AF_UNIX
    (about 100 bytes), then a name derived from the home in the system's temporary folder."""
    path = home.run_dir / "supervisor.sock"
    if len(str(path).encode()) <= 100:
        return path
    digest = hashlib.sha256(str(home.path).encode()).hexdigest()[:16]
    return pathlib.Path(tempfile.gettempdir()) / f"batos-{digest}.sock"


@contextlib.contextmanager
def supervisor(home):
    """supervisord's XML-RPC `supervisor` namespace for this home, closed afterwards."""
    socket = socket_path(home)
    transport = SupervisorTransport(None, None, f"unix://{socket}")
    try:
        yield xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor
    finally:
        transport.close()


def is_up(home):
    """True when this home's supervisord answers."""
    try:
        with supervisor(home) as server:
            return server.getState()["statename"] == "RUNNING"
    except (OSError, xmlrpc.client.Error):
        return False


def programs(home):
    """Each program's name, state, pid, restarts and last unexpected exit (a crash loop shows
    as BACKOFF or FATAL, or as restarts that keep growing)."""
    with supervisor(home) as server:
        infos = server.getAllProcessInfo()
    crashes = crash_report(home)
    return [{"name": f"{p['group']}:{p['name']}" if p["group"] != p["name"] else p["name"],
             "state": p["statename"], "pid": p["pid"],
             **crashes.get(p["name"], {"restarts": 0, "last_exit": None})} for p in infos]


SPAWNED = re.compile(r"spawned: '(?P<name>[^']+)'")
EXITED = re.compile(r"exited: (?P<name>\S+) \((?P<why>.*); not expected\)")


def crash_report(home, tail_bytes=4 << 20):
    """Program name → restarts since supervisord started and its last unexpected exit, from
    the end of supervisord's own log (its XML-RPC interface keeps no count)."""
    text = _log_tail(home.log_dir / "supervisord.log", tail_bytes)
    if text is None:
        return {}
    lines = text.splitlines()
    starts = [n for n, line in enumerate(lines) if "supervisord started with pid" in line]
    report = {}
    for line in lines[starts[-1] if starts else 0:]:
        if found := SPAWNED.search(line):
            entry = report.setdefault(found["name"], {"restarts": -1, "last_exit": None})
            entry["restarts"] += 1
        elif found := EXITED.search(line):
            report.setdefault(found["name"], {"restarts": 0, "last_exit": None})[
                "last_exit"] = found["why"]
    return report


def last_words(log_file, tail_bytes=16384):
    """The line of a program's log that says best why it ended: the latest fatal error (a
    segfault's "Fatal Python error", from faulthandler, with its innermost frame) or uncaught
    exception, even if the restarted program logged more since; else the last line."""
    text = _log_tail(log_file, tail_bytes)
    if text is None:
        return None
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    for n in range(len(lines) - 1, -1, -1):
        if lines[n].startswith("Fatal Python error"):
            frame = next((line.strip() for line in lines[n + 1:]
                          if line.strip().startswith("File ")), None)
            return lines[n] + (f" ({frame})" if frame else "")
        if lines[n].startswith("Traceback (most recent call last)"):
            ending = next((line for line in lines[n + 1:] if not line[0].isspace()), None)
            if ending:
                return ending[:300]
    return lines[-1].strip()[:300] if lines else None


def _log_tail(log_file, tail_bytes):
    """The last `tail_bytes` of a log as text (None if it cannot be read)."""
    try:
        with open(log_file, "rb") as stream:
            stream.seek(max(0, os.path.getsize(log_file) - tail_bytes))
            return stream.read().decode("utf-8", "replace")
    except OSError:
        return None


def worker_last_words(home, persona):
    """The last words of `persona`'s most recently written worker log, naming the worker."""
    logs = sorted(home.log_dir.glob(f"worker-{persona}-*.log"),
                  key=lambda path: path.stat().st_mtime)
    words = last_words(logs[-1]) if logs else None
    return f"{logs[-1].stem}: {words}" if words else None


def up(home, timeout=180.0, progress=print):
    """Start supervisord for `home`; return when every program runs and the orchestrator
    answers with a live worker for every persona. If it fails or is interrupted (SIGINT, or
    SIGTERM under `terminate_as_interrupt`) on the way, what it started is stopped again."""
    if is_up(home):
        raise ClusterError(f"the cluster of {home.path} is already up (batos status)")
    keys.ensure_home_keys(home)  # remote mode: the orchestrator's and the home's own keys
    conf = render(home)
    started = subprocess.run([sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)],
                             capture_output=True, text=True)
    if started.returncode != 0:
        raise ClusterError(f"supervisord did not start: {started.stderr.strip() or started.stdout}")
    try:
        _wait_ready(home, timeout)
    except BaseException:
        stop(home)
        raise


def _wait_ready(home, timeout):
    deadline = time.monotonic() + timeout
    expected = set(home.worker_counts)
    while True:
        problem = _not_ready(home, expected)
        if problem is None:
            return
        if time.monotonic() > deadline:
            raise ClusterError(f"the cluster did not come up within {timeout:g} s: {problem} "
                               f"(logs in {home.log_dir})")
        time.sleep(0.2)  # polling supervisord and the orchestrator until ready


@contextlib.contextmanager
def running(home, timeout=180.0, progress=print):
    """The home's cluster, up for the caller's own use and down again when the block ends —
    also when it ends by an error or an interruption."""
    up(home, timeout, progress)
    try:
        yield home
    finally:
        stop(home)


def terminate_as_interrupt():
    """Make SIGTERM raise `Terminated` (a `KeyboardInterrupt`) in the main thread, as SIGINT
    raises `KeyboardInterrupt`, so that a command's clean-up (a cluster it brought up) runs
    whichever signal ends it."""
    def interrupt(signum, _frame):
        raise Terminated(signal.Signals(signum).name)
    signal.signal(signal.SIGTERM, interrupt)


def _not_ready(home, expected):
    """None when everything is up; else what is still missing."""
    try:
        states = programs(home)
    except (OSError, xmlrpc.client.Error) as exc:
        return f"supervisord does not answer ({exc})"
    failed = [p["name"] for p in states if p["state"] in FATAL_STATES]
    if failed:
        why = "; ".join(f"{name}: {last_words(home.log_dir / (name.split(':')[-1] + '.log'))}"
                        for name in failed)
        raise ClusterError(f"programs failed to start: {why} (logs in {home.log_dir})")
    waiting = [p["name"] for p in states if p["state"] != RUNNING]
    if waiting:
        return f"waiting for {', '.join(waiting)}"
    services = live_services(home, timeout=2.0)
    if services is None:
        return "the orchestrator does not answer"
    missing = sorted(name for name in expected if not services.get(name))
    return f"no live worker yet for {', '.join(missing)}" if missing else None


def live_services(home, timeout=5.0):
    """Persona → live workers, from the orchestrator (None if it does not answer)."""
    answer = ping(home, timeout)
    return answer["services"] if answer else None


def ping(home, timeout=5.0):
    """The orchestrator's `ping` answer — live and busy workers per persona — or None if it
    does not answer within `timeout` seconds."""
    client = keys.frontend_client(home, timeout=timeout)
    try:
        return client.request({"intent": "ping"})
    except (NoAnswer, RequestFailed):
        return None
    finally:
        client.close()


def down(home, timeout=60.0):
    """Stop every program and supervisord itself."""
    if not is_up(home):
        raise ClusterError(f"the cluster of {home.path} is not running")
    stop(home, timeout)


def stop(home, timeout=60.0):
    """Stop this home's supervisord and its programs, whatever state it is in: through its
    control socket, else by SIGTERM to the pid in its pid file (supervisord then stops its
    programs). Nothing to stop is not an error."""
    pid = _supervisord_pid(home)
    try:
        with supervisor(home) as server:
            server.shutdown()
    except (OSError, xmlrpc.client.Error):
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid is not None and pathlib.Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            raise ClusterError(f"supervisord (pid {pid}) is still running after {timeout:g} s")
        time.sleep(0.1)  # waiting for supervisord to exit


def _supervisord_pid(home):
    try:
        return int((home.run_dir / "supervisord.pid").read_text())
    except (OSError, ValueError):
        return None


def restart(home, persona):
    """Restart every worker of `persona`."""
    group = f"worker-{persona}"
    if persona not in home.worker_counts:
        raise ClusterError(f"no workers are configured for {persona!r} "
                           f"(known: {', '.join(sorted(home.worker_counts))})")
    with supervisor(home) as server:
        server.stopProcessGroup(group)
        server.startProcessGroup(group)
