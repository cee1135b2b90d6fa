"""kernel.dnu: the `_doesNotUnderstand` cycle end to end, with the scripted backend.

Real ZEO server, real `batos` processes; only the model is the scripted double.
"""
import json
import re
import time

import pytest

from conftest import one_line_error, run_batos
from kernel import behaviour, dnu, genesis
from kernel.image import connect

pytestmark = pytest.mark.shared_server  # each test: a fresh lobby on the module's server

AREA = "def area(self):\n    return self.width * self.height\n"


def script(tmp_path, rules):
    """Write a scripted-backend rule file; return the BATOS_LLM environment for it."""
    path = tmp_path / "script.json"
    path.write_text(json.dumps(rules))
    return {"BATOS_LLM": f"scripted:{path}"}


def send(home, *args, env, check=False):
    return run_batos("send", *args, "--json", home=home.path, env=env, check=check)


def mandate_entries(home):
    image = connect(home.zeo_address, personas=home.personas)
    try:
        return image.run(lambda lobby: {k: dict(v) for k, v in lobby.mandates.entries.items()})
    finally:
        image.close()


def since_genesis(rows):
    """The transactions of the test's own lobby, newest first: those after its genesis (the
    module's tests share one server, whose history holds the earlier tests' too)."""
    notes = [row["note"] for row in rows]
    return notes[:notes.index(genesis.GENESIS_NOTE)]


def notes(home):
    return since_genesis(json.loads(
        run_batos("log", "--limit", "1000", "--json", home=home.path, check=True).stdout))


@pytest.fixture
def rect(home, zeo):
    run_batos("new", "rect", "--slots", '{"width": 3, "height": 4}', home=home.path, check=True)
    return home


def test_a_missing_method_is_learned_installed_and_resent(rect, tmp_path):
    env = script(tmp_path, [{"persona": "BRICK", "match": "Write the method area", "reply": AREA}])
    outcome = json.loads(send(rect, "rect", "area", env=env, check=True).stdout)
    assert outcome["result"] == 12 and outcome["learned"] is True
    assert outcome["source"] == AREA and outcome["attempts"] == 1
    assert outcome["audit"] == {"ok": True, "violations": []} and outcome["persona"] == "BRICK"
    again = json.loads(send(rect, "rect", "area", env=env, check=True).stdout)
    assert (again["result"], again["learned"], again["attempts"]) == (12, False, 0)
    method = json.loads(run_batos("inspect", "rect", "--json", home=rect.path,
                                  check=True).stdout)["methods"]["area"]
    provenance = method["provenance"]
    assert provenance["author"] == "BRICK" and provenance["attempts"] == 1
    assert provenance["model"].startswith("scripted:")
    assert provenance["mandate"]["slots"] == {"height": 4, "width": 3}
    assert "BRICK learned rect.area (receiver rect)" in notes(rect)
    (entry,) = mandate_entries(rect).values()
    assert entry["status"] == "learned"


def test_the_human_report_shows_result_and_source(rect, tmp_path):
    env = script(tmp_path, [{"match": "Write the method area", "reply": AREA}])
    out = run_batos("send", "rect", "area", home=rect.path, env=env, check=True).stdout
    lines = out.splitlines()
    assert lines[0] == "12" and lines[1].startswith("learned in 1 attempt(s) by BRICK")
    assert lines[2:] == ["  | def area(self):", "  |     return self.width * self.height"]


def test_a_hostile_generated_method_is_rejected_and_nothing_is_installed(rect, tmp_path):
    env = script(tmp_path, [{"match": "Write the method area",
                             "reply": "def area(self):\n    return self._p_jar.root()\n"}])
    before = notes(rect)
    result = send(rect, "rect", "area", env=env)
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("batos: could not learn rect.area: no "
                                                   "working method after 3 attempts")
    assert "_p_jar" in error[0]
    outcome = json.loads(result.stdout)
    assert outcome["learned"] is False and outcome["attempts"] == 3
    assert all("guardian rejected" in step["problem"] for step in outcome["history"])
    inspected = json.loads(run_batos("inspect", "rect", "--json", home=rect.path,
                                     check=True).stdout)
    assert inspected["methods"] == {}
    (entry,) = mandate_entries(rect).values()
    assert entry["status"] == "failed" and "_p_jar" in entry["reason"]
    after = notes(rect)
    added = after[:len(after) - len(before)]
    assert [n.split(":")[0] for n in added] == ["BRICK could not learn rect.area",
                                                "mandate rect.area"]


def test_a_trial_failure_is_fed_back_and_the_second_attempt_installs(rect, tmp_path):
    env = script(tmp_path, [
        {"match": "ZeroDivisionError", "reply": "def ratio(self):\n    return self.width / "
                                                "self.height\n"},
        {"match": "Write the method ratio", "reply": "def ratio(self):\n    return self.width "
                                                     "/ 0\n"}])
    outcome = json.loads(send(rect, "rect", "ratio", env=env, check=True).stdout)
    assert outcome["learned"] and outcome["attempts"] >= 2 and outcome["result"] == 0.75
    assert "raised ZeroDivisionError" in outcome["history"][0]["problem"]


def test_the_expectation_decides_the_trial(rect, tmp_path):
    env = script(tmp_path, [
        {"match": "returned 7", "reply": "def perimeter(self):\n    return 2 * (self.width + "
                                         "self.height)\n"},
        {"match": "Write the method perimeter", "reply": "def perimeter(self):\n    return "
                                                    "self.width + self.height\n"}])
    result = run_batos("send", "rect", "perimeter", "--expect", "14", "--json",
                       home=rect.path, env=env, check=True)
    outcome = json.loads(result.stdout)
    assert (outcome["result"], outcome["attempts"]) == (14, 2)
    assert "returned 7 but the caller expects 14" in outcome["history"][0]["problem"]


def test_arguments_reach_the_mandate_and_the_method(rect, tmp_path):
    env = script(tmp_path, [{"match": r"called as scaled\(x\) with x = 2",
                             "reply": "def scaled(self, x):\n    return self.width * x\n"}])
    outcome = json.loads(send(rect, "rect", "scaled", "2", env=env, check=True).stdout)
    assert outcome["result"] == 6 and outcome["learned"]


def test_nonsense_from_the_model_is_a_recorded_failure(rect, tmp_path):
    env = script(tmp_path, [{"match": ".", "reply": "I would love to help with that!"}])
    result = send(rect, "rect", "area", env=env)
    assert result.returncode == 1 and "does not parse" in result.stderr
    assert json.loads(run_batos("inspect", "rect", "--json", home=rect.path,
                                check=True).stdout)["methods"] == {}


def test_a_script_without_a_rule_names_the_persona(rect, tmp_path):
    env = script(tmp_path, [{"persona": "ROBIN", "match": ".", "reply": AREA}])
    result = send(rect, "rect", "area", env=env)
    assert result.returncode == 1 and "no rule for persona BRICK" in result.stderr
    (entry,) = mandate_entries(rect).values()
    assert entry["status"] == "failed"


def test_no_model_is_a_clear_recorded_failure(rect):
    config = rect.path / "batos.toml"
    config.write_text(config.read_text().replace(
        '[models.builder-qwen-coder]\ngguf = "parts:qwen2.5-coder-1.5b-instruct"',
        '[models.builder-qwen-coder]\ngguf = "/nowhere/model.gguf"'))
    result = send(rect, "rect", "area", env={"BATOS_LLM": ""})
    assert result.returncode == 1
    line = result.stderr.strip()
    assert "models.builder-qwen-coder.gguf: no GGUF file at /nowhere/model.gguf" in line
    (entry,) = mandate_entries(rect).values()
    assert entry["status"] == "failed"


def test_a_method_that_exists_is_just_sent(rect, tmp_path):
    run_batos("define", "rect", "area", "--source", AREA, home=rect.path, check=True)
    env = script(tmp_path, [])
    outcome = json.loads(send(rect, "rect", "area", env=env, check=True).stdout)
    assert (outcome["result"], outcome["learned"]) == (12, False)
    assert mandate_entries(rect) == {}


def test_two_processes_missing_the_same_selector_cause_one_generation(actors, image, tmp_path):
    with image.transaction() as lobby:
        lobby.rect = lobby.traits.clone(width=3, height=4)
    env = script(tmp_path, [{"match": "Write the method area", "reply": AREA, "delay": 1.0}])
    first, second = actors(2, env=env)
    for actor in (first, second):
        actor.call("connect")
    for actor in (first, second):
        actor.write(op="learn", path="rect", selector="area")
    outcomes = [actor.read()["result"] for actor in (first, second)]
    assert [o["result"] for o in outcomes] == [12, 12]
    assert sorted(o["learned"] for o in outcomes) == [False, True]
    assert sorted(o["waited"] for o in outcomes) == [False, True]
    learned = [note for note in since_genesis(image.history(1000))
               if "learned rect.area" in note]
    assert len(learned) == 1
    entries = image.run(lambda lobby: [dict(v) for v in lobby.mandates.entries.values()])
    assert len(entries) == 1 and len(entries[0]["history"]) == len(dnu.DEFAULT_TEMPERATURES)


# -- without an expectation: the behaviour the candidates agree on, never a guess as fact ------

HALF = "def rim(self):\n    return self.width + self.height\n"  # no seed method answers `rim`
FULL = "def rim(self):\n    return 2 * (self.width + self.height)\n"


def inspect(home):
    return json.loads(run_batos("inspect", "rect", "--json", home=home.path,
                                check=True).stdout)["methods"]


def test_samples_agreeing_on_a_word_nobody_knows_stay_provisional(rect, tmp_path):
    """`[dnu] agreement_final` is on, and every sample writes the same method: still no
    fact, since neither the image nor the (scripted) model knows the word `zorble`."""
    env = script(tmp_path, [{"match": "Write the method zorble",
                             "reply": "def zorble(self):\n    return self.width * 2 + "
                                      "self.height\n"}])
    outcome = json.loads(send(rect, "rect", "zorble", env=env, check=True).stdout)
    assert outcome["learned"] and outcome["provisional"] and outcome["result"] == 10
    assert "agree on it, but" in outcome["evidence"]["reason"]
    (entry,) = mandate_entries(rect).values()
    assert entry["mandate"]["unknown_words"] == ["zorble"]


def test_candidates_that_disagree_install_a_provisional_method_that_says_so(rect, tmp_path):
    env = script(tmp_path, [{"match": "Write the method rim", "reply": [HALF, FULL]}])
    outcome = json.loads(send(rect, "rect", "rim", env=env, check=True).stdout)
    # no method of the image answers `rim`, so nothing can make it final; the samples split
    # two ways, so more were asked for, which might have changed the choice
    assert outcome["learned"] and outcome["provisional"] and outcome["attempts"] > 1
    sampled = [b for b in outcome["evidence"]["behaviours"] if b["votes"]]
    assert {b["source"] for b in sampled} == {HALF, FULL}  # and neighbours, with no votes
    assert all(b["votes"] >= 2 for b in sampled) and outcome["result"] in (7, 14)
    provenance = inspect(rect)["rim"]["provenance"]
    assert provenance["provisional"] is True and provenance["evidence"]["final"] is False
    human = run_batos("inspect", "rect", home=rect.path, check=True).stdout
    assert "PROVISIONAL" in human and "batos confirm rect rim makes it final" in human
    assert any(n.startswith("BRICK learned rect.rim (provisional)") for n in notes(rect))
    (entry,) = mandate_entries(rect).values()
    assert entry["status"] == "provisional"
    again = run_batos("send", "rect", "rim", home=rect.path, env=env, check=True).stdout
    assert again.strip() in ("7", "14")  # it answers, as a provisional method does


def test_a_send_out_of_time_judges_the_samples_it_has_and_installs_them_provisional(
        rect, tmp_path):
    """`[dnu] seconds` bounds the whole send: with none left, the first sample that runs is
    judged alone (the second would have overruled it) and installed provisional."""
    config = rect.path / "batos.toml"
    config.write_text(re.sub(r"\nseconds = [0-9.]+", "\nseconds = 0.0", config.read_text(),
                             count=1))
    env = script(tmp_path, [{"match": "Write the method rim", "reply": [HALF, FULL, FULL]}])
    outcome = json.loads(send(rect, "rect", "rim", env=env, check=True).stdout)
    assert outcome["learned"] and outcome["provisional"] and outcome["attempts"] == 1
    assert [step["source"] for step in outcome["history"]] == [HALF]
    assert outcome["source"] == HALF and outcome["result"] == 7


def test_samples_that_behave_as_the_image_s_own_method_for_the_selector_are_final(
        rect, tmp_path):
    half, full = (source.replace("rim", "perimeter") for source in (HALF, FULL))
    env = script(tmp_path, [{"match": "Write the method perimeter", "reply": [half, full]}])
    outcome = json.loads(send(rect, "rect", "perimeter", env=env, check=True).stdout)
    assert outcome["learned"] and not outcome["provisional"] and outcome["result"] == 14
    assert "behave as the image's own method for this selector on another object" in \
        outcome["evidence"]["reason"]
    assert outcome["source"] == full


def test_the_image_s_own_method_over_the_very_slot_names_is_final_though_no_sample_wrote_it(
        rect, tmp_path):
    """rect has width and height, as the seed's frame.perimeter does: samples that scatter
    over other behaviours do not outweigh what the image already knows."""
    guesses = [f"def perimeter(self):\n    return {body}\n" for body in
               ("self.width + self.height", "self.width * 2", "self.height * 3")]
    env = script(tmp_path, [{"match": "Write the method perimeter", "reply": guesses}])
    outcome = json.loads(send(rect, "rect", "perimeter", env=env, check=True).stdout)
    assert outcome["learned"] and not outcome["provisional"] and outcome["result"] == 14
    assert outcome["evidence"]["reason"].startswith("0 of ")
    assert outcome["evidence"]["reason"].endswith("over these very slots")


def test_a_precedent_over_other_slot_names_counts_only_when_every_reading_agrees(home, zeo,
                                                                                 tmp_path):
    run_batos("new", "plot", "--slots", '{"edge": 6}', home=home.path, check=True)
    run_batos("new", "stall", "--slots", '{"takings": 9, "outgoings": 4}', home=home.path,
              check=True)
    env = script(tmp_path, [
        {"match": "Write the method perimeter", "reply": [
            "def perimeter(self):\n    return self.edge * self.edge\n",
            "def perimeter(self):\n    return 4 * self.edge\n"]},
        {"match": "Write the method profit", "reply": [
            "def profit(self):\n    return self.takings + self.outgoings\n",
            "def profit(self):\n    return self.takings - self.outgoings\n"]}])
    # the seed's tile.perimeter (4 * self.side) read with `edge` for `side`
    plot = json.loads(send(home, "plot", "perimeter", env=env, check=True).stdout)
    assert (plot["result"], plot["provisional"]) == (24, False)
    assert plot["source"] == "def perimeter(self):\n    return 4 * self.edge\n"
    # shop.profit (revenue - costs) read both ways round behaves two ways (no slot shares a
    # word with takings or outgoings): no precedent
    stall = json.loads(send(home, "stall", "profit", env=env, check=True).stdout)
    assert stall["provisional"]
    assert not any(b["precedent"] for b in stall["evidence"]["behaviours"])
    # market_stall.profit (income - expenses): income stays income, one reading, final
    run_batos("new", "kiosk", "--slots", '{"income": 9, "spending": 4}', home=home.path,
              check=True)
    guess = script(tmp_path, [{"match": "Write the method profit", "reply": [
        "def profit(self):\n    return self.income + self.spending\n",
        "def profit(self):\n    return self.income - self.spending\n"]}])
    kiosk = json.loads(send(home, "kiosk", "profit", env=guess, check=True).stdout)
    assert (kiosk["result"], kiosk["provisional"]) == (5, False)
    assert kiosk["source"] == "def profit(self):\n    return self.income - self.spending\n"


def test_confirm_makes_a_provisional_method_final_and_keeps_its_history(rect, tmp_path):
    env = script(tmp_path, [{"match": "Write the method rim", "reply": [HALF, FULL]}])
    send(rect, "rect", "rim", env=env, check=True)
    out = run_batos("confirm", "rect", "rim", home=rect.path, check=True).stdout
    assert out.strip() == "confirmed rect.rim: it is final now"
    method = inspect(rect)["rim"]
    assert method["provenance"]["provisional"] is False and method["versions"] == 2
    assert method["provenance"]["confirmed_by"] == "batos-cli"
    assert "confirmed by batos-cli" in run_batos("inspect", "rect", home=rect.path).stdout
    (entry,) = mandate_entries(rect).values()
    assert entry["status"] == "learned"
    again = run_batos("confirm", "rect", "rim", home=rect.path)
    assert one_line_error(again) == ("batos: rect.rim is already final; only a "
                                     "provisional method can be confirmed")


def test_an_expectation_that_contradicts_a_provisional_method_relearns_it(rect, tmp_path):
    env = script(tmp_path, [
        {"match": "returned 7 but the caller expects 14", "reply": FULL},
        {"match": "Write the method rim", "reply": [HALF, FULL]}])
    first = json.loads(send(rect, "rect", "rim", env=env, check=True).stdout)
    assert first["provisional"] and first["source"] == HALF and first["result"] == 7
    fixed = json.loads(send(rect, "rect", "rim", "--expect", "14", env=env,
                            check=True).stdout)
    assert fixed["result"] == 14 and fixed["learned"] and not fixed["provisional"]
    method = inspect(rect)["rim"]
    assert method["source"] == FULL and method["versions"] == 2
    assert method["provenance"]["provisional"] is False


def test_an_expectation_that_a_provisional_method_meets_confirms_it(rect, tmp_path):
    env = script(tmp_path, [{"match": "Write the method rim", "reply": [FULL, HALF]}])
    first = json.loads(send(rect, "rect", "rim", env=env, check=True).stdout)
    assert first["provisional"] and first["source"] == FULL
    met = json.loads(send(rect, "rect", "rim", "--expect", "14", env=env,
                          check=True).stdout)
    assert (met["result"], met["confirmed"], met["learned"]) == (14, True, False)
    assert inspect(rect)["rim"]["provenance"]["confirmed_by"] == "an expectation"


def test_a_command_is_learned_with_the_covenant_and_changes_the_receiver(home, zeo, tmp_path):
    run_batos("new", "counter", "--slots", '{"count": 5}', home=home.path, check=True)
    bump = ("def increment(self):\n    self.count = self.count + 1\n"
            "    self._p_changed = True\n    return self.count\n")
    env = script(tmp_path, [{"match": "Write the method increment", "reply": bump}])
    outcome = json.loads(send(home, "counter", "increment", env=env, check=True).stdout)
    assert outcome["learned"] and not outcome["provisional"] and outcome["result"] == 6
    assert outcome["evidence"]["behaviours"][0]["changes_state"] is True
    inspected = json.loads(run_batos("inspect", "counter", "--json", home=home.path,
                                     check=True).stdout)
    assert inspected["slots"]["count"] == 6  # the trial changed nothing, the send once


def test_when_no_sample_meets_the_expectation_the_search_proposes_and_the_model_chooses(
        rect, tmp_path):
    env = script(tmp_path, [{"match": "Write the method perimeter",
                             "reply": "def perimeter(self):\n    return self.width + self.height\n"}])
    outcome = json.loads(send(rect, "rect", "perimeter", "--expect", "14", env=env,
                              check=True).stdout)
    assert outcome["result"] == 14 and outcome["learned"] and not outcome["provisional"]
    assert outcome["attempts"] == 3
    searched = [step for step in outcome["history"] if step["candidate"] == "search"]
    assert searched and searched[-1]["source"] == outcome["source"]
    assert searched[-1]["problem"] is None and searched[-1]["proposals"] > 1
    assert inspect(rect)["perimeter"]["source"] == outcome["source"]


def test_a_method_that_writes_an_input_s_value_reads_the_input_instead(rect, tmp_path):
    env = script(tmp_path, [{"match": "Write the method scaled",
                             "reply": "def scaled(self, x):\n    return self.width * 5\n"}])
    outcome = json.loads(send(rect, "rect", "scaled", "5", "--expect", "15", env=env,
                              check=True).stdout)
    assert outcome["source"].endswith("return self.width * x\n")
    assert outcome["attempts"] == 1
    assert outcome["history"][0]["written"].endswith("return self.width * 5\n")
    assert inspect(rect)["scaled"]["source"] == outcome["source"]


def test_a_method_that_writes_the_expected_result_is_sent_back(rect, tmp_path):
    env = script(tmp_path, [
        {"match": "instead of computing it",
         "reply": "def grown(self, x):\n    return self.width + x\n"},
        {"match": "Write the method grown",
         "reply": "def grown(self, x):\n    self.width = self.width + x\n"
                  "    self._p_changed = True\n    return 8\n"}])
    outcome = json.loads(send(rect, "rect", "grown", "5", "--expect", "8", env=env,
                              check=True).stdout)
    assert outcome["source"].endswith("return self.width + x\n")
    assert outcome["history"][0]["problem"] == ("it writes the expected result 8 instead of "
                                                "computing it")
    assert inspect(rect)["grown"]["source"] == outcome["source"]


def test_a_method_that_says_the_selector_of_other_things_is_an_analogy_never_final(
        home, zeo, tmp_path):
    """No method of the image answers `minutes_left`, but the seed's `days_remaining` (days
    allowed − days taken) says it of days: read with the whole onto the whole, it is chosen
    over samples that scatter, and installed provisional."""
    run_batos("new", "timer", "--slots", '{"elapsed_minutes": 35, "duration_minutes": 90}',
              home=home.path, check=True)
    guesses = [f"def minutes_left(self):\n    return {body}\n" for body in
               ("self.elapsed_minutes + self.duration_minutes",
                "self.elapsed_minutes - self.duration_minutes", "self.elapsed_minutes * 2")]
    env = script(tmp_path, [{"match": "Write the method minutes_left", "reply": guesses}])
    outcome = json.loads(send(home, "timer", "minutes_left", env=env, check=True).stdout)
    assert (outcome["result"], outcome["provisional"]) == (55, True)
    assert "(an analogy)" in outcome["evidence"]["reason"]
    [entry] = [e for e in mandate_entries(home).values()
               if e["mandate"]["selector"] == "minutes_left"]
    assert any("def days_remaining(self)" in text for text in entry["mandate"]["analogies"])


def test_a_free_sample_is_cut_to_the_method_it_writes():
    written = ("def rim(self):\n    total = self.width + self.height\n\n    return 2 * total\n"
               "```\nThis returns the rim.\nprint(rect.rim())")
    assert dnu.method_only(written) == ("def rim(self):\n    total = self.width + "
                                        "self.height\n\n    return 2 * total")


def test_the_slots_a_method_invents_are_named():
    mandate = dnu.Mandate("p", "order", {"paid": False, "number": 3}, (), (), "mark_paid", ())
    invents = "def mark_paid(self):\n    self.is_paid = True\n    self.paid = True\n" \
              "    self.status += 'x'\n    self._p_changed = True\n"
    assert dnu.slots_it_invents(invents, mandate) == ["is_paid", "status"]
    assert dnu.slots_it_invents("def mark_paid(self):\n    self.paid = True\n", mandate) == []


def test_without_an_expectation_the_coolest_sample_is_written_freely_and_cut_to_the_method(
        rect, tmp_path):
    """The first sample is written without the grammar: what the model writes after the
    method (a fence, prose) is not part of it."""
    env = script(tmp_path, [{"match": "Write the method rim",
                             "reply": [FULL + "```\nThe rim is twice the sum.", FULL]}])
    outcome = json.loads(send(rect, "rect", "rim", env=env, check=True).stdout)
    assert outcome["learned"] and outcome["result"] == 14
    assert outcome["history"][0]["source"] == FULL and outcome["history"][0]["problem"] is None


def test_a_sample_that_sets_a_slot_the_receiver_lacks_is_refused(rect, tmp_path):
    invents = "def widen(self):\n    self.wide = True\n    self._p_changed = True\n"
    widens = "def widen(self):\n    self.width = self.width + 1\n    self._p_changed = True\n"
    env = script(tmp_path, [{"match": "Write the method widen", "reply": [invents, widens]}])
    outcome = json.loads(send(rect, "rect", "widen", env=env, check=True).stdout)
    assert outcome["history"][0]["problem"] == \
        "it sets self.wide, which the receiver does not have"
    assert outcome["learned"] and outcome["source"] == widens
    slots = json.loads(run_batos("inspect", "rect", "--json", home=rect.path,
                                 check=True).stdout)["slots"]
    assert "wide" not in slots and slots["width"] == 4


def test_a_sample_that_reads_a_slot_the_receiver_lacks_reads_the_one_it_left_unread(
        rect, tmp_path):
    """`self.tall` on an object of width and height: the model named the slot by what it
    holds; read as the receiver's one slot the method does not read, it runs."""
    env = script(tmp_path, [{"match": "Write the method rim", "reply":
                             "def rim(self):\n    return 2 * (self.width + self.tall)\n"}])
    outcome = json.loads(send(rect, "rect", "rim", env=env, check=True).stdout)
    assert outcome["learned"] and outcome["result"] == 14 and outcome["source"] == FULL
    assert outcome["history"][0]["written"].endswith("self.tall)\n")


def test_the_sample_after_a_free_one_that_failed_is_told_why(rect, tmp_path):
    env = script(tmp_path, [
        {"match": "ZeroDivisionError.*\\nWrite a corrected method", "reply": FULL},
        {"match": "Write the method rim", "reply": "def rim(self):\n    return self.width / 0\n"}])
    outcome = json.loads(send(rect, "rect", "rim", env=env, check=True).stdout)
    first, second = outcome["history"][:2]
    assert "raised ZeroDivisionError" in first["problem"]
    assert (second["attempt"], second["source"], second["problem"]) == (1, FULL, None)
    assert outcome["result"] == 14


def test_while_no_sample_has_run_a_sample_gets_its_whole_time_until_the_overrun():
    mandate = dnu.Mandate("p", "rect", {"width": 3}, (), (), "rim", ())
    now = time.monotonic()
    assert dnu._write_seconds(mandate, [], now - 1.0) == dnu.WRITE_SECONDS
    assert dnu._write_seconds(mandate, [], now - dnu.OVERRUN_SECONDS) is None
    ran = behaviour.Candidate(FULL)
    assert dnu._write_seconds(mandate, [ran], now - 1.0) is None
    assert dnu._write_seconds(mandate, [ran], now + 10.0) == dnu.WRITE_SECONDS
