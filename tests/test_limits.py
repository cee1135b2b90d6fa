"""kernel.limits: the size bounds come from batos.toml, and bad settings are named."""
import dataclasses
import tomllib

import pytest

from kernel import limits
from kernel.errors import ConfigError, TooLarge
from kernel.home import CONF_DIR


def test_the_shipped_configuration_sets_every_bound_to_its_default():
    with open(CONF_DIR / "batos.toml", "rb") as handle:
        settings = limits.settings_from(tomllib.load(handle))
    assert settings == {field.name: field.default
                        for field in dataclasses.fields(limits.Limits)}


def test_a_home_configuration_changes_only_the_bounds_it_sets():
    settings = limits.settings_from({"conversation": {"max_turns": 7}, "ledger": {"keep": 30}})
    assert settings == {"max_turns": 7, "ledger_keep": 30}
    bounds = limits.Limits(**settings)
    assert bounds.max_turns == 7 and bounds.ledger_keep == 30
    assert bounds.window_turns == limits.Limits().window_turns


@pytest.mark.parametrize("config, named", [
    ({"conversation": {"max_turns": 0}}, "conversation.max_turns"),
    ({"memory": {"max_entries": "many"}}, "memory.max_entries"),
    ({"ledger": {"keep": 1.5}}, "ledger.keep"),
    ({"orchestrator": {"max_request_bytes": True}}, "orchestrator.max_request_bytes"),
    ({"orchestrator": {"max_reply_bytes": 10}}, "orchestrator.max_reply_bytes"),
])
def test_a_bad_bound_is_a_config_error_naming_the_setting(config, named):
    with pytest.raises(ConfigError, match=f"home/batos.toml: setting {named} must be a whole"):
        limits.settings_from(config, "home/batos.toml")


def test_clip_cuts_text_to_the_limit_and_says_how_much_was_cut():
    assert limits.clip("short", 80) == "short"
    cut = limits.clip("x" * 10_000, 100)
    assert len(cut) <= 100 and cut.startswith("x" * 50)
    assert cut.endswith(f"[… {10_000 - cut.count('x')} more characters cut]")


def test_check_size_refuses_what_exceeds_the_limit():
    limits.check_size("the reply", 100, 100)
    with pytest.raises(TooLarge, match="the reply of 101 bytes exceeds the limit of 100 bytes"):
        limits.check_size("the reply", 101, 100)
    assert not TooLarge.transient
