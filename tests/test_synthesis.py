"""kernel.synthesis: the small expressions that meet a caller's expectation, one per behaviour."""
from kernel import behaviour, synthesis


def proposals(slots, selector, args, expect, **kw):
    calls = behaviour.probe_calls(selector, slots, args)
    return synthesis.proposals(slots, args, calls, expect, **kw)


def flat(found):
    return [body for bodies in found for body in bodies]


def test_every_proposal_meets_the_expectation_on_the_real_call():
    slots = {"width": 3, "height": 4}
    found = proposals(slots, "perimeter", [], 14)
    assert "return 2 * (self.width + self.height)" in flat(found)
    width, height = slots["width"], slots["height"]
    for body in flat(found):
        assert eval(body.removeprefix("return ").replace("self.", "")) == 14  # built here


def test_one_behaviour_is_one_proposal_written_up_to_three_ways():
    found = proposals({"a": 7, "b": 5}, "average", [], 6)
    (mean,) = [bodies for bodies in found if "return (self.a + self.b) / 2" in bodies]
    assert 1 <= len(mean) <= synthesis.RENDERINGS
    assert not any("return (self.a + self.b) / 2" in bodies for bodies in found
                   if bodies is not mean)


def test_larger_arithmetic_is_reached_backwards_from_the_expectation():
    found = flat(proposals({"celsius": 100}, "fahrenheit", [], 212))
    assert any("* 9" in body and "/ 5" in body and body.endswith("+ 32") for body in found)


def test_the_text_no_input_supplies_becomes_a_literal():
    (greeting,) = proposals({"name": "Robin"}, "greeting", [], "Hello, Robin!")
    assert "return 'Hello, ' + self.name + '!'" in greeting


def test_truth_values_tell_equal_inputs_apart_and_never_compare_a_value_with_itself():
    found = flat(proposals({"width": 3, "height": 4}, "is_square", [], False))
    assert "return self.width == self.height" in found
    assert not any(f"self.width {op} self.width" in found for op in ("<", ">", "!="))


def test_arguments_lists_and_aggregates():
    assert "return self.width * x" in flat(proposals({"width": 3, "height": 4}, "scaled", [2], 6))
    assert flat(proposals({"items": [1, 2, 3, 4]}, "total", [], 10))[0] == \
        "return sum(self.items)"
    assert "return min(self.items)" in flat(proposals({"items": [3, 9, 4]}, "smallest", [], 3))


def test_a_constant_equal_to_an_input_is_no_proposal():
    found = flat(proposals({"balance": 100}, "after_withdrawal", [30], 70))
    assert "return self.balance - x" in found
    assert not any("30" in body for body in found)


def test_nothing_meets_an_expectation_no_expression_reaches():
    assert proposals({"name": "Robin"}, "weird", [], [1, 2, 3]) == []


def test_the_search_stops_at_its_budget():
    slots = {f"s{n}": n + 3 for n in range(6)}
    search = synthesis.Search(behaviour.probe_calls("x", slots, []), seconds=60, limit=500)
    synthesis.grow(search, synthesis.leaves(slots, [], search.calls, 1234))
    assert search.exhausted and len(search.seen) <= 600
