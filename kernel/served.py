"""Models served by an inference server over the OpenAI-compatible HTTP API.

A `[models.ID]` table with `url` (instead of `gguf`) makes `ServedModel` that model's backend:
the persona's worker sends each request over HTTP to a server that may run on a GPU host,
instead of loading the GGUF file itself. It speaks `/v1/completions` with the same raw prompt
the in-process backend builds (`kernel.llm.format_prompt`), so the server's KV-cache reuse of
the fixed system part and grammars behave as they do in-process, and streams the answer
(server-sent events) piece by piece to `on_token`.

What each kind of server (`server = ...`) can do, and how it is asked:

| server             | GBNF grammar     | JSON schema                        | scoring |
| ------------------ | ---------------- | ---------------------------------- | ------- |
| `llama-cpp-python` | `grammar`        | made GBNF here, sent as `grammar`  | yes     |
| `llama.cpp`        | `grammar`        | `json_schema`                      | no      |
| `vllm`             | `structured_outputs: {grammar}` | `structured_outputs: {json}` | yes |
| `vllm-guided`      | `guided_grammar` | `guided_json` (vLLM before 0.12)   | yes     |
| `ollama`, `openai` | none             | none                               | no      |

Scoring (`likelihoods`, `answers`: routing, chat plans, choosing among methods) needs the
log-probabilities of the *prompt's* tokens: llama-cpp-python's server gives them when the
model is loaded with `logits_all` (its default) and a request sets `echo`; vLLM documents the
same. llama.cpp's own `llama-server`, Ollama and OpenAI's API give log-probabilities of
generated tokens only, so a model served by them cannot score: asking it to is one final
`ServedUnsupported` naming the model, as is a grammar sent to a server without grammars. (Only
llama-cpp-python's server is exercised by the tests; the vLLM and llama.cpp field names follow
their documentation: vLLM's xgrammar backend reads llama.cpp's GBNF.)

llama-cpp-python 0.3.36 pairs each echoed token with the logits *before* it only when the
prompt's first token is the model's BOS, which it then drops; otherwise every log-probability
is off by one token. Scored prompts therefore start with the chat format's BOS text (`BOS`),
which chat prompts do anyway; a raw routing prefix gets one token more than in-process.
Its echo is slow: for every echoed token its Python code sorts the whole vocabulary, about
0.03-0.3 s a token on 2 cores (bench/served.py), so serve the models that write rather than
those that choose.

Failures are one line each. The server down, a refused connection, no byte for `timeout`
seconds or a 5xx answer is a transient `ServedUnavailable`, after `retries` more tries with
backoff (never once a streamed answer has begun: its first pieces are already out). A 4xx
answer (bad key, bad request) is a final `ServedRefused`. The API key comes from the
environment (`api_key_env`) or a file only its owner can read (`api_key_file`), never from
the image.
"""
import http.client
import json
import logging
import os
import pathlib
import socket
import stat
import time
import urllib.error
import urllib.request

from kernel.errors import ConfigError
from kernel.llm import (PROSE_REPEAT_PENALTY, SENTENCE_END, Completion, LanguageModel, LLMError,
                        format_prompt)

log = logging.getLogger(__name__)

# how each server takes a GBNF grammar and a JSON schema (None: it takes none)
GRAMMAR_FIELD = {"llama-cpp-python": "grammar", "llama.cpp": "grammar",
                 "vllm": "structured_outputs.grammar", "vllm-guided": "guided_grammar"}
SCHEMA_FIELD = {"llama.cpp": "json_schema", "vllm": "structured_outputs.json",
                "vllm-guided": "guided_json"}
SCORING = ("llama-cpp-python", "vllm", "vllm-guided")
BOS = {"chatml": "<|im_start|>", "gemma": "<bos>"}
BACKOFF_INITIAL, BACKOFF_MAX = 0.5, 4.0


class ServedUnavailable(LLMError):
    """The model's server is down, unreachable, too slow or failing (5xx). Transient: the
    same request may succeed once the server is back."""

    transient = True


class ServedRefused(LLMError):
    """The server refused the request (4xx: a bad API key, a model it does not serve, a
    request it cannot parse). Final: only a change of configuration helps."""


class ServedUnsupported(LLMError):
    """The server cannot do what was asked (no grammars, no scoring). Final."""


def read_api_key(spec):
    """The model's API key: from the variable `api_key_env` names, or from `api_key_file`,
    which must be readable by its owner only (a `ConfigError` otherwise); None without one."""
    where = f"models.{spec.model_id}"
    if spec.api_key_env:
        key = os.environ.get(spec.api_key_env, "").strip()
        if not key:
            raise ConfigError(f"{where}.api_key_env names ${spec.api_key_env}, which is unset "
                              "or empty")
        return key
    if not spec.api_key_file:
        return None
    path = pathlib.Path(os.path.expanduser(spec.api_key_file))
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"{where}.api_key_file {path} is open to group or others "
                              f"(mode {stat.S_IMODE(mode):04o}); chmod 600 {path}")
        key = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{where}.api_key_file: cannot read {path}: "
                          f"{exc.strerror or exc}") from None
    if not key:
        raise ConfigError(f"{where}.api_key_file {path} is empty")
    return key


class ServedModel(LanguageModel):
    """One model id served over HTTP; thread-safe (each call is its own request)."""

    def __init__(self, spec):
        self.spec = spec
        self.model_id = spec.model_id
        self.base = spec.url.rstrip("/")
        if not self.base.endswith("/v1"):
            self.base += "/v1"
        self.headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        key = read_api_key(spec)
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        self.where = f"models.{spec.model_id} ({spec.server} at {self.base})"

    # -- the language-model interface ------------------------------------------------------

    def complete(self, system, user, persona="*", grammar=None, json_schema=None,
                 max_tokens=128, temperature=None, on_token=None, stop=(), sentences=None,
                 start="", seconds=None):
        prompt, stops = format_prompt(self.spec.chat_format, system, user)
        body = {"prompt": prompt + start, "max_tokens": max_tokens, "stream": True,
                "temperature": self.spec.temperature if temperature is None else temperature,
                "stop": [*stops, *stop] or None,
                "repeat_penalty": PROSE_REPEAT_PENALTY if sentences else 1.0,
                **self._constraint(grammar, json_schema)}
        if self.spec.model:
            body["model"] = self.spec.model
        started = time.perf_counter()
        pieces = []
        for piece in self._stream(body):
            pieces.append(piece)
            if on_token and piece:
                on_token(piece)
            if sentences and len(SENTENCE_END.findall("".join(pieces))) >= sentences:
                break
            if seconds and time.perf_counter() - started > seconds:
                break
        completion = Completion(start + "".join(pieces), self.model_id,
                                time.perf_counter() - started, sum(map(bool, pieces)))
        log.info("%s completed for %s: %d tokens in %.1f s", self.model_id, persona,
                 completion.completion_tokens, completion.seconds)
        return completion

    def likelihoods(self, prefixes, text, persona="*", what="likelihoods"):
        return [self._score(prefix, text) for prefix in prefixes]

    def answers(self, system, user, texts, start="", persona="*"):
        prompt = format_prompt(self.spec.chat_format, system, user)[0] + start
        return [self._score(prompt, text) for text in texts]

    # -- constraints and scoring -----------------------------------------------------------

    def _constraint(self, grammar, json_schema):
        """The request fields that constrain the answer, in this server's dialect."""
        if grammar is None and json_schema is None:
            return {}
        server = self.spec.server
        if json_schema is not None and server in SCHEMA_FIELD:
            return _field(SCHEMA_FIELD[server], json_schema)
        if json_schema is not None and server == "llama-cpp-python":
            from llama_cpp.llama_grammar import json_schema_to_gbnf
            grammar = json_schema_to_gbnf(json.dumps(json_schema))
        if server not in GRAMMAR_FIELD:
            raise ServedUnsupported(f"{self.where}: {server} servers take no grammar or JSON "
                                    "schema, which this request needs; serve the model with "
                                    "llama-cpp-python, llama.cpp or vLLM")
        return _field(GRAMMAR_FIELD[server], grammar)

    def _score(self, prefix, text):
        """log P(text | prefix) from the prompt's log-probabilities echoed by the server."""
        if self.spec.server not in SCORING:
            raise ServedUnsupported(f"{self.where}: {self.spec.server} servers give no "
                                    "log-probabilities of a prompt, so this model cannot "
                                    "score (routing, plans, choosing methods); serve it with "
                                    "llama-cpp-python or vLLM")
        bos = BOS.get(self.spec.chat_format, "") if self.spec.server == "llama-cpp-python" else ""
        if bos and not prefix.startswith(bos):
            prefix = bos + prefix
        body = {"prompt": prefix + text, "max_tokens": 1, "echo": True, "logprobs": 0,
                "temperature": 0.0}
        if self.spec.model:
            body["model"] = self.spec.model
        answer = self._post(body)
        try:
            logprobs = answer["choices"][0]["logprobs"]
            tokens, values = logprobs["tokens"], logprobs["token_logprobs"]
            generated = int(answer.get("usage", {}).get("completion_tokens", 1))
        except (KeyError, IndexError, TypeError, ValueError):
            raise ServedUnsupported(f"{self.where}: the server echoed no log-probabilities "
                                    "(llama-cpp-python needs the model loaded with "
                                    "--logits_all true)") from None
        return _tail_logprob(tokens[:len(tokens) - generated], values, text, self.where)

    # -- HTTP --------------------------------------------------------------------------------

    def _post(self, body):
        """One JSON answer of /completions, with the bounded retries of transient failures."""
        def once():
            with self._open(body) as response:
                try:
                    return json.loads(response.read())
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    raise ServedUnavailable(f"{self.where}: the server broke off its answer "
                                            f"({_reason(exc)})") from None
        return self._retrying(once)

    def _stream(self, body):
        """The text pieces of a streamed /completions answer. Retries only until the answer
        has begun; a stream broken off after that is one `ServedUnavailable`."""
        response = self._retrying(lambda: self._open(body))
        received = 0
        try:
            with response:
                for line in response:
                    line = line.strip()
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        return
                    chunk = json.loads(data)
                    if "error" in chunk:
                        raise ServedRefused(f"{self.where}: the server failed the request: "
                                            f"{_message(chunk)}")
                    piece = chunk["choices"][0].get("text") or ""
                    received += bool(piece)
                    yield piece
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise ServedUnavailable(f"{self.where}: the server broke off the answer after "
                                    f"{received} tokens ({_reason(exc)})") from None
        raise ServedUnavailable(f"{self.where}: the server broke off the answer after "
                                f"{received} tokens (the connection closed before its end: "
                                "the server stopped?)")

    def _open(self, body):
        """POST `body` to /completions; the open response, or the error it means."""
        request = urllib.request.Request(f"{self.base}/completions",
                                         data=json.dumps(body).encode("utf-8"),
                                         headers=self.headers, method="POST")
        try:
            return urllib.request.urlopen(request, timeout=self.spec.timeout)
        except urllib.error.HTTPError as exc:
            detail = _message(_json_or_text(exc.read()))
            if exc.code >= 500:
                raise ServedUnavailable(f"{self.where}: HTTP {exc.code}: {detail}") from None
            raise ServedRefused(f"{self.where}: refused the request: HTTP {exc.code}: "
                                f"{detail}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise ServedUnavailable(f"{self.where}: {_reason(exc)}") from None

    def _retrying(self, call):
        """`call()` with up to `retries` more tries after a transient failure, backing off."""
        delay = BACKOFF_INITIAL
        for attempt in range(self.spec.retries + 1):
            try:
                return call()
            except ServedUnavailable as exc:
                if attempt == self.spec.retries:
                    raise ServedUnavailable(f"{exc} (tried {attempt + 1} times)") from None
                log.warning("%s; trying again in %.1f s", exc, delay)
            time.sleep(delay)  # backoff between tries, not synchronisation
            delay = min(delay * 2, BACKOFF_MAX)


def _field(name, value):
    """A request field, `outer.inner` nested: {"outer": {"inner": value}}."""
    outer, _, inner = name.partition(".")
    return {outer: {inner: value}} if inner else {outer: value}


def _tail_logprob(tokens, values, text, where):
    """The summed log-probabilities of the last tokens of the prompt, as many as spell `text`."""
    covered, total = 0, 0.0
    for token, value in zip(reversed(tokens), reversed(values[:len(tokens)])):
        if covered >= len(text):
            break
        if value is None:
            raise ServedUnsupported(f"{where}: the server gave no log-probability of the "
                                    "text's first token (an empty prefix?)")
        covered += len(token)
        total += float(value)
    return total


def _reason(exc):
    """A failure of the connection in a few words."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "no answer within the timeout: the server is slow or hung"
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: the server is down"
    if isinstance(exc, (socket.timeout, TimeoutError)):  # a timeout while connecting
        return "no answer within the timeout: the server is slow or hung"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _json_or_text(raw):
    """An error answer's body: its JSON, else its text."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _message(answer):
    """The error message of a server's answer, on one line."""
    if isinstance(answer, dict):
        error = answer.get("error", answer.get("detail", answer))
        if isinstance(error, dict):
            error = error.get("message", error)
        answer = error
    return " ".join(str(answer).split())[:300]
