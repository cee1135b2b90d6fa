"""Values of the image seen from outside: plain, JSON-ready renderings and comparisons.

Slot values and method results can be anything the image holds — objects, BTrees, counters.
`plain` renders them for people and for JSON (objects by label, BTrees by size); `matches`
decides whether a result is what a caller expected, the way a person would (lists and tuples
alike, floats within rounding).
"""
import math

from BTrees.Length import Length

from kernel.uvm import UvmObject


def plain(value, depth=0):
    """A JSON-ready rendering of a slot value: objects by label, BTrees by size."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, UvmObject):
        return {"object": value.label}
    if depth > 8:
        return repr(value)
    if isinstance(value, (list, tuple)):
        return [plain(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, Length):
        return {"counter": value()}
    if type(value).__module__.startswith("BTrees."):
        return {"btree": type(value).__name__, "items": len(value)}
    return repr(value)


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
