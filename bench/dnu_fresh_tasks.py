"""A fourth held-out task set for `_doesNotUnderstand` WITHOUT an expectation, written blind.

Written by someone who saw neither the learner, its prompts, its seed example library nor the
other task sets (only the format of bench/dnu_open_tasks.py: its docstring, `Task`, `_same`,
`_text_with` and `T`), and written before it was first measured. The tasks are everyday
messages a person would send to an everyday object, judged the same way as
bench/dnu_open_tasks.py: by an `oracle` (the one right result), an `accept` (every reasonable
right result, where people would format it differently) or an `after` (for a command: the slots
the receiver must hold afterwards).

10 tasks of each kind (numbers, strings, lists, booleans, arguments, state), 60 in all, all
selectors distinct; each task has a second receiver `also` holding other values of the same
types, chosen so that a wrong-but-plausible method fails on at least one of the two.
"""
import math

from dnu_open_tasks import T, _text_with

TASKS = [
    # ---- numbers -------------------------------------------------------------------------
    T("numbers", "circumference", {"radius": 5}, {"radius": 3},
      accept=lambda r, s, a: (isinstance(r, (int, float)) and not isinstance(r, bool)
                              and abs(r - 2 * math.pi * s["radius"]) < 0.01)),
    T("numbers", "fahrenheit", {"celsius": 25}, {"celsius": -10},
      oracle=lambda s, a: s["celsius"] * 9 / 5 + 32),
    T("numbers", "bmi", {"weight_kg": 70.0, "height_m": 1.75},
      {"weight_kg": 92.5, "height_m": 1.82},
      accept=lambda r, s, a: (isinstance(r, (int, float)) and not isinstance(r, bool)
                              and abs(r - s["weight_kg"] / s["height_m"] ** 2) < 0.06)),
    T("numbers", "perimeter", {"width": 3, "height": 4}, {"width": 7, "height": 2},
      oracle=lambda s, a: 2 * (s["width"] + s["height"])),
    T("numbers", "average_speed", {"distance_km": 150.0, "hours": 2.5},
      {"distance_km": 100.0, "hours": 1.6},
      oracle=lambda s, a: s["distance_km"] / s["hours"]),
    T("numbers", "age", {"birth_year": 1990, "current_year": 2024},
      {"birth_year": 2011, "current_year": 2025},
      oracle=lambda s, a: s["current_year"] - s["birth_year"]),
    T("numbers", "total_minutes", {"hours": 2, "minutes": 15}, {"hours": 1, "minutes": 45},
      oracle=lambda s, a: s["hours"] * 60 + s["minutes"]),
    T("numbers", "volume", {"length": 2, "width": 3, "height": 4},
      {"length": 5, "width": 2, "height": 6},
      oracle=lambda s, a: s["length"] * s["width"] * s["height"]),
    T("numbers", "tip_amount", {"bill": 80.0, "tip_percent": 15}, {"bill": 42.0, "tip_percent": 20},
      oracle=lambda s, a: s["bill"] * s["tip_percent"] / 100),
    T("numbers", "kilometers", {"miles": 10}, {"miles": 26},
      accept=lambda r, s, a: (isinstance(r, (int, float)) and not isinstance(r, bool)
                              and abs(r - s["miles"] * 1.609344) < 0.002 * s["miles"])),

    # ---- strings -------------------------------------------------------------------------
    T("strings", "full_name", {"first_name": "Ada", "last_name": "Lovelace"},
      {"first_name": "Alan", "last_name": "Turing"},
      oracle=lambda s, a: s["first_name"] + " " + s["last_name"]),
    T("strings", "greeting", {"name": "Maria"}, {"name": "Kenji"},
      accept=lambda r, s, a: (isinstance(r, str) and s["name"] in r
                              and any(w in r.lower() for w in
                                      ("hello", "hi", "hey", "greetings", "welcome", "good")))),
    T("strings", "initials", {"first_name": "Grace", "last_name": "Hopper"},
      {"first_name": "Linus", "last_name": "Torvalds"},
      accept=lambda r, s, a: (isinstance(r, str) and r.replace(".", "").replace(" ", "")
                              == s["first_name"][0] + s["last_name"][0])),
    T("strings", "domain", {"email": "alice@example.com"}, {"email": "bob.smith@mail.co.uk"},
      oracle=lambda s, a: s["email"].split("@")[1]),
    T("strings", "file_extension", {"filename": "report.pdf"}, {"filename": "holiday.photo.jpeg"},
      accept=lambda r, s, a: (isinstance(r, str)
                              and r.lstrip(".") == s["filename"].rsplit(".", 1)[1])),
    T("strings", "shout", {"message": "good morning"}, {"message": "watch out"},
      accept=lambda r, s, a: isinstance(r, str) and r.rstrip("!") == s["message"].upper()),
    T("strings", "reversed_word", {"word": "stressed"}, {"word": "drawer"},
      oracle=lambda s, a: s["word"][::-1]),
    T("strings", "slug", {"title": "Hello World Again"}, {"title": "Living Objects Rule"},
      oracle=lambda s, a: "-".join(s["title"].lower().split())),
    T("strings", "location", {"city": "Paris", "country": "France"},
      {"city": "Kyoto", "country": "Japan"},
      accept=_text_with(lambda s, a: s["city"], lambda s, a: s["country"])),
    T("strings", "acronym", {"phrase": "portable network graphics"},
      {"phrase": "as soon as possible"},
      oracle=lambda s, a: "".join(w[0] for w in s["phrase"].split()).upper()),

    # ---- lists ---------------------------------------------------------------------------
    T("lists", "total", {"prices": [2.5, 4.0, 1.25]}, {"prices": [10.0, 0.99]},
      oracle=lambda s, a: sum(s["prices"])),
    T("lists", "average_score", {"scores": [80, 91, 74, 70]}, {"scores": [60, 75]},
      oracle=lambda s, a: sum(s["scores"]) / len(s["scores"])),
    T("lists", "highest_temperature", {"temperatures": [12.5, 18.0, 15.5]},
      {"temperatures": [-1.5, -3.0, -7.0]},
      oracle=lambda s, a: max(s["temperatures"])),
    T("lists", "item_count", {"items": ["milk", "eggs", "bread"]}, {"items": ["tea"]},
      oracle=lambda s, a: len(s["items"])),
    T("lists", "sorted_names", {"names": ["Zoe", "Adam", "Mia"]},
      {"names": ["Bob", "Alice", "Dave", "Carol"]},
      oracle=lambda s, a: sorted(s["names"])),
    T("lists", "first_guest", {"guests": ["Ann", "Ben", "Cy"]}, {"guests": ["Dora", "Eli"]},
      oracle=lambda s, a: s["guests"][0]),
    T("lists", "last_song", {"songs": ["Yesterday", "Help", "Let It Be"]},
      {"songs": ["Imagine", "Jealous Guy"]},
      oracle=lambda s, a: s["songs"][-1]),
    T("lists", "even_numbers", {"numbers": [1, 2, 3, 4, 6]}, {"numbers": [7, 10, 13, 20, 22]},
      oracle=lambda s, a: [n for n in s["numbers"] if n % 2 == 0]),
    T("lists", "passing_grades", {"grades": [45, 70, 55, 90], "pass_mark": 50},
      {"grades": [30, 65, 55, 48], "pass_mark": 60},
      oracle=lambda s, a: [g for g in s["grades"] if g >= s["pass_mark"]]),
    T("lists", "longest_word", {"words": ["tiger", "elephant", "dog"]},
      {"words": ["rose", "sunflower", "lily"]},
      oracle=lambda s, a: max(s["words"], key=len)),

    # ---- booleans ------------------------------------------------------------------------
    T("booleans", "is_adult", {"age": 20}, {"age": 15},
      oracle=lambda s, a: s["age"] >= 18),
    T("booleans", "is_square", {"width": 5, "height": 5}, {"width": 4, "height": 6},
      oracle=lambda s, a: s["width"] == s["height"]),
    T("booleans", "is_weekend", {"day": "Sunday"}, {"day": "Friday"},
      oracle=lambda s, a: s["day"] in ("Saturday", "Sunday")),
    T("booleans", "is_overdrawn", {"balance": -20.0}, {"balance": 150.0},
      oracle=lambda s, a: s["balance"] < 0),
    T("booleans", "is_palindrome", {"word": "level"}, {"word": "label"},
      oracle=lambda s, a: s["word"] == s["word"][::-1]),
    T("booleans", "is_leap_year", {"year": 2024}, {"year": 1900},
      oracle=lambda s, a: s["year"] % 4 == 0 and (s["year"] % 100 != 0 or s["year"] % 400 == 0)),
    T("booleans", "has_attachments", {"attachments": ["report.pdf"]}, {"attachments": []},
      oracle=lambda s, a: len(s["attachments"]) > 0),
    T("booleans", "is_full", {"seats_taken": 50, "capacity": 50},
      {"seats_taken": 30, "capacity": 40},
      oracle=lambda s, a: s["seats_taken"] >= s["capacity"]),
    T("booleans", "is_freezing", {"celsius": -3.0}, {"celsius": 4.5},
      oracle=lambda s, a: s["celsius"] < 0),
    T("booleans", "is_expired", {"expiry_year": 2020, "current_year": 2024},
      {"expiry_year": 2026, "current_year": 2024},
      oracle=lambda s, a: s["expiry_year"] < s["current_year"]),

    # ---- arguments -----------------------------------------------------------------------
    T("arguments", "distance_to", {"x": 1, "y": 2}, {"x": 2, "y": 2}, args=(4, 6),
      oracle=lambda s, a: math.hypot(a[0] - s["x"], a[1] - s["y"])),
    T("arguments", "discounted_price", {"price": 80.0}, {"price": 120.0}, args=(25,),
      oracle=lambda s, a: s["price"] * (100 - a[0]) / 100),
    T("arguments", "can_afford", {"balance": 100.0}, {"balance": 150.0}, args=(120.0,),
      oracle=lambda s, a: s["balance"] >= a[0]),
    T("arguments", "has_item", {"items": ["milk", "eggs"]}, {"items": ["bread", "butter"]},
      args=("eggs",),
      oracle=lambda s, a: a[0] in s["items"]),
    T("arguments", "words_longer_than", {"words": ["a", "tree", "is", "green", "sky"]},
      {"words": ["hello", "big", "world", "ox"]}, args=(3,),
      oracle=lambda s, a: [w for w in s["words"] if len(w) > a[0]]),
    T("arguments", "repeated", {"word": "ha"}, {"word": "bye"}, args=(3,),
      accept=lambda r, s, a: isinstance(r, str) and r.replace(" ", "") == s["word"] * a[0]),
    T("arguments", "is_between", {"temperature": 21.5}, {"temperature": 26.0}, args=(18, 24),
      oracle=lambda s, a: a[0] <= s["temperature"] <= a[1]),
    T("arguments", "pay_for", {"hourly_rate": 25.0}, {"hourly_rate": 17.5}, args=(8,),
      oracle=lambda s, a: s["hourly_rate"] * a[0]),
    T("arguments", "split_between", {"bill": 90.0}, {"bill": 100.0}, args=(3,),
      accept=lambda r, s, a: (isinstance(r, (int, float)) and not isinstance(r, bool)
                              and abs(r - s["bill"] / a[0]) < 0.006)),
    T("arguments", "price_with_tax", {"price": 50.0}, {"price": 12.5}, args=(0.2,),
      oracle=lambda s, a: s["price"] * (1 + a[0])),

    # ---- state ---------------------------------------------------------------------------
    T("state", "deposit", {"balance": 100.0}, {"balance": 20.5}, args=(50,),
      after=lambda s, a: {"balance": s["balance"] + a[0]}),
    T("state", "withdraw", {"balance": 100.0}, {"balance": 45.0}, args=(30,),
      after=lambda s, a: {"balance": s["balance"] - a[0]}),
    T("state", "increment", {"count": 4}, {"count": 0},
      after=lambda s, a: {"count": s["count"] + 1}),
    T("state", "reset", {"clicks": 12}, {"clicks": 3},
      after=lambda s, a: {"clicks": 0}),
    T("state", "toggle", {"is_on": True}, {"is_on": False},
      after=lambda s, a: {"is_on": not s["is_on"]}),
    T("state", "add_item", {"items": ["milk"]}, {"items": ["bread", "jam"]}, args=("apples",),
      after=lambda s, a: {"items": s["items"] + [a[0]]}),
    T("state", "rename", {"name": "Alice"}, {"name": "Carol"}, args=("Bob",),
      after=lambda s, a: {"name": a[0]}),
    T("state", "celebrate_birthday", {"name": "Ann", "age": 30}, {"name": "Tom", "age": 7},
      after=lambda s, a: {"age": s["age"] + 1}),
    T("state", "mark_done", {"title": "Buy milk", "done": False},
      {"title": "Call mum", "done": True},
      after=lambda s, a: {"done": True}),
    T("state", "empty_cart", {"cart_items": ["pen", "paper"]}, {"cart_items": ["book"]},
      after=lambda s, a: {"cart_items": []}),
]
