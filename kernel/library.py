"""The image teaches: methods that live in the image are BRICK's examples for new ones.

When `_doesNotUnderstand` writes a method, the prompt shows BRICK a few methods that already
exist in the image, chosen by how much they resemble the mandate: the same or related
selector words (`add_item` ~ `add_point`), the same slot names, the same kinds of slots and
arguments (numbers, text, lists, booleans). The catalogue is the image itself — the objects
reachable from the lobby (kernel namespaces excluded), each own `Method` a final one
(provisional methods are guesses and teach nothing) — so a method learned today, defined by a
person or confirmed is an example tomorrow, and an undone one is gone. The walk is bounded
(`MAX_OBJECTS`), so a huge lobby costs the same as a large one.

Genesis seeds `lobby.examples` with `SEED_EXAMPLES`, one small object per idiom of the
method language (arithmetic, text methods, lists, comprehensions, loops, if/else,
arguments, commands that keep the Covenant), and with the domain methods of
`kernel.seed_methods` (geometry, units, money, text, lists, predicates, commands): a small
model writes the style it is shown but does not know that a square's perimeter is four
sides, so the image carries that knowledge for it. They are ordinary objects: edit, add or
remove them like any other.
"""
import ast
import collections
import dataclasses
import logging
import re

from kernel.grammars import kind_of, parameter_names
from kernel.methods import Method
from kernel.seed_methods import DOMAIN_EXAMPLES
from kernel.uvm import UvmObject
from kernel.values import plain

log = logging.getLogger(__name__)

MAX_OBJECTS = 5000  # the seed library alone is some 1,700 objects
KERNEL_NAMESPACES = frozenset({"traits", "persona", "personas", "orchestrator", "ledger",
                               "memory", "history", "mandates", "quarantine"})
# words whose questions answer each other's contrary (`kernel.dnu.precedents`)
OPPOSITE_WORDS = frozenset((
    ("open", "closed"), ("on", "off"), ("in", "out"), ("locked", "unlocked"),
    ("paid", "unpaid"), ("available", "unavailable"), ("active", "inactive"),
    ("enabled", "disabled"), ("valid", "invalid"), ("complete", "incomplete"),
    ("visible", "hidden"), ("online", "offline"), ("even", "odd"), ("read", "unread"),
    ("finished", "unfinished"), ("done", "undone"), ("occupied", "vacant"),
    ("legal", "illegal"), ("possible", "impossible"), ("present", "absent"),
    ("connected", "disconnected"), ("public", "private"), ("allowed", "forbidden")))
CONTRARY = {b: a for a, b in OPPOSITE_WORDS}
DEFINE_LINE = re.compile(r"^def \w+\(self((?:, \w+)*)\):", re.M)


@dataclasses.dataclass(frozen=True)
class Example:
    """One method as a prompt shows it: the receiver's slots, the call, the source."""

    selector: str
    slots: dict
    args: tuple
    source: str

    def prompt(self):
        """The example in the mandate's own format, followed by its source."""
        return f"{task_text(self.selector, self.slots, self.args)}\n{self.source.rstrip()}"


def task_text(selector, slots, args, params=None):
    """How BRICK is asked for a method: the slots, then the selector and how it is called."""
    shown = ", ".join(f"{k} = {v!r}" for k, v in slots.items()
                      if not isinstance(v, dict)) or "(none)"
    names = params if params is not None else parameter_names(len(args))
    called = f"{selector}({', '.join(names)})"
    if names and args:
        called += " with " + ", ".join(f"{n} = {a!r}" for n, a in zip(names, args))
    return f"Slots: {shown}\nWrite the method {selector}, called as {called}."


def shown_slots(text):
    """The slots an example's prompt (`Example.prompt`) shows, as values: `task_text` read
    back (`Slots: a = 1, b = 'x'`); {} when unreadable."""
    line = text.split("\n", 1)[0]
    if not line.startswith("Slots: "):
        return {}
    return _assignments(line[len("Slots: "):]) or {}


def shown_arguments(text):
    """The arguments an example's prompt shows (`… called as m(x) with x = 20.`), () for
    none, None when unreadable."""
    match = re.search(r"^Write the method \w+, called as .*? with (.*)\.$", text, re.M)
    if match is None:
        return ()
    values = _assignments(match.group(1))
    return None if values is None else tuple(values.values())


def _assignments(text):
    """`a = 1, b = 'x, y = z'` as {'a': 1, 'b': 'x, y = z'}, or None when it is not that."""
    try:
        call = ast.parse(f"f({text})", mode="eval").body
        return {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    except (SyntaxError, ValueError, AttributeError):
        return None


def visible_slots(obj):
    """The public slots `obj` answers, its own and inherited (nearest definition wins)."""
    slots = {}
    for holder in reversed(list(obj._lineage())):
        slots.update({k: v for k, v in holder.slots().items() if not k.startswith("_")})
    return slots


# -- the catalogue ---------------------------------------------------------------------------

def catalogue(lobby, limit=MAX_OBJECTS):
    """The final methods of the objects reachable from the lobby, as `Example`s (breadth
    first, kernel namespaces skipped, at most `limit` objects)."""
    seen, queue, found = {id(lobby)}, [lobby], []
    while queue and len(seen) <= limit:
        obj = queue.pop(0)
        for name, value in obj.slots().items():
            if isinstance(value, UvmObject) and id(value) not in seen \
                    and not (obj is lobby and name in KERNEL_NAMESPACES):
                seen.add(id(value))
                queue.append(value)
        found.extend(_examples_of(obj))
    return found


def _examples_of(obj):
    methods = [m for m in obj._own_methods().values()
               if isinstance(m, Method) and not m.provenance.get("provisional")]
    if not methods:
        return []
    slots = {k: plain(v) for k, v in visible_slots(obj).items()
             if kind_of(v) is not None}
    return [Example(m.selector, slots, tuple(_example_args(m)), m.source) for m in methods]


def _example_args(method):
    """The arguments a method was learned or seeded with, when the image knows them."""
    provenance = method.provenance
    mandate = provenance.get("mandate") or {}
    return mandate.get("args", provenance.get("example_args", ()))


def nearest(examples, selector, slots, args, count=3):
    """The `count` examples most like the mandate that share a word of its selector, least
    alike first (the closest one stands right before the mandate in the prompt). Measured:
    a small model copies an example's expression, so an example whose selector is unrelated
    (`kilograms` = grams / 1000 for `area`) does more harm than none."""
    related = [e for e in examples if _words(e.selector) & _words(selector)]
    ranked = sorted(related, key=lambda e: similarity(e, selector, slots, args),
                    reverse=True)
    chosen, sources = [], set()
    for example in ranked:
        if len(chosen) >= count:
            break
        if example.source not in sources:
            chosen.append(example)
            sources.add(example.source)
    return list(reversed(chosen))


def similarity(example, selector, slots, args):
    """How much an example resembles a mandate: its selector (whole and by words), slot
    names, the kinds of its slots and arguments, and its number of arguments."""
    return (4.0 * (example.selector == selector)
            + 2.0 * _jaccard(_words(example.selector), _words(selector))
            + 1.0 * _jaccard(set(example.slots), set(slots))
            + 1.0 * _jaccard(_kinds(example.slots, example.args), _kinds(slots, args))
            + 0.5 * (len(example.args) == len(args)))


def _words(selector):
    """A selector's words, a word and its contrary alike (`is_unpaid` is near `is_paid`:
    one answers `not` the other, `kernel.dnu.precedents`)."""
    return {CONTRARY.get(w, w) for w in selector.lower().split("_") if w}


def unknown_words(examples, selector):
    """The words of `selector` that no method of `examples` (the image's catalogue) has in
    its selector or slot names, plurals aside: a message in words the image has never seen
    (`zorble`) is one the model can only guess at, however its samples agree (`kernel.dnu`)."""
    known = {singular(word) for example in examples
             for name in (example.selector, *example.slots) for word in name.lower().split("_")}
    return tuple(w for w in selector.lower().split("_") if w and singular(w) not in known)


def singular(word):
    """A word without its plural `s` (`scores` → `score`): a selector's word meets a slot's."""
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


def _kinds(slots, args):
    """The kinds of the slots and of the arguments, counted: {('num', 0), ('num', 1), …}."""
    counted = collections.Counter([kind_of(v) for v in slots.values()]
                                  + [("argument", kind_of(a)) for a in args])
    return {(key, n) for key, total in counted.items() for n in range(total)}


def _jaccard(a, b):
    return len(a & b) / len(a | b) if a | b else 0.0


# -- the seed --------------------------------------------------------------------------------

SEED_EXAMPLES = [  # (object name, slots, selector, example arguments, source)
    ("timesheet", {"hours": 8, "rate": 15}, "wage", (),
     "def wage(self):\n    return self.hours * self.rate\n"),
    ("match", {"home": 2, "away": 1}, "goals", (),
     "def goals(self):\n    return self.home + self.away\n"),
    ("parcel", {"grams": 2500}, "kilograms", (),
     "def kilograms(self):\n    return self.grams / 1000\n"),
    ("gas", {"kelvin": 300}, "celsius", (),
     "def celsius(self):\n    return self.kelvin - 273.15\n"),
    ("team", {"wins": 6, "games": 8}, "win_rate", (),
     "def win_rate(self):\n    return self.wins / self.games\n"),
    ("pixel", {"red": 200, "green": 100, "blue": 30}, "brightness", (),
     "def brightness(self):\n    return (self.red + self.green + self.blue) / 3\n"),
    ("author", {"given": "Mary", "family": "Shelley"}, "byline", (),
     "def byline(self):\n    return 'by ' + self.given + ' ' + self.family\n"),
    ("banner", {"title": "sale"}, "shouted_title", (),
     "def shouted_title(self):\n    return self.title.upper()\n"),
    ("file", {"path": "docs/readme.txt"}, "parts", (),
     "def parts(self):\n    return self.path.split('/')\n"),
    ("tag", {"slug": "new-arrival"}, "spaced_slug", (),
     "def spaced_slug(self):\n    return self.slug.replace('-', ' ')\n"),
    ("crate", {"weights": [3, 5, 4]}, "heaviest", (),
     "def heaviest(self):\n    return max(self.weights)\n"),
    ("route", {"stops": ["Ayr", "Troon", "Irvine"]}, "final_stop", (),
     "def final_stop(self):\n    return self.stops[-1]\n"),
    ("folder", {"parts": ["home", "ada", "notes"]}, "joined_path", (),
     "def joined_path(self):\n    return '/'.join(self.parts)\n"),
    ("sensor", {"samples": [4, 12, 7, 15]}, "high_samples", (),
     "def high_samples(self):\n    return [n for n in self.samples if n > 10]\n"),
    ("basket", {"costs": [2, 3, 5]}, "cost_with_tax", (),
     "def cost_with_tax(self):\n    total = 0\n    for n in self.costs:\n"
     "        total = total + n * 1.2\n    return total\n"),
    ("car", {"speed": 70, "limit": 50}, "is_too_fast", (),
     "def is_too_fast(self):\n    return self.speed > self.limit\n"),
    ("code", {"pin": "4821"}, "is_numeric", (),
     "def is_numeric(self):\n    return self.pin.isdigit()\n"),
    ("cinema", {"age": 15}, "ticket_price", (),
     "def ticket_price(self):\n    if self.age < 18:\n        return 5\n    return 9\n"),
    ("meter", {"rate": 4}, "charge_for", (3,),
     "def charge_for(self, x):\n    return self.rate * x\n"),
    ("club", {"members": ["ann", "bo"]}, "has_member", ("bo",),
     "def has_member(self, x):\n    return x in self.members\n"),
    ("site", {"visits": 0}, "record_visit", (),
     "def record_visit(self):\n    self.visits = self.visits + 1\n    self._p_changed = True\n"
     "    return self.visits\n"),
    ("wallet", {"credit": 5}, "top_up", (20,),
     "def top_up(self, x):\n    self.credit = self.credit + x\n    self._p_changed = True\n"
     "    return self.credit\n"),
    ("log", {"errors": 3}, "clear_errors", (),
     "def clear_errors(self):\n    self.errors = 0\n    self._p_changed = True\n"),
    ("player", {"playlist": ["intro"]}, "enqueue", ("outro",),
     "def enqueue(self, x):\n    self.playlist.append(x)\n    self._p_changed = True\n"),
    ("alarm", {"armed": False}, "arm", (),
     "def arm(self):\n    self.armed = True\n    self._p_changed = True\n"),
]


def seed(lobby, traits):
    """Genesis: `lobby.examples`, one object per seed example (the idioms, then the domain
    methods), each with its method."""
    examples = UvmObject(parents=(traits,), label="examples")
    for name, slots, selector, args, source in SEED_EXAMPLES + DOMAIN_EXAMPLES:
        obj = UvmObject(parents=(traits,), label=f"examples.{name}", **slots)
        obj.define(selector, source, author="genesis", example_args=list(args))
        setattr(examples, name, obj)
    lobby.examples = examples
    return examples
