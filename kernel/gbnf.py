"""The GBNF subset kernel.grammars writes: read it, prune what cannot match, sample it.

A method grammar names only what the mandate has: where it has no list of numbers, the
alternative `"sum(" numsref ")"` is *dead* (`numsref ::= [\\x00]`, a class that matches
nothing). llama.cpp would still let a model write `sum(` and then find no token that may
follow: every logit -inf, a token sampled anyway, and llama.cpp aborts the process
("Unexpected empty grammar stack"). So `prune` removes every alternative that cannot
complete before a grammar reaches the model. `sample` draws random sentences and `matches`
recognises one: the tests use them to show that a grammar admits the method language's
idioms and never goes past the guardian.

Supported: rules `name ::= ...`, string literals (JSON), character classes `[...]` (ranges,
`\\x00`), grouping, `|`, `?`, `*`, `+`.
"""
import json
import re

TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|(\[(?:[^\]\\]|\\.)*\])|([A-Za-z][\w-]*)|'
                   r'(::=|[()|?*+]))')


def parse(text):
    """Rules of a GBNF text: name → expression tree."""
    rules = {}
    for line in text.splitlines():
        if "::=" not in line:
            continue
        name, body = line.split("::=", 1)
        tokens = _tokens(body)
        tree, rest = _alternation(tokens)
        assert not rest, f"cannot read {line!r}"
        rules[name.strip()] = tree
    return rules


def _tokens(text):
    tokens, at = [], 0
    while at < len(text.rstrip()):
        match = TOKEN.match(text, at)
        assert match, f"cannot read {text[at:]!r}"
        string, chars, name, symbol = match.groups()
        tokens.append(("lit", json.loads(string)) if string else ("class", _chars(chars), chars)
                      if chars else ("ref", name) if name else ("sym", symbol))
        at = match.end()
    return tokens


def _chars(text):
    body = text[1:-1].encode().decode("unicode_escape")
    chars, i = [], 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            chars.extend(chr(c) for c in range(ord(body[i]), ord(body[i + 2]) + 1))
            i += 3
        else:
            chars.append(body[i])
            i += 1
    return [c for c in chars if c != "\x00"]


def _alternation(tokens):
    options = []
    while True:
        sequence, tokens = _sequence(tokens)
        options.append(("seq", sequence))
        if tokens and tokens[0] == ("sym", "|"):
            tokens = tokens[1:]
            continue
        return ("alt", options), tokens


def _sequence(tokens):
    items = []
    while tokens and tokens[0] not in (("sym", "|"), ("sym", ")")):
        if tokens[0] == ("sym", "("):
            item, tokens = _alternation(tokens[1:])
            assert tokens[0] == ("sym", ")")
            tokens = tokens[1:]
        else:
            item, tokens = tokens[0], tokens[1:]
        while tokens and tokens[0] in (("sym", "?"), ("sym", "*"), ("sym", "+")):
            item, tokens = ("repeat", item, tokens[0][1]), tokens[1:]
        items.append(item)
    return items, tokens


def productive(rules):
    """The names of the rules that derive at least one sentence."""
    alive = set()
    while True:
        grown = {name for name, tree in rules.items() if _alive(tree, alive)} | alive
        if grown == alive:
            return alive
        alive = grown


def prune(text, start="root"):
    """The GBNF `text` without the alternatives that cannot complete, and without the rules
    `start` no longer reaches."""
    rules = parse(text)
    alive = productive(rules)
    kept = {name: _pruned(tree, alive) for name, tree in rules.items() if name in alive}
    reached, queue = set(), [start]
    while queue:
        name = queue.pop()
        if name not in reached:
            reached.add(name)
            queue.extend(_references(kept[name]))
    return "\n".join(f"{name} ::= {render(tree)}" for name, tree in kept.items()
                     if name in reached) + "\n"


def _pruned(node, alive):
    kind = node[0]
    if kind == "alt":
        return ("alt", [_pruned(o, alive) for o in node[1] if _alive(o, alive)])
    if kind == "seq":
        return ("seq", [_pruned(i, alive) for i in node[1] if _alive(i, alive)])
    if kind == "repeat":
        return ("repeat", _pruned(node[1], alive), node[2])
    return node


def _references(node):
    if node[0] == "ref":
        yield node[1]
    elif node[0] in ("alt", "seq"):
        for item in node[1]:
            yield from _references(item)
    elif node[0] == "repeat":
        yield from _references(node[1])


def render(node, nested=False):
    """An expression tree as GBNF text."""
    kind = node[0]
    if kind == "lit":
        return json.dumps(node[1])
    if kind == "class":
        return node[2]
    if kind == "ref":
        return node[1]
    if kind == "repeat":
        return render(node[1], nested=True) + node[2]
    if kind == "seq":
        text = " ".join(render(item, nested=True) for item in node[1]) or '""'
        return f"({text})" if nested and len(node[1]) > 1 else text
    options = node[1]
    if len(options) == 1:
        return render(options[0], nested)
    text = " | ".join(render(option) for option in options)
    return f"({text})" if nested else text


def _alive(node, alive):
    kind = node[0]
    if kind == "lit":
        return True
    if kind == "class":
        return bool(node[1])
    if kind == "ref":
        return node[1] in alive
    if kind == "alt":
        return any(_alive(option, alive) for option in node[1])
    if kind == "seq":
        return all(_alive(item, alive) for item in node[1])
    return node[2] in "?*" or _alive(node[1], alive)


def sample(rules, rng, start="root", depth=6):
    """One random sentence of the grammar (deep recursion takes the shortest way out)."""
    alive = productive(rules)
    return _sample(rules, rules[start], rng, alive, depth)


def _sample(rules, node, rng, alive, depth):
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "class":
        return rng.choice(node[1])
    if kind == "ref":
        return _sample(rules, rules[node[1]], rng, alive, depth - 1)
    if kind == "seq":
        return "".join(_sample(rules, item, rng, alive, depth) for item in node[1])
    if kind == "alt":
        options = [o for o in node[1] if _alive(o, alive)]
        if depth <= 0:
            options = sorted(options, key=_size)[:1]
        return _sample(rules, rng.choice(options), rng, alive, depth)
    item, how = node[1], node[2]
    if not _alive(item, alive) or (how in "?*" and (depth <= 0 or rng.random() < 0.5)):
        return ""
    return _sample(rules, item, rng, alive, depth)


def matches(rules, text, start="root"):
    """True when the grammar derives exactly `text`."""
    memo = {}
    return len(text) in _ends(rules, ("ref", start), text, 0, memo)


def _ends(rules, node, text, at, memo):
    """The positions where a match of `node` starting at `at` can end."""
    kind = node[0]
    if kind == "lit":
        return {at + len(node[1])} if text.startswith(node[1], at) else set()
    if kind == "class":
        return {at + 1} if at < len(text) and text[at] in node[1] else set()
    if kind == "ref":
        key = (node[1], at)
        if key not in memo:
            memo[key] = set()  # a rule met again at the same place adds nothing
            memo[key] = _ends(rules, rules[node[1]], text, at, memo)
        return memo[key]
    if kind == "alt":
        return set().union(*(_ends(rules, o, text, at, memo) for o in node[1]))
    if kind == "seq":
        ends = {at}
        for item in node[1]:
            ends = set().union(*(_ends(rules, item, text, e, memo) for e in ends)) \
                if ends else set()
        return ends
    item, how = node[1], node[2]
    ends, frontier = ({at} if how in "?*" else set()), {at}
    for _ in range(1 if how == "?" else len(text) - at + 1):
        frontier = set().union(*(_ends(rules, item, text, e, memo) for e in frontier)) \
            if frontier else set()
        frontier -= ends
        if not frontier:
            break
        ends |= frontier
    return ends


def _size(node):
    """How much recursion an alternative invites: its references and repetitions."""
    if node[0] == "ref":
        return 1
    if node[0] in ("seq", "alt"):
        return sum(_size(item) for item in node[1])
    if node[0] == "repeat":
        return _size(node[1])
    return 0
