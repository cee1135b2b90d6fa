"""The runtime probe: does llama.cpp run on this CPU? Asked before anything depends on the answer.

A persona's mind is a llama.cpp model loaded into its worker. A llama.cpp build made for
another CPU (or for a CPU feature a VM advertises but does not deliver, such as AMX) does not
fail politely: the first real prompt segfaults the process that runs it. So the probe runs one
real completion — a multi-token prompt, several tokens generated under a GBNF grammar — in a
child process, where a crash is a finding instead of a death. `batos awaken`, `batos up` and
the test suite ask it first; a broken runtime is then one line that names the features the
build uses (`llama_print_system_info`), those the CPU advertises, and how to rebuild.

`python -m kernel.runtime_probe [GGUF]` runs the probe and prints that line (exit 0 or 1).
"""
import dataclasses
import json
import logging
import pathlib
import signal
import subprocess
import sys

from kernel.llm import LLMError

log = logging.getLogger(__name__)

GRAMMAR = r'root ::= "The sky is " [a-z]{2,10} " today."'
PROMPT = ("<|im_start|>user\nDescribe the colour of the sky on a clear summer day, in one "
          "short sentence.<|im_end|>\n<|im_start|>assistant\n")
MAX_TOKENS = 12
REBUILD = "make rebuild-llama"
CPU_FEATURES = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16",
                "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16")


class RuntimeBroken(LLMError):
    """llama.cpp cannot complete a prompt on this machine (it crashed, hung or failed).
    Final: retrying cannot help; the message says how to rebuild."""


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """What the probe saw: the build's features, and the completion or why it failed."""

    ok: bool
    system_info: str
    detail: str
    tokens: int = 0

    def line(self):
        """One line for a person."""
        if self.ok:
            return f"llama.cpp runtime ok ({self.tokens} tokens under a grammar); " \
                   f"build: {self.system_info}"
        return (f"the llama.cpp runtime fails on this machine: {self.detail}. Build features: "
                f"{self.system_info or 'unknown'}; CPU advertises: {cpu_features()}. Rebuild "
                f"llama-cpp-python portably with `{REBUILD}` (LLAMA_CMAKE_ARGS=... for other "
                "flags; see the Makefile)")


def cpu_features(cpuinfo="/proc/cpuinfo"):
    """The CPU features that decide which llama.cpp build runs, as the kernel reports them."""
    try:
        text = pathlib.Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "unknown"
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    return " ".join(f for f in CPU_FEATURES if f in flags) or "no AVX"


def probe(gguf, timeout=180.0, threads=2):
    """Run one grammar-constrained completion of `gguf` in a child process; a `ProbeResult`."""
    command = [sys.executable, "-m", "kernel.runtime_probe", "--child", str(gguf),
               "--threads", str(threads)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              cwd=pathlib.Path(__file__).resolve().parent.parent)
    except subprocess.TimeoutExpired as exc:
        return ProbeResult(False, _system_info(exc.stdout or ""),
                           f"one completion did not finish within {timeout:g} s")
    info = _system_info(done.stdout)
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        return ProbeResult(False, info, f"the completion crashed the process ({name})")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return ProbeResult(False, info, f"the completion failed (exit {done.returncode}): "
                                        f"{last}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return ProbeResult(True, info, answer["text"], answer["tokens"])


def check(gguf, timeout=180.0):
    """`probe`, raising `RuntimeBroken` with the one line when the runtime fails."""
    result = probe(gguf, timeout)
    if not result.ok:
        raise RuntimeBroken(result.line())
    log.info("%s", result.line())
    return result


def check_home(home):
    """Probe every GGUF file the home's personas load, once each, unless `BATOS_LLM` puts the
    scripted double in their place; raise `RuntimeBroken` for the first that fails, else
    return the results."""
    import os

    from kernel.llm import ENV_BACKEND, ModelSpec
    if os.environ.get(ENV_BACKEND):
        return []
    models = home.config.get("models", {})
    specs = [ModelSpec.from_config(persona["model_id"], models)
             for persona in home.personas.values()]
    paths = {spec.path() for spec in specs if not spec.served}  # a server runs its own
    return [check(path) for path in sorted(paths)]


def _system_info(stdout):
    for line in (stdout or "").splitlines():
        if line.startswith("system_info: "):
            return line.split(": ", 1)[1].strip()
    return ""


def _child(gguf, threads):
    """In the child: say what the build uses, then complete once under the grammar."""
    import llama_cpp
    print("system_info: " + llama_cpp.llama_print_system_info().decode().strip(), flush=True)
    model = llama_cpp.Llama(model_path=gguf, n_ctx=512, n_threads=threads, verbose=False)
    grammar = llama_cpp.LlamaGrammar.from_string(GRAMMAR, verbose=False)
    answer = model.create_completion(PROMPT, max_tokens=MAX_TOKENS, grammar=grammar,
                                     temperature=0.0)
    tokens = answer["usage"]["completion_tokens"]
    if tokens < 2:
        raise SystemExit(f"the model produced {tokens} token(s), expected several")
    print(json.dumps({"text": answer["choices"][0]["text"], "tokens": tokens}), flush=True)


def default_gguf():
    """The GGUF file of the project's default model (what the console and personas load)."""
    from kernel.home import CONF_DIR, read_toml
    from kernel.llm import ModelSpec
    config = read_toml(CONF_DIR / "batos.toml", "configuration")
    return ModelSpec.from_config(config["console"]["model_id"], config["models"]).path()


def main(argv=None):
    """`python -m kernel.runtime_probe [GGUF]`: probe, print one line, exit 0 when it runs."""
    import argparse
    parser = argparse.ArgumentParser(prog="python -m kernel.runtime_probe",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("gguf", nargs="?", help="a GGUF file (default: the project's model)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.gguf, args.threads)
        return 0
    try:
        result = probe(args.gguf or default_gguf(), threads=args.threads)
    except LLMError as exc:
        print(f"runtime probe: {exc}", file=sys.stderr)
        return 1
    print(result.line(), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
