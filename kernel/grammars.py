"""GBNF grammars that turn small models into usable method writers.

A mandate knows the receiver's slots and the call's arguments — and their types — so the
grammar for BRICK's answer can too: `def <selector>(self, <params>):` and one `return` of a
typed expression. Numbers combine with arithmetic and a few numeric builtins, text with `+`
and `str(...)`, lists feed `len`/`sum`/`max`/`min`, and comparisons give booleans. A tiny
model sampling under it cannot wander into prose, imports, another selector or type errors
such as `float(self.name)`; every string the grammar admits is a method the guardian accepts.
"""
import json

PARAMETER_NAMES = ("x", "y", "z", "u", "v")
ARITHMETIC = ("+", "-", "*", "/", "//", "%", "**")
COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
TEXT_CHARACTER = "[a-zA-Z0-9 ,.!?:;-]"


def parameter_names(count):
    """The parameter names a method called with `count` positional arguments gets."""
    if count > len(PARAMETER_NAMES):
        raise ValueError(f"a learned method takes at most {len(PARAMETER_NAMES)} arguments")
    return list(PARAMETER_NAMES[:count])


def kind_of(value):
    """`number`, `text`, `numbers` (a list of numbers), or None for what the grammar skips."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return "numbers"
    return None


def literal(text):
    """A GBNF string literal."""
    return json.dumps(text)


def alternatives(options):
    """A GBNF alternation of literals, or a rule that can never match when there are none."""
    return " | ".join(literal(option) for option in options) if options else "[\\x00]"


def method_grammar(selector, slots, args):
    """The GBNF for one method `selector` over `slots` (name → value), called with `args`."""
    params = parameter_names(len(args))
    header = f"def {selector}(self" + "".join(f", {p}" for p in params) + "):\n    return "
    refs = {"number": [], "text": [], "numbers": []}
    for name, value in sorted(slots.items()):
        if kind_of(value):
            refs[kind_of(value)].append(f"self.{name}")
    for name, value in zip(params, args):
        refs[kind_of(value) or "number"].append(name)
    rules = [
        f"root ::= {literal(header)} result \"\\n\"",
        "result ::= num | txt | cmp",
        "cmp ::= num \" \" cmpop \" \" num" + (" | txt \" == \" txt" if refs["text"] else ""),
        f"cmpop ::= {alternatives(COMPARISONS)}",
        "num ::= numterm (\" \" numop \" \" numterm)*",
        f"numop ::= {alternatives(ARITHMETIC)}",
        "numterm ::= \"-\"? numatom",
        "numatom ::= numref | constant | \"(\" num \")\" | numcall",
        "numcall ::= (\"abs(\" | \"round(\") num \")\" | (\"max(\" | \"min(\") num \", \" num "
        "\")\"" + (" | (\"len(\" | \"sum(\" | \"max(\" | \"min(\") listref \")\""
                   if refs["numbers"] else "") + (" | \"len(\" txtref \")\"" if refs["text"]
                                                   else ""),
        "constant ::= [0-9] [0-9]? [0-9]? [0-9]? (\".\" [0-9] [0-9]?)?",
        f"numref ::= {alternatives(refs['number'])}",
        f"listref ::= {alternatives(refs['numbers'])}",
        "txt ::= txtatom (\" + \" txtatom)*",
        "txtatom ::= txtref | \"'\" " + f"{TEXT_CHARACTER}? " * 12 + "\"'\" | \"str(\" num \")\"",
        f"txtref ::= {alternatives(refs['text'])}",
    ]
    return "\n".join(rules) + "\n"
