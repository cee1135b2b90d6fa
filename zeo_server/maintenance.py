"""Offline consistency checks of a home's FileStorage, the way ZODB's own tools do them.

`check(path)` runs fstest (the file's transaction and data records are well formed) and
fsrefs (every reference from a current object leads to an object that exists and loads).
It opens the file read-only, so it is safe beside a running server; a transaction being
committed at that very moment can show as a false alarm, so rerun before acting on one.
"""
import contextlib
import dataclasses
import io
import logging

from ZODB.scripts import fsrefs, fstest

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
        output = io.StringIO()
        try:
            with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
                fsrefs.main(str(path))
        except Exception as exc:
            problems.append(f"fsrefs: {type(exc).__name__}: {exc}")
        found = output.getvalue().strip()
        if found:
            problems.append("fsrefs: " + found)
    return CheckReport(str(path), tuple(problems))
