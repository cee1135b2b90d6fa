"""A third set of `_doesNotUnderstand` tasks without an expectation: held out, written blind.

These tasks were written blind — by someone who saw neither the learner's prompts nor the
image's seed example library — before they were measured, and they are kept apart from all
examples the code uses (the genesis example methods, prompts, probes) and from the tuning set
(`bench/dnu_dev_tasks.py`). Each is a missing message a person would really send to an everyday
object, with nobody saying what result to expect. Same format as `bench/dnu_open_tasks.py`:
8 tasks of each kind (numbers, strings, lists, booleans, arguments, state), each with a second
receiver (`also`) holding other values of the same types.
"""
import math

from dnu_open_tasks import T, _text_with


def _near(wanted, tolerance):
    """Accept a number within `tolerance` (absolute) of `wanted(slots, args)`."""
    def accept(result, slots, args):
        return (isinstance(result, (int, float)) and not isinstance(result, bool)
                and abs(result - wanted(slots, args)) <= tolerance)
    return accept


def _letters(wanted):
    """Accept text equal to `wanted(slots, args)` once dots and spaces are dropped."""
    def accept(result, slots, args):
        return (isinstance(result, str)
                and result.replace(".", "").replace(" ", "") == wanted(slots, args))
    return accept


TASKS = [
    # -- numbers ---------------------------------------------------------------------------
    T("numbers", "perimeter", {"side_a": 3, "side_b": 4, "side_c": 5},
      {"side_a": 6, "side_b": 2, "side_c": 7},
      oracle=lambda s, a: s["side_a"] + s["side_b"] + s["side_c"]),
    T("numbers", "bmi", {"weight_kg": 70, "height_m": 1.75}, {"weight_kg": 95, "height_m": 1.6},
      accept=_near(lambda s, a: s["weight_kg"] / s["height_m"] ** 2, 0.05)),
    T("numbers", "discounted_price", {"price": 80, "discount_rate": 0.25},
      {"price": 45, "discount_rate": 0.1},
      oracle=lambda s, a: s["price"] * (1 - s["discount_rate"])),
    T("numbers", "kelvin", {"celsius": 20}, {"celsius": -40},
      accept=_near(lambda s, a: s["celsius"] + 273.15, 0.16)),
    T("numbers", "area", {"radius": 3}, {"radius": 10},
      accept=lambda r, s, a: isinstance(r, (int, float)) and not isinstance(r, bool)
      and abs(r - math.pi * s["radius"] ** 2) <= 0.001 * math.pi * s["radius"] ** 2),
    T("numbers", "tip", {"bill": 40, "tip_rate": 0.15}, {"bill": 120, "tip_rate": 0.2},
      oracle=lambda s, a: s["bill"] * s["tip_rate"]),
    T("numbers", "minutes_left", {"duration_minutes": 90, "elapsed_minutes": 35},
      {"duration_minutes": 48, "elapsed_minutes": 40},
      oracle=lambda s, a: s["duration_minutes"] - s["elapsed_minutes"]),
    T("numbers", "goal_difference", {"goals_for": 42, "goals_against": 30},
      {"goals_for": 18, "goals_against": 25},
      oracle=lambda s, a: s["goals_for"] - s["goals_against"]),

    # -- strings ---------------------------------------------------------------------------
    T("strings", "greeting", {"first_name": "Priya", "last_name": "Shah"},
      {"first_name": "Tomas", "last_name": "Novak"},
      accept=_text_with(lambda s, a: s["first_name"],
                        start=("hello", "hi", "hey", "greetings", "good", "welcome"))),
    T("strings", "full_name", {"first_name": "Ada", "last_name": "Lovelace"},
      {"first_name": "Kwame", "last_name": "Mensah"},
      accept=_text_with(lambda s, a: s["first_name"], lambda s, a: s["last_name"])),
    T("strings", "initials", {"first_name": "Mary", "middle_name": "Ann", "last_name": "Evans"},
      {"first_name": "Louis", "middle_name": "Daniel", "last_name": "Armstrong"},
      accept=_letters(lambda s, a: s["first_name"][0] + s["middle_name"][0] + s["last_name"][0])),
    T("strings", "file_extension", {"filename": "report.pdf"}, {"filename": "budget_2024.xlsx"},
      accept=lambda r, s, a: isinstance(r, str)
      and r.lstrip(".") == s["filename"].rsplit(".", 1)[1]),
    T("strings", "address", {"street": "12 Baker Street", "city": "London", "postcode": "NW1 6XE"},
      {"street": "5 Rue Cler", "city": "Lyon", "postcode": "69002"},
      accept=_text_with(lambda s, a: s["street"], lambda s, a: s["city"],
                        lambda s, a: s["postcode"])),
    T("strings", "domain", {"email": "maria@example.com"}, {"email": "j.smith@mail.uni.edu"},
      oracle=lambda s, a: s["email"].split("@")[1]),
    T("strings", "acronym", {"phrase": "portable network graphics"},
      {"phrase": "as soon as possible"},
      accept=_letters(lambda s, a: "".join(w[0] for w in s["phrase"].split()).upper())),
    T("strings", "word_count", {"title": "The Long and Winding Road"}, {"title": "Hey Jude"},
      oracle=lambda s, a: len(s["title"].split())),

    # -- lists -----------------------------------------------------------------------------
    T("lists", "average", {"grades": [88, 92, 75]}, {"grades": [60, 71, 90, 55]},
      oracle=lambda s, a: sum(s["grades"]) / len(s["grades"])),
    T("lists", "highest_score", {"scores": [12, 30, 25]}, {"scores": [7, 3, 9, 4]},
      oracle=lambda s, a: max(s["scores"])),
    T("lists", "total", {"item_prices": [2.5, 4.0, 1.25]}, {"item_prices": [10.0, 3.5]},
      oracle=lambda s, a: sum(s["item_prices"])),
    T("lists", "longest_word", {"words": ["kiwi", "banana", "fig"]},
      {"words": ["strawberry", "plum", "apple"]},
      oracle=lambda s, a: max(s["words"], key=len)),
    T("lists", "track_count", {"tracks": ["Intro", "Blue", "Home", "Outro"]},
      {"tracks": ["Solo", "Duet"]},
      oracle=lambda s, a: len(s["tracks"])),
    T("lists", "unique_tags", {"tags": ["red", "blue", "red", "green", "blue"]},
      {"tags": ["sale", "new", "sale"]},
      accept=lambda r, s, a: isinstance(r, (list, tuple, set))
      and len(r) == len(set(s["tags"])) and set(r) == set(s["tags"])),
    T("lists", "sorted_names", {"names": ["Zoe", "Adam", "Mia"]},
      {"names": ["Liam", "Emma", "Noah", "Ava"]},
      oracle=lambda s, a: sorted(s["names"])),
    T("lists", "cheapest", {"fares": [89, 45, 120]}, {"fares": [60, 75, 52, 99]},
      oracle=lambda s, a: min(s["fares"])),

    # -- booleans --------------------------------------------------------------------------
    T("booleans", "is_adult", {"birth_year": 2010, "current_year": 2024},
      {"birth_year": 1990, "current_year": 2024},
      oracle=lambda s, a: s["current_year"] - s["birth_year"] >= 18),
    T("booleans", "is_freezing", {"celsius": -3}, {"celsius": 4},
      oracle=lambda s, a: s["celsius"] < 0),
    T("booleans", "is_overdue", {"due_day": 10, "today": 14}, {"due_day": 20, "today": 14},
      oracle=lambda s, a: s["today"] > s["due_day"]),
    T("booleans", "is_empty", {"files": []}, {"files": ["notes.txt"]},
      oracle=lambda s, a: len(s["files"]) == 0),
    T("booleans", "is_full", {"passengers": 50, "capacity": 50},
      {"passengers": 31, "capacity": 52},
      oracle=lambda s, a: s["passengers"] >= s["capacity"]),
    T("booleans", "is_weekend", {"day": "Saturday"}, {"day": "Tuesday"},
      oracle=lambda s, a: s["day"] in ("Saturday", "Sunday")),
    T("booleans", "is_vowel", {"letter": "e"}, {"letter": "k"},
      oracle=lambda s, a: s["letter"].lower() in "aeiou"),
    T("booleans", "is_leap_year", {"year": 2024}, {"year": 2023},
      oracle=lambda s, a: s["year"] % 4 == 0 and (s["year"] % 100 != 0 or s["year"] % 400 == 0)),

    # -- arguments -------------------------------------------------------------------------
    T("arguments", "cost_of", {"price_per_kg": 3.5}, {"price_per_kg": 4.2}, [2],
      oracle=lambda s, a: s["price_per_kg"] * a[0]),
    T("arguments", "can_afford", {"cash": 45}, {"cash": 80}, [60],
      oracle=lambda s, a: s["cash"] >= a[0]),
    T("arguments", "travel_time", {"distance_km": 240}, {"distance_km": 100}, [80],
      oracle=lambda s, a: s["distance_km"] / a[0]),
    T("arguments", "is_taller_than", {"height_cm": 180}, {"height_cm": 160}, [175],
      oracle=lambda s, a: s["height_cm"] > a[0]),
    T("arguments", "split_bill", {"total": 120}, {"total": 75}, [4],
      oracle=lambda s, a: s["total"] / a[0]),
    T("arguments", "with_tax", {"price": 40}, {"price": 15}, [0.2],
      oracle=lambda s, a: s["price"] * (1 + a[0])),
    T("arguments", "is_between", {"temperature": 18}, {"temperature": 30}, [15, 25],
      oracle=lambda s, a: a[0] <= s["temperature"] <= a[1]),
    T("arguments", "distance_to", {"x": 1, "y": 2}, {"x": -2, "y": 0}, [4, 6],
      oracle=lambda s, a: math.hypot(a[0] - s["x"], a[1] - s["y"])),

    # -- state changes ---------------------------------------------------------------------
    T("state", "deposit", {"savings": 250}, {"savings": 13}, [40],
      after=lambda s, a: {"savings": s["savings"] + a[0]}),
    T("state", "add_goal", {"goals": 2}, {"goals": 0},
      after=lambda s, a: {"goals": s["goals"] + 1}),
    T("state", "reset", {"elapsed_seconds": 93}, {"elapsed_seconds": 7},
      after=lambda s, a: {"elapsed_seconds": 0}),
    T("state", "add_song", {"playlist": ["Imagine"]}, {"playlist": ["Hey Jude", "Help!"]},
      ["Yesterday"],
      after=lambda s, a: {"playlist": s["playlist"] + [a[0]]}),
    T("state", "toggle", {"light_on": True}, {"light_on": False},
      after=lambda s, a: {"light_on": not s["light_on"]}),
    T("state", "set_temperature", {"target_temperature": 20}, {"target_temperature": 18}, [23],
      after=lambda s, a: {"target_temperature": a[0]}),
    T("state", "sell", {"stock": 12}, {"stock": 30}, [5],
      after=lambda s, a: {"stock": s["stock"] - a[0]}),
    T("state", "rename", {"filename": "draft.txt"}, {"filename": "notes.md"}, ["final.txt"],
      after=lambda s, a: {"filename": a[0]}),
]
