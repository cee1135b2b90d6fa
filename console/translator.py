"""Natural language → a structured BATOS/1 payload, by a small local model under a JSON schema.

The console's model is its own (`[console] model_id` in the configuration), separate from the
personas'. Its answer is constrained by `PAYLOAD_SCHEMA`, so it always parses; it is then
*grounded*: a `send` or `inspect` must name an object and a selector that the person actually
wrote, and a persona is kept only if the person named it. Anything that fails that, or any
error of the model, falls back to a plain `chat` payload — the persona then reads the words
themselves. `/explain` shows what happened.
"""
import dataclasses
import json
import logging
import re

from kernel import commands, llm

log = logging.getLogger(__name__)

PAYLOAD_SCHEMA = {
    "type": "object",
    "properties": {
        "intent": {"enum": ["chat", "send", "inspect", "status"]},
        "target": {"type": "string"},
        "selector": {"type": "string"},
        "args": {"type": "array", "items": {"type": "number"}},
    },
    "required": ["intent", "target", "selector", "args"],
    "additionalProperties": False,
}

INSTRUCTIONS = """\
Turn the user's message into a request for a living object system. Answer with JSON.
intent "send": call a method on an object: target is the object, selector the method, args
the numbers given. intent "inspect": show an object. intent "status": the system's health.
intent "chat": anything else (questions, greetings, requests for memory or advice).

Message: send rect area
{"intent": "send", "target": "rect", "selector": "area", "args": []}
Message: ask box to scale by 2
{"intent": "send", "target": "box", "selector": "scale", "args": [2]}
Message: show me the object circle
{"intent": "inspect", "target": "circle", "selector": "", "args": []}
Message: how is the system doing
{"intent": "status", "target": "", "selector": "", "args": []}
Message: hello, how are you today?
{"intent": "chat", "target": "", "selector": "", "args": []}
"""

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
INSPECT_WORDS = re.compile(r"\b(inspect|show|look|describe|display)", re.I)


@dataclasses.dataclass
class Translation:
    """A payload and how it came about (for `/explain`)."""

    payload: dict
    raw: str = None
    note: str = ""


class Translator:
    """The console's model turning text into payloads; falls back to chat when unsure."""

    def __init__(self, model, personas=()):
        self.model = model
        self.personas = tuple(personas)

    @classmethod
    def from_config(cls, config, personas=()):
        """The translator of a home's `[console]` settings (None when disabled)."""
        settings = config.get("console", {})
        if not settings.get("translate", True):
            return None
        registry = llm.ModelRegistry(config.get("models", {}))
        return cls(registry.get(settings.get("model_id", "console-smollm2")), personas)

    def translate(self, text):
        """The payload for `text` (without id and session)."""
        chat = {"intent": "chat", "text": text}
        try:
            answer = self.model.complete(INSTRUCTIONS, f"Message: {text}", persona="console",
                                         json_schema=PAYLOAD_SCHEMA, max_tokens=64,
                                         temperature=0.0)
            proposal = commands.validate(json.loads(answer.text), PAYLOAD_SCHEMA)
        except (llm.LLMError, ValueError, commands.CommandError) as exc:
            return Translation(self._persona(chat, text), None, f"not translated ({exc})")
        payload, note = self.ground(proposal, text)
        return Translation(self._persona(payload, text), answer.text, note)

    def ground(self, proposal, text):
        """Keep the model's structure only where the person's own words support it."""
        intent = proposal["intent"]
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", text))
        if intent == "status" and re.search(r"\b(status|health|doing|running|up)\b", text,
                                            re.I):
            return {"intent": "status", "text": text}, "status"
        if intent in ("send", "inspect"):
            target = proposal["target"].strip()
            if target in words and NAME.match(target) and target.upper() not in self.personas:
                if intent == "inspect" and INSPECT_WORDS.search(text):
                    return {"intent": "inspect", "target": target, "text": text}, "inspect"
                selector = proposal["selector"].strip()
                numbers = [float(n) if "." in n else int(n)
                           for n in re.findall(r"-?\d+(?:\.\d+)?", text)]
                args = [a for a in proposal["args"] if a in numbers]
                if intent == "send" and selector in words and NAME.match(selector) \
                        and selector != target:
                    return ({"intent": "send", "target": target, "selector": selector,
                             "args": args, "text": text}, "send")
        if intent == "chat":
            return {"intent": "chat", "text": text}, "chat"
        return {"intent": "chat", "text": text}, f"sent as chat: the words do not support the " \
                                                 f"model's {intent}"

    def _persona(self, payload, text):
        for name in self.personas:
            if re.search(rf"\b{re.escape(name)}\b", text, re.I):
                return {**payload, "persona": name}
        return payload
