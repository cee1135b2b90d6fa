"""The personas' minds: one interface for completions, a llama.cpp backend and a scripted double.

`LanguageModel.complete(system, user, grammar=..., json_schema=...)` returns the model's text
(passed piece by piece to `on_token` as it is generated, for replies streamed to a console);
`LanguageModel.choose(what, prefixes, text)` ranks options by the likelihood of `text` after
each option's prefix (`likelihoods` gives the scores) — how small models choose instead of
generating (`kernel.scoring`).
The system part is the persona's codex plus fixed instructions; it comes first and stays the
same between requests, so llama.cpp keeps it in the model's KV cache and only the request is
evaluated anew (one `Llama` per model id per process, see `ModelRegistry`). A GBNF grammar or a
JSON schema constrains the output — that is what makes a 135M-parameter model write usable
methods.

`BATOS_LLM=scripted:PATH` replaces every model of the process with `ScriptedModel`: a JSON
list of rules `{"persona": NAME or "*", "match": regex over the prompt, "reply": text}`, first
match wins (an optional `"delay"` in seconds stands in for a slow model; with
`"expand": true` the reply may use the match's groups, `\\1` or `\\g<name>`; a list of replies is
answered in turn, over and over, as a model sampling different answers would). Scoring is
scripted the same way: the prompt is `choose <what>`, a line `[option] prefix` per option, a
blank line and the text; the rule's reply names the option that wins (bare `likelihoods` are
all alike: the double has no preferences). It is the tests' one double, never a default.
"""
import dataclasses
import importlib.util
import itertools
import json
import logging
import os
import pathlib
import re
import threading
import time

from kernel import model_parts
from kernel.errors import BatosError, ConfigError

log = logging.getLogger(__name__)

ENV_BACKEND = "BATOS_LLM"

# llama.cpp's OpenMP threads spin while they wait for each other. On two cores shared with
# other processes one of them is often descheduled, and then a token takes a time slice or
# more: measured, 40 tokens in 26 s once, a task's 115 decodes in 148 s against 5.4 s with
# passive waiting. The runtime reads this when llama_cpp is first imported (an explicit
# setting in the environment wins).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Waiting passively costs a wake-up per token and thread: generating SmolLM2-135M on a 2-core VM
# took 44 ms per token with 2 threads and 24 ms with one (spinning: 14 ms idle, 30–63 ms beside
# a busy process). So one thread generates, a token at a time, and every core reads prompts and
# scores in batches, where a wake-up is paid once per batch (246 prompt tokens/s with 2, 147
# with one).


class LLMError(BatosError):
    """A model could not produce an answer (it failed to load, or its backend broke). Final."""


class ModelUnavailable(LLMError):
    """The configured model cannot be loaded; the message names the setting to fix. Final."""


class ScriptError(LLMError):
    """The scripted backend has no rule for a prompt; the message names the persona. Final."""


@dataclasses.dataclass(frozen=True)
class Completion:
    """A model's answer and what it cost."""

    text: str
    model: str
    seconds: float
    completion_tokens: int = 0


SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
PROSE_REPEAT_PENALTY = 1.3  # small models loop ("the master of the house, the master of …")

# -- prompt formats ----------------------------------------------------------------------------

CHAT_FORMATS = {
    "chatml": ("<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
               "<|im_start|>assistant\n", ["<|im_end|>", "<|endoftext|>"]),
    "gemma": ("<start_of_turn>user\n{system}\n\n{user}<end_of_turn>\n<start_of_turn>model\n",
              ["<end_of_turn>", "<eos>"]),
    "plain": ("{system}\n\n{user}\n", []),
}


def format_prompt(chat_format, system, user):
    """The full prompt text and stop strings for a model's chat format."""
    try:
        template, stops = CHAT_FORMATS[chat_format]
    except KeyError:
        raise ConfigError(f"unknown chat_format {chat_format!r}; use one of "
                          f"{sorted(CHAT_FORMATS)}") from None
    return template.format(system=system, user=user), stops


# -- model specifications ----------------------------------------------------------------------

SERVERS = ("llama-cpp-python", "llama.cpp", "vllm", "vllm-guided", "ollama", "openai")
LOCAL_ONLY = ("gguf", "n_ctx", "threads", "threads_batch", "n_gpu_layers", "flash_attn",
              "seed")
SERVED_ONLY = ("url", "model", "server", "api_key_env", "api_key_file", "timeout", "retries")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """How to reach one model id: a local GGUF file and its llama.cpp settings (`gguf`,
    `n_ctx`, `threads`, `threads_batch`, `n_gpu_layers`, `flash_attn`), or a model served
    over the OpenAI-compatible HTTP API (`url`, `model`, `server`, `api_key_env` |
    `api_key_file`, `timeout`, `retries`; `kernel.served`). Sampling and the prompt format
    are common."""

    model_id: str
    gguf: str = ""
    n_ctx: int = 2048
    threads: int = 1         # generating, a token at a time (see OMP_WAIT_POLICY above)
    threads_batch: int = 0   # reading a prompt and scoring, in batches; 0: every core
    n_gpu_layers: int = 0
    flash_attn: bool = False
    temperature: float = 0.2
    chat_format: str = "chatml"
    seed: int = 1234
    url: str = ""
    model: str = ""
    server: str = "llama-cpp-python"
    api_key_env: str = ""
    api_key_file: str = ""
    timeout: float = 60.0
    retries: int = 2

    @property
    def batch_threads(self):
        """The threads that read prompts and score: `threads_batch`, or every core."""
        return self.threads_batch or os.cpu_count() or 1

    @property
    def served(self):
        """True when the model runs behind an HTTP server rather than in this process."""
        return bool(self.url)

    @classmethod
    def from_config(cls, model_id, models):
        """The `[models.<id>]` table of a configuration as a spec; a `ConfigError` naming the
        setting when it is absent, unknown, of the wrong type or out of range."""
        table = models.get(model_id)
        if not isinstance(table, dict) or not ("gguf" in table or "url" in table):
            raise ConfigError(f"setting models.{model_id}.gguf (a local model) or "
                              f"models.{model_id}.url (a served one) is missing")
        table = dict(table)
        if "gpu_layers" in table:  # the name before n_gpu_layers
            table.setdefault("n_gpu_layers", table.pop("gpu_layers"))
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(table) - set(fields) | ({"model_id"} & set(table))
        if unknown:
            raise ConfigError(f"models.{model_id} has unknown settings {sorted(unknown)}")
        if "gguf" in table and "url" in table:
            raise ConfigError(f"models.{model_id} sets both gguf and url: a model is local "
                              "(gguf) or served (url), not both")
        wrong = set(table) & set(SERVED_ONLY if "gguf" in table else LOCAL_ONLY)
        if wrong:
            raise ConfigError(f"models.{model_id}: {sorted(wrong)} apply only to "
                              f"{'served' if 'gguf' in table else 'local'} models")
        for key, value in table.items():
            _check_type(model_id, key, value, fields[key].default)
        spec = cls(model_id=model_id, **table)
        spec.check()
        return spec

    def check(self):
        """Refuse values out of range, naming the setting (a `ConfigError`)."""
        where = f"models.{self.model_id}"
        if self.chat_format not in CHAT_FORMATS:
            raise ConfigError(f"{where}.chat_format {self.chat_format!r} is unknown; use one "
                              f"of {sorted(CHAT_FORMATS)}")
        if self.n_ctx < 16 or self.threads < 1 or self.threads_batch < 0 \
                or self.n_gpu_layers < -1:
            raise ConfigError(f"{where}: n_ctx, threads, threads_batch (0: every core) and "
                              "n_gpu_layers (-1: all layers) are out of range")
        if not self.served:
            return
        if not re.fullmatch(r"https?://[^/\s]+(/[^\s]*)?", self.url):
            raise ConfigError(f"{where}.url {self.url!r} is not an http:// or https:// URL "
                              "(e.g. http://127.0.0.1:8080/v1)")
        if self.server not in SERVERS:
            raise ConfigError(f"{where}.server {self.server!r} is unknown; use one of "
                              f"{list(SERVERS)}")
        if self.timeout <= 0 or not 0 <= self.retries <= 10:
            raise ConfigError(f"{where}: timeout must be positive and retries within 0..10")
        if self.api_key_env and self.api_key_file:
            raise ConfigError(f"{where}: set api_key_env or api_key_file, not both")

    def path(self):
        """The GGUF file: a path, the one file inside `package:NAME`, or the file a parted
        model's packages assemble into (`parts:NAME`, `kernel.model_parts`); else
        `ModelUnavailable`."""
        setting = f"models.{self.model_id}.gguf"
        if self.gguf.startswith("parts:"):
            try:
                return model_parts.path(self.gguf.split(":", 1)[1])
            except model_parts.PartsUnavailable as exc:
                raise ModelUnavailable(f"{setting}: {exc}") from None
        if self.gguf.startswith("package:"):
            package = self.gguf.split(":", 1)[1]
            spec = importlib.util.find_spec(package)  # locate without importing it
            if spec is None or not spec.submodule_search_locations:
                raise ModelUnavailable(f"{setting} names package {package!r}, which is not "
                                       "installed (the project's setup installs it)")
            files = sorted(pathlib.Path(next(iter(spec.submodule_search_locations)))
                           .glob("*.gguf"))
            if not files:
                raise ModelUnavailable(f"{setting}: package {package!r} holds no .gguf file")
            return files[0]
        path = pathlib.Path(os.path.expanduser(self.gguf))
        if not path.is_file():
            raise ModelUnavailable(f"{setting}: no GGUF file at {path}")
        return path


def _check_type(model_id, key, value, default):
    """A `ConfigError` when a setting's value is not of its default's type."""
    kind = type(default)
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok:
        raise ConfigError(f"setting models.{model_id}.{key} must be a {kind.__name__}, "
                          f"not {value!r}")


# -- backends ----------------------------------------------------------------------------------

class LanguageModel:
    """What every backend offers: one completion, optionally grammar- or schema-constrained."""

    model_id = "?"

    def complete(self, system, user, persona="*", grammar=None, json_schema=None,
                 max_tokens=128, temperature=None, on_token=None, stop=(), sentences=None,
                 start="", seconds=None):
        """The model's answer to `user` under the `system` prefix, as a `Completion`; each
        piece of text also goes to `on_token` as soon as it is generated; generation ends
        at any of the `stop` strings (besides the chat format's own), for prose after
        `sentences` sentences (repetition is then penalised too), and after `seconds` if
        given. A `start` is the beginning of the answer, given rather than generated (one
        forced token costs a whole decode); the grammar constrains what follows it, and the
        text returned begins with it."""
        raise NotImplementedError

    def choose(self, what, prefixes, text, persona="*"):
        """The option (a key of `prefixes`) under whose prefix `text` is likeliest, and the
        scores (log-likelihoods) of all options; `what` names the decision ("persona", …)."""
        scores = dict(zip(prefixes, self.likelihoods(list(prefixes.values()), text,
                                                     persona=persona, what=what)))
        return max(scores, key=scores.get), scores

    def likelihoods(self, prefixes, text, persona="*", what="likelihoods"):
        """The model's log-likelihood (nats) of `text` right after each raw text of
        `prefixes`, in order: how a model *chooses* among known options instead of
        generating (`kernel.scoring`)."""
        raise NotImplementedError

    def answers(self, system, user, texts, start="", persona="*"):
        """The model's log-likelihood of each of `texts` as its answer to `user` under the
        `system` prefix, after the given `start` (as `complete` would begin it): how likely
        it was to write each of several known answers."""
        raise NotImplementedError

    def knows_word(self, word):
        """Whether `word` is one of the model's own words (one token in running text): a
        word it has met, not one it could only spell (`zorble`). False when unknown."""
        return False


class LlamaModel(LanguageModel):
    """A GGUF model run by llama-cpp-python; one instance keeps its KV cache between calls."""

    def __init__(self, spec):
        path = spec.path()
        try:
            import llama_cpp

            from kernel import sampling
        except ImportError as exc:
            raise ModelUnavailable(f"llama-cpp-python is not installed ({exc})") from None
        self.spec = spec
        self.model_id = spec.model_id
        self._llama_cpp = llama_cpp
        started = time.perf_counter()
        try:
            self.llama = sampling.Llama(model_path=str(path), n_ctx=spec.n_ctx,
                                        n_threads=spec.threads,
                                        n_threads_batch=spec.batch_threads,
                                        n_gpu_layers=spec.n_gpu_layers,
                                        flash_attn=spec.flash_attn, seed=spec.seed,
                                        verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ModelUnavailable(f"models.{spec.model_id}.gguf: cannot load {path}: {exc}") \
                from None
        self.load_seconds = time.perf_counter() - started
        self._lock = threading.Lock()
        self._grammars = {}
        self._scorer = None
        log.info("loaded %s from %s in %.2f s", spec.model_id, path, self.load_seconds)

    def _grammar(self, grammar, json_schema):
        # the schema's own property order is the order the model writes them in
        key = (grammar, json.dumps(json_schema) if json_schema else None)
        if key == (None, None):
            return None
        if key not in self._grammars:
            make = self._llama_cpp.LlamaGrammar
            try:
                self._grammars[key] = (make.from_string(grammar, verbose=False) if grammar
                                       else make.from_json_schema(key[1], verbose=False))
            except (ValueError, RuntimeError) as exc:
                raise LLMError(f"the grammar for {self.model_id} does not parse: {exc}") \
                    from None
        return self._grammars[key]

    def complete(self, system, user, persona="*", grammar=None, json_schema=None,
                 max_tokens=128, temperature=None, on_token=None, stop=(), sentences=None,
                 start="", seconds=None):
        prompt, stops = format_prompt(self.spec.chat_format, system, user)
        prompt += start
        stops = [*stops, *stop]
        overdue = self._llama_cpp.StoppingCriteriaList([_overdue(seconds)]) if seconds else None
        constraint = self._grammar(grammar, json_schema)
        started = time.perf_counter()
        pieces, usage = [], {"completion_tokens": 0}
        with self._lock:  # one llama context: one completion at a time
            try:
                for chunk in self.llama.create_completion(
                        prompt, max_tokens=max_tokens, stop=stops or None, grammar=constraint,
                        temperature=self.spec.temperature if temperature is None
                        else temperature, stream=True, stopping_criteria=overdue,
                        repeat_penalty=PROSE_REPEAT_PENALTY if sentences else 1.0):
                    piece = chunk["choices"][0]["text"]
                    pieces.append(piece)
                    usage["completion_tokens"] += 1
                    if on_token and piece:
                        on_token(piece)
                    if sentences and len(SENTENCE_END.findall("".join(pieces))) >= sentences:
                        break
            except (ValueError, RuntimeError) as exc:
                raise LLMError(f"{self.model_id} failed to complete: {exc}") from None
        completion = Completion(start + "".join(pieces), self.model_id,
                                time.perf_counter() - started, usage["completion_tokens"])
        log.info("%s completed for %s: %d tokens in %.1f s", self.model_id, persona,
                 completion.completion_tokens, completion.seconds)
        return completion

    def answers(self, system, user, texts, start="", persona="*"):
        prompt = format_prompt(self.spec.chat_format, system, user)[0] + start
        with self._lock:
            return self._scoring().score_texts(prompt, list(texts))

    def knows_word(self, word):
        return len(self.llama.tokenize(b" " + word.encode("utf-8"), add_bos=False)) == 1

    def likelihoods(self, prefixes, text, persona="*", what="likelihoods"):
        scores = []
        with self._lock:
            scorer = self._scoring()
            for first in range(0, len(prefixes), scorer.max_prefixes):
                scores += scorer.score(prefixes[first:first + scorer.max_prefixes], text)
        return scores

    def _scoring(self):
        """The model's `ChannelScorer`, made on first use (its own llama.cpp context)."""
        if self._scorer is None:
            from kernel.scoring import ChannelScorer
            self._scorer = ChannelScorer(self.llama, threads=self.spec.batch_threads)
        return self._scorer


def _overdue(seconds):
    """A stopping criterion: True once generation has run `seconds` since its first token. (A
    grammar state can grow so ambiguous that each token takes seconds: stop there. The clock
    starts after the prompt is evaluated: counted from before, a 600-token prompt on a loaded
    machine used up the 4 s of a method's first sample, which ended after one token.)"""
    began = []

    def overdue(_ids, _logits):
        now = time.monotonic()
        began[:] = began or [now]
        return now - began[0] > seconds
    return overdue


class ScriptedModel(LanguageModel):
    """The test double: replies chosen by the first rule whose persona and regex match."""

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.model_id = f"scripted:{self.path.name}"
        try:
            rules = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelUnavailable(f"{ENV_BACKEND}: cannot read the script {path}: {exc}") \
                from None
        if not isinstance(rules, list) or not all(
                isinstance(r, dict) and isinstance(r.get("match"), str)
                and _is_reply(r.get("reply")) for r in rules):
            raise ModelUnavailable(f"{ENV_BACKEND}: {path} must be a JSON list of "
                                   '{"persona", "match", "reply"} rules')
        self.rules = [(r.get("persona", "*"), re.compile(r["match"], re.S),
                       itertools.cycle([r["reply"]] if isinstance(r["reply"], str)
                                       else r["reply"]),
                       float(r.get("delay", 0)), bool(r.get("expand"))) for r in rules]

    def complete(self, system, user, persona="*", grammar=None, json_schema=None,
                 max_tokens=128, temperature=None, on_token=None, stop=(), sentences=None,
                 start="", seconds=None):
        text, delay = self._reply(f"{system}\n\n{user}", persona, user)
        if on_token and text:
            on_token(text)
        return Completion(text, self.model_id, delay)

    def choose(self, what, prefixes, text, persona="*"):
        options = "\n".join(f"[{name}] {prefix}" for name, prefix in prefixes.items())
        choice, _delay = self._reply(f"choose {what}\n{options}\n\n{text}", persona, text)
        if choice.strip() not in prefixes:
            raise ScriptError(f"the script {self.path} chose {choice!r}, which is not one of "
                              f"the options {sorted(prefixes)}")
        return choice.strip(), {name: float(name == choice.strip()) for name in prefixes}

    def likelihoods(self, prefixes, text, persona="*", what="likelihoods"):
        """Every option is equally likely: the double has no preferences of its own."""
        return [0.0 for _ in prefixes]

    def answers(self, system, user, texts, start="", persona="*"):
        """Every answer is equally likely."""
        return [0.0 for _ in texts]

    def _reply(self, prompt, persona, user):
        for number, (who, pattern, replies, delay, expand) in enumerate(self.rules):
            found = pattern.search(prompt) if who in ("*", persona) else None
            if found:
                if delay:
                    time.sleep(delay)  # a rule may stand in for a slow model's latency
                reply = next(replies)
                log.info("%s completed for %s by rule %d in %.1f s", self.model_id, persona,
                         number, delay)
                return (found.expand(reply) if expand else reply), delay
        raise ScriptError(f"the script {self.path} has no rule for persona {persona} "
                          f"and this prompt (last line: {user.strip().splitlines()[-1][:80]!r})")


def _is_reply(reply):
    """A rule's reply: a text, or a non-empty list of texts answered in turn."""
    return isinstance(reply, str) or (isinstance(reply, list) and reply
                                      and all(isinstance(r, str) for r in reply))


class ModelRegistry:
    """The models of one process: loaded once per model id, shared by every request."""

    def __init__(self, models_config):
        self.models_config = models_config
        self._loaded = {}
        self._lock = threading.Lock()

    def get(self, model_id):
        """The model for `model_id` (or the scripted double when `BATOS_LLM` says so)."""
        with self._lock:
            if model_id not in self._loaded:
                self._loaded[model_id] = self._load(model_id)
            return self._loaded[model_id]

    def _load(self, model_id):
        override = os.environ.get(ENV_BACKEND, "")
        if override.startswith("scripted:"):
            return ScriptedModel(override.split(":", 1)[1])
        if override:
            raise ConfigError(f"{ENV_BACKEND}={override!r} is not understood; "
                              "use scripted:PATH or leave it unset")
        spec = ModelSpec.from_config(model_id, self.models_config)
        if spec.served:
            from kernel.served import ServedModel
            return ServedModel(spec)
        return LlamaModel(spec)
