"""Install llama-cpp-python into the project's venv with a CPU build that runs on any x86-64
machine with AVX2 — the runtime under every persona's mind.

llama-cpp-python builds llama.cpp from source. Its default (`GGML_NATIVE=ON`) compiles for the
building CPU: on a VM whose CPU advertises AVX-512 and AMX that build segfaults in `decode`, and
a wheel built on one machine may not run on another. The Makefile passes the portable flags
(`LLAMA_CMAKE_ARGS`); this script builds the wheel once per (version, flags) into a cache of its
own — never pip's, which keys wheels by source alone and would hand back a build made with other
flags — installs it, and writes a stamp named after the flags, so that a venv holding another
build is rebuilt once, not silently kept.

    python scripts/install_llama.py --version 0.3.36 --cmake-args "..." \
        --wheels ~/.cache/batos/wheels --stamp .venv/.batos-llama-KEY
"""
import argparse
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import time

PACKAGE = "llama-cpp-python"


def build_key(version, cmake_args):
    """The cache and stamp key of one build: the version and the exact flags."""
    return hashlib.sha256(f"{version} {' '.join(cmake_args.split())}".encode()).hexdigest()[:16]


def pip(*args, env=None):
    """Run this interpreter's pip; stop the install with its exit code if it fails."""
    done = subprocess.run([sys.executable, "-m", "pip", *args], env=env)
    if done.returncode != 0:
        sys.exit(f"install_llama: pip {' '.join(args[:2])} failed (exit {done.returncode})")


def cached_wheel(folder, version):
    """The wheel built earlier for these flags, if any."""
    wheels = sorted(folder.glob(f"llama_cpp_python-{version}-*.whl"))
    return wheels[-1] if wheels else None


def build_wheel(folder, version, cmake_args):
    """Build the wheel from source with `cmake_args`, showing progress; return its path."""
    print(f"building {PACKAGE} {version} from source for any x86-64 CPU with AVX2 "
          f"(about 5 minutes on 2 cores, once per set of flags)\n  CMAKE_ARGS={cmake_args}",
          flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CMAKE_ARGS=cmake_args, FORCE_CMAKE="1")
    started = time.monotonic()
    pip("wheel", "--quiet", "--no-deps", "--no-cache-dir", "--no-binary", PACKAGE,
        f"{PACKAGE}=={version}", "--wheel-dir", str(folder), env=env)
    print(f"built {PACKAGE} in {time.monotonic() - started:.0f} s", flush=True)
    return cached_wheel(folder, version)


def system_info():
    """What the installed build says it uses (`llama_print_system_info`), in a subprocess."""
    done = subprocess.run([sys.executable, "-c", "import llama_cpp; print(llama_cpp."
                           "llama_print_system_info().decode().strip())"],
                          capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else f"(unavailable: {done.stderr})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--version", required=True)
    parser.add_argument("--cmake-args", required=True)
    parser.add_argument("--wheels", required=True, help="cache folder of built wheels")
    parser.add_argument("--stamp", required=True, help="file written when installed")
    args = parser.parse_args(argv)
    key = build_key(args.version, args.cmake_args)
    folder = pathlib.Path(os.path.expanduser(args.wheels)) / f"{PACKAGE}-{args.version}-{key}"
    wheel = cached_wheel(folder, args.version) or build_wheel(folder, args.version,
                                                              args.cmake_args)
    if wheel is None:
        sys.exit(f"install_llama: the build left no wheel in {folder}")
    pip("install", "--quiet", "--no-deps", "--force-reinstall", str(wheel))
    pip("install", "--quiet", str(wheel))  # its dependencies (numpy, jinja2, …)
    stamp = pathlib.Path(args.stamp)
    for old in stamp.parent.glob(".batos-llama-*"):
        old.unlink()
    info = system_info()
    stamp.write_text(json.dumps({"version": args.version, "cmake_args": args.cmake_args,
                                 "wheel": str(wheel), "system_info": info}, indent=1) + "\n")
    print(f"{PACKAGE} {args.version} installed from {wheel.name}\n  {info}", flush=True)


if __name__ == "__main__":
    main()
