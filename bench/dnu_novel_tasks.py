"""A sixth held-out task set for the does-not-understand learner.

Written blind by a helper session that saw only its brief (not the kernel,
the tests, the docs or the other bench files), so the tasks are not tuned to
what the system already knows.

Each task models an everyday message sent to an ordinary object (a shop, an
account, a recipe, a trip, a sensor, a school, a game, a library, ...) that has
no method for it.  The learner writes a one-method body over ``self.<slot>``
and the arguments; the benchmark then judges the result with exactly one of:

* ``oracle``  -- the one right value (numbers with relative tolerance 1e-6);
* ``accept``  -- a predicate, where reasonable people would write the answer
  more than one way (rounding, separators, a greeting's wording, ...);
* ``after``   -- for commands: the slots the receiver must hold afterwards.

There are 10 tasks per kind (numbers, strings, lists, booleans, arguments,
state), 60 in all, and every selector is distinct.

Every task is judged on its receiver ``slots`` AND on a second receiver
``also`` (same slot names and types, different values) with the same args.
``also`` is chosen so that a wrong-but-plausible method -- a wrong formula, a
flipped comparison, a boundary off by one, an ignored slot or argument, a
returned constant -- fails on at least one of the two receivers; for booleans
the two receivers give different answers.
"""

from dnu_open_tasks import T, _near, _one_of, _text_with


def _squeezed(fn, drop=" .-", upper=False):
    """Accept a str equal to fn(s, a) once the characters in `drop` are removed."""
    def ok(r, s, a):
        if not isinstance(r, str):
            return False
        for ch in drop:
            r = r.replace(ch, "")
        return (r.upper() if upper else r) == fn(s, a)
    return ok


TASKS = [
    # ------------------------------------------------------------ numbers
    T("numbers", "floor_area",
      {"width": 4.0, "length": 5.5}, {"width": 3.0, "length": 2.0},
      oracle=lambda s, a: s["width"] * s["length"]),
    T("numbers", "fahrenheit",
      {"celsius": 20.0}, {"celsius": -5.0},
      oracle=lambda s, a: s["celsius"] * 9 / 5 + 32),
    T("numbers", "line_total",
      {"unit_price": 2.5, "quantity": 4}, {"unit_price": 3.0, "quantity": 7},
      oracle=lambda s, a: s["unit_price"] * s["quantity"]),
    T("numbers", "age",
      {"birth_year": 1990, "current_year": 2024},
      {"birth_year": 2001, "current_year": 2023},
      oracle=lambda s, a: s["current_year"] - s["birth_year"]),
    T("numbers", "discount_amount",
      {"price": 80.0, "discount_percent": 25.0},
      {"price": 50.0, "discount_percent": 10.0},
      oracle=lambda s, a: s["price"] * s["discount_percent"] / 100),
    T("numbers", "bmi",
      {"weight_kg": 70.0, "height_m": 1.75}, {"weight_kg": 90.0, "height_m": 1.8},
      accept=_near(lambda s, a: s["weight_kg"] / s["height_m"] ** 2, 0.05)),
    T("numbers", "average_speed",
      {"distance_km": 150.0, "hours": 2.5}, {"distance_km": 100.0, "hours": 4.0},
      oracle=lambda s, a: s["distance_km"] / s["hours"]),
    T("numbers", "litres_per_100km",
      {"fuel_litres": 45.0, "distance_km": 600.0},
      {"fuel_litres": 30.0, "distance_km": 250.0},
      oracle=lambda s, a: s["fuel_litres"] / s["distance_km"] * 100),
    T("numbers", "perimeter",
      {"width": 3.0, "length": 8.0}, {"width": 1.5, "length": 2.0},
      oracle=lambda s, a: 2 * (s["width"] + s["length"])),
    T("numbers", "win_percentage",
      {"wins": 12, "games_played": 20}, {"wins": 5, "games_played": 12},
      accept=_near(lambda s, a: 100 * s["wins"] / s["games_played"], 0.05)),

    # ------------------------------------------------------------ strings
    T("strings", "full_name",
      {"first_name": "Ada", "last_name": "Lovelace"},
      {"first_name": "Alan", "last_name": "Turing"},
      oracle=lambda s, a: s["first_name"] + " " + s["last_name"]),
    T("strings", "initials",
      {"first_name": "Grace", "last_name": "Hopper"},
      {"first_name": "Margaret", "last_name": "Hamilton"},
      accept=_squeezed(lambda s, a: s["first_name"][0] + s["last_name"][0])),
    T("strings", "uppercase_title",
      {"title": "war and peace"}, {"title": "the hobbit"},
      oracle=lambda s, a: s["title"].upper()),
    T("strings", "file_extension",
      {"filename": "report.final.pdf"}, {"filename": "photo.jpeg"},
      accept=_one_of(lambda s, a: (s["filename"].rsplit(".", 1)[1],
                                   "." + s["filename"].rsplit(".", 1)[1]))),
    T("strings", "mailing_address",
      {"street": "12 Oak Lane", "city": "Springfield", "postcode": "S1 4AB"},
      {"street": "7 Harbour Road", "city": "Portsmouth", "postcode": "PO1 2QT"},
      accept=_text_with(lambda s, a: s["street"], lambda s, a: s["city"],
                        lambda s, a: s["postcode"])),
    T("strings", "email_domain",
      {"email": "jane.doe@example.com"}, {"email": "bob@mail.org"},
      oracle=lambda s, a: s["email"].split("@")[1]),
    T("strings", "slug",
      {"title": "My First Post"}, {"title": "Summer Garden Tips"},
      oracle=lambda s, a: s["title"].lower().replace(" ", "-")),
    T("strings", "greeting",
      {"name": "Maria"}, {"name": "Tom"},
      accept=_text_with(lambda s, a: s["name"],
                        start=("hello", "hi", "hey", "dear", "good",
                               "welcome", "greetings"))),
    T("strings", "course_code",
      {"department": "MATH", "number": "101"},
      {"department": "HIST", "number": "230"},
      accept=_squeezed(lambda s, a: s["department"] + s["number"], drop=" -")),
    T("strings", "formal_name",
      {"title": "Dr", "last_name": "Watson"}, {"title": "Ms", "last_name": "Smith"},
      accept=_text_with(lambda s, a: s["title"], lambda s, a: s["last_name"])),

    # ------------------------------------------------------------ lists
    T("lists", "total_spent",
      {"purchases": [12.5, 3.0, 20.0]}, {"purchases": [5.0]},
      oracle=lambda s, a: sum(s["purchases"])),
    T("lists", "highest_score",
      {"scores": [72, 95, 88]}, {"scores": [40, 33, 61, 12]},
      oracle=lambda s, a: max(s["scores"])),
    T("lists", "average_temperature",
      {"readings": [18.0, 21.0, 24.0, 19.0]}, {"readings": [10.0, 12.0]},
      oracle=lambda s, a: sum(s["readings"]) / len(s["readings"])),
    T("lists", "book_count",
      {"books": ["Emma", "Dune", "Ulysses"]}, {"books": ["Beloved"]},
      oracle=lambda s, a: len(s["books"])),
    T("lists", "final_stop",
      {"stops": ["Paris", "Lyon", "Nice"]}, {"stops": ["Rome", "Milan"]},
      oracle=lambda s, a: s["stops"][-1]),
    T("lists", "count_passing",
      {"grades": [55, 70, 40, 90], "pass_mark": 50},
      {"grades": [60, 59, 75], "pass_mark": 60},
      oracle=lambda s, a: len([g for g in s["grades"] if g >= s["pass_mark"]])),
    T("lists", "alphabetical_members",
      {"members": ["Carol", "Alice", "Bob"]}, {"members": ["Dave", "Eve", "Ann"]},
      oracle=lambda s, a: sorted(s["members"])),
    T("lists", "prices_over_limit",
      {"prices": [4.5, 12.0, 30.0, 8.0], "limit": 10.0},
      {"prices": [1.0, 2.5, 9.0], "limit": 2.0},
      oracle=lambda s, a: [p for p in s["prices"] if p > s["limit"]]),
    T("lists", "shortest_run",
      {"run_distances": [5.2, 3.1, 10.0]}, {"run_distances": [7.0, 8.5]},
      oracle=lambda s, a: min(s["run_distances"])),
    T("lists", "rainy_days",
      {"conditions": ["sun", "rain", "rain", "cloud"]},
      {"conditions": ["rain", "sun", "sun", "sun", "rain", "rain"]},
      oracle=lambda s, a: s["conditions"].count("rain")),

    # ------------------------------------------------------------ booleans
    T("booleans", "is_overdrawn",
      {"balance": -20.0}, {"balance": 15.0},
      oracle=lambda s, a: s["balance"] < 0),
    T("booleans", "can_vote",
      {"age": 18, "voting_age": 18}, {"age": 17, "voting_age": 18},
      oracle=lambda s, a: s["age"] >= s["voting_age"]),
    T("booleans", "is_freezing",
      {"temperature_c": -3.0}, {"temperature_c": 4.0},
      oracle=lambda s, a: s["temperature_c"] <= 0),
    T("booleans", "is_sold_out",
      {"stock": 0}, {"stock": 5},
      oracle=lambda s, a: s["stock"] == 0),
    T("booleans", "is_over_budget",
      {"spent": 1200.0, "budget": 1000.0}, {"spent": 800.0, "budget": 1000.0},
      oracle=lambda s, a: s["spent"] > s["budget"]),
    T("booleans", "needs_watering",
      {"soil_moisture": 20, "min_moisture": 30},
      {"soil_moisture": 45, "min_moisture": 30},
      oracle=lambda s, a: s["soil_moisture"] < s["min_moisture"]),
    T("booleans", "is_weekend",
      {"day": "Saturday"}, {"day": "Tuesday"},
      oracle=lambda s, a: s["day"] in ("Saturday", "Sunday")),
    T("booleans", "is_full",
      {"enrolled": 30, "capacity": 30}, {"enrolled": 25, "capacity": 30},
      oracle=lambda s, a: s["enrolled"] >= s["capacity"]),
    T("booleans", "is_home_win",
      {"home_goals": 2, "away_goals": 1}, {"home_goals": 1, "away_goals": 1},
      oracle=lambda s, a: s["home_goals"] > s["away_goals"]),
    T("booleans", "is_available",
      {"checked_out": False, "reserved": False},
      {"checked_out": False, "reserved": True},
      oracle=lambda s, a: not s["checked_out"] and not s["reserved"]),

    # ------------------------------------------------------------ arguments
    T("arguments", "can_afford",
      {"balance": 50.0}, {"balance": 20.0}, args=(30.0,),
      oracle=lambda s, a: s["balance"] >= a[0]),
    T("arguments", "flour_for",
      {"flour_grams": 300.0, "servings": 4}, {"flour_grams": 200.0, "servings": 2},
      args=(6,),
      oracle=lambda s, a: s["flour_grams"] * a[0] / s["servings"]),
    T("arguments", "days_until",
      {"current_day": 100}, {"current_day": 30}, args=(120,),
      oracle=lambda s, a: a[0] - s["current_day"]),
    T("arguments", "contains_word",
      {"text": "the quick brown fox"}, {"text": "lazy dog sleeps"},
      args=("brown",),
      oracle=lambda s, a: a[0] in s["text"].split()),
    T("arguments", "has_item",
      {"inventory": ["apple", "pear", "plum"]}, {"inventory": ["kiwi", "apple"]},
      args=("pear",),
      oracle=lambda s, a: a[0] in s["inventory"]),
    T("arguments", "distance_to",
      {"x": 0.0, "y": 0.0}, {"x": 1.0, "y": 2.0}, args=(3.0, 4.0),
      oracle=lambda s, a: ((a[0] - s["x"]) ** 2 + (a[1] - s["y"]) ** 2) ** 0.5),
    T("arguments", "fine_for",
      {"daily_fine": 0.25}, {"daily_fine": 0.5}, args=(8,),
      oracle=lambda s, a: s["daily_fine"] * a[0]),
    T("arguments", "share_per_person",
      {"total": 120.0}, {"total": 90.0}, args=(4,),
      oracle=lambda s, a: s["total"] / a[0]),
    T("arguments", "prices_under",
      {"prices": [3.0, 8.0, 15.0]}, {"prices": [12.0, 9.5, 20.0]}, args=(10.0,),
      oracle=lambda s, a: [p for p in s["prices"] if p < a[0]]),
    T("arguments", "ticket_cost",
      {"adult_price": 12.0, "child_price": 7.0},
      {"adult_price": 9.0, "child_price": 5.0}, args=(2, 3),
      oracle=lambda s, a: a[0] * s["adult_price"] + a[1] * s["child_price"]),

    # ------------------------------------------------------------ state
    T("state", "deposit",
      {"balance": 100.0}, {"balance": 0.0}, args=(50.0,),
      after=lambda s, a: {"balance": s["balance"] + a[0]}),
    T("state", "withdraw",
      {"balance": 100.0}, {"balance": 500.0}, args=(30.0,),
      after=lambda s, a: {"balance": s["balance"] - a[0]}),
    T("state", "add_item",
      {"items": ["bread"]}, {"items": []}, args=("milk",),
      after=lambda s, a: {"items": s["items"] + [a[0]]}),
    T("state", "reset_score",
      {"score": 42, "level": 3}, {"score": 7, "level": 1},
      after=lambda s, a: {"score": 0}),
    T("state", "toggle",
      {"is_on": True}, {"is_on": False},
      after=lambda s, a: {"is_on": not s["is_on"]}),
    T("state", "rename",
      {"name": "draft.txt"}, {"name": "notes.md"}, args=("final.txt",),
      after=lambda s, a: {"name": a[0]}),
    T("state", "move",
      {"x": 2, "y": 3}, {"x": 0, "y": 0}, args=(1, -4),
      after=lambda s, a: {"x": s["x"] + a[0], "y": s["y"] + a[1]}),
    T("state", "log_workout",
      {"workouts": 3, "total_minutes": 90}, {"workouts": 0, "total_minutes": 0},
      args=(45,),
      after=lambda s, a: {"workouts": s["workouts"] + 1,
                          "total_minutes": s["total_minutes"] + a[0]}),
    T("state", "return_book",
      {"checked_out": True, "borrower": "Sam"},
      {"checked_out": False, "borrower": ""},
      after=lambda s, a: {"checked_out": False}),
    T("state", "apply_discount",
      {"price": 80.0}, {"price": 10.0}, args=(25.0,),
      after=lambda s, a: {"price": s["price"] * (1 - a[0] / 100)}),
]
