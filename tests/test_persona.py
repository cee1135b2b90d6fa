"""kernel.persona: a persona's request handling on a real image, with the scripted model."""
import json

import pytest

from kernel import llm
from kernel.persona import PersonaService


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
