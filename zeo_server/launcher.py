"""Start a home's ZEO server as a child process and wait until it serves.

Used by `batos awaken` and by the tests (which, like ZEO's own, get `(address, stop)` back).
Readiness is the `run/zeo.address` file the server writes once it listens — a condition
waited on with a deadline, never a fixed sleep.
"""
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

from kernel.errors import BatosError
from kernel.home import parse_address
from zeo_server.server import ADDRESS_FILE

log = logging.getLogger(__name__)


class ServerStartError(BatosError):
    """The ZEO server exited or stayed silent instead of serving. Final until the cause is fixed."""


def start(home, address=None, timeout=60.0, log_path=None):
    """Start `python -m zeo_server` for `home`; return `(address, stop, process)` once it serves.

    `address` overrides the home's (e.g. `127.0.0.1:0`); `stop()` terminates it and waits.
    """
    announced = home.run_dir / ADDRESS_FILE
    announced.unlink(missing_ok=True)
    log_path = log_path or home.log_dir / "zeo.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "zeo_server", "--home", str(home.path)]
    if address:
        command += ["--address", address]
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while not announced.exists():
        if process.poll() is not None:
            raise ServerStartError(f"the ZEO server for {home.path} exited with code "
                                   f"{process.returncode}: {_last_line(log_path)}"
                                   f"{_full_disk_note(home.path)}")
        if time.monotonic() > deadline:
            _terminate(process)
            raise ServerStartError(f"the ZEO server for {home.path} did not start serving "
                                   f"within {timeout:g} s; see {log_path}")
        time.sleep(0.02)
    served = parse_address(announced.read_text().strip())

    def stop(timeout=30.0):
        """Terminate the server (SIGTERM, then SIGKILL after `timeout`) and wait for it."""
        _terminate(process, timeout)

    return served, stop, process


def _terminate(process, timeout=30.0):
    """SIGTERM the process and wait; SIGKILL it if it does not go in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _full_disk_note(path):
    """A note naming a full disk under `path` (then the server's own last words may not have
    reached its log, which lives on the same disk), else nothing."""
    try:
        full = shutil.disk_usage(path).free == 0
    except OSError:
        return ""
    return f" (the disk holding {path} is full; free space, then start it again)" if full else ""


def _last_line(path):
    """The last non-empty line of a log, for a one-line error."""
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(empty log)"
