"""kernel.grammars: method grammars that parse in llama.cpp and admit only accepted methods."""
import random

import pytest

from kernel import gbnf, grammars, guardian, sandbox

SLOT_SETS = [
    ({"width": 3, "height": 4}, []),
    ({}, []),
    ({"name": "Robin"}, [1]),
    ({"items": [1, 2, 3], "label": "x", "n": 2.5}, ["a", 3]),
    ({"flag": True, "other": {"object": "traits"}}, []),
    ({"words": ["a", "b"], "empty": [], "count": 0}, [[1, 2], True]),
]


@pytest.mark.parametrize("slots, args", SLOT_SETS)
def test_method_grammars_parse_in_llama_cpp(slots, args):
    from llama_cpp import LlamaGrammar
    LlamaGrammar.from_string(grammars.method_grammar("m", slots, args), verbose=False)


def test_the_grammar_knows_slots_by_kind_and_the_arguments():
    text = grammars.method_grammar("area", {"width": 3, "name": "x", "items": [1]}, [5])
    assert 'root ::= "def area(self, x):\\n" body' in text
    assert '"self.width" | "x"' in text and '"self.name"' in text and '"self.items"' in text


def test_what_the_mandate_lacks_is_not_in_the_grammar():
    """A dead alternative (`sum(` without a list to sum) would let the model write a prefix
    no token can continue — llama.cpp then aborts the process — so it is pruned."""
    text = grammars.method_grammar("area", {"width": 3, "height": 4}, [])
    assert "sum(" not in text and "len(" not in text and ".upper" not in text
    assert "[\\x00]" not in text and "numsref" not in text


def test_too_many_arguments_are_refused():
    with pytest.raises(ValueError):
        grammars.parameter_names(6)


@pytest.mark.parametrize("slots, args", SLOT_SETS)
def test_every_sentence_of_the_grammar_passes_the_guardian_and_compiles(slots, args):
    """The grammar never goes past the guardian: 500 random sentences of each grammar —
    every body form (return, if/else, loop, command with the Covenant) — are accepted."""
    rules = gbnf.parse(grammars.method_grammar("m", slots, args))
    rng = random.Random(14)
    forms = set()
    for _ in range(500):
        source = gbnf.sample(rules, rng)
        verdict = guardian.audit(source)
        assert verdict.ok, f"{source!r}: {verdict.report()}"
        sandbox.compile_method(source, "m")
        forms.add("command" if "_p_changed" in source else "loop" if "for n" in source
                  else "if" if "    if " in source else "return")
    assert forms >= {"return", "if"}


@pytest.mark.parametrize("source", [
    "def area(self):\n    return self.width * self.height\n",
    "def greet(self, x):\n    return 'Hi, ' + self.name + str(x)\n",
    "def big(self):\n    return max(self.items) >= len(self.items)\n",
    "def shout(self):\n    return self.name.upper() + '!'\n",
    "def evens(self):\n    return [n for n in self.items if n % 2 == 0]\n",
    "def total(self):\n    total = 0\n    for n in self.items:\n        total = total + n\n"
    "    return total\n",
    "def bump(self, x):\n    self.n = self.n + x\n    self._p_changed = True\n    return self.n\n",
    "def add(self, x):\n    self.items.append(x)\n    self._p_changed = True\n",
    "def grade(self):\n    if self.n > 2:\n        return 'high'\n    return 'low'\n",
    "def slug(self):\n    return self.name.lower().replace(' ', '-')\n",
    "def domain(self):\n    return self.email.split('@')[1]\n",
    "def acronym(self):\n    return ''.join([n[0] for n in self.name.split()]).upper()\n",
    "def longest(self):\n    return max(self.words, key=len)\n",
    "def longer_than(self, x):\n    return [n for n in self.words if len(n) > x]\n",
    "def even_total(self):\n    return sum([n for n in self.items if n % 2 == 0])\n",
    "def masked(self):\n    return '*' * (len(self.email) - 4) + self.email[-4:]\n",
    "def initial(self):\n    return self.name[0].upper()\n",
    "def user(self):\n    return self.email.split('@')[0].title()\n",
    "def unique(self):\n    return sorted(set(self.words))\n",
    "def lacks(self, x):\n    return x not in self.items\n",
    "def top_two(self):\n    return sorted(self.items, reverse=True)[:2]\n",
    "def middle(self):\n    return self.words[len(self.words) // 2]\n",
    "def every_other(self):\n    return self.items[::2]\n",
    "def kinds(self):\n    return len(set(self.words))\n",
    "def shared(self):\n    return [n for n in self.words if n in self.tags]\n",
    "def untagged(self):\n    return sorted(set(self.words) - set(self.tags))\n",
    "def alike(self):\n    return set(self.words) == set(self.tags)\n",
    "def flagged(self):\n    return [n for n, m in zip(self.words, self.flags) if m]\n",
    "def lengths(self):\n    return [len(n) for n in self.words]\n",
])
def test_the_idioms_of_the_method_language_are_sentences_of_the_grammar(source):
    """What the grammar is for: each idiom of the method language is one of its sentences."""
    slots = {"width": 3, "height": 4, "name": "Robin", "items": [1, 2, 3], "n": 2.5,
             "email": "ada@example.org", "words": ["tree", "is"], "tags": ["is"],
             "flags": [True, False]}
    selector = source.split("(")[0][4:]
    args = [1] if "(self, x)" in source else []
    assert gbnf.matches(gbnf.parse(grammars.method_grammar(selector, slots, args)), source)
