"""Choose, don't generate: a small model's likelihood of a text after each of several prefixes.

A 135M-parameter model decides badly when it generates freely, but it ranks well: the
log-likelihood of a request *after* each option's description ("noisy channel") tells which
option the request belongs to (DESIGN §8). `ChannelScorer` computes those likelihoods with
llama.cpp directly: every option's prefix stays cached in a KV sequence of its own, so one
decision evaluates only the request's tokens, once per option, in ONE batch — a few dozen
tokens, not the prefixes again. The scorer has its own llama context over the generator's
weights, so completions and scoring never evict each other's cache.
"""
import logging
import threading

import numpy

from kernel.errors import BatosError

log = logging.getLogger(__name__)


class ScoringError(BatosError):
    """The runtime could not score (too many options, or a decode failed: prefixes that do
    not fit the context). Final."""


def log_softmax(row):
    """The log-probabilities of one row of logits."""
    shifted = row - row.max()
    return shifted - numpy.log(numpy.exp(shifted).sum())


class ChannelScorer:
    """Log-likelihoods of a text after each of up to `max_prefixes` cached prefixes."""

    def __init__(self, llama, n_ctx=4096, threads=2, max_prefixes=8, n_batch=512):
        import llama_cpp
        from llama_cpp import _internals
        self._llama_cpp = llama_cpp
        self.llama = llama  # a llama_cpp.Llama: its weights must outlive this context
        model = self.model = llama._model
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = n_batch
        params.n_threads = params.n_threads_batch = threads
        params.n_seq_max = max_prefixes
        params.kv_unified = True
        self.context = _internals.LlamaContext(model=model, params=params, verbose=False)
        self.batch = _internals.LlamaBatch(n_tokens=n_batch, embd=0, n_seq_max=1,
                                           verbose=False)
        self.memory = llama_cpp.llama_get_memory(self.context.ctx)
        self.n_batch = n_batch
        self.max_prefixes = max_prefixes
        self.n_vocab = model.n_vocab()
        self._cached = [None] * max_prefixes  # prefix tokens per sequence
        self._last = [None] * max_prefixes  # log-probabilities after each prefix
        self._lock = threading.Lock()

    def tokens(self, text, bos=False):
        """The model's tokens for `text` (special tokens parsed, so chat markup is one token)."""
        return self.model.tokenize(text.encode("utf-8"), bos, True)

    def score(self, prefixes, text):
        """log P(text | prefix) for each prefix, in order (higher is likelier); only the
        text's first `n_batch` tokens count."""
        if len(prefixes) > self.max_prefixes:
            raise ScoringError(f"at most {self.max_prefixes} options can be scored at once")
        if any(prefix.endswith(" ") for prefix in prefixes):
            # "- " + "Set …" is tokenized "-", " Set" in running text: the space goes with
            # the text, else every option is scored on a token boundary the model never saw
            prefixes = [prefix.rstrip(" ") for prefix in prefixes]
            text = " " + text
        continuation = self.tokens(text)[:self.n_batch]
        if not continuation:
            return [0.0] * len(prefixes)
        with self._lock:
            for seq, prefix in enumerate(prefixes):
                self._hold(seq, self.tokens(prefix, bos=True))
            return self._continue(len(prefixes), continuation)

    def _hold(self, seq, tokens):
        """Make sequence `seq` hold exactly `tokens` (decoded once, kept between calls)."""
        if self._cached[seq] == tokens:
            return
        self._llama_cpp.llama_memory_seq_rm(self.memory, seq, 0, -1)
        self._cached[seq] = None
        for start in range(0, len(tokens), self.n_batch):
            chunk = tokens[start:start + self.n_batch]
            self._fill([(seq, start + i, t, start + i == len(tokens) - 1)
                        for i, t in enumerate(chunk)])
        self._last[seq] = log_softmax(self._row(len(chunk) - 1))
        self._cached[seq] = tokens

    def _continue(self, count, continuation):
        """Evaluate `continuation` after each held prefix; sum its tokens' log-probabilities."""
        totals = [float(self._last[seq][continuation[0]]) for seq in range(count)]
        if len(continuation) == 1:
            return totals
        per_batch = max(1, self.n_batch // len(continuation))
        for first in range(0, count, per_batch):
            seqs = range(first, min(count, first + per_batch))
            entries = [(seq, len(self._cached[seq]) + k, token, k < len(continuation) - 1)
                       for seq in seqs for k, token in enumerate(continuation)]
            try:
                self._fill(entries)
                for index, seq in enumerate(seqs):
                    base = index * len(continuation)
                    for k, token in enumerate(continuation[1:]):
                        totals[seq] += float(log_softmax(self._row(base + k))[token])
            finally:  # the prefixes stay; the text goes, so the next batch has room
                for seq in seqs:
                    self._llama_cpp.llama_memory_seq_rm(self.memory, seq,
                                                        len(self._cached[seq]), -1)
        return totals

    def _fill(self, entries):
        """Decode one batch of (seq, position, token, wants_logits)."""
        batch = self.batch.batch
        batch.n_tokens = len(entries)
        for i, (seq, position, token, wants) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = position
            batch.seq_id[i][0] = seq
            batch.n_seq_id[i] = 1
            batch.logits[i] = wants
        code = self._llama_cpp.llama_decode(self.context.ctx, batch)
        if code != 0:
            raise ScoringError(f"llama_decode returned {code} while scoring")

    def _row(self, index):
        pointer = self._llama_cpp.llama_get_logits_ith(self.context.ctx, index)
        return numpy.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).astype(numpy.float64)
