"""Offline consistency checks of a home's FileStorage, the way ZODB's own tools do them.

`check(path)` runs fstest in-process (the file's transaction and data records are well
formed) and ZODB's fsrefs in a child process (every reference from a current object leads to
an object that exists and loads). It opens the file read-only, so it is safe beside a running server; a transaction being
committed at that very moment can show as a false alarm, so rerun before acting on one.
"""
import dataclasses
import logging
import subprocess
import sys

from ZODB.scripts import fstest

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CheckReport:
    """The findings of one check; `ok` when there are none."""

    path: str
    problems: tuple = ()

    @property
    def ok(self):
        """True when both fstest and fsrefs found nothing wrong."""
        return not self.problems


def check(path):
    """Check the FileStorage at `path`; never raises for a damaged file, reports it."""
    problems = []
    try:
        fstest.check(str(path))
    except fstest.FormatError as exc:
        problems.append(f"fstest: {exc}")
    except OSError as exc:
        problems.append(f"fstest: cannot read {path}: {exc.strerror or exc}")
    if not problems:
        problems.extend(_fsrefs(path))
    return CheckReport(str(path), tuple(problems))


def _fsrefs(path):
    """Run ZODB's fsrefs in a child process (it leaves its storage open) and collect its report."""
    result = subprocess.run([sys.executable, "-m", "ZODB.scripts.fsrefs", str(path)],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    found = result.stdout.strip()
    if result.returncode != 0:
        return [f"fsrefs failed with code {result.returncode}: "
                f"{(result.stderr.strip().splitlines() or ['?'])[-1]}"]
    return ["fsrefs: " + found] if found else []
