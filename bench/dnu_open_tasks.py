"""Held-out tasks for `_doesNotUnderstand` WITHOUT an expectation (issue 14).

Written before any tuning of the learner and kept apart from everything the learner uses as an
example (the genesis example methods, prompts): a missing message as a person sends it, with
nobody saying what result to expect. `bench/dnu_tasks.py` sends each to a fresh object and
judges the installed method by these oracles — on the real receiver and on a second one
(`also`: other slot values of the same types) — never telling the learner.

A task names its kind (numbers, strings, lists, booleans, arguments, state), the receiver's
slots, the selector, the call's arguments and one of:
- `oracle(slots, args)`: the one right result;
- `accept(result, slots, args)`: True for every right result, where reasonable people would
  write it more than one way (a greeting, a separator);
- `after(slots, args)`: for a command, the slots the receiver must hold afterwards (changed
  slots only; its result is not judged).
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class Task:
    """One missing-method task and how to judge the method learned for it."""

    kind: str
    selector: str
    slots: dict
    also: dict
    args: tuple = ()
    oracle: object = None
    accept: object = None
    after: object = None

    def judge(self, result, slots_after, slots):
        """True when a call on a receiver with `slots` returned `result` and left
        `slots_after` as a person asking for this selector meant."""
        if self.after is not None:
            wanted = self.after(slots, self.args)
            return all(_same(slots_after.get(k), v) for k, v in wanted.items())
        if self.accept is not None:
            return bool(self.accept(result, slots, self.args))
        return _same(result, self.oracle(slots, self.args))


def _same(result, wanted):
    if isinstance(wanted, bool) or isinstance(result, bool):
        return result is wanted
    if isinstance(wanted, (int, float)) and isinstance(result, (int, float)):
        return abs(result - wanted) <= 1e-6 * max(1.0, abs(wanted))
    if isinstance(wanted, (list, tuple)) and isinstance(result, (list, tuple)):
        return len(result) == len(wanted) and all(map(_same, result, wanted))
    return result == wanted


def _text_with(*parts, start=None):
    """Accept text holding `parts` in order (and starting with one of `start`, if given)."""
    def accept(result, slots, args):
        if not isinstance(result, str):
            return False
        wanted = [p(slots, args) if callable(p) else p for p in parts]
        at = 0
        for part in wanted:
            found = result.find(part, at)
            if found < 0:
                return False
            at = found + len(part)
        return start is None or result.lower().startswith(start)
    return accept


def _is_num(r):
    return isinstance(r, (int, float)) and not isinstance(r, bool)


def _near(fn, tol):
    """Accept a number within `tol` of fn(s, a) (allows sensible rounding)."""
    return lambda r, s, a: _is_num(r) and abs(r - fn(s, a)) <= tol + 1e-9


def _one_of(fn):
    """Accept any of the strings in fn(s, a)."""
    return lambda r, s, a: isinstance(r, str) and r in fn(s, a)


def T(kind, selector, slots, also, args=(), **judge):
    """A task, briefly."""
    return Task(kind, selector, slots, also, tuple(args), **judge)


TASKS = [
    # -- numbers ---------------------------------------------------------------------------
    T("numbers", "perimeter", {"width": 5, "height": 2}, {"width": 7, "height": 3},
      oracle=lambda s, a: 2 * (s["width"] + s["height"])),
    T("numbers", "diameter", {"radius": 3}, {"radius": 8},
      oracle=lambda s, a: 2 * s["radius"]),
    T("numbers", "volume", {"length": 2, "width": 3, "height": 5},
      {"length": 4, "width": 2, "height": 7},
      oracle=lambda s, a: s["length"] * s["width"] * s["height"]),
    T("numbers", "fahrenheit", {"celsius": 25}, {"celsius": 40},
      oracle=lambda s, a: s["celsius"] * 9 / 5 + 32),
    T("numbers", "total_price", {"price": 20, "quantity": 4}, {"price": 7, "quantity": 6},
      oracle=lambda s, a: s["price"] * s["quantity"]),
    T("numbers", "interest", {"balance": 200, "rate": 0.05}, {"balance": 1000, "rate": 0.02},
      oracle=lambda s, a: s["balance"] * s["rate"]),
    T("numbers", "speed", {"distance": 150, "hours": 3}, {"distance": 90, "hours": 2},
      oracle=lambda s, a: s["distance"] / s["hours"]),
    T("numbers", "area", {"side": 6}, {"side": 9},
      oracle=lambda s, a: s["side"] * s["side"]),
    T("numbers", "age", {"birth_year": 1990, "current_year": 2024},
      {"birth_year": 1975, "current_year": 2020},
      oracle=lambda s, a: s["current_year"] - s["birth_year"]),
    T("numbers", "percentage", {"points": 45, "max_points": 50},
      {"points": 30, "max_points": 120},
      oracle=lambda s, a: 100 * s["points"] / s["max_points"]),
    T("numbers", "surface_area", {"side": 3}, {"side": 5},
      oracle=lambda s, a: 6 * s["side"] * s["side"]),
    T("numbers", "in_minutes", {"seconds": 150}, {"seconds": 330},
      oracle=lambda s, a: s["seconds"] / 60),
    T("numbers", "squared", {"value": 7}, {"value": 12},
      oracle=lambda s, a: s["value"] * s["value"]),
    T("numbers", "largest", {"a": 10, "b": 4, "c": 7}, {"a": 3, "b": 11, "c": 5},
      oracle=lambda s, a: max(s["a"], s["b"], s["c"])),
    T("numbers", "mean", {"x": 4, "y": 10}, {"x": 1, "y": 6},
      oracle=lambda s, a: (s["x"] + s["y"]) / 2),
    T("numbers", "profit", {"revenue": 900, "costs": 650}, {"revenue": 300, "costs": 420},
      oracle=lambda s, a: s["revenue"] - s["costs"]),

    # -- strings ---------------------------------------------------------------------------
    T("strings", "uppercase", {"word": "hello"}, {"word": "quiet"},
      oracle=lambda s, a: s["word"].upper()),
    T("strings", "lowercase", {"word": "LeVeL"}, {"word": "ShOuT"},
      oracle=lambda s, a: s["word"].lower()),
    T("strings", "stripped", {"text": "  padded  "}, {"text": "\tspaced \n"},
      oracle=lambda s, a: s["text"].strip()),
    T("strings", "greeting", {"name": "Robin"}, {"name": "Maya"},
      accept=_text_with(lambda s, a: s["name"], start=("hello", "hi", "greetings", "good"))),
    T("strings", "location", {"city": "Paris", "country": "France"},
      {"city": "Lima", "country": "Peru"},
      accept=_text_with(lambda s, a: s["city"], lambda s, a: s["country"])),
    T("strings", "initials", {"first": "Alan", "last": "Turing"},
      {"first": "Grace", "last": "Hopper"},
      accept=lambda r, s, a: isinstance(r, str)
      and r.replace(".", "").replace(" ", "") == s["first"][0] + s["last"][0]),
    T("strings", "reversed_word", {"word": "stressed"}, {"word": "drawer"},
      oracle=lambda s, a: s["word"][::-1]),
    T("strings", "title_case", {"text": "hello world"}, {"text": "the quick fox"},
      oracle=lambda s, a: s["text"].title()),
    T("strings", "word_count", {"sentence": "the cat sat"},
      {"sentence": "a bird in the hand"},
      oracle=lambda s, a: len(s["sentence"].split())),
    T("strings", "name_length", {"name": "Robin"}, {"name": "Alexandra"},
      oracle=lambda s, a: len(s["name"])),

    # -- lists -----------------------------------------------------------------------------
    T("lists", "average_score", {"scores": [70, 85, 90]}, {"scores": [50, 60]},
      oracle=lambda s, a: sum(s["scores"]) / len(s["scores"])),
    T("lists", "cheapest", {"prices": [3, 7, 2]}, {"prices": [9, 4, 6, 5]},
      oracle=lambda s, a: min(s["prices"])),
    T("lists", "warmest", {"temperatures": [12, 18, 15]}, {"temperatures": [30, 21]},
      oracle=lambda s, a: max(s["temperatures"])),
    T("lists", "item_count", {"items": ["pen", "book", "cup"]}, {"items": ["key"]},
      oracle=lambda s, a: len(s["items"])),
    T("lists", "sum_of_values", {"values": [4, 8, 6]}, {"values": [10, 20, 30, 40]},
      oracle=lambda s, a: sum(s["values"])),
    T("lists", "even_numbers", {"numbers": [1, 2, 3, 4, 5, 6]}, {"numbers": [7, 8, 10, 13]},
      oracle=lambda s, a: [n for n in s["numbers"] if n % 2 == 0]),
    T("lists", "sorted_numbers", {"numbers": [3, 1, 2]}, {"numbers": [9, 7, 8, 1]},
      oracle=lambda s, a: sorted(s["numbers"])),
    T("lists", "spread", {"readings": [5, 9, 2]}, {"readings": [10, 40, 25]},
      oracle=lambda s, a: max(s["readings"]) - min(s["readings"])),
    T("lists", "first_in_line", {"queue": ["ann", "bob", "cy"]}, {"queue": ["zoe", "yan"]},
      oracle=lambda s, a: s["queue"][0]),
    T("lists", "comma_separated", {"words": ["red", "green", "blue"]},
      {"words": ["one", "two"]},
      accept=lambda r, s, a: isinstance(r, str) and r.replace(" ", "") == ",".join(s["words"])),

    # -- booleans --------------------------------------------------------------------------
    T("booleans", "is_square", {"width": 5, "height": 5}, {"width": 5, "height": 6},
      oracle=lambda s, a: s["width"] == s["height"]),
    T("booleans", "is_adult", {"age": 20}, {"age": 12},
      oracle=lambda s, a: s["age"] >= 18),
    T("booleans", "is_overdrawn", {"balance": -5}, {"balance": 40},
      oracle=lambda s, a: s["balance"] < 0),
    T("booleans", "is_empty", {"items": []}, {"items": ["x"]},
      oracle=lambda s, a: len(s["items"]) == 0),
    T("booleans", "is_even", {"number": 7}, {"number": 10},
      oracle=lambda s, a: s["number"] % 2 == 0),
    T("booleans", "in_stock", {"stock": 0}, {"stock": 3},
      oracle=lambda s, a: s["stock"] > 0),
    T("booleans", "is_hot", {"temperature": 30, "threshold": 25},
      {"temperature": 20, "threshold": 24},
      oracle=lambda s, a: s["temperature"] > s["threshold"]),
    T("booleans", "is_palindrome", {"word": "kayak"}, {"word": "canoe"},
      oracle=lambda s, a: s["word"] == s["word"][::-1]),

    # -- arguments -------------------------------------------------------------------------
    T("arguments", "cost_of", {"price": 12}, {"price": 5}, [3],
      oracle=lambda s, a: s["price"] * a[0]),
    T("arguments", "can_afford", {"balance": 100}, {"balance": 20}, [30],
      oracle=lambda s, a: s["balance"] >= a[0]),
    T("arguments", "contains", {"items": [1, 2, 3]}, {"items": [4, 5]}, [2],
      oracle=lambda s, a: a[0] in s["items"]),
    T("arguments", "minus", {"value": 10}, {"value": 3}, [4],
      oracle=lambda s, a: s["value"] - a[0]),
    T("arguments", "power", {"base": 2}, {"base": 3}, [5],
      oracle=lambda s, a: s["base"] ** a[0]),
    T("arguments", "repeated", {"text": "ab"}, {"text": "xyz"}, [3],
      oracle=lambda s, a: s["text"] * a[0]),
    T("arguments", "item_at", {"items": ["a", "b", "c"]}, {"items": ["p", "q"]}, [1],
      oracle=lambda s, a: s["items"][a[0]]),
    T("arguments", "in_range", {"low": 1, "high": 10}, {"low": 6, "high": 8}, [5],
      oracle=lambda s, a: s["low"] <= a[0] <= s["high"]),
    T("arguments", "greet", {"greeting": "Hello"}, {"greeting": "Howdy"}, ["Ada"],
      accept=_text_with(lambda s, a: s["greeting"], lambda s, a: a[0])),

    # -- state changes ---------------------------------------------------------------------
    T("state", "increment", {"count": 5}, {"count": 41},
      after=lambda s, a: {"count": s["count"] + 1}),
    T("state", "decrement", {"count": 5}, {"count": 12},
      after=lambda s, a: {"count": s["count"] - 1}),
    T("state", "deposit", {"balance": 100}, {"balance": 7}, [50],
      after=lambda s, a: {"balance": s["balance"] + a[0]}),
    T("state", "withdraw", {"balance": 100}, {"balance": 45}, [30],
      after=lambda s, a: {"balance": s["balance"] - a[0]}),
    T("state", "reset", {"count": 9}, {"count": 3},
      after=lambda s, a: {"count": 0}),
    T("state", "add_item", {"items": ["pen"]}, {"items": ["cup", "mug"]}, ["book"],
      after=lambda s, a: {"items": s["items"] + [a[0]]}),
    T("state", "clear_items", {"items": ["pen", "cup"]}, {"items": ["key"]},
      after=lambda s, a: {"items": []}),
    T("state", "mute", {"volume": 5}, {"volume": 11},
      after=lambda s, a: {"volume": 0}),
    T("state", "level_up", {"level": 3}, {"level": 10},
      after=lambda s, a: {"level": s["level"] + 1}),
    T("state", "unlock", {"locked": True}, {"locked": True},
      after=lambda s, a: {"locked": False}),
]
