"""kernel.grammars: method grammars that parse in llama.cpp and admit only accepted methods."""
import pytest

from kernel import grammars, guardian

SLOT_SETS = [
    ({"width": 3, "height": 4}, []),
    ({}, []),
    ({"name": "Robin"}, [1]),
    ({"items": [1, 2, 3], "label": "x", "n": 2.5}, ["a", 3]),
    ({"flag": True, "other": {"object": "traits"}}, []),
]


@pytest.mark.parametrize("slots, args", SLOT_SETS)
def test_method_grammars_parse_in_llama_cpp(slots, args):
    from llama_cpp import LlamaGrammar
    LlamaGrammar.from_string(grammars.method_grammar("m", slots, args), verbose=False)


def test_the_grammar_knows_slots_by_kind_and_the_arguments():
    text = grammars.method_grammar("area", {"width": 3, "name": "x", "items": [1]}, [5])
    assert 'def area(self, x):\\n    return ' in text
    assert '"self.width" | "x"' in text and '"self.name"' in text and '"self.items"' in text


def test_too_many_arguments_are_refused():
    with pytest.raises(ValueError):
        grammars.parameter_names(6)


@pytest.mark.parametrize("source", [
    "def area(self):\n    return self.width * self.height\n",
    "def greet(self, x):\n    return 'Hi, ' + self.name + str(x)\n",
    "def big(self):\n    return max(self.items) >= len(self.items)\n",
])
def test_sentences_of_the_grammar_pass_the_guardian(source):
    assert guardian.audit(source).ok
