"""The settings of one BAT OS process: built from its home in one place, installed in one call.

A process's settings are the size bounds of `kernel.limits` (requests, replies, turns, memories,
the ledger) and the budgets of `kernel.sandbox` (CPU time, memory, call depth, isolation of
every learned-method call). `Settings.from_home` builds both from the home's `batos.toml` over
their shipped defaults; `start(home)` installs them process-wide and logs them. Every entry
point — `batos` (before it opens the image), `batos-worker`, `batos-orchestrator` — calls
`start`, as ZEO's `runzeo` builds its options in one `main`, so the same home gives every
process the same settings. Readers keep reading `limits.LIMITS` and `sandbox.LIMITS`, which
`install` fills field by field (objects imported elsewhere stay the ones in force).
"""
import dataclasses
import json
import logging

from kernel import limits, sandbox

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything a home decides about one process: its size bounds and its sandbox budgets."""

    sizes: limits.Limits
    budgets: sandbox.Limits

    @classmethod
    def from_home(cls, home):
        """The settings `home` asks for: its `batos.toml` over the shipped defaults (a bad
        value is the `ConfigError` of `Home.size_limits` / `Home.sandbox_limits`)."""
        return cls(sizes=limits.Limits(**home.size_limits),
                   budgets=sandbox.Limits(**home.sandbox_limits))

    @classmethod
    def in_force(cls):
        """A copy of the settings this process runs with now."""
        return cls(sizes=dataclasses.replace(limits.LIMITS),
                   budgets=dataclasses.replace(sandbox.LIMITS))

    def install(self):
        """Make these the settings of this process (every field, whatever was set before)."""
        for source, target in ((self.sizes, limits.LIMITS), (self.budgets, sandbox.LIMITS)):
            for field in dataclasses.fields(source):
                setattr(target, field.name, getattr(source, field.name))
        return self

    def as_json(self):
        """The settings as plain data: {"sizes": {...}, "budgets": {...}}."""
        return {"sizes": dataclasses.asdict(self.sizes),
                "budgets": dataclasses.asdict(self.budgets)}


def start(home):
    """The start-up of every entry point: build the home's settings, install them in this
    process, log them (INFO, "settings in force: {json}"), and return them."""
    settings = Settings.from_home(home).install()
    log.info("settings in force: %s", json.dumps(settings.as_json(), sort_keys=True))
    return settings
