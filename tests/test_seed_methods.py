"""kernel.seed_methods: every domain method genesis seeds is one BRICK could write and runs."""
import pytest

from kernel import gbnf, grammars, guardian, library, seed_methods

ENTRIES = seed_methods.DOMAIN_EXAMPLES


def test_each_example_object_has_a_name_of_its_own():
    names = [name for name, *_rest in library.SEED_EXAMPLES + ENTRIES]
    assert len(names) == len(set(names))
    assert all(name.isidentifier() and name not in library.KERNEL_NAMESPACES for name in names)


def test_no_entry_repeats_another_s_selector_slot_names_and_source():
    """(A triangle's and a parallelogram's `area` over base and height differ, and both stay:
    such precedents disagree, so neither makes a method final.)"""
    keys = [(selector, tuple(sorted(slots)), source)
            for _name, slots, selector, _args, source in ENTRIES]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("name, slots, selector, args, source", ENTRIES,
                         ids=[entry[0] for entry in ENTRIES])
def test_each_entry_passes_the_guardian_and_is_a_sentence_of_its_grammar(
        name, slots, selector, args, source):
    assert guardian.audit(source).ok, name
    rules = gbnf.parse(grammars.method_grammar(selector, slots, list(args)))
    assert gbnf.matches(rules, source), name


def test_each_entry_runs_on_its_own_object_in_the_image(lobby):
    """Genesis seeded them all; each answers its selector with its example arguments."""
    failures = []
    for name, _slots, selector, args, _source in ENTRIES:
        try:
            getattr(lobby.examples, name).send(selector, *args)
        except Exception as exc:  # collected, so one run names every broken entry
            failures.append(f"{name}.{selector}: {exc!r}")
    assert failures == []
