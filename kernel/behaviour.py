"""Candidates judged by behaviour: probe calls, behaviour signatures and their clusters.

Text is a poor judge of code from a small model; what the code *does* is a good one. Every
candidate method that passes the audit runs (in the trial, always rolled back) on the real
receiver with the real arguments and on a few *probe* calls derived from them: the same
slots and arguments with other values of the same kinds — other numbers of the same sign
(whole ones of the other parity first), other words of the same shape (case, digits, spaces
kept), lists of other lengths, the other boolean; the last probe crosses those boundaries,
its numbers the real ones times a negative factor (`probe_calls`). What a call returned and
which of the receiver's slots it changed, rendered canonically (2 and 2.0 alike, True never
1), make the candidate's *signature*. Candidates
with the same signature behave the same on every call seen: they form one cluster, and the
clusters — not the texts — are what `_doesNotUnderstand` weighs.
"""
import ast
import dataclasses
import json
import logging
import random
import string

from kernel.grammars import ARITHMETIC, TEXT_METHODS, kind_of, parameter_names
from kernel.values import plain

log = logging.getLogger(__name__)

PROBES = 4  # 3 random, 1 crossing: two equal numbers stay in order on a random one at 1/2
# the kinds of `kernel.dnu.precedents`, strongest first
PRECEDENT_KINDS = ("exact", "read", "related", "partial", "kin", "analogous")
NUMBER_CHOICES = (2, 3, 4, 5, 7, 8, 9, 11, 12, 13, 16, 17, 19, 23, 24, 31, 42, 64, 97)
CROSS_FACTORS = (2, 3, 5)


# -- probe calls -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Call:
    """One call a candidate is tried on: its own slots for the receiver, and its arguments
    (`slots` is empty for the real call, which runs on the receiver itself)."""

    slots: dict
    args: tuple


def probe_calls(selector, slots, args, count=PROBES):
    """The real call, then `count` probe calls with other values of the same kinds
    (deterministic for a selector, so that a mandate is judged the same way every time).
    The last probe crosses the boundaries the others keep: its numbers are the real ones
    times one negative factor (the other sign, and every order between two of them
    reversed), its lists are empty and its texts lose their punctuation; the first gives
    each whole number the other parity. A predicate at its natural boundary
    (`balance < 0`, `len(self.items) > 0`, `'@' in self.email`, `number % 2 == 0`: odd on
    every probe of an odd number, `spent > budget`: random probes may all keep the order)
    answered the same on every other probe, and looked like one that ignores its inputs."""
    rng = random.Random(f"{selector}/{sorted(slots)}")
    calls = [Call({}, tuple(args))]
    variable = {k: v for k, v in slots.items() if kind_of(v) is not None}
    for n in range(count):
        cross = -rng.choice(CROSS_FACTORS) if n == count - 1 else None
        flip = n == 0
        calls.append(Call({k: vary(v, rng, cross, flip) for k, v in variable.items()},
                          tuple(vary(a, rng, cross, flip) for a in args)))
    return calls


def vary(value, rng, cross=None, flip=False):
    """Another value of the same kind as `value` (a plain image value); with `cross` (a
    negative factor), one across a boundary: the number times `cross` (a fraction or 0:
    another one of the other sign), an empty list, a text without punctuation; with `flip`,
    a whole number of the other parity."""
    kind = kind_of(value)
    if kind == "bool":
        return not value
    if kind == "num":
        if cross and abs(value) >= 1:
            return value * cross
        number = _vary_number(value, rng, flip)
        return -number if cross else number
    if kind == "txt":
        text = _vary_text(value, rng)
        return "".join(c for c in text if c.isalnum() or c == " ") if cross else text
    if kind in ("nums", "txts"):
        if cross:
            return []
        length = max(1, len(value) + rng.choice((-1, 0, 1, 2)))
        return [vary(rng.choice(value), rng) for _ in range(length)]
    if kind == "list":
        return [_vary_text("word", rng) for _ in range(rng.choice((1, 2)))]
    return value


def _vary_number(value, rng, flip=False):
    sign = -1 if value < 0 else 1
    if isinstance(value, float) and abs(value) < 1:
        return sign * round(rng.uniform(0.01, 0.99), 2)
    whole = not isinstance(value, float) or value.is_integer()
    choice = rng.choice([n for n in NUMBER_CHOICES if n != abs(value) and not (
        flip and whole and n % 2 == abs(value) % 2)])
    if isinstance(value, float) and not value.is_integer():
        choice += rng.choice((0.25, 0.5, 0.75))
    return sign * (float(choice) if isinstance(value, float) else choice)


def _vary_text(text, rng):
    """Random letters in the shape of `text`: the same case pattern, digits where it has
    digits, its spaces and punctuation kept; words may grow or shrink by a letter, and a
    text of several words mostly loses or gains one (a probe that kept the number of words
    made `len(self.title.split())` for `word_count` look like a constant)."""
    words = text.split(" ")
    if len(words) > 1:
        change = rng.choice(("drop", "add", "keep"))
        if change == "drop":
            del words[rng.randrange(len(words))]
        elif change == "add":
            words.insert(rng.randrange(len(words) + 1), rng.choice(words))
    return " ".join(_vary_word(word, rng) for word in words)


def _vary_word(word, rng):
    letters = [c for c in word if c.isalpha()]
    if letters and rng.random() < 0.5:
        word = word + letters[-1] if rng.random() < 0.5 or len(letters) < 3 else \
            word.replace(letters[-1], "", 1)
    made = []
    for c in word:
        if c.isdigit():
            made.append(rng.choice(string.digits))
        elif c.isalpha():
            letter = rng.choice(string.ascii_lowercase)
            made.append(letter.upper() if c.isupper() else letter)
        else:
            made.append(c)
    return "".join(made)


# -- signatures --------------------------------------------------------------------------------

def canonical(value):
    """A value as a hashable text that equal behaviour shares: numbers by their value to nine
    digits (2 == 2.0), booleans apart from numbers, tuples like lists."""
    return json.dumps(_canonical(plain(value)), sort_keys=True)


def _canonical(value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return {"number": format(float(value), ".9g")}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    return repr(value)


def outcome(result, before, after):
    """One call's behaviour: what it returned and which own slots it changed (and to what).
    A call that changed slots is its changes: whether a command also returns the new value
    or nothing is no difference in behaviour."""
    changed = {k: canonical(v) for k, v in after.items()
               if k not in before or canonical(before[k]) != canonical(v)}
    changed.update({k: "<deleted>" for k in before if k not in after})
    return ("ok", None if changed else canonical(result), tuple(sorted(changed.items())))


def failure(exc):
    """One call's behaviour when the method raised."""
    return ("error", type(exc).__name__, ())


def echoed_input(signature, calls, slots):
    """The input (`self.<slot>` or a parameter's name) a behaviour returns unchanged on every
    call, changing nothing — no computation, only a read — else None. `slots` are the real
    receiver's; a probe call's own values replace them."""
    if not signature or len(signature) != len(calls):
        return None
    names = None
    for part, call in zip(signature, calls):
        if part[0] != "ok" or part[2]:
            return None
        inputs = {f"self.{k}": v for k, v in {**slots, **call.slots}.items()}
        inputs.update(zip(parameter_names(len(call.args)), call.args))
        same = {name for name, value in inputs.items() if canonical(value) == part[1]}
        names = same if names is None else names & same
        if not names:
            return None
    return min(names)


def changes_state(signature):
    """True when some call of the signature changed a slot."""
    return any(part[2] for part in signature)


# -- neighbours ------------------------------------------------------------------------------

OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
             ast.Mod: "%", ast.Pow: "**"}
COMPARES = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)
AGGREGATES = ("sum", "max", "min", "len", "sorted")
INDEXES = (0, 1, -1)         # the first, second and last item
MAX_NEIGHBOURS = 12


def neighbours(source, limit=MAX_NEIGHBOURS):
    """Methods one small change away from `source`: another arithmetic operator, comparison,
    text method, aggregate, item (first, second, last) or truth value. They are the
    contrasts a behaviour is judged against — the model, asked which of them its selector
    names best, must prefer the behaviour itself."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    made = []
    for index, node in enumerate(ast.walk(tree)):
        for change in _changes(node):
            mutant = ast.parse(source)
            target = list(ast.walk(mutant))[index]
            change(target)
            text = ast.unparse(mutant) + "\n"
            if text not in made and text != ast.unparse(tree) + "\n" \
                    and "self._p_changed = False" not in text:
                made.append(text)
    return made[:limit]


def _changes(node):
    """Single edits of `node`: each a function that applies one to a copy of it."""
    def setter(field, value):
        return lambda target: setattr(target, field, value)

    if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in OPERATORS:
        return [setter("op", op()) for op in OPERATORS if op is not type(node.op)
                and OPERATORS[op] in ARITHMETIC]
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        return [lambda target, op=op: setattr(target, "ops", [op()]) for op in COMPARES
                if op is not type(node.ops[0])]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr in TEXT_METHODS and not node.args:
        return [lambda target, m=m: setattr(target.func, "attr", m) for m in TEXT_METHODS
                if m != node.func.attr]
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
            and type(node.slice.value) is int:
        return [setter("slice", ast.Constant(i)) for i in INDEXES if i != node.slice.value]
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return [setter("value", not node.value)]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id in AGGREGATES and len(node.args) == 1:
        return [lambda target, f=f: setattr(target.func, "id", f) for f in AGGREGATES
                if f != node.func.id]
    return []


# -- clusters ----------------------------------------------------------------------------------

@dataclasses.dataclass
class Candidate:
    """One method the writer proposed, and what the trial learned about it."""

    source: str
    temperature: float = None
    view: int = 0                # which of the mandate's prompts it was written for
    sampled: bool = True         # written by the model, not a neighbour made to judge it
    problem: str = None          # why it cannot be installed (audit, trial), else None
    signature: tuple = ()        # one outcome per call: the real one first
    result: object = None        # the real call's result, plain
    channel: float = None        # the model's log-likelihood of the selector after the code
    fit: float = None            # the model's log-likelihood of the code after the mandate
    echoes: bool = False         # returns an input unchanged that its selector does not name
    precedent: str = None        # the image's own method for this selector on another object:
                                 # "exact" over the very slot names, "read" onto them by kind

    @property
    def valid(self):
        """True when it passed the audit and ran on the real call."""
        return self.problem is None


@dataclasses.dataclass
class Cluster:
    """Candidates that behaved the same on every call."""

    signature: tuple
    members: list

    @property
    def votes(self):
        """How many samples (duplicates included) behaved this way."""
        return sum(1 for m in self.members if m.sampled)

    @property
    def representative(self):
        """The member to install: the image's own method when one behaved this way (it was
        written for the general case: `day == 'Saturday' or day == 'Sunday'` where samples
        wrote `day == 'Saturday'`), else the most often written text, then the shortest (a
        sampled one before a neighbour)."""
        counts = {}
        for member in self.members:
            counts[member.source] = counts.get(member.source, 0) + member.sampled
        return min(self.members, key=lambda m: (not m.precedent, -counts[m.source],
                                                not m.sampled, len(m.source)))

    @property
    def views(self):
        """How many different prompts led to this behaviour."""
        return len({m.view for m in self.members if m.sampled})

    @property
    def precedent(self):
        """How the image already answers this selector this way on another object: "exact"
        (over the receiver's very slot names), "read" (onto them by kind), "related",
        "partial" (over some of them) or "kin" (a method with fewer selector words:
        `kernel.dnu.precedents`), or None."""
        kinds = {m.precedent for m in self.members}
        return next((kind for kind in PRECEDENT_KINDS if kind in kinds), None)

    @property
    def channel(self):
        """The best channel score among the members (None before scoring)."""
        scores = [m.channel for m in self.members if m.channel is not None]
        return max(scores) if scores else None


def clusters(candidates):
    """The valid candidates grouped by signature, most votes first."""
    groups = {}
    for candidate in candidates:
        if candidate.valid:
            groups.setdefault(candidate.signature, []).append(candidate)
    return sorted((Cluster(s, m) for s, m in groups.items()),
                  key=lambda c: (-c.votes, -len(c.members)))
