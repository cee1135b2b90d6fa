"""The size bounds of one BAT OS process: requests, replies, conversations, memories, ledger.

Nothing a client sends or a persona produces may grow the image, a prompt or a message without
bound. The bounds come from the home's `batos.toml` (`settings_from` reads them; the sections
are named in `SETTINGS`) and are installed in `LIMITS`, with the sandbox's budgets, by the
one start-up of every process (`kernel.settings.start`): the orchestrator refuses requests
over `max_request_bytes`; a worker refuses to commit or send a reply over `max_reply_bytes`,
keeps at most `max_turns` turns of at most `max_turn_chars` characters per session, puts the
last `window_turns` of them in a prompt, keeps the newest `max_memories` memories and the
newest `ledger_keep` ledger entries.
"""
import dataclasses
import logging

from kernel.errors import ConfigError, TooLarge
from kernel.protocol import MAX_PAYLOAD, MAX_REPLY

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Limits:
    """The bounds in force in this process (defaults: those of `conf/batos.toml`)."""

    max_request_bytes: int = MAX_PAYLOAD
    max_reply_bytes: int = MAX_REPLY
    max_turns: int = 200
    max_turn_chars: int = 4000
    window_turns: int = 8
    max_memories: int = 10000
    ledger_keep: int = 10000


LIMITS = Limits()

# (section, key in batos.toml) → field of `Limits`
SETTINGS = {
    ("orchestrator", "max_request_bytes"): "max_request_bytes",
    ("orchestrator", "max_reply_bytes"): "max_reply_bytes",
    ("conversation", "max_turns"): "max_turns",
    ("conversation", "max_turn_chars"): "max_turn_chars",
    ("conversation", "window_turns"): "window_turns",
    ("memory", "max_entries"): "max_memories",
    ("ledger", "keep"): "ledger_keep",
}
MINIMUM = {"max_request_bytes": 1024, "max_reply_bytes": 1024, "max_turn_chars": 80}


def settings_from(config, source="batos.toml"):
    """The bounds a configuration sets, as keyword arguments of `Limits`.

    A setting that is not a whole number, or is below its minimum (1, or more where a smaller
    value could not hold a useful message), is a `ConfigError` naming it.
    """
    settings = {}
    for (section, key), field in SETTINGS.items():
        table = config.get(section, {})
        if not isinstance(table, dict) or key not in table:
            continue
        value = table[key]
        least = MINIMUM.get(field, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(f"{source}: setting {section}.{key} must be a whole number of at "
                              f"least {least}, not {value!r}")
        settings[field] = value
    return settings


def clip(text, limit):
    """`text` cut to at most `limit` characters, saying how much was cut when it was."""
    if len(text) <= limit:
        return text
    longest_marker = len(f" [… {len(text)} more characters cut]")
    keep = max(0, limit - longest_marker)
    return (text[:keep] + f" [… {len(text) - keep} more characters cut]")[:limit]


def check_size(what, size, limit):
    """Raise `TooLarge` when `size` bytes of `what` exceed `limit`."""
    if size > limit:
        raise TooLarge(f"{what} of {size} bytes exceeds the limit of {limit} bytes")
