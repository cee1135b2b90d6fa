"""Values of the image seen from outside: plain, JSON-ready renderings and comparisons.

Slot values and method results can be anything the image holds — objects, BTrees, counters.
`plain` renders them for people and for JSON (objects by label, BTrees by size), at bounded
cost whatever they hold; `matches`
decides whether a result is what a caller expected, the way a person would (lists and tuples
alike, floats within rounding).
"""
import math

from BTrees.Length import Length

from kernel.errors import TooLarge
from kernel.uvm import UvmObject


MAX_RENDERED = 100_000  # items one rendering may produce, shared references expanded
MAX_DEPTH = 8


def plain(value):
    """A JSON-ready rendering of a slot value: objects by label, BTrees by size. It costs at
    most `MAX_RENDERED` items however many shared references the value holds (a list of a
    list of … the same list expands exponentially): past that it is a `TooLarge` error."""
    return _plain(value, [MAX_RENDERED], 0)


def _plain(value, budget, depth):
    budget[0] -= 1
    if budget[0] < 0:
        raise TooLarge(f"the value has more than {MAX_RENDERED:,} items once its shared "
                       "references are expanded; it cannot be shown")
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, UvmObject):
        return {"object": value.label}
    if depth > MAX_DEPTH:
        return f"<{type(value).__name__} nested more than {MAX_DEPTH} levels deep>"
    if isinstance(value, (list, tuple)):
        return [_plain(v, budget, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        return [_plain(v, budget, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k)[:200]: _plain(v, budget, depth + 1) for k, v in value.items()}
    if isinstance(value, Length):
        return {"counter": value()}
    if type(value).__module__.startswith("BTrees."):
        return {"btree": type(value).__name__, "items": len(value)}
    return f"<{type(value).__name__}>"


def matches(result, expected):
    """True when `result` is what a caller who said `expected` (plain JSON data) meant."""
    result = plain(result)
    if isinstance(expected, bool) or isinstance(result, bool):
        return result is expected if isinstance(expected, bool) else False
    if isinstance(expected, (int, float)) and isinstance(result, (int, float)):
        return math.isclose(result, expected, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(expected, list) and isinstance(result, list):
        return len(result) == len(expected) and all(map(matches, result, expected))
    if isinstance(expected, dict) and isinstance(result, dict):
        return result.keys() == expected.keys() and all(
            matches(result[k], expected[k]) for k in expected)
    return result == expected
