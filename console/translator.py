"""Natural language → a structured BATOS/1 payload, chosen by a small local model.

The console's model is its own (`[console] model_id` in the configuration), separate from the
personas'. It never writes the payload (docs/design.md §4: choose, don't generate): `options`
lists what the line can possibly mean — a plain chat, the status, and, when the line names an object
(one of the lobby's, when the console knows them), inspecting it or sending it the selector word
beside it — and the model scores the line after each option's description and examples.
A line that addresses a persona by name is a chat for that persona; any error of the model
falls back to a plain chat — the persona then reads the words themselves. `/explain` shows
the scores.
"""
import dataclasses
import json
import logging
import re

from kernel import llm

log = logging.getLogger(__name__)

INTENTS = {  # intent → (what such a line is, examples); never the cases of tests or benches
    "chat": ("Messages for the personas: greetings, thanks, feelings, questions, requests to "
             "remember or recall, and requests to write or build something.",
             ["good evening", "I am tired of all this", "note that the shop closes at six",
              "what did I tell you about the shop?", "please write a method that adds",
              "create an object named shelf with depth 3"]),
    "send": ("Commands that send the message {selector} to the object {target}.",
             ["send {target} {selector}", "{target} {selector}",
              "what is the {selector} of {target}?", "ask {target} for {selector}"]),
    "inspect": ("Commands that show the object {target}: its slots, parents and methods.",
                ["inspect {target}", "show {target}", "show me the object {target}"]),
    "status": ("Questions about the health and status of the system and its cluster.",
               ["status", "are the workers up?", "how healthy is the cluster?"]),
}
SCORED_CHARS = 600  # a long line is scored by its start
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
OF_TARGET = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s+(?:of|on|from|for)\s+(?:the\s+)?"
                       r"(?:object\s+)?([A-Za-z_][A-Za-z0-9_]*)", re.I)
STOP = frozenset("""a about all an and any are ask at be by call can compute describe display
do does for from get give hello her his how i in inspect is it its look me my of on or please
send show tell that the their them this to what whats with you your object objects like
by""".split())


@dataclasses.dataclass
class Translation:
    """A payload and how it came about (for `/explain`)."""

    payload: dict
    raw: str = None
    note: str = ""


class Translator:
    """The console's model choosing what a line of text means; plain chat when nothing else
    is possible."""

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

    def translate(self, text, objects=None):
        """The payload for `text` (without id and session); `objects`, when known, are the
        lobby's object names — a target must then be one of them."""
        chat = self._persona({"intent": "chat", "text": text}, text)
        if "persona" in chat:
            return Translation(chat, None, "chat: the line addresses a persona")
        options = self.options(text, objects)
        try:
            best, scores = self.model.choose("intent", {k: prefix(k, p) for k, p in
                                                        options.items()},
                                             text[:SCORED_CHARS], persona="console")
        except llm.LLMError as exc:
            return Translation(chat, None, f"not translated ({exc})")
        raw = json.dumps({k: round(v, 2) for k, v in scores.items()})
        return Translation({**options[best], "text": text}, raw, best.split()[0])

    def options(self, text, objects=None):
        """Every payload the line could mean: chat and status always, send and inspect for
        a target it names (and a selector word, for send)."""
        found = {"chat": {"intent": "chat"}, "status": {"intent": "status"}}
        target, selector = self.target_and_selector(text, objects)
        if target:
            found[f"inspect {target}"] = {"intent": "inspect", "target": target}
        if target and selector:
            args = [float(n) if "." in n else int(n) for n in NUMBER.findall(text)]
            found[f"send {target} {selector}"] = {"intent": "send", "target": target,
                                                  "selector": selector, "args": args}
        return found

    def target_and_selector(self, text, objects=None):
        """The object a line names and the selector word beside it (either may be None)."""
        words = [w for w in dict.fromkeys(WORD.findall(text)) if w.lower() not in STOP
                 and w.upper() not in self.personas]
        if objects is not None:
            targets = [w for w in words if w in objects]
        else:
            paired = OF_TARGET.search(text)
            targets = ([paired.group(2)] if paired and paired.group(2) in words else []) + words
        if not targets:
            return None, None
        target = targets[0]
        rest = [w for w in words if w != target]
        return target, (rest[0] if rest else None)

    def _persona(self, payload, text):
        for name in self.personas:
            if re.search(rf"\b{re.escape(name)}\b", text, re.I):
                return {**payload, "persona": name}
        return payload


def prefix(key, payload):
    """An option's channel prefix: its intent's description and examples, names filled in."""
    description, examples = INTENTS[payload["intent"]]
    names = {"target": payload.get("target", ""), "selector": payload.get("selector", "")}
    return "\n".join([description.format(**names)]
                     + [f"- {e.format(**names)}" for e in examples]) + "\n- "
