"""A fifth held-out task set for learning a method when a message is not understood.

Written blind, before it was first measured, by a helper session started for this
purpose. It saw only its brief: the shape of `Task`, `T` and `_text_with` in
bench/dnu_open_tasks.py and how a task is judged. It did not open the kernel, the
tests, the docs or any other bench file, so neither the selectors nor the slot
values here were tuned to what the system does.

Judged like bench/dnu_open_tasks.py. 10 tasks per kind (numbers, strings, lists,
booleans, arguments, state), 60 in all, every selector distinct. Each task's
`also` is a second receiver chosen so that a wrong-but-plausible method (a wrong
formula, an ignored slot or argument, an off-by-one, a flipped comparison, the
input returned unchanged) fails on at least one of the two receivers. Where a
right answer may reasonably be written in more than one form (rounded numbers,
".pdf" or "pdf", "G.H." or "GH", a greeting), `accept` admits every such form.
"""
import math

from dnu_open_tasks import T, _text_with


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _near(value, tol=0.01):
    """Accept a number within `tol` of value(slots, args) (for answers people round)."""
    def accept(result, slots, args):
        return _is_number(result) and abs(result - value(slots, args)) <= tol
    return accept


def _letters(text):
    return "".join(c for c in str(text) if c.isalpha())


def _initials_ok(result, slots, args):
    want = (slots["first_name"][0] + slots["last_name"][0]).upper()
    return isinstance(result, str) and _letters(result).upper() == want


def _extension_ok(result, slots, args):
    want = slots["filename"].rsplit(".", 1)[1].lower()
    return isinstance(result, str) and result.strip().lstrip(".").lower() == want


def _masked_ok(result, slots, args):
    # right: the last four digits shown at the end, no other digit of the number shown
    if not isinstance(result, str):
        return False
    last4 = slots["card_number"][-4:]
    digits = "".join(c for c in result if c.isdigit())
    return result.rstrip().endswith(last4) and digits == last4 and len(result) > 4


def _same_items_ok(expected):
    """Accept a list (or tuple) holding exactly the expected items, in any order."""
    def accept(result, slots, args):
        if not isinstance(result, (list, tuple)):
            return False
        try:
            return sorted(result) == sorted(expected(slots, args))
        except TypeError:
            return False
    return accept


def _unique_ok(result, slots, args):
    if not isinstance(result, (list, tuple)):
        return False
    return len(result) == len(set(result)) and set(result) == set(slots["tags"])


def _both_in_text(a, b):
    def accept(result, slots, args):
        return (isinstance(result, str)
                and a(slots, args).lower() in result.lower()
                and b(slots, args).lower() in result.lower())
    return accept


TASKS = [
    # ---- numbers ----
    T("numbers", "price_with_tax", {"price": 40.0, "tax_rate": 0.2}, {"price": 25.0, "tax_rate": 0.1},
      accept=_near(lambda s, a: s["price"] * (1 + s["tax_rate"]))),
    T("numbers", "floor_area", {"length_m": 4.5, "width_m": 3}, {"length_m": 6, "width_m": 5},
      oracle=lambda s, a: s["length_m"] * s["width_m"]),
    T("numbers", "temperature_fahrenheit", {"temperature_celsius": 20}, {"temperature_celsius": 35},
      accept=_near(lambda s, a: s["temperature_celsius"] * 9 / 5 + 32, 0.05)),
    T("numbers", "average_speed", {"distance_km": 150, "hours": 2.5}, {"distance_km": 200, "hours": 4},
      oracle=lambda s, a: s["distance_km"] / s["hours"]),
    T("numbers", "average_grade", {"math": 80, "english": 90, "science": 76},
      {"math": 60, "english": 75, "science": 93},
      accept=_near(lambda s, a: (s["math"] + s["english"] + s["science"]) / 3)),
    T("numbers", "duration_minutes",
      {"start_hour": 9, "start_minute": 15, "end_hour": 11, "end_minute": 45},
      {"start_hour": 13, "start_minute": 50, "end_hour": 15, "end_minute": 10},
      oracle=lambda s, a: (s["end_hour"] * 60 + s["end_minute"]) - (s["start_hour"] * 60 + s["start_minute"])),
    T("numbers", "circumference", {"radius": 3}, {"radius": 10},
      accept=_near(lambda s, a: 2 * math.pi * s["radius"])),
    T("numbers", "yearly_interest", {"balance": 1200, "interest_rate": 0.05}, {"balance": 800, "interest_rate": 0.03},
      accept=_near(lambda s, a: s["balance"] * s["interest_rate"])),
    T("numbers", "volume_liters", {"length_cm": 40, "width_cm": 30, "height_cm": 20},
      {"length_cm": 50, "width_cm": 20, "height_cm": 10},
      accept=_near(lambda s, a: s["length_cm"] * s["width_cm"] * s["height_cm"] / 1000)),
    T("numbers", "bmi", {"weight_kg": 70, "height_m": 1.75}, {"weight_kg": 90, "height_m": 1.8},
      accept=_near(lambda s, a: s["weight_kg"] / s["height_m"] ** 2, 0.05)),

    # ---- strings ----
    T("strings", "full_name", {"first_name": "Ada", "last_name": "Lovelace"},
      {"first_name": "Alan", "last_name": "Turing"},
      oracle=lambda s, a: s["first_name"] + " " + s["last_name"]),
    T("strings", "initials", {"first_name": "Grace", "last_name": "Hopper"},
      {"first_name": "Linus", "last_name": "Torvalds"},
      accept=_initials_ok),
    T("strings", "email_domain", {"email": "maria@example.org"}, {"email": "tom.smith@mail.co.uk"},
      oracle=lambda s, a: s["email"].split("@", 1)[1]),
    T("strings", "title_case_name", {"name": "lemon drizzle cake"}, {"name": "spicy bean chili"},
      oracle=lambda s, a: s["name"].title()),
    T("strings", "file_extension", {"filename": "report_final.pdf"}, {"filename": "archive.tar.gz"},
      accept=_extension_ok),
    T("strings", "address_label", {"street": "12 High Street", "city": "Leeds", "postcode": "LS1 4AB"},
      {"street": "7 Elm Road", "city": "Bristol", "postcode": "BS8 1TH"},
      accept=_text_with(lambda s, a: s["street"], lambda s, a: s["city"], lambda s, a: s["postcode"])),
    T("strings", "masked_card_number", {"card_number": "4111222233334444"},
      {"card_number": "5500111122223333"},
      accept=_masked_ok),
    T("strings", "slug", {"title": "Hello World From Python"}, {"title": "Ten Tips for Better Sleep"},
      oracle=lambda s, a: "-".join(s["title"].lower().split())),
    T("strings", "last_name_first", {"first_name": "Marie", "last_name": "Curie"},
      {"first_name": "Isaac", "last_name": "Newton"},
      accept=_text_with(lambda s, a: s["last_name"], lambda s, a: s["first_name"])),
    T("strings", "greeting", {"name": "Sam"}, {"name": "Priya"},
      accept=_text_with(lambda s, a: s["name"],
                        start=("hello", "hi", "hey", "welcome", "good ", "greetings", "dear"))),

    # ---- lists ----
    T("lists", "total_seconds", {"track_seconds": [210, 185, 240]}, {"track_seconds": [300, 120, 95, 200]},
      oracle=lambda s, a: sum(s["track_seconds"])),
    T("lists", "longest_track", {"track_seconds": [210, 305, 240]}, {"track_seconds": [180, 120, 95, 260]},
      oracle=lambda s, a: max(s["track_seconds"])),
    T("lists", "average_reading", {"readings": [20.5, 21.0, 25.5, 19.0]}, {"readings": [18.0, 24.0, 27.0]},
      accept=_near(lambda s, a: sum(s["readings"]) / len(s["readings"]))),
    T("lists", "task_count", {"tasks": ["buy milk", "call mom", "pay rent"]},
      {"tasks": ["wash car", "book dentist", "water plants", "fix bike", "send invoice"]},
      oracle=lambda s, a: len(s["tasks"])),
    T("lists", "first_task", {"tasks": ["buy milk", "call mom", "pay rent"]},
      {"tasks": ["wash car", "book dentist", "water plants"]},
      oracle=lambda s, a: s["tasks"][0]),
    T("lists", "sorted_names", {"names": ["Zoe", "Adam", "Mia"]}, {"names": ["Liam", "Olivia", "Ben", "Chloe"]},
      oracle=lambda s, a: sorted(s["names"])),
    T("lists", "passing_scores", {"scores": [45, 72, 90, 38, 65], "pass_mark": 50},
      {"scores": [50, 49, 81], "pass_mark": 50},
      accept=_same_items_ok(lambda s, a: [x for x in s["scores"] if x >= s["pass_mark"]])),
    T("lists", "cheapest_price", {"prices": [3.5, 12.0, 2.25, 7.25]}, {"prices": [9.99, 4.5, 15.0]},
      oracle=lambda s, a: min(s["prices"])),
    T("lists", "count_over_limit", {"readings": [12, 30, 27, 18, 26], "limit": 25},
      {"readings": [40, 10, 22], "limit": 20},
      oracle=lambda s, a: sum(1 for x in s["readings"] if x > s["limit"])),
    T("lists", "unique_tags", {"tags": ["python", "web", "python", "api", "web"]},
      {"tags": ["sale", "new", "sale"]},
      accept=_unique_ok),

    # ---- booleans ----
    T("booleans", "is_overdrawn", {"balance": -50.0}, {"balance": 120.0},
      oracle=lambda s, a: s["balance"] < 0),
    T("booleans", "is_in_stock", {"quantity": 1}, {"quantity": 0},
      oracle=lambda s, a: s["quantity"] > 0),
    T("booleans", "is_adult", {"age": 18}, {"age": 17},
      oracle=lambda s, a: s["age"] >= 18),
    T("booleans", "has_discount", {"discount_percent": 15}, {"discount_percent": 0},
      oracle=lambda s, a: s["discount_percent"] > 0),
    T("booleans", "is_heating_needed", {"current_temp": 17.5, "target_temp": 21},
      {"current_temp": 22, "target_temp": 20},
      oracle=lambda s, a: s["current_temp"] < s["target_temp"]),
    T("booleans", "can_vote", {"age": 30, "is_citizen": False}, {"age": 19, "is_citizen": True},
      oracle=lambda s, a: s["age"] >= 18 and s["is_citizen"]),
    T("booleans", "is_overdue", {"due_day": 10, "today": 12, "done": False},
      {"due_day": 5, "today": 12, "done": True},
      oracle=lambda s, a: (not s["done"]) and s["today"] > s["due_day"]),
    T("booleans", "is_full", {"passengers": 40, "capacity": 40}, {"passengers": 39, "capacity": 40},
      oracle=lambda s, a: s["passengers"] >= s["capacity"]),
    T("booleans", "is_valid_email", {"email": "ann@example.com"}, {"email": "ann.example.com"},
      oracle=lambda s, a: "@" in s["email"]),
    T("booleans", "is_weekend", {"day_name": "Saturday"}, {"day_name": "Wednesday"},
      oracle=lambda s, a: s["day_name"].lower() in ("saturday", "sunday")),

    # ---- arguments ----
    T("arguments", "price_for_quantity", {"unit_price": 2.5}, {"unit_price": 3.2}, args=(4,),
      accept=_near(lambda s, a: s["unit_price"] * a[0])),
    T("arguments", "discounted_price", {"price": 80.0}, {"price": 50.0}, args=(25,),
      accept=_near(lambda s, a: s["price"] * (1 - a[0] / 100))),
    T("arguments", "can_withdraw", {"balance": 100.0}, {"balance": 200.0}, args=(150,),
      oracle=lambda s, a: a[0] <= s["balance"]),
    T("arguments", "days_until_event", {"event_day": 130}, {"event_day": 250}, args=(100,),
      oracle=lambda s, a: s["event_day"] - a[0]),
    T("arguments", "name_with_title", {"last_name": "Smith"}, {"last_name": "Okafor"}, args=("Dr",),
      accept=_text_with(lambda s, a: a[0], lambda s, a: s["last_name"])),
    T("arguments", "contains_ingredient", {"ingredients": ["flour", "sugar", "eggs"]},
      {"ingredients": ["rice", "beans", "onion"]}, args=("sugar",),
      oracle=lambda s, a: a[0] in s["ingredients"]),
    T("arguments", "fare_for", {"base_fare": 3.0, "price_per_km": 1.5}, {"base_fare": 5.0, "price_per_km": 2.0},
      args=(10,),
      accept=_near(lambda s, a: s["base_fare"] + s["price_per_km"] * a[0])),
    T("arguments", "split_bill", {"bill_total": 90.0}, {"bill_total": 100.0}, args=(4,),
      accept=_near(lambda s, a: s["bill_total"] / a[0])),
    T("arguments", "distance_to", {"x": 1, "y": 2}, {"x": -2, "y": 5}, args=(4, 6),
      accept=_near(lambda s, a: math.hypot(a[0] - s["x"], a[1] - s["y"]))),
    T("arguments", "grams_for_servings", {"flour_grams": 300, "servings": 4}, {"flour_grams": 500, "servings": 2},
      args=(6,),
      accept=_near(lambda s, a: s["flour_grams"] * a[0] / s["servings"], 0.5)),

    # ---- state ----
    T("state", "deposit", {"balance": 100.0}, {"balance": 20.0}, args=(50,),
      after=lambda s, a: {"balance": s["balance"] + a[0]}),
    T("state", "withdraw", {"balance": 200.0}, {"balance": 75.0}, args=(30,),
      after=lambda s, a: {"balance": s["balance"] - a[0]}),
    T("state", "add_task", {"tasks": ["buy milk", "call mom"]}, {"tasks": ["fix bike"]}, args=("pay rent",),
      after=lambda s, a: {"tasks": s["tasks"] + [a[0]]}),
    T("state", "remove_item", {"items": ["apple", "bread", "milk"]}, {"items": ["bread", "eggs", "jam"]},
      args=("bread",),
      after=lambda s, a: {"items": [x for x in s["items"] if x != a[0]]}),
    T("state", "increment_visits", {"visits": 7}, {"visits": 41},
      after=lambda s, a: {"visits": s["visits"] + 1}),
    T("state", "reset_steps", {"steps": 8450}, {"steps": 12},
      after=lambda s, a: {"steps": 0}),
    T("state", "mark_done", {"done": False, "title": "File taxes"}, {"done": True, "title": "Renew passport"},
      after=lambda s, a: {"done": True}),
    T("state", "raise_target", {"target_temp": 20}, {"target_temp": 17.5}, args=(2,),
      after=lambda s, a: {"target_temp": s["target_temp"] + a[0]}),
    T("state", "toggle_mute", {"muted": False}, {"muted": True},
      after=lambda s, a: {"muted": not s["muted"]}),
    T("state", "apply_discount", {"price": 40.0}, {"price": 120.0}, args=(10,),
      after=lambda s, a: {"price": s["price"] * (1 - a[0] / 100)}),
]
