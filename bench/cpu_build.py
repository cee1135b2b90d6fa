"""Benchmark: the portable llama.cpp build against a native one, same model, same machine.

The install builds llama-cpp-python with `GGML_NATIVE=OFF` and AVX2/FMA/F16C only (Makefile),
so that it runs on every x86-64 CPU with AVX2, including VMs that advertise AVX-512/AMX they do
not deliver. This measures what that choice costs: prompt evaluation and generation tokens/s
(free and under a GBNF grammar) of the default model with raw llama-cpp-python, in this venv
and — with `--against PYTHON`, an interpreter whose llama-cpp-python was built natively, e.g.
`CMAKE_ARGS=-DGGML_NATIVE=ON pip install --no-binary llama-cpp-python llama-cpp-python` in a
scratch venv — in that one, each in a child process of its own. Ends with one JSON line.

    python bench/cpu_build.py [--against /tmp/native/bin/python] [--repeat 5]
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import time

PROMPT = ("<|im_start|>system\nYou are a careful assistant of a living object system. You "
          "answer in plain sentences and keep to the facts you are given.<|im_end|>\n"
          "<|im_start|>user\nDescribe, in a few sentences, what an object database keeps for "
          "each object, how a transaction makes changes durable, and why a method might be "
          "stored as data rather than as code.<|im_end|>\n<|im_start|>assistant\n")
GRAMMAR = r'root ::= "def area(self):\n    return " [a-z.* ()+0-9]{4,40}'


def measure(gguf, repeat, threads=2):
    """In this process: system info and median tokens/s of prompt, generation, grammar."""
    import llama_cpp
    model = llama_cpp.Llama(model_path=gguf, n_ctx=1024, n_threads=threads, verbose=False)
    grammar = llama_cpp.LlamaGrammar.from_string(GRAMMAR, verbose=False)
    prompt_tokens = model.tokenize(PROMPT.encode(), special=True)
    prompt, free, bound = [], [], []
    for _ in range(repeat):
        model.reset()
        started = time.perf_counter()
        model.eval(prompt_tokens)
        prompt.append(len(prompt_tokens) / (time.perf_counter() - started))
        free.append(_rate(model, PROMPT))  # the prompt is in the KV cache: generation only
        bound.append(_rate(model, PROMPT + "Write area.", grammar))
    return {"system_info": llama_cpp.llama_print_system_info().decode().strip(),
            "prompt_tok_s": statistics.median(prompt), "gen_tok_s": statistics.median(free),
            "grammar_tok_s": statistics.median(bound)}


def _rate(model, prompt, grammar=None):
    """Tokens/s of one greedy completion of `prompt`."""
    started = time.perf_counter()
    answer = model.create_completion(prompt, max_tokens=64, grammar=grammar, temperature=0.0)
    return answer["usage"]["completion_tokens"] / (time.perf_counter() - started)


def in_child(python, gguf, repeat):
    """`measure` in a child process of `python`."""
    done = subprocess.run([python, __file__, "--child", "--gguf", str(gguf), "--repeat",
                           str(repeat)], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{python}: the measurement failed (exit {done.returncode}): "
                         f"{done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", help="an interpreter with a natively built llama-cpp")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--gguf")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.gguf, args.repeat)))
        return
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
    from kernel.runtime_probe import default_gguf
    gguf = args.gguf or default_gguf()
    runs = {"portable": in_child(sys.executable, gguf, args.repeat)}
    if args.against:
        runs["native"] = in_child(args.against, gguf, args.repeat)
    for name, run in runs.items():
        print(f"{name:<9} prompt {run['prompt_tok_s']:7.0f} tok/s   generation "
              f"{run['gen_tok_s']:5.0f} tok/s   under a grammar {run['grammar_tok_s']:5.0f} "
              f"tok/s\n          {run['system_info']}")
    figures = {name: {k: round(v, 1) for k, v in run.items() if k != "system_info"}
               for name, run in runs.items()}
    if "native" in runs:
        figures["portable/native"] = {k: round(runs["portable"][k] / runs["native"][k], 2)
                                      for k in ("prompt_tok_s", "gen_tok_s", "grammar_tok_s")}
        print("portable / native: " + ", ".join(f"{k} {v}" for k, v in
                                                 figures["portable/native"].items()))
    print(json.dumps({"bench": "cpu_build", **figures}))


if __name__ == "__main__":
    main()
