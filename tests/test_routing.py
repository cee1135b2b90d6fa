"""kernel.routing: persona prefixes from the image, corrections that teach; routing with the
real default model on requests of each kind; a person's correction through a real cluster."""
import json

import pytest

from conftest import run_batos, running_cluster, wait_until
from kernel import llm, routing
from kernel.client import Client
from kernel.genesis import ROUTING_EXAMPLES
from kernel.persona import PersonaService


def test_each_persona_prefix_holds_its_description_and_its_newest_examples(lobby):
    prefixes = routing.prefixes(lobby)
    assert sorted(prefixes) == ["ALFRED", "BABS", "BRICK", "ROBIN"]
    assert prefixes["BRICK"].startswith(lobby.personas.BRICK.routing + "\n- ")
    assert "- Write a function that adds two numbers.\n" in prefixes["BRICK"]
    assert "Write a function" not in prefixes["ROBIN"]


def test_a_correction_becomes_the_newest_example_of_the_persona_chosen(lobby):
    routing.learn(lobby, "Water the plants on Sunday.", "BABS", "ROBIN")
    examples = lobby.orchestrator.examples
    assert dict(examples[-1]) | {"time": 0} == {"text": "Water the plants on Sunday.",
                                                "persona": "BABS", "source": "correction",
                                                "was": "ROBIN", "time": 0}
    assert routing.prefixes(lobby)["BABS"].split("\n")[1] == "- Water the plants on Sunday."
    routing.learn(lobby, "Water the plants on Sunday.", "ROBIN", "BABS")  # changed its mind
    assert [e["persona"] for e in lobby.orchestrator.examples
            if e["text"] == "Water the plants on Sunday."] == ["ROBIN"]


def test_examples_stay_bounded(lobby):
    for n in range(routing.MAX_EXAMPLES + 5):
        routing.learn(lobby, f"request {n}", "BRICK", "ALFRED")
    assert len(lobby.orchestrator.examples) == routing.MAX_EXAMPLES
    assert routing.prefixes(lobby)["BRICK"].count("\n- request ") == routing.EXAMPLES_PER_PERSONA


def test_an_image_from_before_scored_routing_still_routes(lobby):
    lobby.orchestrator.meta_prompt = "You are the router. {personas}"
    del lobby.orchestrator.examples
    assert routing.prefixes(lobby)["ROBIN"] == lobby.personas.ROBIN.routing + "\n- "


HELD_APART = [  # requests of each kind, apart from the genesis examples and the bench cases
    ("Are all four workers registered?", "ALFRED"),
    ("Please write a method that returns the mean of a list.", "BRICK"),
    ("I am heartbroken after the breakup.", "ROBIN"),
    ("Remember that my locker number is 17.", "BABS"),
]


@pytest.mark.real_model
def test_alfred_routes_each_kind_of_request_with_the_real_model(image, home, monkeypatch):
    monkeypatch.delenv("BATOS_LLM", raising=False)
    alfred = PersonaService("ALFRED", image, llm.ModelRegistry(home.config["models"]))
    assert not {text for text, _ in HELD_APART} & {text for text, _ in ROUTING_EXAMPLES}
    for n, (text, persona) in enumerate(HELD_APART):
        answer = alfred.handle({"id": f"r{n}", "intent": "route", "session": "s",
                                "text": text})
        assert answer["persona"] == persona, (text, answer)


RULES = [
    {"persona": "ALFRED", "match": "choose persona", "reply": "ROBIN"},
    {"match": "choose plan", "reply": "reply"},
    {"match": "User: ", "reply": "hello"},
]


@pytest.mark.cluster
def test_a_request_sent_again_to_another_persona_teaches_routing(tmp_path):
    with running_cluster(tmp_path, RULES) as (home, _env, image):
        with Client(home.orchestrator_endpoints["frontend"], timeout=120) as client:
            routed = client.request({"id": "c1", "session": "s", "text": "Fix my loop"})
            assert routed["persona"] == "ROBIN"
            client.request({"id": "c2", "session": "s", "text": "Fix my loop",
                            "persona": "BRICK"})

        def taught():
            return image.run(lambda lobby: [dict(e) for e in lobby.orchestrator.examples
                                            if e["text"] == "Fix my loop"])
        wait_until(taught, timeout=30)
        assert taught()[0]["persona"] == "BRICK" and taught()[0]["was"] == "ROBIN"
        assert '- {"text": "Fix my loop", "persona": "BRICK"' in run_batos(
            "inspect", "orchestrator", home=home.path, check=True).stdout
        shown = run_batos("inspect", "orchestrator", "--json", home=home.path, check=True)
        assert {"text": "Fix my loop", "persona": "BRICK", "source": "correction",
                "was": "ROBIN"}.items() <= json.loads(shown.stdout)["slots"]["examples"][
            -1].items()
