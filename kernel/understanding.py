"""What a chat asks the image to do: the possible plans, read from the words and the image.

A persona's model never writes commands freely (docs/design.md §4: choose, don't generate). Instead
`plans(lobby, text)` lists what the request could possibly mean, each fully specified from the
person's own words and the image as it is now:
  reply     only a spoken answer                      (always possible)
  remember  store the fact the person states          (a statement telling a fact)
  recall    answer from what was told before          (a question about the person's own)
  send      ask a named object for a selector         (an object of the lobby is named)
  set       change a slot of a named object           (… and a value is given)
  clone     create a new object under a free name     ("named X" / "called X")
Targets are objects that exist, selectors are words of the request (a selector the object
does not answer yet is learned by `_doesNotUnderstand`), values are the numbers written, names
are free. The model then only chooses among them: `choose(model, persona, options, text)` scores
the request after each plan's description (the channel of `kernel.scoring`).
"""
import dataclasses
import re

from kernel import memory
from kernel.limits import clip

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.]*[A-Za-z_])")
NAMED = re.compile(r"\b(?:named|called)\s+([A-Za-z_][A-Za-z0-9_]*)", re.I)
PAIR = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s+(?:of\s+|=\s*|is\s+|at\s+)?(-?\d+(?:\.\d+)?)\b")
LEAD = re.compile(r"^\s*(?:please\s+)?(?:remember|note|keep in mind|don'?t forget|store this "
                  r"fact|make a note)\s*(?:that|:|,)?\s*", re.I)
STOP = frozenset("""a about all an and any are as ask at be by can could create current
do does for from get give has have her his how i in is it its let make me my new
now number object of on or our please set show so some tell than that the their them
then this to up us value was we what whats when where which who why will with would
you your change compute calculate find make called named""".split())
QUESTION_WORDS = frozenset("""what whats where when who whom which why how do does did is are
was were can could have has will would should tell""".split())
MEMORY_WORDS = re.compile(r"\b(remember|recall|told|tell you|mention|said|note|keep in mind|"
                          r"forget|know about|store|save|write down|talked about)", re.I)
PERSONAL = re.compile(r"\b(my|our|mine|ours)\b", re.I)
PERSONAL_FACT = re.compile(r"\b(my|our)\s+[\w' ]{1,40}?\s+(is|are|was|were|lives?|works?|"
                           r"likes?|loves?|has|have|starts?|ends?|comes?|leaves?)\b", re.I)
SYSTEM_OBJECTS = frozenset({"traits", "persona", "personas", "orchestrator", "ledger",
                            "memory", "history", "mandates", "lobby"})
SCORED_CHARS = 600  # the words a choice is scored on: the start of a long request decides
MAX_TARGETS = 1
MAX_SELECTORS = 2
FACT_CHARS = 1000


@dataclasses.dataclass(frozen=True)
class Plan:
    """One thing a request could mean: its kind, its commands, and what it is about."""

    kind: str
    commands: tuple = ()
    about: dict = dataclasses.field(default_factory=dict)

    @property
    def key(self):
        """A short name for logs, scripts and `/explain` ("send shapes size")."""
        return " ".join([self.kind, *(str(v) for v in self.about.values())])


DESCRIPTIONS = {  # never the cases of tests or benches
    "reply": ("Messages that need a spoken answer: greetings, thanks, feelings, opinions, "
              "advice, questions about the world, and requests to explain, write or build "
              "something.",
              ["Hello, how are you?", "Thank you so much.", "I feel tired and lonely.",
               "Should I call my friend back?", "How do I cook rice?",
               "Can you write a short poem?", "Please explain what an object is.",
               "Is it wrong to skip the party?", "Make me a function that sorts names."]),
    "remember": ("Facts about the person's life that they tell the system to keep.",
                 ["Remember that my brother lives in Rome.", "Note that the car is due for "
                  "service.", "Please keep in mind that I work nights.",
                  "My favourite song is Yesterday.", "Don't forget that the meeting moved "
                  "to noon."]),
    "recall": ("Questions about a fact of the person's life that they told the system "
               "before.",
               ["What did I say about my brother?", "Where does my brother live?",
                "What do you remember about the car?", "When do I work?",
                "What is my brother's name?", "Did I tell you my birthday?"]),
    "send": ("Questions about the {selector} of the object {target}, or asking {target} to "
             "{selector}.", ["What is the {selector} of {target}?", "{target} {selector}",
                             "Compute the {selector} of {target}."]),
    "set": ("Orders to change the {slot} of the object {target}.",
            ["Set the {slot} of {target} to 7.", "Change the {slot} of {target} to 3.",
             "Make the {slot} of {target} 12."]),
    "clone": ("Orders to create a new object named {name}.",
              ["Create an object named {name}.", "Make a new object called {name} with "
                                                 "size 4."]),
}


def plans(lobby, text):
    """Every plan the request can possibly mean, given the image now (at most 8). Memory
    plans need their words: a statement telling a fact ("remember that …", "my bike is red")
    can be remembered; a question about the person's own things ("… my …", "do you
    remember …"), or one that stored memories share words with, can be recalled — and is
    nothing but a recall when both hold, or when a memory answers it word for word (unless
    it names an object of the lobby)."""
    question, recalled = is_question(text), memory.recall(lobby, text, limit=1)
    asks_own = question and (MEMORY_WORDS.search(text) or PERSONAL.search(text))
    recall = Plan("recall", ({"op": "recall", "query": clip(text, 400)},))
    named = targets(lobby, text)[:MAX_TARGETS]
    if not named and ((asks_own and recalled) or (question and recalled
                                                  and recalled[0]["complete"])):
        return [recall]
    found = [Plan("reply")]
    if not question and (MEMORY_WORDS.search(text) or PERSONAL_FACT.search(text)):
        found.append(Plan("remember", ({"op": "remember", "text": fact(text)},)))
    if asks_own or (question and recalled):
        found.append(recall)
    numbers = [number(n) for n in NUMBER.findall(text)]
    for target, obj in named:
        words = selector_words(text, obj, target)
        for selector in words[:MAX_SELECTORS]:
            args = numbers if not obj.responds_to(selector) else []
            found.append(Plan("send", ({"op": "send", "target": target, "selector": selector,
                                        "args": args[:5]},),
                              {"target": target, "selector": selector}))
        if numbers:
            for slot in words[:MAX_SELECTORS]:
                found.append(Plan("set", ({"op": "set", "target": target, "slot": slot,
                                           "value": numbers[-1]},),
                                  {"target": target, "slot": slot}))
    name = new_name(lobby, text)
    if name:
        slots = {k: number(v) for k, v in PAIR.findall(text) if k.lower() not in STOP
                 and k != name}
        found.append(Plan("clone", ({"op": "clone", "proto": "traits", "name": name,
                                     "slots": slots},), {"name": name}))
    return found[:8]


def choose(model, persona, options, text):
    """The plan the model finds the request likeliest to mean, with every plan's score
    (the only plan possible needs no model)."""
    if len(options) == 1:
        return options[0], {}
    prefixes = {plan.key: prefix(plan) for plan in options}
    best, scores = model.choose("plan", prefixes, text[:SCORED_CHARS], persona=persona)
    return next(plan for plan in options if plan.key == best), scores


def prefix(plan):
    """A plan's channel prefix: its description and examples, with its names filled in."""
    description, examples = DESCRIPTIONS[plan.kind]
    lines = [description.format(**plan.about)]
    lines += [f"- {example.format(**plan.about)}" for example in examples]
    return "\n".join(lines) + "\n- "


def is_question(text):
    """Whether the words ask something (a question mark, or a question's first word)."""
    words = WORD.findall(text.lower())
    return text.rstrip().endswith("?") or bool(words and words[0] in QUESTION_WORDS)


def targets(lobby, text):
    """(name, object) for each lobby object the request names, in the order named."""
    named = []
    for word in dict.fromkeys(WORD.findall(text)):
        if word in SYSTEM_OBJECTS or word.lower() in STOP:
            continue
        found = lobby.lookup(word)
        if found is None or found[2] or not hasattr(found[1], "responds_to"):
            continue
        named.append((word, found[1]))
    return named


def selector_words(text, obj, target):
    """The request's words that could be a selector of `obj`: those it answers first."""
    words = [w for w in dict.fromkeys(WORD.findall(text))
             if w != target and w.lower() not in STOP and w.isidentifier()
             and not w.startswith("_") and not w.isupper()]
    known = [w for w in words if obj.responds_to(w)]
    return known + [w for w in words if w not in known]


def new_name(lobby, text):
    """The free name a request asks to create an object under ("named box"), if any."""
    match = NAMED.search(text)
    if match and match.group(1).isidentifier() and lobby.lookup(match.group(1)) is None:
        return match.group(1)
    return None


def fact(text):
    """The fact of a "remember that …" request, without its lead words."""
    stripped = LEAD.sub("", text, count=1).strip() or text.strip()
    return clip(stripped[:1].upper() + stripped[1:], FACT_CHARS)


def number(text):
    """A number written in a request as int or float."""
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value
