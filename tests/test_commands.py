"""kernel.commands: one schema validates answers; commands act."""
import pytest

from kernel import commands

AREA = "def area(self):\n    return self.width * self.height\n"


def test_answers_are_validated_against_the_schema():
    good = {"reply": "ok", "commands": [{"op": "send", "target": "rect", "selector": "area"}]}
    assert commands.validate(good) is good
    with pytest.raises(commands.CommandError, match="commands/0"):
        commands.validate({"reply": "x", "commands": [{"op": "explode"}]})
    with pytest.raises(commands.CommandError, match="'reply' is a required property"):
        commands.validate({"commands": []})
    with pytest.raises(commands.CommandError):
        commands.validate({"reply": "x", "commands": [{"op": "set", "target": "a",
                                                       "slot": "_p_jar", "value": 1}]})


def test_every_op_acts_on_the_image(lobby):
    results = commands.execute(lobby, [
        {"op": "clone", "proto": "traits", "name": "rect", "slots": {"width": 3, "height": 4}},
        {"op": "define", "target": "rect", "selector": "area", "source": AREA},
        {"op": "send", "target": "rect", "selector": "area", "args": []},
        {"op": "set", "target": "rect", "slot": "width", "value": 5},
        {"op": "send", "target": "rect", "selector": "area"},
        {"op": "remember", "text": "the rectangle is five wide"},
        {"op": "recall", "query": "how wide is the rectangle"},
    ], persona="BRICK", session="s")
    assert results[0] == {"created": "rect"} and results[1]["audit"]["ok"]
    assert results[2] == 12 and results[4] == 20 and results[5] == {"remembered": 1}
    assert results[6]["recalled"][0]["text"] == "the rectangle is five wide"
    assert lobby.rect._own_methods()["area"].provenance["author"] == "BRICK"
