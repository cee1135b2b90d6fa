"""kernel.persona: a persona's request handling on a real image, with the scripted model."""
import json
import re

import pytest

from kernel import conversation, ledger, llm
from kernel.persona import CHAT_INSTRUCTIONS, PersonaService


@pytest.fixture
def service(image, home, tmp_path, monkeypatch):
    rules = [
        {"persona": "ROBIN", "match": r"- rect: slots width = 3, height = 4; methods area",
         "reply": '{"reply": "I see rect", "commands": [{"op": "send", "target": "rect", '
                  '"selector": "area"}]}'},
        {"persona": "ROBIN", "match": "BABS remembers:\n- tea is green",
         "reply": '{"reply": "green", "commands": []}'},
        {"persona": "ROBIN", "match": "User: note", "reply": '{"reply": "noted", "commands": '
                                                           '[{"op": "remember", "text": '
                                                           '"tea is green"}]}'},
        {"persona": "ROBIN", "match": "User: broken", "reply": "not json at all"},
        {"persona": "ALFRED", "match": "router of BAT OS", "reply": '{"persona": "BABS"}'},
    ]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules))
    monkeypatch.setenv("BATOS_LLM", f"scripted:{path}")
    with image.transaction() as lobby:
        lobby.rect = lobby.traits.clone(width=3, height=4)
        lobby.rect.define("area", "def area(self):\n    return self.width * self.height\n")
    models = llm.ModelRegistry(home.config["models"])
    return lambda name: PersonaService(name, image, models)


def chat(service, name, text, request_id, session="s"):
    return service(name).handle({"id": request_id, "intent": "chat", "session": session,
                                 "text": text})


def test_the_prompt_names_the_objects_the_request_touches(service, image):
    message = chat(service, "ROBIN", "what is the rect area?", "p1")
    assert message["reply"] == "I see rect" and message["result"] == [12]
    turns = image.run(lambda lobby: [t["text"] for t in lobby.history.sessions["s"].values()])
    assert turns == ["what is the rect area?", "I see rect"]


def test_memories_recalled_by_babs_reach_the_prompt(service):
    assert chat(service, "ROBIN", "note", "p2", session="a")["reply"] == "noted"
    assert chat(service, "ROBIN", "what colour is tea", "p3", session="b")["reply"] == "green"


def test_a_request_is_executed_once(service, image):
    first = chat(service, "ROBIN", "note", "p4")
    again = chat(service, "ROBIN", "note", "p4")
    assert again["replayed"] and again["result"] == first["result"]
    assert image.run(lambda lobby: lobby.memory.size()) == 1


def test_a_malformed_model_answer_is_an_error_reply(service):
    message = chat(service, "ROBIN", "broken", "p5")
    assert message["type"] == "error" and "not JSON" in message["error"]


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
        {"persona": "ROBIN", "match": "User: grow", "reply": json.dumps({
            "reply": "y" * 3000, "commands": [{"op": "set", "target": "box", "slot": "width",
                                               "value": 99}]})}])
    with image.transaction() as lobby:
        lobby.box = lobby.traits.clone(width=3, label_text="z" * 5000)
        lobby.box.define("big", "def big(self):\n    return 'x' * 5000\n")

    for request in ({"id": "big1", "intent": "chat", "session": "b", "text": "grow"},
                    {"id": "big2", "intent": "send", "session": "b", "target": "box",
                     "selector": "big"},
                    {"id": "big3", "intent": "inspect", "session": "b", "target": "box"}):
        message = robin.handle(request)
        assert message["type"] == "error" and not message["retry"]
        assert re.fullmatch(r"the reply of \d+ bytes exceeds the limit of 2000 bytes",
                            message["error"])
    assert image.run(lambda lobby: (lobby.box.width, ledger.lookup(lobby, "big1"),
                                    ledger.lookup(lobby, "big2"),
                                    lobby.history.sessions.get("b"))) == (3, None, None, None)


def test_a_runaway_conversation_keeps_its_log_and_the_prompt_bounded(image, home, tmp_path,
                                                                       monkeypatch, bounds):
    monkeypatch.setattr(bounds, "max_turns", 50)
    monkeypatch.setattr(bounds, "max_turn_chars", 200)
    monkeypatch.setattr(bounds, "window_turns", 4)
    codex = image.run(lambda lobby: lobby.personas.ROBIN.codex)
    system = codex + "\n\n" + CHAT_INSTRUCTIONS
    # the system part, the window and the request, each line cut to a turn's size, + headings
    bound = len(system) + 2 + (bounds.window_turns + 1) * (bounds.max_turn_chars + 16) + 100
    robin = scripted_service("ROBIN", image, home, tmp_path, monkeypatch, [
        {"persona": "ROBIN", "match": rf"\A[\s\S]{{0,{bound}}}\Z",
         "reply": '{"reply": "bounded", "commands": []}'},
        {"persona": "ROBIN", "match": ".", "reply": '{"reply": "too long", "commands": []}'}])

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
