"""kernel.understanding: the plans a chat can mean, read from the words and the image; and,
with the real default model, chats that act on objects and remember, end to end."""
import pytest

from kernel import llm, memory, understanding
from kernel.persona import PersonaService


def keys(lobby, text):
    return [plan.key for plan in understanding.plans(lobby, text)]


def test_a_question_about_a_named_object_can_send_it_the_word_asked_about(lobby):
    lobby.rect = lobby.traits.clone(width=3, height=4)
    assert keys(lobby, "What is the area of rect?") == ["reply", "send rect area"]
    assert keys(lobby, "what is the width of rect") == ["reply", "send rect width"]


def test_a_value_given_makes_setting_a_slot_possible(lobby):
    lobby.lamp = lobby.traits.clone(watts=40)
    plans = {p.key: p for p in understanding.plans(lobby, "Set the watts of lamp to 60")}
    assert plans["set lamp watts"].commands == ({"op": "set", "target": "lamp",
                                                 "slot": "watts", "value": 60},)
    assert plans["send lamp watts"].commands[0]["args"] == []  # a slot takes no arguments


def test_a_free_name_makes_creating_an_object_possible(lobby):
    lobby.box = lobby.traits.clone()
    plans = {p.key: p for p in understanding.plans(
        lobby, "Create an object named crate with width 2 and height 5.5")}
    assert plans["clone crate"].commands[0]["slots"] == {"width": 2, "height": 5.5}
    assert "clone box" not in keys(lobby, "Create an object named box")  # taken


def test_names_that_are_not_objects_of_the_lobby_are_never_targets(lobby):
    assert keys(lobby, "What is the area of ghost?") == ["reply"]
    assert keys(lobby, "inspect the ledger and the orchestrator") == ["reply"]


def test_memory_plans_need_words_that_tell_or_ask_about_the_persons_own(lobby):
    assert keys(lobby, "I feel sad today.") == ["reply"]
    assert keys(lobby, "Remember that the gate is green.") == ["reply", "remember"]
    assert keys(lobby, "My gate is green.") == ["reply", "remember"]
    assert keys(lobby, "What colour is my gate?") == ["reply", "recall"]
    assert keys(lobby, "Do you remember the gate?") == ["reply", "recall"]
    assert keys(lobby, "How do I bake bread?") == ["reply"]


def test_a_question_a_memory_answers_word_for_word_is_a_recall(lobby):
    memory.remember(lobby, "The gate code is 4321")
    assert keys(lobby, "What is the gate code?") == ["recall"]
    assert keys(lobby, "What is the code of the safe?") == ["reply", "recall"]  # close only


def test_a_fact_loses_its_lead_words():
    assert understanding.fact("Remember that my bike is red.") == "My bike is red."
    assert understanding.fact("please note: the door is locked") == "The door is locked"
    assert understanding.fact("the sky") == "The sky"


@pytest.fixture
def persona(image, home):
    """A persona service with the real default models (never the scripted double)."""
    models = llm.ModelRegistry(home.config["models"])
    return lambda name: PersonaService(name, image, models)


def chat(persona, name, text, n, session="s"):
    return persona(name).handle({"id": f"u{n}", "intent": "chat", "session": session,
                                 "text": text})


@pytest.mark.real_model
def test_plain_words_act_on_objects_with_the_real_model(persona, image, monkeypatch):
    monkeypatch.delenv("BATOS_LLM", raising=False)
    with image.transaction() as lobby:
        lobby.tower = lobby.traits.clone(height=30)
        lobby.crate = lobby.traits.clone(weight=2)
    asked = chat(persona, "ROBIN", "What is the height of tower?", 1)
    assert asked["result"] == [30] and "30" in asked["reply"]
    assert chat(persona, "ALFRED", "Set the weight of crate to 9", 2)["type"] == "reply"
    assert chat(persona, "BRICK", "Create an object named cabinet with depth 3", 3)["type"] \
        == "reply"
    assert image.run(lambda lobby: (lobby.crate.weight, lobby.cabinet.depth)) == (9, 3)


@pytest.mark.real_model
def test_memory_round_trips_and_no_invented_memory_with_the_real_model(persona,
                                                                       monkeypatch):
    monkeypatch.delenv("BATOS_LLM", raising=False)
    told = chat(persona, "BABS", "Remember that my uncle lives in Lisbon.", 4, session="a")
    assert told["reply"] == "I will remember that: My uncle lives in Lisbon."
    assert "Lisbon" in chat(persona, "BABS", "Where does my uncle live?", 5,
                            session="b")["reply"]
    assert chat(persona, "BABS", "What do you remember about my cousin?", 6,
                session="c")["reply"] == "I have no memory of that."


@pytest.mark.real_model
def test_a_spoken_answer_is_streamed_and_never_an_error_with_the_real_model(persona,
                                                                           monkeypatch):
    monkeypatch.delenv("BATOS_LLM", raising=False)
    pieces = []
    message = persona("ROBIN").handle(
        {"id": "u7", "intent": "chat", "session": "d", "text": "Good evening, how are you?"},
        lambda stage, **fields: pieces.append(fields.get("text")) if stage == "reply" else None)
    assert message["type"] == "reply" and message["reply"]
    assert "".join(pieces).strip() == message["reply"]
