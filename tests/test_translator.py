"""console.translator with the real default console model: typical inputs → valid payloads."""
import pytest

from console.translator import Translator
from kernel import llm, protocol
from kernel.home import CONF_DIR, read_toml
from kernel.image import default_personas

TYPICAL = [  # (what a person types, the intent meant)
    ("send rect area", "send"),
    ("send rect perimeter", "send"),
    ("ask box to scale by 2", "send"),
    ("send counter bump", "send"),
    ("call area on rect", "send"),
    ("send account deposit 50", "send"),
    ("inspect rect", "inspect"),
    ("show me the object circle", "inspect"),
    ("inspect personas", "inspect"),
    ("what does rect look like? inspect it", "inspect"),
    ("status", "status"),
    ("how is the system doing?", "status"),
    ("system status please", "status"),
    ("hello there", "chat"),
    ("good morning ROBIN, how are you?", "chat"),
    ("please remember that my birthday is in May", "chat"),
    ("what do you remember about my birthday?", "chat"),
    ("BABS, recall what I told you about tea", "chat"),
    ("I feel a bit lost today", "chat"),
    ("who should I ask to write a new method?", "chat"),
    ("thank you, that was helpful", "chat"),
    ("make a new object called box with width 2", "chat"),
]


OBJECTS = {"rect", "box", "counter", "account", "circle", "personas", "traits", "ledger",
           "memory"}  # the lobby's names, as the console reads them


@pytest.fixture(scope="module")
def translator():
    """The default console model, loaded directly (never the scripted double)."""
    config = read_toml(CONF_DIR / "batos.toml", "configuration")
    model = llm.LlamaModel(llm.ModelSpec.from_config(config["console"]["model_id"],
                                                     config["models"]))
    return Translator(model, default_personas())


@pytest.mark.real_model
def test_typical_inputs_always_give_valid_payloads(translator, capsys):
    right = 0
    for text, meant in TYPICAL:
        translation = translator.translate(text, OBJECTS)
        payload = translation.payload
        protocol.validate_request({"id": "t", **payload})
        right += payload["intent"] == meant
        with capsys.disabled():
            print(f"  {payload['intent']:<8} (meant {meant:<7}) {text}")
    with capsys.disabled():
        print(f"translation: {right}/{len(TYPICAL)} intents right")
    assert len(TYPICAL) >= 20 and right >= 0.9 * len(TYPICAL)


@pytest.mark.real_model
def test_a_named_persona_is_kept_and_only_objects_that_exist_are_targets(translator):
    assert translator.translate("ROBIN, how are you?").payload.get("persona") == "ROBIN"
    assert translator.translate("send ghost boo", OBJECTS).payload["intent"] in ("chat",
                                                                              "status")
    assert set(translator.options("send ghost boo", OBJECTS)) == {"chat", "status"}
    assert set(translator.options("what is the area of rect?", OBJECTS)) == {
        "chat", "status", "inspect rect", "send rect area"}
