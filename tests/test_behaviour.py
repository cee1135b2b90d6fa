"""kernel.behaviour and kernel.dnu.decide: probe calls, signatures, clusters, precedents, the
verdict."""
import dataclasses
import re

from kernel import behaviour, dnu, library
from kernel.grammars import kind_of


def test_probe_calls_keep_the_kinds_and_change_the_values():
    slots = {"width": 3, "name": "Robin Hood", "items": [1, 2], "words": ["a"], "on": True,
             "rate": 0.05, "debt": -4, "other": {"object": "traits"}}
    real, *probes = behaviour.probe_calls("m", slots, [5, "Ada"])
    assert real == behaviour.Call({}, (5, "Ada")) and len(probes) == behaviour.PROBES
    for n, probe in enumerate(probes):
        crosses = n == len(probes) - 1  # the last probe crosses the boundaries
        assert set(probe.slots) == set(slots) - {"other"}  # objects are left to the receiver
        for name, value in probe.slots.items():
            assert kind_of(value) == kind_of(slots[name]) or crosses and value == []
        sign = -1 if crosses else 1
        assert probe.slots["on"] is False and 0 < sign * probe.slots["rate"] < 1
        assert sign * probe.slots["debt"] < 0 and sign * probe.slots["width"] > 0
        assert abs(probe.slots["width"]) != 3
        assert all(word[0].isupper() for word in probe.slots["name"].split(" "))
        assert kind_of(probe.args[0]) == "num" and kind_of(probe.args[1]) == "txt"
    assert behaviour.probe_calls("m", slots, [5, "Ada"]) == [real] + probes  # deterministic


def test_a_predicate_at_its_natural_boundary_is_not_a_constant():
    """`balance < 0` on an overdrawn account answers True on every probe of the same sign;
    the last probe's other sign tells it from `return True`, its empty list and its text
    without punctuation do the same for `len(self.tags) > 0` and `'@' in self.email`."""
    calls = behaviour.probe_calls("is_overdrawn", {"balance": -50.0}, [])
    answers = {call.slots.get("balance", -50.0) < 0 for call in calls}
    assert answers == {True, False}
    calls = behaviour.probe_calls("is_valid", {"email": "ann@example.com", "tags": ["a"]}, [])
    assert {"@" in call.slots.get("email", "@") for call in calls} == {True, False}
    assert {len(call.slots.get("tags", "a")) > 0 for call in calls} == {True, False}


def test_an_order_between_two_numbers_is_not_a_constant():
    """`spent > budget` (or an argument against a slot) keeps its answer on random probes
    as often as not; the last probe reverses every order between two numbers."""
    for spent, budget in ((1200.0, 1000.0), (3, 40), (-5, -20.5)):
        for selector in ("is_over_budget", "m"):
            calls = behaviour.probe_calls(selector, {"spent": spent, "budget": budget}, [7])
            assert {c.slots.get("spent", spent) > c.slots.get("budget", budget)
                    for c in calls} == {True, False}
            assert {c.slots.get("spent", spent) > c.args[0] for c in calls} == {True, False}


def test_a_parity_predicate_is_not_a_constant():
    """`number % 2 == 0` on an odd number (and an argument's parity) differs on the first
    probe, whatever the selector: the probes' numbers were mostly odd, and `is_even` of 7
    looked like `return False`."""
    for selector in ("is_even", "is_odd", "m", "divisible_by"):
        for number in (7, 10, 7.0):
            calls = behaviour.probe_calls(selector, {"number": number}, [3])
            assert {call.slots.get("number", number) % 2 for call in calls} == {0, 1}
            assert {call.args[0] % 2 for call in calls} == {0, 1}


def test_probes_of_a_text_of_several_words_vary_how_many_words_it_has():
    """Else `len(self.title.split())` for `word_count` looks like a constant."""
    _real, *probes = behaviour.probe_calls("word_count", {"title": "The Long Road"}, [])
    assert {len(p.slots["title"].split()) for p in probes} - {3}


def test_signatures_treat_equal_values_alike_and_booleans_apart():
    assert behaviour.canonical(2) == behaviour.canonical(2.0)
    assert behaviour.canonical(True) != behaviour.canonical(1)
    assert behaviour.canonical((1, 2)) == behaviour.canonical([1, 2.0])
    assert behaviour.outcome(6, {"count": 5}, {"count": 6}) == (
        "ok", None, (("count", behaviour.canonical(6)),))  # a command is what it changes
    assert behaviour.outcome(None, {"count": 5}, {"count": 6}) == \
        behaviour.outcome(6, {"count": 5}, {"count": 6})
    assert behaviour.outcome(None, {"count": 5}, {"count": 5})[2] == ()


def candidate(source, *results, channel=0.0, changes=()):
    made = behaviour.Candidate(source, channel=channel)
    made.signature = tuple(("ok", behaviour.canonical(r), changes) for r in results)
    made.result = results[0]
    return made


def test_clusters_group_candidates_by_behaviour_not_by_text():
    a = candidate("a", 12, 30, 8)
    b = candidate("b", 12, 30, 8)
    c = candidate("c", 7, 11, 6)
    broken = behaviour.Candidate("d", problem="the trial run raised ZeroDivisionError")
    groups = behaviour.clusters([c, a, b, broken])
    assert [g.votes for g in groups] == [2, 1] and groups[0].representative.source == "a"


def test_agreement_alone_is_provisional_unless_configured_final():
    agree = [candidate("a", 12, 30, 8)] * 3 + [candidate("b", 7, 11, 6)]
    verdict = dnu.decide(agree)
    assert verdict.cluster.representative.source == "a" and not verdict.final
    assert verdict.settled and "agreement alone is no fact" in verdict.reason
    assert dnu.decide(agree, agreement_final=True).final
    split = [candidate("a", 12, 30, 8)] * 2 + [candidate("b", 7, 11, 6)] * 2
    verdict = dnu.decide(split, agreement_final=True)
    assert not verdict.final and not verdict.settled  # more samples could settle it
    assert dnu.decide([behaviour.Candidate("x", problem="rejected")]) is None


def test_agreement_on_an_input_returned_unchanged_is_never_final():
    echo = candidate("def domain(self):\n    return self.email\n", "a@b", "c@d", "e@f")
    echo.echoes = True
    verdict = dnu.decide([echo] * 4, agreement_final=True)
    assert not verdict.final and "unchanged" in verdict.reason


def test_the_fit_and_the_channel_together_break_ties():
    tie = [candidate("a", 7, 11, 6, channel=-9.0)] * 2 + \
          [candidate("b", 14, 22, 12, channel=-2.0)] * 2
    assert dnu.decide(tie).cluster.representative.source == "b"
    likelier = candidate("a", 7, 11, 6, channel=-9.0)
    likelier.fit = -3.0
    rival = candidate("b", 14, 22, 12, channel=-2.0)
    rival.fit = -11.0  # -3 - 9 against -11 - 2
    assert dnu.decide([likelier] * 2 + [rival] * 2).cluster.representative.source == "a"
    rival.fit = -8.0   # -3 - 9 against -8 - 2
    assert dnu.decide([likelier] * 2 + [rival] * 2).cluster.representative.source == "b"


def test_a_precedent_read_by_kind_is_chosen_and_final_when_samples_behave_so_too():
    precedent = candidate("image's own", 14, 22, 12, channel=-9.0)
    precedent.sampled, precedent.precedent = False, "read"
    tie = [candidate("a", 7, 11, 6, channel=-2.0)] * 2 + [candidate("b", 14, 22, 12)] * 2
    verdict = dnu.decide(tie + [precedent])
    assert verdict.final and verdict.cluster.representative.source == "image's own"
    assert "image's own method" in verdict.reason
    lone = [candidate("a", 7, 11, 6)] * 2 + [candidate("b", 14, 22, 12)]
    verdict = dnu.decide(lone + [precedent])
    assert verdict.cluster.representative.source == "image's own"  # chosen over more votes
    assert verdict.final and verdict.reason.startswith("1 of 3")
    unheard = dnu.decide([candidate("a", 7, 11, 6)] * 3 + [precedent])
    assert unheard.cluster.representative.source == "image's own"
    assert not unheard.final and "only 0 of 3" in unheard.reason  # no sample: provisional


def test_a_precedent_over_the_very_slot_names_is_final_unless_the_samples_agree_otherwise():
    precedent = candidate("image's own", 14, 22, 12)
    precedent.sampled, precedent.precedent = False, "exact"
    scattered = [candidate("a", 7, 11, 6), candidate("b", 1, 2, 3)]
    verdict = dnu.decide(scattered + [precedent])
    assert verdict.final and verdict.cluster.representative.source == "image's own"
    assert "over these very slots" in verdict.reason
    agreed = dnu.decide([candidate("a", 7, 11, 6)] * 3 + [precedent])
    assert agreed.cluster.representative.source == "image's own" and not agreed.final
    assert "agree on another behaviour" in agreed.reason
    constant = candidate("image's own", 5, 5, 5)
    constant.sampled, constant.precedent = False, "exact"
    assert not dnu.decide([candidate("a", 7, 11, 6), constant]).final


def test_a_better_read_neighbour_keeps_a_voted_behaviour_from_being_final_not_replaces_it():
    neighbour = candidate("c", 14, 22, 12, channel=-2.0)
    neighbour.sampled = False
    weak = [candidate("a", 7, 11, 6, channel=-9.0)] * 2 + [candidate("b", 1, 2, 3)]
    verdict = dnu.decide(weak + [neighbour], agreement_final=True)
    assert verdict.cluster.representative.source == "a" and not verdict.final
    strong = dnu.decide([candidate("a", 7, 11, 6, channel=-9.0)] * 4 + [neighbour],
                        agreement_final=True)
    assert strong.cluster.representative.source == "a" and not strong.final
    assert dnu.decide([candidate("a", 7, 11, 6, channel=-9.0)] * 4, agreement_final=True).final


def test_neighbours_are_one_operator_item_or_truth_value_away():
    assert behaviour.neighbours("def f(self):\n    return self.names[0]\n") == [
        "def f(self):\n    return self.names[1]\n", "def f(self):\n    return self.names[-1]\n"]
    switched = behaviour.neighbours("def on(self):\n    self.active = False\n"
                                    "    self._p_changed = True\n")
    assert switched == ["def on(self):\n    self.active = True\n    self._p_changed = True\n"]
    assert "def f(self):\n    return self.a - self.b\n" in behaviour.neighbours(
        "def f(self):\n    return self.a + self.b\n")


def test_a_behaviour_that_ignores_its_inputs_is_never_final():
    constant = [candidate("a", 3, 3, 3)] * 4
    verdict = dnu.decide(constant)
    assert verdict.cluster.representative.source == "a" and not verdict.final
    mixed = [candidate("a", 3, 3, 3)] * 3 + [candidate("b", 12, 30, 8)]
    assert dnu.decide(mixed).cluster.representative.source == "b"


def test_a_behaviour_that_ignores_an_argument_counts_only_when_nothing_else_ran():
    ignores = candidate("def name_with_title(self, x):\n    return self.name + ' ' + self.name\n",
                        "Ng Ng", "Ab Ab", "Cd Cd")
    reads = candidate("def name_with_title(self, x):\n    return x + ' ' + self.name\n",
                      "Dr Ng", "Rt Ab", "Lo Cd")
    assert dnu.decide([ignores] * 3 + [reads]).cluster.representative is reads
    assert not dnu.decide([ignores] * 3).settled  # more samples may read it
    assert not dnu.decide([ignores] * 3 + [reads]).settled  # one sample: more may outvote it
    assert dnu.decide([ignores] * 3 + [reads] * 3).settled  # agreed: more cannot change it
    alone = dnu.decide([ignores] * 4, agreement_final=True)
    assert alone.cluster.representative is ignores and not alone.final
    assert alone.reason == "it ignores an argument of the call"


def test_a_question_a_count_or_a_measure_that_answers_otherwise_counts_last():
    def question(body, *results, changes=()):
        return candidate(f"def is_overdrawn(self):\n    {body}\n", *results, changes=changes)
    command = question("self.balance = -20.0", None, None, None,
                       changes=(("balance", behaviour.canonical(-20.0)),))
    number = question("return self.balance * 2", -100, -6, 8)
    answer = question("return self.balance < 0", True, True, False)
    assert dnu.decide([command] * 3 + [number] * 2 + [answer]).cluster.representative is answer
    assert dnu.decide([command] * 3 + [number]).cluster.representative is command
    assert not dnu.decide([number] * 4, agreement_final=True).final
    listed = candidate("def count_over(self):\n    return [n for n in self.items if n > 2]\n",
                       [3, 4], [5], [])
    counted = candidate("def count_over(self):\n    return len(self.items)\n", 2, 1, 0)
    assert dnu.decide([listed] * 3 + [counted]).cluster.representative is counted
    assert dnu.asks_a_question("can_vote") and not dnu.asks_a_question("island_area")
    changed = candidate("def win_percentage(self):\n    self.wins = self.wins - 1\n"
                        "    self._p_changed = True\n    return self.wins\n", 4, 1, 9,
                        changes=(("wins", behaviour.canonical(4)),))
    measured = candidate("def win_percentage(self):\n    return self.wins / self.games * 100\n",
                         50.0, 25.0, 90.0)
    assert dnu.decide([changed] * 3 + [measured]).cluster.representative is measured


def test_a_command_that_changes_nothing_counts_last():
    def command(body, *results, changes=()):
        return candidate(f"def log_workout(self, x):\n    {body}\n", *results, changes=changes)
    answers = command("return self.workouts * x", 135, 20, 0)
    logs = command("self.minutes += x\n    self._p_changed = True", None, None, None,
                   changes=(("minutes", behaviour.canonical(135)),))
    assert dnu.decide([answers] * 3 + [logs]).cluster.representative is logs
    alone = dnu.decide([answers] * 4)
    assert not alone.settled and "a command" in alone.reason
    adds = candidate("def add(self, x):\n    return self.value + x\n", 8, 3, -2)
    adds.sampled, adds.precedent = False, "exact"
    assert dnu.decide([adds]).final  # the image's own `add` says what the word means
    adds_flour = candidate("def add_flour(self, x):\n    return self.flour_kg + x\n", 37, 5, 1)
    adds_flour.sampled, adds_flour.precedent = False, "related"  # `add` read as `add_flour`
    stocks = candidate("def add_flour(self, x):\n    self.flour_kg = self.flour_kg + x\n"
                       "    self._p_changed = True\n", None, None, None,
                       changes=(("flour_kg", behaviour.canonical(37)),))
    assert dnu.decide([adds_flour, stocks]).cluster.representative is stocks
    assert dnu.gives_a_command("add_item") and dnu.gives_a_command("reset")
    assert not dnu.gives_a_command("start_time") and not dnu.gives_a_command("is_locked")


def test_a_text_that_writes_a_slot_twice_counts_last():
    def address(body, result):
        return candidate(f"def label(self):\n    return {body}\n", result, result + "!", "x")
    twice = address("self.street + ', ' + self.street", "Oak Lane, Oak Lane")
    both = address("self.street + ', ' + self.city", "Oak Lane, Leeds")
    assert dnu.decide([twice] * 3 + [both]).cluster.representative is both
    assert dnu.decide([twice] * 4).reason == "it writes the same text slot twice"
    capital = address("self.word[0].upper() + self.word[1:]", "Oak")
    assert dnu.decide([capital] * 4).reason != "it writes the same text slot twice"


def test_agreement_on_an_example_copied_or_filled_in_wrongly_is_never_final():
    mandate = dnu.Mandate("p", "p", {"name": "a"}, (), (), "greeting", (),
                          dnu.NO_EXPECTATION, ())
    examples = dnu.shown_examples(mandate)  # the instructions show full_name, total, ...
    for source, copied in [("return self.name + ' ' + self.name", True),
                           ("return self.first + ' ' + self.last", True),
                           ("return self.city + ' ' + self.country", False),
                           ("return self.width * self.height", False)]:
        agree = [candidate(f"def m(self):\n    {source}\n", "a b", "c d", "e f")] * 4
        verdict = dnu.decide(agree, examples=examples, agreement_final=True)
        assert verdict.final is not copied, source
        twice = source.count("self.name") == 2  # a text slot twice: never final either
        assert dnu.decide(agree, agreement_final=True).final is not twice


def test_a_behaviour_that_only_echoes_an_input_is_found_on_every_call():
    calls = behaviour.probe_calls("plural", {"animal": "cat", "legs": 4}, [])
    echo = tuple(behaviour.outcome(call.slots.get("animal", "cat"), {}, {}) for call in calls)
    assert behaviour.echoed_input(echo, calls, {"animal": "cat", "legs": 4}) == "self.animal"
    grown = tuple(behaviour.outcome(call.slots.get("animal", "cat") + "s", {}, {})
                  for call in calls)
    assert behaviour.echoed_input(grown, calls, {"animal": "cat", "legs": 4}) is None
    by_argument = behaviour.probe_calls("same", {}, [7])
    assert behaviour.echoed_input(tuple(behaviour.outcome(c.args[0], {}, {})
                                        for c in by_argument), by_argument, {}) == "x"


def test_an_echo_counts_only_when_nothing_else_ran():
    echo = candidate("a", "cat", "dog", "ox")
    echo.echoes = True
    verdict = dnu.decide([echo] * 4 + [candidate("b", "cats", "dogs", "oxs")])
    assert verdict.cluster.representative.source == "b" and not verdict.final
    assert dnu.decide([echo] * 4).cluster.representative.source == "a"


def test_a_literal_that_copies_an_input_s_value_reads_the_input():
    mandate = dnu.Mandate("p", "p", {"price": 80, "tax_rate": 0.25, "name": "Ada",
                                     "count": 2}, (), (), "tax", (30,), dnu.NO_EXPECTATION, ())
    for written, read in [
            ("return self.price * 0.25", "return self.price * self.tax_rate"),
            ("return self.price - 30", "return self.price - x"),
            ("return 'Hello ' + 'Ada'", "return 'Hello ' + self.name"),
            ("return self.price * 2", "return self.price * 2"),        # an everyday constant
            ("return self.tax_rate + 0.25", "return self.tax_rate + 0.25"),  # read already
    ]:
        source = f"def tax(self, x):\n    {written}\n"
        assert dnu.reads_its_inputs(source, mandate) == f"def tax(self, x):\n    {read}\n"


def test_a_precedent_is_an_example_of_the_selector_on_the_same_slots_and_scales():
    def example(slots, call, source):
        return f"Slots: {slots}\nWrite the method with_tax, called as {call}.\n{source}"
    tax = "def with_tax(self, x):\n    return self.price * (1 + x / 100)\n"
    other = "def taxed(self, x):\n    return self.price * x\n"
    examples = (example("price = 50", "with_tax(x) with x = 20", tax),
                example("price = 50", "taxed(x) with x = 20", other),
                example("price = 50, shop = 'a, b = c'", "with_tax(x) with x = 20", tax))
    mandate = dnu.Mandate("p", "r", {"price": 40}, (), (), "with_tax", (15,),
                          examples=examples)
    assert dnu.precedents(mandate) == ("exact", [[tax]])  # same selector, slots and scale only
    rate = dnu.Mandate("p", "r", {"price": 40}, (), (), "with_tax", (0.2,), examples=examples)
    assert dnu.precedents(rate) == (None, [])  # a percentage is no precedent for a rate
    tip = example("bill = 40, tip_rate = 15", "tip()", "def tip(self):\n    return 1\n")
    for rate, groups in ((0.15, 0), (12, 1)):
        mandate = dnu.Mandate("p", "r", {"bill": 20, "tip_rate": rate}, (), (), "tip", (),
                              examples=(tip.replace("with_tax", "tip"),))
        assert len(dnu.precedents(mandate)[1]) == groups  # nor a slot's


def test_an_example_over_other_slot_names_is_read_every_way_the_kinds_allow():
    sides = ("Slots: a = 3, b = 4, c = 5\nWrite the method perimeter, called as perimeter()."
             "\ndef perimeter(self):\n    return self.a + self.b + self.c\n")
    mandate = dnu.Mandate("p", "r", {"side_a": 2, "side_b": 2, "side_c": 3, "name": "t"}, (),
                          (), "perimeter", (), examples=(sides,))
    assert dnu.precedents(mandate) == (None, [])  # a slot more than the example: no precedent
    triangle = dataclasses.replace(mandate, slots={"p": 2, "q": 2, "r": 3})
    kind, (readings,) = dnu.precedents(triangle)
    assert kind == "read" and len(readings) == 6 and all(
        sorted(re.findall(r"self\.(\w)", r)) == ["p", "q", "r"] for r in readings)


def test_a_slot_of_the_same_name_is_read_onto_itself():
    """`bus.is_full` over passengers and seats, for passengers and capacity: passengers stays
    passengers (read both ways, the two readings disagree and the precedent is lost). When
    every slot has its same name (first and first_name), the example is over the very slots.
    A shared word is no same name: seats is not seats_taken."""
    bus = ("Slots: passengers = 50, seats = 50\nWrite the method is_full, called as "
           "is_full().\ndef is_full(self):\n    return self.passengers >= self.seats\n")
    mandate = dnu.Mandate("p", "r", {"capacity": 40, "passengers": 40}, (), (), "is_full", (),
                          examples=(bus,))
    assert dnu.precedents(mandate) == (
        "read", [["def is_full(self):\n    return self.passengers >= self.capacity\n"]])
    taken = dataclasses.replace(mandate, slots={"seats_taken": 40, "capacity": 40})
    assert len(dnu.precedents(taken)[1][0]) == 2
    initials = ("Slots: first = 'Ada', last = 'King'\nWrite the method initials, called as "
                "initials().\ndef initials(self):\n    return self.first[0] + self.last[0]\n")
    named = dataclasses.replace(mandate, selector="initials", examples=(initials,),
                                slots={"last_name": "Hopper", "first_name": "Grace"})
    assert dnu.precedents(named) == ("exact", [
        ["def initials(self):\n    return self.first_name[0] + self.last_name[0]\n"]])


def test_slot_names_are_the_same_but_for_a_unit_or_name_only_one_of_them_has():
    assert dnu._same_name("width", "width_m") and dnu._same_name("first", "first_name")
    assert not dnu._same_name("height_cm", "height_m")
    assert not dnu._same_name("seats", "seats_taken")


def test_a_slot_is_never_read_as_one_in_another_unit_or_as_the_present():
    """`speed_kmh` over distance_km and time_minutes is no precedent over hours, nor
    `days_until` over event_day over current_day (read so, both were installed wrong and
    final); flour_g is read onto flour_grams, not onto servings; and a selector that asks
    for a unit its precedent does not name is no kin of it."""
    jogger = ("Slots: distance_km = 5, time_minutes = 30\nWrite the method speed_kmh, called "
              "as speed_kmh().\ndef speed_kmh(self):\n"
              "    return self.distance_km / self.time_minutes * 60\n")
    mandate = dnu.Mandate("p", "r", {"distance_km": 42.0, "hours": 3.5}, (), (), "speed_kmh",
                          (), examples=(jogger,))
    assert dnu.precedents(mandate) == (None, [])
    recipe = ("Slots: servings = 4, flour_g = 200\nWrite the method flour_for, called as "
              "flour_for(x) with x = 6.\ndef flour_for(self, x):\n"
              "    return self.flour_g / self.servings * x\n")
    scaled = dataclasses.replace(mandate, selector="flour_for", args=(6,), examples=(recipe,),
                                 slots={"flour_grams": 300, "servings": 4})
    assert dnu.precedents(scaled) == ("read", [[
        "def flour_for(self, x):\n    return self.flour_grams / self.servings * x\n"]])
    volume = ("Slots: length = 2, width = 3, height = 4\nWrite the method volume, called as "
              "volume().\ndef volume(self):\n    return self.length * self.width * self.height\n")
    litres = dataclasses.replace(mandate, selector="volume_liters", examples=(volume,),
                                 slots={"length_cm": 40, "width_cm": 30, "height_cm": 20})
    assert dnu.precedents(litres) == (None, [])
    assert dnu._clash("time_minutes", "hours") and not dnu._clash("flour_g", "flour_grams")
    assert not dnu._clash("width_m", "width")
    countdown = ("Slots: event_day = 200\nWrite the method days_until, called as days_until(x) "
                 "with x = 150.\ndef days_until(self, x):\n    return self.event_day - x\n")
    today = dataclasses.replace(mandate, selector="days_until", args=(120,),
                                examples=(countdown,), slots={"current_day": 100})
    assert dnu.precedents(today) == (None, [])  # the present is not the event
    assert dnu.precedents(dataclasses.replace(today, slots={"due_day": 100}))[0] == "read"


def test_an_example_over_the_very_slot_names_outranks_those_read_by_kind():
    def area(slots, body):
        return (f"Slots: {slots}\nWrite the method area, called as area().\n"
                f"def area(self):\n    return {body}\n")
    rectangle = area("width = 3, height = 4", "self.width * self.height")
    triangle = area("base = 6, height = 4", "self.base * self.height / 2")
    mandate = dnu.Mandate("p", "r", {"width": 2, "height": 5}, (), (), "area", (),
                          examples=(triangle, rectangle))
    assert dnu.precedents(mandate) == (
        "exact", [["def area(self):\n    return self.width * self.height\n"]])
    kind, (readings,) = dnu.precedents(dataclasses.replace(mandate, examples=(triangle,)))
    assert kind == "read" and readings == [
        "def area(self):\n    return self.width * self.height / 2\n"]  # height stays height


def test_an_example_with_fewer_selector_words_is_related_when_the_rest_names_a_slot():
    highest = ("Slots: values = [3, 9, 4]\nWrite the method highest, called as highest().\n"
               "def highest(self):\n    return max(self.values)\n")
    mandate = dnu.Mandate("p", "r", {"temperatures": [12.5, 18.0]}, (), (),
                          "highest_temperature", (), examples=(highest,))
    assert dnu.precedents(mandate) == (
        "related", [["def highest_temperature(self):\n    return max(self.temperatures)\n"]])
    unnamed = dataclasses.replace(mandate, selector="highest_reading")
    assert dnu.precedents(unnamed)[0] == "kin"  # "reading" names no slot
    wider = dataclasses.replace(mandate, selector="highest_ever_temperature")
    assert dnu.precedents(wider)[0] == "kin"
    assert dnu.precedents(dataclasses.replace(mandate, selector="high"))[0] is None
    exact = highest.replace("highest", "highest_temperature").replace("values", "temperatures")
    assert dnu.precedents(dataclasses.replace(mandate, examples=(highest, exact)))[0] == "exact"


def test_a_selector_means_its_words_in_any_order_without_plurals_or_filler():
    pounds = ("Slots: kilograms = 2\nWrite the method pounds, called as pounds().\n"
              "def pounds(self):\n    return self.kilograms * 2.20462\n")
    mandate = dnu.Mandate("p", "r", {"weight_kg": 3}, (), (), "weight_in_pounds", (),
                          examples=(pounds,))
    assert dnu.precedents(mandate) == (
        "related", [["def weight_in_pounds(self):\n    return self.weight_kg * 2.20462\n"]])
    count = ("Slots: items = ['a']\nWrite the method count_items, called as count_items().\n"
             "def count_items(self):\n    return len(self.items)\n")
    assert dnu.precedents(dataclasses.replace(
        mandate, selector="item_count", slots={"items": ["b", "c"]}, examples=(count,)))[0] \
        == "related"
    stock = pounds.replace("pounds", "stock")
    assert dnu.precedents(dataclasses.replace(mandate, selector="in_stock",
                                              examples=(stock,)))[0] == "kin"


def test_a_question_answers_the_contrary_of_its_opposite():
    paid = ("Slots: amount = 40, amount_paid = 40\nWrite the method is_paid, called as "
            "is_paid().\ndef is_paid(self):\n    return self.amount_paid >= self.amount\n")
    mandate = dnu.Mandate("p", "r", {"amount": 90, "amount_paid": 20}, (), (), "is_unpaid",
                          (), examples=(paid,))
    assert dnu.precedents(mandate) == ("related", [[
        "def is_unpaid(self):\n    return not (self.amount_paid >= self.amount)\n"]])
    assert dnu.precedents(dataclasses.replace(mandate, selector="is_overpaid"))[0] is None
    assert library._words("is_unpaid") == library._words("is_paid")


def test_an_example_over_some_of_the_slots_counts_when_the_others_are_of_other_kinds():
    done = ("Slots: done = False\nWrite the method mark_done, called as mark_done().\n"
            "def mark_done(self):\n    self.done = True\n    self._p_changed = True\n")
    mandate = dnu.Mandate("p", "r", {"done": False, "title": "File taxes"}, (), (),
                          "mark_done", (), examples=(done,))
    assert dnu.precedents(mandate) == ("partial", [[done.split("\n", 2)[2]]])
    initials = ("Slots: first = 'Ada', last = 'King'\nWrite the method initials, called as "
                "initials().\ndef initials(self):\n    return self.first[0] + self.last[0]\n")
    middle = dataclasses.replace(mandate, selector="initials", examples=(initials,), slots={
        "first_name": "Grace", "middle_name": "Brewster", "last_name": "Hopper"})
    assert dnu.precedents(middle) == (None, [])  # the middle name is a text, as first and last


def test_a_count_of_what_an_example_lists_is_its_length():
    passing = ("Slots: marks = [40, 75], pass_mark = 50\nWrite the method passing, called as "
               "passing().\ndef passing(self):\n"
               "    return [n for n in self.marks if n >= self.pass_mark]\n")
    mandate = dnu.Mandate("p", "r", {"marks": [55, 20], "pass_mark": 50}, (), (),
                          "count_passing", (), examples=(passing,))
    assert dnu.precedents(mandate) == ("kin", [[
        "def count_passing(self):\n"
        "    return len([n for n in self.marks if n >= self.pass_mark])\n"]])


def test_an_example_that_says_the_selector_of_other_things_is_an_analogy():
    """`days_remaining` over days_allowed and days_taken says `minutes_left` of days: read
    with the whole onto the whole; sharing only a linking word (`flour_for`, `fare_for`) or
    a word the selector uses of no slot is no analogy."""
    days = ("Slots: days_allowed = 25, days_taken = 17\nWrite the method days_remaining, "
            "called as days_remaining().\ndef days_remaining(self):\n"
            "    return self.days_allowed - self.days_taken\n")
    mandate = dnu.Mandate("p", "r", {"elapsed_minutes": 35, "duration_minutes": 90}, (), (),
                          "minutes_left", (), analogies=(days,))
    assert dnu.precedents(mandate) == ("analogous", [
        ["def minutes_left(self):\n    return self.duration_minutes - self.elapsed_minutes\n"]])
    assert dnu._analogy("minutes_left", "days_remaining", mandate.slots,
                        {"days_allowed": 25, "days_taken": 17}) == ({"day"}, {"minute"})
    assert dnu._analogy("fare_for", "flour_for", {"base_fare": 3.0, "per_km": 1.5},
                        {"flour_g": 200, "servings": 4}) is None
    assert dnu._analogy("tickets_left", "tickets_sold", {"tickets": 90, "sold": 3},
                        {"tickets": 90, "sold": 3}) is None  # `left` names no slot


def test_a_weaker_kind_of_precedent_counts_when_no_stronger_one_is_read_one_way():
    """The image's examples in every kind found, strongest first (`Learner._precedents`
    takes the first kind one of whose groups is read one way only)."""
    percentage = ("Slots: correct = 18, questions = 20\nWrite the method percentage, called "
                  "as percentage().\ndef percentage(self):\n"
                  "    return self.correct / self.questions * 100\n")
    used = ("Slots: used_gb = 3, limit_gb = 10\nWrite the method used_percent, called as "
            "used_percent().\ndef used_percent(self):\n"
            "    return self.used_gb / self.limit_gb * 100\n")
    mandate = dnu.Mandate("p", "r", {"wins": 12, "games_played": 20}, (), (), "win_percentage",
                          (), examples=(percentage,), analogies=(used,))
    (related, groups), (analogous, readings) = dnu.precedents_by_kind(mandate)
    assert related == "related" and len(groups[0]) == 2  # read both ways
    assert analogous == "analogous" and readings == [
        ["def win_percentage(self):\n    return self.wins / self.games_played * 100\n"]]


def test_a_related_precedent_is_final_with_a_sample_a_kin_partial_or_analogous_one_never():
    for kind, final, says in (("related", True, "image's own method"),
                              ("partial", False, "only some"), ("kin", False, "fewer words"),
                              ("analogous", False, "analogy")):
        precedent = candidate("image's own", 14, 22, 12)
        precedent.sampled, precedent.precedent = False, kind
        verdict = dnu.decide([candidate("a", 7, 11, 6)] * 2 + [candidate("b", 14, 22, 12),
                                                               precedent])
        assert verdict.cluster.representative.source == "image's own"
        assert verdict.final is final and says in verdict.reason and verdict.settled


def test_a_kin_precedent_no_sample_wrote_leads_nothing():
    """`total` read for `total_deposits`, and no sample behaves so: the samples choose."""
    precedent = candidate("image's own", 14, 22, 12)
    precedent.sampled, precedent.precedent = False, "kin"
    verdict = dnu.decide([candidate("a", 7, 11, 6)] * 2 + [precedent])
    assert verdict.cluster.representative.source == "a" and not verdict.final


def test_a_selector_with_a_word_that_says_how_many_is_no_kin():
    slots = {"items": [5, 6, 7, 8]}
    assert dnu._relation("first_three", "first", slots) is None
    assert dnu._relation("top_two_scores", "top_score", {"scores": [1]}) is None
    assert dnu._relation("tip_amount", "tip", {"bill": 10}) == "kin"


def test_precedents_that_disagree_make_nothing_final():
    one = candidate("width * height", 10, 30, 8)
    other = candidate("triangle read onto the receiver", 5, 15, 4)
    for precedent in (one, other):
        precedent.sampled, precedent.precedent = False, "exact"
    samples = [candidate("a", 10, 30, 8)] * 3
    verdict = dnu.decide(samples + [one, other])
    assert not verdict.final and "in different ways" in verdict.reason
