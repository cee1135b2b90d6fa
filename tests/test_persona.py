"""kernel.persona: a persona's request handling on a real image, with the scripted model."""
import json
import re

import pytest

from kernel import conversation, ledger, llm, protocol
from kernel.persona import (PROMPT_PART_CHARS, SPEAK_INSTRUCTIONS, SPOKEN_TURNS,
                            PersonaService)

pytestmark = pytest.mark.shared_server  # each test: a fresh lobby on the module's server


@pytest.fixture
def service(image, home, tmp_path, monkeypatch):
    rules = [
        {"persona": "ROBIN", "match": r"choose plan[\s\S]*\[send rect area\][\s\S]*\n\nwhat is",
         "reply": "send rect area"},
        {"persona": "ROBIN", "match": r"choose plan[\s\S]*\n\nnote", "reply": "remember"},
        {"persona": "ROBIN", "match": r"choose plan[\s\S]*\n\nwhat colour", "reply": "recall"},
        {"persona": "ROBIN", "match": r"choose plan[\s\S]*\n\n(ratio|when)",
         "reply": "send rect ratio"},
        {"persona": "ROBIN", "match": r"choose plan", "reply": "reply"},
        {"persona": "ROBIN", "match": r"- rect: slots width = 3, height = 4; methods area",
         "reply": "I see rect"},
        {"persona": "ALFRED", "match": "choose persona", "reply": "BABS"},
    ]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules))
    monkeypatch.setenv("BATOS_LLM", f"scripted:{path}")
    with image.transaction() as lobby:
        lobby.rect = lobby.traits.clone(width=3, height=4)
        lobby.rect.define("area", "def area(self):\n    return self.width * self.height\n")
        lobby.rect.define("ratio", "def ratio(self):\n    return self.width / 0\n")
    models = llm.ModelRegistry(home.config["models"])
    return lambda name: PersonaService(name, image, models)


def chat(service, name, text, request_id, session="s"):
    return service(name).handle({"id": request_id, "intent": "chat", "session": session,
                                 "text": text})


def test_a_question_about_an_object_is_answered_from_its_result(service, image):
    message = chat(service, "ROBIN", "what is the rect area?", "p1")
    assert message["reply"] == "The area of rect is 12." and message["result"] == [12]
    turns = image.run(lambda lobby: [t["text"] for t in lobby.history.sessions["s"].values()])
    assert turns == ["what is the rect area?", "The area of rect is 12."]


def test_the_prompt_of_a_spoken_answer_names_the_objects_the_request_touches(service):
    assert chat(service, "ROBIN", "tell me about rect", "p1b")["reply"] == "I see rect"


def test_a_fact_remembered_is_recalled_in_another_session(service):
    assert chat(service, "ROBIN", "note that tea is green", "p2", session="a")["reply"] \
        == "I will remember that: Tea is green"
    assert "Tea is green" in chat(service, "ROBIN", "what colour is tea", "p3",
                                  session="b")["reply"]


def test_nothing_remembered_is_said_plainly(service):
    assert chat(service, "ROBIN", "what colour is my sky", "p3b")["reply"] \
        == "I have no memory of that."


def test_a_request_is_executed_once(service, image):
    first = chat(service, "ROBIN", "note that tea is green", "p4")
    again = chat(service, "ROBIN", "note that tea is green", "p4")
    assert again["replayed"] and again["result"] == first["result"]
    assert image.run(lambda lobby: lobby.memory.size()) == 1


def test_a_plan_that_fails_is_a_reply_saying_so_and_commits_no_effect(service, image):
    message = chat(service, "ROBIN", "ratio of rect", "p5")
    assert message["type"] == "reply" and message["reply"].startswith(
        "I could not send rect ratio: ")
    assert image.run(lambda lobby: ledger.lookup(lobby, "p5")["message"]["result"]) == []


def test_alfred_routes_and_audits(service):
    route = service("ALFRED").handle({"id": "p6", "intent": "route", "session": "s",
                                      "text": "remember this"})
    assert route["persona"] == "BABS"
    verdict = service("ALFRED").handle({"id": "p7", "intent": "audit", "session": "s",
                                        "source": "import os"})
    assert verdict["result"]["ok"] is False
    status = service("ALFRED").handle({"id": "p8", "intent": "status", "session": "s"})
    assert status["result"]["personas"] == ["ALFRED", "BABS", "BRICK", "ROBIN"]


def test_unknown_intents_and_missing_fields_are_clear_errors(service):
    assert "cannot serve intent 'fly'" in service("ROBIN").handle(
        {"id": "p9", "intent": "fly", "session": "s"})["error"]
    message = service("ROBIN").handle({"id": "p10", "intent": "inspect", "session": "s",
                                       "target": "nowhere"})
    assert message["type"] == "error" and "no object at 'nowhere'" in message["error"]


def test_inspect_renders_a_btree_slot_that_was_not_loaded_yet(service, image):
    from BTrees.LOBTree import LOBTree
    with image.transaction() as lobby:
        lobby.shelf = lobby.traits.clone(items=LOBTree({n: n for n in range(100)}))
    image.db.cacheMinimize()  # the tree is a ghost until the inspect renders it
    message = service("ROBIN").handle({"id": "p11", "intent": "inspect", "session": "s",
                                       "target": "shelf"})
    assert message["result"]["slots"]["items"] == {"btree": "LOBTree", "items": 100}


def scripted_service(name, image, home, tmp_path, monkeypatch, rules):
    """A persona service whose models follow `rules` (a fresh registry reads them)."""
    path = tmp_path / "bounded-rules.json"
    path.write_text(json.dumps(rules))
    monkeypatch.setenv("BATOS_LLM", f"scripted:{path}")
    return PersonaService(name, image, llm.ModelRegistry(home.config["models"]))


def test_a_reply_over_the_bound_is_an_error_and_commits_nothing(image, home, tmp_path,
                                                                 monkeypatch, bounds):
    monkeypatch.setattr(bounds, "max_reply_bytes", 2000)
    robin = scripted_service("ROBIN", image, home, tmp_path, monkeypatch, [
        {"persona": "ROBIN", "match": "choose plan", "reply": "send box big"}])
    with image.transaction() as lobby:
        lobby.box = lobby.traits.clone(width=3, label_text="z" * 5000)
        lobby.box.define("big", "def big(self):\n    return 'x' * 5000\n")

    chat = robin.handle({"id": "big1", "intent": "chat", "session": "b",
                         "text": "the big of box"})
    assert re.fullmatch(r"I could not send box big: the reply of \d+ bytes exceeds the limit "
                        r"of 2000 bytes", chat["reply"])
    for request in ({"id": "big2", "intent": "send", "session": "b", "target": "box",
                     "selector": "big"},
                    {"id": "big3", "intent": "inspect", "session": "b", "target": "box"}):
        message = robin.handle(request)
        assert message["type"] == "error" and not message["retry"]
        assert re.fullmatch(r"the reply of \d+ bytes exceeds the limit of 2000 bytes",
                            message["error"])
    assert image.run(lambda lobby: (lobby.box.width, ledger.lookup(lobby, "big1")["message"][
        "result"], ledger.lookup(lobby, "big2"))) == (3, [], None)


def test_a_runaway_conversation_keeps_its_log_and_the_prompt_bounded(image, home, tmp_path,
                                                                       monkeypatch, bounds):
    monkeypatch.setattr(bounds, "max_turns", 50)
    monkeypatch.setattr(bounds, "max_turn_chars", 200)
    monkeypatch.setattr(bounds, "window_turns", 4)
    codex = image.run(lambda lobby: lobby.personas.ROBIN.codex)
    system = codex + "\n\n" + SPEAK_INSTRUCTIONS
    # the system part, the newest turns and the request, each cut to its share, + headings
    bound = len(system) + 2 + SPOKEN_TURNS * (PROMPT_PART_CHARS + 16) \
        + 4 * PROMPT_PART_CHARS + 100
    robin = scripted_service("ROBIN", image, home, tmp_path, monkeypatch, [
        {"persona": "ROBIN", "match": "choose plan", "reply": "reply"},
        {"persona": "ROBIN", "match": rf"\A[\s\S]{{0,{bound}}}\Z", "reply": "bounded"},
        {"persona": "ROBIN", "match": ".", "reply": "too long"}])

    def chatter(lobby):
        for number in range(1000):
            conversation.append(lobby, "runaway", "user", f"{number} " + "word " * 2000)
    image.run(chatter, note="a thousand long turns")

    message = robin.handle({"id": "last", "intent": "chat", "session": "runaway",
                            "text": "and one more " * 1000})
    assert message["reply"] == "bounded"
    turns = image.run(lambda lobby: [dict(t) for t in lobby.history.sessions["runaway"]
                                     .values()])
    assert len(turns) == 50 and all(len(t["text"]) <= 200 for t in turns)
    assert turns[-1]["text"] == "bounded" and turns[-2]["text"].startswith("and one more")


def test_send_and_inspect_at_a_moment_read_the_past_and_never_learn(service, image):
    then = image.history(1)[0]["tid"]
    image.run(lambda lobby: setattr(lobby.rect, "width", 5), note="width 5")
    sent = service("ROBIN").handle({"id": "t1", "intent": "send", "session": "s",
                                    "target": "rect", "selector": "area", "at": then})
    assert sent["result"] == 12 and sent["at"]["label"].startswith("as of transaction")
    log = image.history(3)
    missed = service("BRICK").handle({"id": "t2", "intent": "send", "session": "s",
                                      "target": "rect", "selector": "volume", "at": then})
    assert missed["type"] == "error" and missed["retry"] is False
    assert "a view of the past cannot learn a method" in missed["error"]
    assert image.history(3) == log  # no mandate, no ledger entry: nothing committed
    seen = service("ALFRED").handle({"id": "t3", "intent": "inspect", "session": "s",
                                     "target": "rect", "at": then})
    assert seen["result"]["slots"]["width"] == 3
    bad = service("ALFRED").handle({"id": "t4", "intent": "inspect", "session": "s",
                                    "target": "rect", "at": "soon"})
    assert bad["type"] == "error" and "is not a moment" in bad["error"]


def test_a_revert_request_is_done_once_and_announced(service, image):
    image.run(lambda lobby: lobby.rect.define(
        "area", "def area(self):\n    return self.height * self.width\n"), note="area 2")
    request = {"id": "r1", "intent": "revert", "session": "s", "target": "rect",
               "selector": "area"}
    first = service("ALFRED").handle(dict(request))
    assert first["result"]["note"] == "revert rect.area to version 1"
    assert first["events"] == [{"type": "reverted", "note": "revert rect.area to version 1",
                                "session": "s"}]
    again = service("ALFRED").handle(dict(request))  # delivered twice: not reverted again
    assert again["replayed"] and again["result"]["to"] == 1
    history = service("ALFRED").handle({"id": "r2", "intent": "versions", "session": "s",
                                        "target": "rect", "selector": "area"})
    assert [v["version"] for v in history["result"]["versions"]] == [1, 2, 3]


def test_a_persona_serves_exactly_the_intents_the_protocol_gives_personas():
    handlers = PersonaService("ALFRED", image=None, models=None).handlers
    assert list(handlers) == list(protocol.PERSONA_INTENTS)
    assert set(protocol.PERSONA_INTENTS) | set(protocol.BROKER_INTENTS) == set(protocol.INTENTS)
    assert not set(protocol.PERSONA_INTENTS) & set(protocol.BROKER_INTENTS)
