"""Running a home's cluster under supervisord: up, down, status, restart.

`render` writes `HOME/supervisord.conf` from `conf/supervisord.conf` plus one worker program
per persona (`[workers]` in the home's batos.toml); everything the instance needs — sockets,
pid file, logs — lives under the home, so instances with different homes run side by side.
Control goes through supervisord's own XML-RPC interface on the home's unix socket.
"""
import contextlib
import hashlib
import pathlib
import string
import subprocess
import sys
import tempfile
import time
import xmlrpc.client

from supervisor.xmlrpc import SupervisorTransport

from kernel import keys
from kernel.client import NoAnswer, RequestFailed
from kernel.errors import BatosError
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
    """Each program's name, state and pid."""
    with supervisor(home) as server:
        infos = server.getAllProcessInfo()
    return [{"name": f"{p['group']}:{p['name']}" if p["group"] != p["name"] else p["name"],
             "state": p["statename"], "pid": p["pid"]} for p in infos]


def up(home, timeout=180.0, progress=print):
    """Start supervisord for `home`; return when every program runs and the orchestrator
    answers with a live worker for every persona."""
    if is_up(home):
        raise ClusterError(f"the cluster of {home.path} is already up (batos status)")
    keys.ensure_home_keys(home)  # remote mode: the orchestrator's and the home's own keys
    conf = render(home)
    started = subprocess.run([sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)],
                             capture_output=True, text=True)
    if started.returncode != 0:
        raise ClusterError(f"supervisord did not start: {started.stderr.strip() or started.stdout}")
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


def _not_ready(home, expected):
    """None when everything is up; else what is still missing."""
    try:
        states = programs(home)
    except (OSError, xmlrpc.client.Error) as exc:
        return f"supervisord does not answer ({exc})"
    failed = [p["name"] for p in states if p["state"] in FATAL_STATES]
    if failed:
        raise ClusterError(f"programs failed to start: {', '.join(failed)} (logs in "
                           f"{home.log_dir})")
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
    client = keys.frontend_client(home, timeout=timeout)
    try:
        return client.request({"intent": "ping"})["services"]
    except (NoAnswer, RequestFailed):
        return None
    finally:
        client.close()


def down(home, timeout=60.0):
    """Stop every program and supervisord itself."""
    if not is_up(home):
        raise ClusterError(f"the cluster of {home.path} is not running")
    pid_file = home.run_dir / "supervisord.pid"
    pid = int(pid_file.read_text()) if pid_file.exists() else None
    with supervisor(home) as server:
        server.shutdown()
    deadline = time.monotonic() + timeout
    while pid is not None and pathlib.Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            raise ClusterError(f"supervisord (pid {pid}) is still running after {timeout:g} s")
        time.sleep(0.1)  # waiting for supervisord to exit


def restart(home, persona):
    """Restart every worker of `persona`."""
    group = f"worker-{persona}"
    if persona not in home.worker_counts:
        raise ClusterError(f"no workers are configured for {persona!r} "
                           f"(known: {', '.join(sorted(home.worker_counts))})")
    with supervisor(home) as server:
        server.stopProcessGroup(group)
        server.startProcessGroup(group)
