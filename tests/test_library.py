"""kernel.library: the image's own methods are the examples BRICK learns from."""
from kernel import library, seed_methods


def test_genesis_seeds_one_example_object_per_idiom_and_domain_method(lobby):
    examples = library.catalogue(lobby)
    assert len(examples) == len(library.SEED_EXAMPLES) + len(seed_methods.DOMAIN_EXAMPLES)
    assert any("self._p_changed = True" in e.source for e in examples)
    wallet = next(e for e in examples if e.selector == "top_up")
    assert wallet.slots == {"credit": 5} and wallet.args == (20,)
    assert wallet.prompt().startswith("Slots: credit = 5\nWrite the method top_up, called as "
                                      "top_up(x) with x = 20.\ndef top_up(self, x):")


def test_methods_defined_or_learned_in_the_image_become_examples(lobby):
    lobby.shapes = lobby.traits.clone()
    lobby.shapes.rect = lobby.traits.clone(width=3, height=4)
    lobby.shapes.rect.define("area", "def area(self):\n    return self.width * self.height\n")
    lobby.shapes.rect.define("guess", "def guess(self):\n    return self.width\n",
                             provisional=True)
    selectors = {e.selector for e in library.catalogue(lobby)}
    assert "area" in selectors and "guess" not in selectors  # a guess teaches nothing


def test_the_nearest_examples_share_selector_words_slots_and_kinds(lobby):
    examples = library.catalogue(lobby)
    nearest = library.nearest(examples, "record_sale", {"visits": 3}, [], count=3)
    assert nearest[-1].selector == "record_visit"  # the closest stands last
    words = library.nearest(examples, "joined_path", {"parts": ["a", "b"]}, [], count=2)
    assert words[-1].selector == "joined_path" and words[-1].slots == {"parts": ["home", "ada",
                                                                                "notes"]}
    area = library.nearest(examples, "area", {"side": 2}, [], count=3)
    assert area[-1].selector == "area" and area[-1].slots == {"side": 5}  # same selector, slots
    assert library.nearest(examples, "zyzzyva", {"side": 2}, [], count=5) == []  # unrelated
    assert library.nearest(examples, "area", {"side": 2}, [], count=0) == []  # `examples = 0`


def test_the_walk_skips_kernel_namespaces_and_is_bounded(lobby):
    lobby.personas.BRICK.define("secret", "def secret(self):\n    return 1\n")
    assert "secret" not in {e.selector for e in library.catalogue(lobby)}
    assert len(library.catalogue(lobby, limit=1)) < len(library.SEED_EXAMPLES)


def test_an_example_s_prompt_reads_back_as_its_slots_and_arguments():
    example = library.Example("label_for", {"name": "a, b = c", "sizes": [1, 2], "on": True},
                              ("x", 0.5), "def label_for(self, x, y):\n    return x\n")
    assert library.shown_slots(example.prompt()) == example.slots
    assert library.shown_arguments(example.prompt()) == ("x", 0.5)
    bare = library.Example("size", {}, (), "def size(self):\n    return 1\n")
    assert library.shown_slots(bare.prompt()) == {}
    assert library.shown_arguments(bare.prompt()) == ()


def test_a_selector_s_words_the_image_has_never_used_are_named():
    examples = [library.Example("days_remaining", {"days_allowed": 10, "days_taken": 3}, (),
                                "def days_remaining(self):\n    return 1\n")]
    assert library.unknown_words(examples, "remaining_days") == ()
    assert library.unknown_words(examples, "day_zorble") == ("zorble",)
    assert library.unknown_words(examples, "taken") == ()


def test_the_seed_knows_everyday_words_but_not_nonsense(lobby):
    catalogue = library.catalogue(lobby)
    assert library.unknown_words(catalogue, "total_price") == ()
    assert library.unknown_words(catalogue, "zorble") == ("zorble",)
