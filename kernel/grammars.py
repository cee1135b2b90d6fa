"""GBNF grammars that turn small models into usable method writers.

A mandate knows the receiver's slots and the call's arguments — and their types — so the
grammar for BRICK's answer can too: `def <selector>(self, <params>):` and a body over typed
expressions. Numbers combine with arithmetic and numeric builtins; text with `+`, its own
methods (`upper`, `strip`, `replace`, `split`, `join`, …, two chained at most:
`self.title.lower().replace(' ', '-')`, after an item too: `self.first_name[0].upper()`),
slicing and repetition (`'*' * (len(self.card) - 4) + self.card[-4:]`); lists of numbers
feed `len`/`sum`/`max`/`min`/`sorted`/`sorted(set(…))`, the first or last few of them sorted
(`sorted(self.scores, reverse=True)[:3]`) and comprehensions; lists of texts (or a text's
words) feed comprehensions too (`[n for n in self.words if len(n) > x]`, `[n[0] for n in
self.phrase.split()]`, `[len(n) for n in self.words]`, `[n for n in self.mine if n in
self.yours]`) and `max(…, key=len)`; comparisons, `in`, `not in`,
`and`/`or`/`not` give booleans. A body is one of:

- `return <expression>`;
- `if <condition>:` … `return`, then `return` (an if/else);
- a loop over a slot's items into the local `total` (optionally filtered), then `return`;
- a command: one or two statements that change the receiver's slots (`self.count =
  self.count + 1`, `self.balance += x`, `self.items.append(x)`, `self.items = []`), then the
  Covenant's `self._p_changed = True`, optionally followed by `return self.<slot>`.

A tiny model sampling under it cannot wander into prose, imports, another selector or type
errors such as `float(self.name)`. The grammar never goes past the guardian: every sentence
it admits is a method the guardian accepts (tests/test_grammars.py samples thousands).
"""
import json

from kernel import gbnf

PARAMETER_NAMES = ("x", "y", "z", "u", "v")
ARITHMETIC = ("+", "-", "*", "/", "//", "%", "**")
COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
TEXT_METHODS = ("upper", "lower", "strip", "title", "capitalize", "lstrip", "rstrip",
                "swapcase")
TEXT_CHARACTER = "[a-zA-Z0-9 ,.!?:;@/_#*-]"
MAX_STRING = 12
KINDS = ("num", "txt", "bool", "nums", "txts", "list")
LOOP_ITEM = "n"
COVENANT = "    self._p_changed = True\n"


def parameter_names(count):
    """The parameter names a method called with `count` positional arguments gets."""
    if count > len(PARAMETER_NAMES):
        raise ValueError(f"a learned method takes at most {len(PARAMETER_NAMES)} arguments")
    return list(PARAMETER_NAMES[:count])


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def kind_of(value):
    """The grammar's kind of a value: `num`, `txt`, `bool`, `nums` (a non-empty list of
    numbers), `txts` (of texts), `list` (any other list), or None for what it skips."""
    if isinstance(value, bool):
        return "bool"
    if _is_number(value):
        return "num"
    if isinstance(value, str):
        return "txt"
    if isinstance(value, (list, tuple)):
        if value and all(_is_number(v) for v in value):
            return "nums"
        if value and all(isinstance(v, str) for v in value):
            return "txts"
        return "list"
    return None


def literal(text):
    """A GBNF string literal."""
    return json.dumps(text)


def alternatives(options):
    """A GBNF alternation of literals, or a rule that can never match when there are none."""
    return " | ".join(literal(option) for option in options) if options else "[\\x00]"


def references(slots, args):
    """Kind → the names a method may read of that kind: `self.<slot>` and parameters."""
    refs = {kind: [] for kind in KINDS}
    for name, value in sorted(slots.items()):
        if kind_of(value):
            refs[kind_of(value)].append(f"self.{name}")
    for name, value in zip(parameter_names(len(args)), args):
        refs[kind_of(value) or "num"].append(name)
    return refs


def writable_slots(slots):
    """Kind → the receiver's slot names a command may assign."""
    found = {kind: [] for kind in KINDS}
    for name, value in sorted(slots.items()):
        if kind_of(value):
            found[kind_of(value)].append(name)
    return found


EXPRESSION_RULES = r"""
expr ::= num | txt | cond | seq
num ::= numterm (" " arith " " numterm)*
numterm ::= numatom | "-" numatom
numatom ::= numref | const | "(" num ")" | numcall | numsref "[" index "]" | "len(" sized ")" | "len(" txtref ".split())" | txtref ".count(" txt ")"
numcall ::= ("abs(" | "round(" | "int(" | "float(") num ")" | "round(" num ", " [0-9] ")" | ("max(" | "min(") num ", " num (", " num)? ")" | ("sum(" | "max(" | "min(") (numsref | numcomp | paircomp) ")"
sized ::= txtref | numsref | txtsref | listref | numcomp | txtcomp | paircomp | "set(" items ")"
const ::= ("0" | [1-9] ([0-9] ([0-9] [0-9]?)?)?) ("." [0-9] ([0-9] ([0-9] ([0-9] [0-9]?)?)?)?)?
index ::= "0" | "1" | "2" | "-1" | "-2" | numarg | "len(" (items | listref) ") // 2"
txt ::= txtatom | txtatom " + " txt
txtatom ::= txtref txtops? | string | "str(" num ")" | txtref "[::-1]" | txtref "[" index "]" txtops? | txtref "[" slice "]" | (txtref | string) " * " numatom | string ".join(" (txtsref | txtcomp | paircomp) ")" txtops? | txtsref "[" index "]" txtops? | txtref ".split(" string? ")[" index "]" txtops? | ("min(" | "max(") txtsref (", key=len")? ")"
txtops ::= txtop txtop?
txtop ::= "." textmethod "()" | ".replace(" string ", " string ")"
string ::= "'" {chars} "'"
cond ::= condatom | condatom (" and " | " or ") condatom
condatom ::= num " " compare " " num | txt (" == " | " != ") txt | boolref | "not " boolref | "not " sized | num (" in " | " not in ") numsref | txt (" in " | " not in ") (txtsref | txtref) | txtref (".startswith(" | ".endswith(") txt ")" | txtref (".isdigit()" | ".isupper()" | ".islower()") | ("set(" | "sorted(") items (") == set(" | ") == sorted(") items ")" | "True" | "False"
seq ::= numsref | txtsref | listref | "sorted(" items (", reverse=True")? ")" ("[" slice "]")? | "list(reversed(" items "))" | ("sorted(set(" | "list(set(") items ")" (setop "set(" items "))" | ")") | txtref ".split()" | txtref ".split(" string ")" | (numsref | txtsref | listref) "[" slice "]" | numcomp | txtcomp | paircomp | (numsref | txtsref | listref) " + [" (num | txt) "]" | "[]"
slice ::= bound? ":" bound? (":" "-"? [1-9])?
items ::= numsref | txtsref
setop ::= " - " | " & " | " | "
bound ::= "-"? [0-9] | numarg
numcomp ::= "[" item " for n in " numsref (" if " itemcond)? "]" | "[len(n) for n in " txtsref "]"
txtcomp ::= "[" ("n" | "n." textmethod "()" | "n[0]") " for n in " (txtsref | txtref ".split()") (" if " txtcond)? "]"
txtcond ::= "len(n) " compare " " num | "n" (".startswith(" | ".endswith(") txt ")" | "n " ("==" | "!=") " " txt | "n" (" in " | " not in ") txtsref
item ::= "n" | "n " arith " " numatom
paircomp ::= "[" ("n" | "m") " for n, m in zip(" (items | listref) ", " (items | listref) ")" (" if " paircond)? "]"
paircond ::= "not "? ("n" | "m") | ("n" | "m") " " compare " " (num | txt)
itemcond ::= "n " compare " " num | "n % " const " " compare " " const | "n" (" in " | " not in ") numsref
"""

STATEMENT_RULES = r"""
query ::= "    return " expr "\n"
ifelse ::= "    if " cond ":\n        return " expr "\n" ("    else:\n        return " | "    return ") expr "\n"
loop ::= "    total = " const "\n    for n in " numsref ":\n        " ("if " itemcond ":\n            ")? "total = total " arith " " (item | const) "\n    return total" (" " arith " " num)? "\n"
command ::= change change? "    self._p_changed = True\n" ("    return " (numslot | txtslot | boolslot | seqslot) "\n")?
change ::= "    " numslot (" = " num | " " ("+=" | "-=" | "*=") " " num) "\n" | "    " txtslot " = " txt "\n" | "    " boolslot " = " cond "\n" | "    " seqslot " = " seq "\n" | "    " seqslot (".append(" (num | txt) ")" | ".remove(" (num | txt) ")" | ".clear()" | ".pop()" | ".sort()" | ".reverse()") "\n"
"""


def header(selector, args):
    """A method's def line for a call with `args`: `def scaled(self, x):` and a newline."""
    return f"def {selector}(self" + "".join(f", {p}" for p in parameter_names(len(args))) \
        + "):\n"


BODIES = ("query", "ifelse", "loop", "command")


def method_grammar(selector, slots, args, with_header=True, bodies=BODIES, fence=False):
    """The GBNF for one method `selector` over `slots` (name → value), called with `args`;
    without its def line when the model is given it (`with_header=False`); with only some
    of the `BODIES` forms if asked (`("query",)`: one `return`); with `fence`, the method may
    be followed by a blank line or the end of a Markdown code block, as chat models end
    code (no part of the method: `MethodWriter` drops it)."""
    params = parameter_names(len(args))
    start = literal(header(selector, args)) + " " if with_header else ""
    refs = references(slots, args)
    slot_names = writable_slots(slots)
    numeric_args = [name for name, value in zip(params, args)
                     if isinstance(value, int) and not isinstance(value, bool)]
    rules = [
        f"root ::= {start}body" + (' "\\n"? "```"?' if fence else ""),
        f"arith ::= {alternatives(ARITHMETIC)}",
        f"compare ::= {alternatives(COMPARISONS)}",
        f"textmethod ::= {alternatives(TEXT_METHODS)}",
        f"chr ::= {TEXT_CHARACTER}",
        f"numref ::= {alternatives(refs['num'])}",
        f"txtref ::= {alternatives(refs['txt'])}",
        f"boolref ::= {alternatives(refs['bool'])}",
        f"numsref ::= {alternatives(refs['nums'])}",
        f"txtsref ::= {alternatives(refs['txts'])}",
        f"listref ::= {alternatives(refs['list'])}",
        f"numarg ::= {alternatives(numeric_args)}",
        f"numslot ::= {alternatives(['self.' + n for n in slot_names['num']])}",
        f"txtslot ::= {alternatives(['self.' + n for n in slot_names['txt']])}",
        f"boolslot ::= {alternatives(['self.' + n for n in slot_names['bool']])}",
        "seqslot ::= " + alternatives(['self.' + n for kind in ("nums", "txts", "list")
                                       for n in slot_names[kind]]),
    ]
    rules.append(f"body ::= {' | '.join(bodies)}")
    return gbnf.prune("\n".join(rules) + STATEMENT_RULES + EXPRESSION_RULES.replace(
        "{chars}", _at_most(MAX_STRING, "chr")))


def _at_most(count, symbol):
    """`symbol` zero to `count` times, nested (`(a (a a?)?)?`): one parse stack at a time,
    where a chain of optionals (`a? a? a?`) would keep one per way of placing the symbols."""
    text = ""
    for _ in range(count):
        text = f"({symbol} {text})?" if text else f"{symbol}?"
    return text
