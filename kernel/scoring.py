"""Choose, don't generate: a small model's likelihood of a text after each of several prefixes.

A 135M-parameter model decides badly when it generates freely, but it ranks well: the
log-likelihood of a request *after* each option's description ("noisy channel") tells which
option the request belongs to (docs/design.md §4). `ChannelScorer` computes those likelihoods with
llama.cpp directly: every option's prefix stays cached in a KV sequence of its own, so one
decision evaluates only the request's tokens, once per option, in ONE batch — a few dozen
tokens, not the prefixes again. The scorer has its own llama context over the generator's
weights, so completions and scoring never evict each other's cache.
"""
import logging
import os
import threading

import numpy

from kernel.errors import BatosError

log = logging.getLogger(__name__)


class ScoringError(BatosError):
    """The runtime could not score (too many options, or a decode failed: prefixes that do
    not fit the context). Final."""


def _spaces_to_texts(prefixes, texts):
    """"- " + "Set …" is tokenized "-", " Set" in running text: a trailing space of the
    prefixes goes with the texts, else every option is scored on a token boundary the model
    never saw."""
    if not any(prefix.endswith(" ") for prefix in prefixes):
        return prefixes, texts
    return [prefix.rstrip(" ") for prefix in prefixes], [" " + text for text in texts]


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
        params.n_seq_max = max_prefixes + 1  # the last one holds `score_texts`'s prefix
        params.kv_unified = True
        self.context = _internals.LlamaContext(model=model, params=params, verbose=False)
        self.batch = _internals.LlamaBatch(n_tokens=n_batch, embd=0, n_seq_max=1,
                                           verbose=False)
        self.memory = llama_cpp.llama_get_memory(self.context.ctx)
        self.n_batch = n_batch
        self.max_prefixes = max_prefixes
        self.n_vocab = model.n_vocab()
        self.held = max_prefixes  # the sequence that keeps `score_texts`'s prefix
        self._cached = [None] * (max_prefixes + 1)  # prefix tokens per sequence
        self._last = [None] * (max_prefixes + 1)  # log-probabilities after each prefix
        self._lock = threading.Lock()

    def tokens(self, text, bos=False):
        """The model's tokens for `text` (special tokens parsed, so chat markup is one token)."""
        return self.model.tokenize(text.encode("utf-8"), bos, True)

    def score(self, prefixes, text):
        """log P(text | prefix) for each prefix, in order (higher is likelier); only the
        text's first `n_batch` tokens count."""
        if len(prefixes) > self.max_prefixes:
            raise ScoringError(f"at most {self.max_prefixes} options can be scored at once")
        prefixes, (text,) = _spaces_to_texts(prefixes, [text])
        continuation = self.tokens(text)[:self.n_batch]
        with self._lock:
            self._hold_all([(seq, self.tokens(prefix, bos=True))
                            for seq, prefix in enumerate(prefixes)])
            return self._continue([continuation] * len(prefixes))

    def score_texts(self, prefix, texts):
        """log P(text | prefix) for each of `texts` after ONE prefix (how likely a model was
        to write each of several known answers). The prefix is decoded once and shared by
        every sequence, so `max_prefixes` texts are scored in each batch. The prefix is kept
        in a sequence of its own, which `score` leaves alone: the next call decodes only
        what its prefix does not share with this one (a writer's prompt differs from the
        last one only after its fixed instructions)."""
        (prefix,), texts = _spaces_to_texts([prefix], texts)
        tokens = self.tokens(prefix, bos=True)
        scores = []
        with self._lock:
            self._hold(self.held, tokens)
            for seq in range(min(len(texts), self.max_prefixes)):
                self._share(seq, self.held)
            for first in range(0, len(texts), self.max_prefixes):
                scores += self._continue([self.tokens(text)[:self.n_batch] for text in
                                          texts[first:first + self.max_prefixes]])
        return scores

    def _hold(self, seq, tokens):
        """Make sequence `seq` hold exactly `tokens` (`_hold_all`)."""
        self._hold_all([(seq, tokens)])

    def _hold_all(self, wanted):
        """Make each sequence of `wanted` (seq, tokens) hold exactly its tokens (decoded once,
        kept between calls): the tokens it already holds in common with them stay, and what
        all of them lack is decoded together, in as few batches as `n_batch` allows — each
        decode reads the whole model once, so prefixes that differ only near their end (the
        channel's near misses) cost about one decode, not one each."""
        entries = []
        for seq, tokens in wanted:
            if self._cached[seq] == tokens:
                continue
            kept = len(os.path.commonprefix([self._cached[seq] or [], tokens[:-1]]))
            self._llama_cpp.llama_memory_seq_rm(self.memory, seq, kept, -1)
            self._cached[seq] = None
            entries += [(seq, position, tokens[position], position == len(tokens) - 1)
                        for position in range(kept, len(tokens))]
        for start in range(0, len(entries), self.n_batch):
            chunk = entries[start:start + self.n_batch]
            self._fill(chunk)
            for index, (seq, _position, _token, last) in enumerate(chunk):
                if last:
                    self._last[seq] = log_softmax(self._row(index))
        for seq, tokens in wanted:
            self._cached[seq] = tokens

    def _share(self, seq, source):
        """Make sequence `seq` hold what sequence `source` holds, without decoding it again."""
        if self._cached[seq] == self._cached[source]:
            return
        self._llama_cpp.llama_memory_seq_rm(self.memory, seq, 0, -1)
        self._llama_cpp.llama_memory_seq_cp(self.memory, source, seq, 0, -1)
        self._cached[seq], self._last[seq] = self._cached[source], self._last[source]

    def _continue(self, continuations):
        """Evaluate continuation i after the prefix held by sequence i, as few batches as
        `n_batch` allows; sum each one's tokens' log-probabilities."""
        totals = [float(self._last[seq][tokens[0]]) if tokens else 0.0
                  for seq, tokens in enumerate(continuations)]
        pending = [seq for seq, tokens in enumerate(continuations) if len(tokens) > 1]
        while pending:
            seqs, used = [], 0
            while pending and (not seqs or used + len(continuations[pending[0]])
                               <= self.n_batch):
                seqs.append(pending.pop(0))
                used += len(continuations[seqs[-1]])
            entries = [(seq, len(self._cached[seq]) + k, token,
                        k < len(continuations[seq]) - 1)
                       for seq in seqs for k, token in enumerate(continuations[seq])]
            try:
                self._fill(entries)
                offset = 0  # the batch index of each sequence's first token
                for seq in seqs:
                    for k, token in enumerate(continuations[seq][1:]):
                        totals[seq] += float(log_softmax(self._row(offset + k))[token])
                    offset += len(continuations[seq])
            finally:  # the prefixes stay; the texts go, so the next batch has room
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
