"""Grammar-constrained sampling at about the cost of free sampling, for every persona's model.

Only the possible is grammatical (design §8): BRICK's methods, the plans and the JSON answers
are sampled under a grammar. llama-cpp-python puts the grammar in the sampler chain, where it
tests every token of the vocabulary at every step: on two cores a method sample's token took
1.7 times a free one (SmolLM2-135M, 49k tokens: 40 against 24 ms, `bench/llm.py`), which
cut the samples `_doesNotUnderstand` can weigh within its time bound.

`Llama` samples freely first and asks the grammar about that one token; only when it is not
allowed is the grammar applied to the whole vocabulary and the token sampled again — what
llama.cpp's own `common_sampler` does. A token is then drawn with its free probability plus
the refused share times its constrained probability, which is its constrained probability
(save where top-k, top-p or min-p truncate the two distributions differently); at
temperature 0 the very same tokens come out. Sampling the chain cannot express this way (logits processors, mirostat, penalties,
which remember rejected tokens) is left to llama-cpp-python as it is.
"""
import ctypes
import logging
import math
import weakref

from kernel import llm  # noqa: F401  (first: it sets how llama.cpp's threads wait)

import llama_cpp  # noqa: E402
from llama_cpp import _internals  # noqa: E402

log = logging.getLogger(__name__)


class Llama(llama_cpp.Llama):
    """`llama_cpp.Llama` whose grammar is asked about a freely sampled token before it is
    applied to the whole vocabulary (`GrammarCheckedSampler`)."""

    def _init_sampler(self, **settings):
        if not GrammarCheckedSampler.serves(settings):
            return super()._init_sampler(**settings)
        return GrammarCheckedSampler(self, settings)


class GrammarCheckedSampler:
    """One completion's sampler (the interface `llama_cpp.Llama.sample` uses: `sample(ctx,
    idx)`): a free chain, the same chain behind the grammar for a token the grammar refuses,
    and the grammar on its own, which judges one token at a time. Both grammars accept every
    token chosen, so they stay in step."""

    @staticmethod
    def serves(settings):
        """Whether a sampler with these `Llama._init_sampler` settings can be checked this way:
        a grammar, and nothing in the chain that remembers the tokens it saw."""
        return (settings.get("grammar") is not None
                and settings.get("logits_processor") is None
                and not settings.get("mirostat_mode")
                and settings.get("repeat_penalty", 1.0) == 1.0
                and not settings.get("frequency_penalty")
                and not settings.get("presence_penalty"))

    def __init__(self, llama, settings):
        grammar = settings["grammar"]
        self.free = _chain(llama, settings, None)
        self.constrained = _chain(llama, settings, grammar)
        self.judge = llama_cpp.llama_sampler_init_grammar(
            llama._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8"))
        if not self.judge:
            raise ValueError("llama.cpp refused the grammar")
        weakref.finalize(self, llama_cpp.llama_sampler_free, self.judge)
        self.token = (llama_cpp.llama_token_data * 1)()
        self.candidates = llama_cpp.llama_token_data_array(data=self.token, size=1,
                                                           selected=-1, sorted=False)
        self.refused = 0  # tokens sampled again under the whole grammar
        self.vocab = llama._model.vocab
        newline = llama.tokenize(b"\n", add_bos=False, special=False)
        self.newline = newline[0] if len(newline) == 1 else None

    def sample(self, ctx, idx=-1):
        """The next token at logits row `idx`: the free chain's if the grammar allows it, the
        newline the grammar still needs if the model would end there, else the constrained
        chain's."""
        token = llama_cpp.llama_sampler_sample(self.free.sampler, ctx.ctx, idx)
        if self.allows(token):
            llama_cpp.llama_sampler_accept(self.constrained.sampler, token)
        elif self.ends_after_newline(token):
            token = self.newline
            llama_cpp.llama_sampler_accept(self.constrained.sampler, token)
        else:
            self.refused += 1
            token = llama_cpp.llama_sampler_sample(self.constrained.sampler, ctx.ctx, idx)
        llama_cpp.llama_sampler_accept(self.judge, token)
        return token

    def allows(self, token, judge=None):
        """Whether the grammar, where it stands (or where `judge` stands), allows `token`."""
        self.token[0].id, self.token[0].logit, self.token[0].p = token, 0.0, 0.0
        self.candidates.size, self.candidates.selected = 1, -1
        llama_cpp.llama_sampler_apply(judge or self.judge, ctypes.byref(self.candidates))
        return not math.isinf(self.token[0].logit)

    def ends_after_newline(self, token):
        """Whether `token` ends the answer (chat models end code without a last newline)
        where the grammar allows the end right after a newline: then the answer is complete
        but for that newline, which the next token would otherwise have to avoid."""
        if self.newline is None or not llama_cpp.llama_vocab_is_eog(self.vocab, token) \
                or not self.allows(self.newline):
            return False
        after = llama_cpp.llama_sampler_clone(self.judge)
        try:
            llama_cpp.llama_sampler_accept(after, self.newline)
            return self.allows(token, after)
        finally:
            llama_cpp.llama_sampler_free(after)


def _chain(llama, settings, grammar):
    """The sampler chain `llama_cpp.Llama._init_sampler` builds for `settings` (no processor,
    no penalty, no mirostat: `GrammarCheckedSampler.serves`), behind `grammar` if given (with
    a seed of its own: it draws only where the free chain's token was refused)."""
    chain = _internals.LlamaSampler()
    seed = llama._seed
    if grammar is not None:
        chain.add_grammar(llama._model, grammar)
        seed = (seed + 1) % 2 ** 32
    temperature = settings.get("temp", 0.8)
    if temperature < 0.0:
        chain.add_dist(seed)
    elif temperature == 0.0:
        chain.add_greedy()
    else:
        chain.add_top_k(settings.get("top_k", 40))
        chain.add_typical(settings.get("typical_p", 1.0), 1)
        chain.add_top_p(settings.get("top_p", 0.95), 1)
        chain.add_min_p(settings.get("min_p", 0.05), 1)
        chain.add_temp(temperature)
        chain.add_dist(seed)
    return chain
