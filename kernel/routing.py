"""How ALFRED routes: a scored choice among the personas, taught by examples held in the image.

Each persona's *channel prefix* is the orchestrator's `meta_prompt` filled with the persona's
`routing` description and its examples (`orchestrator.examples`: `{"text", "persona",
"source"}` dicts). The router's model scores how likely the request's own words are after each
prefix and the likeliest persona takes it (docs/design.md §4; FIELD-NOTES: free generation
routes near chance, the channel 21/24 untuned). People teach it: a request re-sent to another
persona after the router chose differently becomes a "correction" example, so routing
improves with use. Everything here runs inside the caller's transaction.
"""
import time

from kernel.limits import clip

EXAMPLES_PER_PERSONA = 8  # newest first: corrections push the oldest genesis examples out
MAX_EXAMPLES = 400  # kept in the image; the oldest corrections go first
EXAMPLE_CHARS = 300
DEFAULT_TEMPLATE = "{description}\n{examples}- "


def personas(lobby):
    """Persona name → its routing description, for every persona the image has now."""
    found = {}
    for name in lobby.personas.slot_names():
        persona = getattr(lobby.personas, name)
        found[name] = (getattr(persona, "routing", "")
                       or f"Requests for the {getattr(persona, 'role', name)}.")
    return found


def prefixes(lobby):
    """Persona name → its channel prefix (the meta-prompt filled in)."""
    template = getattr(lobby.orchestrator, "meta_prompt", "")
    if "{description}" not in template:  # an image from before scored routing
        template = DEFAULT_TEMPLATE
    examples = list(getattr(lobby.orchestrator, "examples", ()) or ())
    filled = {}
    for name, description in sorted(personas(lobby).items()):
        own = [e["text"] for e in reversed(examples) if e.get("persona") == name]
        lines = "".join(f"- {text}\n" for text in own[:EXAMPLES_PER_PERSONA])
        filled[name] = (template.replace("{name}", name).replace("{description}", description)
                        .replace("{examples}", lines))
    return filled


def learn(lobby, text, persona, was):
    """Record a person's correction: `text` belongs to `persona`, not to `was`."""
    examples = list(getattr(lobby.orchestrator, "examples", ()) or ())
    examples = [e for e in examples if e.get("text") != text]
    examples.append({"text": clip(text, EXAMPLE_CHARS), "persona": persona,
                     "source": "correction", "was": was, "time": round(time.time())})
    lobby.orchestrator.examples = examples[-MAX_EXAMPLES:]
