"""The ninth held-out set of `_doesNotUnderstand` tasks, "vault".

Written blind by a helper that saw only its brief and the task format (`dnu_open_tasks.T`):
everyday messages sent to ordinary objects from varied domains (airlines, banks, farms,
hospitals, libraries, theatres, shipping, restaurants, sports, weather, games, IT systems,
pets, museums, elections, hiking), with nobody saying what result to expect. 10 tasks per
kind (numbers, strings, lists, booleans, arguments, state); each is judged on two receivers,
the real one and `also` (same slot names and types, other values, same arguments), chosen so
that a plausible wrong method fails on at least one of them.
"""
import math

from dnu_open_tasks import T, _near, _one_of, _text_with, _is_num


def _minutes(hhmm):
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _has_all(*parts, fold=False):
    """Accept text holding every one of `parts` (in any order; case-folded if `fold`)."""
    def accept(result, slots, args):
        if not isinstance(result, str):
            return False
        text = result.lower() if fold else result
        for p in parts:
            want = str(p(slots, args) if callable(p) else p)
            if (want.lower() if fold else want) not in text:
                return False
        return True
    return accept


def _nums_near(fn, tol):
    """Accept a list of numbers each within `tol` of the matching item of fn(s, a)."""
    def accept(result, slots, args):
        want = fn(slots, args)
        return (isinstance(result, (list, tuple)) and len(result) == len(want)
                and all(_is_num(r) and abs(r - w) <= tol + 1e-9 for r, w in zip(result, want)))
    return accept


def _list_is(*fns):
    """Accept a list equal to one of the lists fn(s, a)."""
    def accept(result, slots, args):
        return isinstance(result, (list, tuple)) and any(list(result) == f(slots, args) for f in fns)
    return accept


def _any_order(fn):
    """Accept a list holding exactly the items of fn(s, a), in any order."""
    def accept(result, slots, args):
        return isinstance(result, (list, tuple)) and sorted(result) == sorted(fn(slots, args))
    return accept


def _masked(s):
    return "".join(c if c in s["guessed"] else "_" for c in s["secret"])


def _accept_masked(result, slots, args):
    if not isinstance(result, str):
        return False
    text = result.replace(" ", "")
    want = slots["secret"]
    if len(text) != len(want):
        return False
    return all((r == c) if c in slots["guessed"] else (r in "_*-.?") for r, c in zip(text, want))


def _receipt_line(result, slots, args):
    if not isinstance(result, str) or slots["dish"] not in result or str(slots["quantity"]) not in result:
        return False
    total = slots["quantity"] * slots["unit_price"]
    forms = {f"{total:.2f}", f"{total:.1f}"}
    if float(total).is_integer():
        forms.add(str(int(total)))
    return any(f in result for f in forms)


def _monthly_interest(r, s, a):
    simple = s["balance"] * s["annual_rate_percent"] / 100 / 12
    compound = s["balance"] * ((1 + s["annual_rate_percent"] / 100) ** (1 / 12) - 1)
    return _is_num(r) and (abs(r - simple) <= 0.01 + 1e-9 or abs(r - compound) <= 0.01 + 1e-9)


def _reading_time(r, s, a):
    exact = s["words"] / a[0]
    return _is_num(r) and (abs(r - exact) <= 0.05 + 1e-9 or abs(r - math.ceil(exact)) <= 1e-9)


TASKS = [
    # -- numbers ---------------------------------------------------------------------------
    T("numbers", "vans_needed",
      {"boxes": 45, "boxes_per_van": 12},
      {"boxes": 49, "boxes_per_van": 12},
      oracle=lambda s, a: -(-s["boxes"] // s["boxes_per_van"])),
    T("numbers", "full_teams",
      {"players": 23, "team_size": 5},
      {"players": 30, "team_size": 6},
      oracle=lambda s, a: s["players"] // s["team_size"]),
    T("numbers", "free_beds",
      {"wards": ["A", "B", "C"], "beds_per_ward": 12, "patients": 29},
      {"wards": ["North", "South"], "beds_per_ward": 20, "patients": 31},
      oracle=lambda s, a: len(s["wards"]) * s["beds_per_ward"] - s["patients"]),
    T("numbers", "monthly_interest",
      {"balance": 2400.0, "annual_rate_percent": 3.0},
      {"balance": 5000.0, "annual_rate_percent": 1.2},
      accept=_monthly_interest),
    T("numbers", "rainfall_total_cm",
      {"station": "Bergen", "daily_rainfall_mm": [4, 0, 12, 7, 0, 3]},
      {"station": "Leeds", "daily_rainfall_mm": [10, 25, 0, 5]},
      accept=_near(lambda s, a: sum(s["daily_rainfall_mm"]) / 10, 0.01)),
    T("numbers", "layover_minutes",
      {"arrival": "09:45", "next_departure": "11:20"},
      {"arrival": "22:50", "next_departure": "23:05"},
      oracle=lambda s, a: _minutes(s["next_departure"]) - _minutes(s["arrival"])),
    T("numbers", "eggs_per_hen_per_day",
      {"hens": 12, "eggs_collected": 70, "days": 7},
      {"hens": 5, "eggs_collected": 24, "days": 6},
      accept=_near(lambda s, a: s["eggs_collected"] / (s["hens"] * s["days"]), 0.01)),
    T("numbers", "parcel_postage",
      {"weight_kg": 3.2, "price_per_kg": 4.5, "base_fee": 2.0},
      {"weight_kg": 0.5, "price_per_kg": 6.0, "base_fee": 3.5},
      accept=_near(lambda s, a: s["base_fee"] + s["weight_kg"] * s["price_per_kg"], 0.01)),
    T("numbers", "percent_disk_used",
      {"hostname": "db-01", "capacity_gb": 512, "used_gb": 384},
      {"hostname": "web-07", "capacity_gb": 256, "used_gb": 32},
      accept=_near(lambda s, a: 100 * s["used_gb"] / s["capacity_gb"], 0.05)),
    T("numbers", "turnout_percent",
      {"district": "Riverside", "registered_voters": 48000, "votes_cast": 30240},
      {"district": "Hillcrest", "registered_voters": 1250, "votes_cast": 1000},
      accept=_near(lambda s, a: 100 * s["votes_cast"] / s["registered_voters"], 0.05)),

    # -- strings ---------------------------------------------------------------------------
    T("strings", "seat_label",
      {"passenger": "Ruth Okafor", "row": 14, "seat": "C"},
      {"passenger": "Jon Meyer", "row": 3, "seat": "F"},
      accept=_text_with(lambda s, a: str(s["row"]), lambda s, a: s["seat"])),
    T("strings", "overdue_notice",
      {"borrower": "Ines Duarte", "title": "The Hobbit", "days_overdue": 4},
      {"borrower": "Tomas Berg", "title": "Middlemarch", "days_overdue": 11},
      accept=_has_all(lambda s, a: s["borrower"].split()[0], lambda s, a: s["title"],
                      lambda s, a: s["days_overdue"])),
    T("strings", "hashtag",
      {"event": "Summer Book Fair", "year": 2024},
      {"event": "city marathon", "year": 2025},
      accept=lambda r, s, a: isinstance(r, str) and r.startswith("#")
      and r[1:].replace("_", "").lower() in (s["event"].replace(" ", "").lower(),
                                            s["event"].replace(" ", "").lower() + str(s["year"]))),
    T("strings", "padded_invoice_number",
      {"invoice_number": 42, "width": 6},
      {"invoice_number": 12345, "width": 8},
      oracle=lambda s, a: str(s["invoice_number"]).zfill(s["width"])),
    T("strings", "forecast_summary",
      {"city": "Oslo", "high": 12, "low": 4, "condition": "rain"},
      {"city": "Lisbon", "high": 27, "low": 18, "condition": "sunny"},
      accept=_has_all(lambda s, a: s["city"], lambda s, a: s["high"], lambda s, a: s["low"],
                      lambda s, a: s["condition"], fold=True)),
    T("strings", "first_name_and_initial",
      {"full_name": "Ines Duarte", "ward": "Cardiology"},
      {"full_name": "Tomas Berg", "ward": "Oncology"},
      accept=_one_of(lambda s, a: [s["full_name"].split()[0] + " " + s["full_name"].split()[-1][0] + ".",
                                   s["full_name"].split()[0] + " " + s["full_name"].split()[-1][0]])),
    T("strings", "hostname",
      {"url": "https://shop.example.com/cart?id=7", "timeout_seconds": 30},
      {"url": "http://intranet.local/wiki/Home", "timeout_seconds": 5},
      oracle=lambda s, a: s["url"].split("://", 1)[1].split("/", 1)[0]),
    T("strings", "exhibit_caption",
      {"title": "Water Lilies", "artist": "Claude Monet", "year": 1906},
      {"title": "The Night Watch", "artist": "Rembrandt", "year": 1642},
      accept=_has_all(lambda s, a: s["title"], lambda s, a: s["artist"], lambda s, a: s["year"])),
    T("strings", "masked_word",
      {"secret": "garden", "guessed": ["a", "e", "x"], "lives": 5},
      {"secret": "banana", "guessed": ["n"], "lives": 2},
      accept=_accept_masked),
    T("strings", "receipt_line",
      {"dish": "Pad Thai", "quantity": 2, "unit_price": 11.5},
      {"dish": "Green Curry", "quantity": 3, "unit_price": 9.0},
      accept=_receipt_line),

    # -- lists -----------------------------------------------------------------------------
    T("lists", "dogs_due_for_vaccination",
      {"dogs": ["Rex", "Bella", "Milo", "Luna"], "months_since_vaccine": [13, 5, 12, 2],
       "vaccine_interval_months": 12},
      {"dogs": ["Ollie", "Daisy", "Coco"], "months_since_vaccine": [5, 24, 6],
       "vaccine_interval_months": 6},
      oracle=lambda s, a: [d for d, m in zip(s["dogs"], s["months_since_vaccine"])
                           if m >= s["vaccine_interval_months"]]),
    T("lists", "top_three_scorers",
      {"players": ["Ana", "Ben", "Cai", "Dev", "Eli"], "goals": [7, 12, 3, 9, 11]},
      {"players": ["Fay", "Gus", "Hal", "Ivy"], "goals": [2, 5, 8, 1]},
      oracle=lambda s, a: [p for g, p in sorted(zip(s["goals"], s["players"]), reverse=True)][:3]),
    T("lists", "overbooked_flights",
      {"flights": ["BA12", "LH400", "AF7"], "seats": [180, 300, 150], "bookings": [185, 290, 150]},
      {"flights": ["KL9", "IB3", "SK21"], "seats": [200, 120, 90], "bookings": [199, 126, 95]},
      oracle=lambda s, a: [f for f, n, b in zip(s["flights"], s["seats"], s["bookings"]) if b > n]),
    T("lists", "vegetarian_dishes",
      {"dishes": ["Margherita", "Pepperoni", "Falafel Wrap", "Caesar Salad"],
       "vegetarian": [True, False, True, False]},
      {"dishes": ["Chicken Tikka", "Dal", "Lamb Stew", "Paneer"],
       "vegetarian": [False, True, False, True]},
      oracle=lambda s, a: [d for d, v in zip(s["dishes"], s["vegetarian"]) if v]),
    T("lists", "temperatures_in_fahrenheit",
      {"readings_c": [0, 21.5, -10, 37]},
      {"readings_c": [100, -40, 15]},
      accept=_nums_near(lambda s, a: [c * 9 / 5 + 32 for c in s["readings_c"]], 0.05)),
    T("lists", "last_five_transactions",
      {"account": "NL-0042", "transactions": [12.5, -40.0, 300.0, -8.75, -60.0, 25.0, -3.2]},
      {"account": "NL-0917", "transactions": [5.0, -2.0, 18.0, -7.5]},
      accept=_list_is(lambda s, a: s["transactions"][-5:],
                      lambda s, a: s["transactions"][-5:][::-1])),
    T("lists", "unique_visitor_countries",
      {"museum": "Rijksmuseum", "visitor_countries": ["FR", "DE", "FR", "JP", "DE", "US"]},
      {"museum": "Prado", "visitor_countries": ["US", "BR", "BR", "AR", "US"]},
      accept=_list_is(lambda s, a: list(dict.fromkeys(s["visitor_countries"])),
                      lambda s, a: sorted(set(s["visitor_countries"])))),
    T("lists", "weekly_totals",
      {"daily_steps": [8000, 9500, 7200, 10400, 6100, 12000, 5300,
                       7700, 8800, 9900, 4300, 11000, 6600, 10200]},
      {"daily_steps": [1000, 2000, 3000, 4000, 5000, 6000, 7000,
                       500, 500, 500, 500, 500, 500, 500,
                       9000, 100, 100, 100, 100, 100, 100]},
      oracle=lambda s, a: [sum(s["daily_steps"][i:i + 7]) for i in range(0, len(s["daily_steps"]), 7)]),
    T("lists", "shipments_sorted_by_weight",
      {"shipment_ids": ["S1", "S2", "S3", "S4"], "weights_kg": [12.5, 3.0, 40.0, 7.25]},
      {"shipment_ids": ["X9", "Y2", "Z5"], "weights_kg": [5.5, 1.0, 2.25]},
      oracle=lambda s, a: [i for w, i in sorted(zip(s["weights_kg"], s["shipment_ids"]))]),
    T("lists", "two_cheapest_rooms",
      {"rooms": ["101", "102", "201", "305"], "nightly_rates": [120, 95, 140, 89]},
      {"rooms": ["A", "B", "C", "D"], "nightly_rates": [60, 75, 55, 90]},
      accept=_any_order(lambda s, a: [r for p, r in sorted(zip(s["nightly_rates"], s["rooms"]))][:2])),

    # -- booleans --------------------------------------------------------------------------
    T("booleans", "is_eligible_for_free_shipping",
      {"basket_total": 50.0, "free_shipping_threshold": 50.0},
      {"basket_total": 49.99, "free_shipping_threshold": 50.0},
      oracle=lambda s, a: s["basket_total"] >= s["free_shipping_threshold"]),
    T("booleans", "is_carry_on_allowed",
      {"bag_weight_kg": 7.5, "carry_on_limit_kg": 8, "bag_length_cm": 56, "max_length_cm": 55},
      {"bag_weight_kg": 8.0, "carry_on_limit_kg": 8, "bag_length_cm": 50, "max_length_cm": 55},
      oracle=lambda s, a: s["bag_weight_kg"] <= s["carry_on_limit_kg"]
      and s["bag_length_cm"] <= s["max_length_cm"]),
    T("booleans", "has_quorum",
      {"members": 40, "present": 21, "quorum": 21},
      {"members": 40, "present": 20, "quorum": 21},
      oracle=lambda s, a: s["present"] >= s["quorum"]),
    T("booleans", "all_animals_fed",
      {"animals": ["cow", "goat", "hen"], "fed": [True, True, True]},
      {"animals": ["pig", "sheep", "duck", "horse"], "fed": [True, False, True, True]},
      oracle=lambda s, a: all(s["fed"])),
    T("booleans", "any_book_overdue",
      {"books": ["Dune", "Emma", "Ulysses"], "days_until_due": [5, 0, 12]},
      {"books": ["Beloved", "Carrie", "Ivanhoe"], "days_until_due": [4, -2, 1]},
      oracle=lambda s, a: any(d < 0 for d in s["days_until_due"])),
    T("booleans", "is_open_on",
      {"museum": "City Museum", "closed_days": ["Monday", "Tuesday"]},
      {"museum": "Maritime Museum", "closed_days": ["Sunday"]},
      args=("Tuesday",),
      oracle=lambda s, a: a[0] not in s["closed_days"]),
    T("booleans", "needs_restock",
      {"product": "printer paper", "stock": 8, "reorder_level": 10},
      {"product": "toner", "stock": 15, "reorder_level": 10},
      oracle=lambda s, a: s["stock"] < s["reorder_level"]),
    T("booleans", "is_certificate_expired",
      {"domain": "shop.example.com", "expires_on": "2024-03-01", "today": "2024-02-28"},
      {"domain": "mail.example.org", "expires_on": "2023-12-31", "today": "2024-01-05"},
      oracle=lambda s, a: s["today"] > s["expires_on"]),
    T("booleans", "has_double_booked_seats",
      {"show": "Hamlet", "booked_seats": ["A1", "A2", "B4", "A2"]},
      {"show": "Cats", "booked_seats": ["C1", "C2", "C3", "D1"]},
      oracle=lambda s, a: len(set(s["booked_seats"])) < len(s["booked_seats"])),
    T("booleans", "is_personal_best",
      {"swimmer": "Maya", "race_times_seconds": [62.4, 60.1, 61.0, 59.8]},
      {"swimmer": "Leo", "race_times_seconds": [58.2, 60.5, 59.0]},
      oracle=lambda s, a: s["race_times_seconds"][-1] < min(s["race_times_seconds"][:-1])),

    # -- arguments -------------------------------------------------------------------------
    T("arguments", "books_by_author",
      {"titles": ["A Wizard of Earthsea", "Dune", "The Dispossessed", "Children of Dune"],
       "authors": ["Ursula K. Le Guin", "Frank Herbert", "Ursula K. Le Guin", "Frank Herbert"]},
      {"titles": ["Emma", "Dune Messiah", "Persuasion"],
       "authors": ["Jane Austen", "Frank Herbert", "Jane Austen"]},
      args=("Frank Herbert",),
      oracle=lambda s, a: [t for t, w in zip(s["titles"], s["authors"]) if w == a[0]]),
    T("arguments", "fare_between",
      {"stops": ["Central", "Market", "Harbour", "Museum", "Airport"], "fare_per_stop": 1.5},
      {"stops": ["Airport", "Depot", "Market", "Park", "Mill"], "fare_per_stop": 2.0},
      args=("Market", "Airport"),
      accept=_near(lambda s, a: abs(s["stops"].index(a[1]) - s["stops"].index(a[0])) * s["fare_per_stop"], 0.001)),
    T("arguments", "seats_in_row",
      {"theatre": "Globe", "seats": ["A1", "A2", "B1", "B2", "B3", "C1"]},
      {"theatre": "Lyric", "seats": ["B7", "C4", "B9", "A2"]},
      args=("B",),
      oracle=lambda s, a: [x for x in s["seats"] if x.startswith(a[0])]),
    T("arguments", "convert_to",
      {"amount_eur": 200.0, "currencies": ["USD", "GBP", "JPY"], "rates": [1.08, 0.85, 160.0]},
      {"amount_eur": 50.0, "currencies": ["USD", "CHF", "GBP"], "rates": [1.1, 0.95, 0.86]},
      args=("GBP",),
      accept=_near(lambda s, a: s["amount_eur"] * s["rates"][s["currencies"].index(a[0])], 0.01)),
    T("arguments", "students_scoring_above",
      {"students": ["Asha", "Ben", "Chloe", "Dmitri", "Eva"], "marks": [82, 70, 91, 65, 71]},
      {"students": ["Farid", "Gwen", "Hiro"], "marks": [70, 69, 100]},
      args=(70,),
      oracle=lambda s, a: [n for n, m in zip(s["students"], s["marks"]) if m > a[0]]),
    T("arguments", "price_of_tickets",
      {"show": "The Tempest", "adult_price": 24.0, "child_price": 12.5},
      {"show": "Matilda", "adult_price": 18.0, "child_price": 9.0},
      args=(2, 3),
      accept=_near(lambda s, a: a[0] * s["adult_price"] + a[1] * s["child_price"], 0.001)),
    T("arguments", "pallets_for",
      {"warehouse": "Rotterdam", "boxes_per_pallet": 40},
      {"warehouse": "Hamburg", "boxes_per_pallet": 25},
      args=(130,),
      oracle=lambda s, a: -(-a[0] // s["boxes_per_pallet"])),
    T("arguments", "dose_for_weight",
      {"drug": "paracetamol", "mg_per_kg": 15, "max_dose_mg": 1000},
      {"drug": "ibuprofen", "mg_per_kg": 10, "max_dose_mg": 1000},
      args=(72,),
      accept=_near(lambda s, a: min(a[0] * s["mg_per_kg"], s["max_dose_mg"]), 0.001)),
    T("arguments", "goals_in_match",
      {"match_numbers": [1, 2, 3, 4], "goals": [2, 0, 3, 1]},
      {"match_numbers": [3, 4, 5, 6, 7], "goals": [1, 4, 0, 2, 5]},
      args=(3,),
      oracle=lambda s, a: s["goals"][s["match_numbers"].index(a[0])]),
    T("arguments", "reading_time_minutes",
      {"article": "Tides of the North Sea", "words": 2400},
      {"article": "A Short Note on Bees", "words": 1000},
      args=(250,),
      accept=_reading_time),

    # -- state -----------------------------------------------------------------------------
    T("state", "check_in_guest",
      {"guests": ["Kim"], "rooms_free": 3},
      {"guests": [], "rooms_free": 1},
      args=("Lee",),
      after=lambda s, a: {"guests": s["guests"] + [a[0]], "rooms_free": s["rooms_free"] - 1}),
    T("state", "board_passengers",
      {"flight": "TP1350", "passengers_on_board": 120, "capacity": 180},
      {"flight": "FR8822", "passengers_on_board": 12, "capacity": 60},
      args=(35,),
      after=lambda s, a: {"passengers_on_board": s["passengers_on_board"] + a[0],
                          "capacity": s["capacity"]}),
    T("state", "pay_invoice",
      {"balance": 500.0, "amount_owed": 120.0},
      {"balance": 200.0, "amount_owed": 300.0},
      args=(120.0,),
      after=lambda s, a: {"balance": s["balance"] - a[0], "amount_owed": s["amount_owed"] - a[0]}),
    T("state", "water_plants",
      {"plants": ["fern", "basil", "cactus"], "days_since_watered": [3, 5, 1]},
      {"plants": ["mint", "aloe"], "days_since_watered": [0, 9]},
      after=lambda s, a: {"plants": s["plants"], "days_since_watered": [0] * len(s["plants"])}),
    T("state", "end_turn",
      {"players": ["Ana", "Ben", "Cy"], "current_player": "Ana"},
      {"players": ["Dora", "Eli"], "current_player": "Eli"},
      after=lambda s, a: {"players": s["players"],
                          "current_player": s["players"][(s["players"].index(s["current_player"]) + 1)
                                                         % len(s["players"])]}),
    T("state", "cast_vote",
      {"candidates": ["Ortiz", "Nakamura", "Singh"], "votes": [10, 4, 7]},
      {"candidates": ["Singh", "Ortiz"], "votes": [0, 3]},
      args=("Singh",),
      after=lambda s, a: {"candidates": s["candidates"],
                          "votes": [v + (c == a[0]) for c, v in zip(s["candidates"], s["votes"])]}),
    T("state", "discharge_patient",
      {"patients": ["Ali", "Bo", "Cem"], "free_beds": 2},
      {"patients": ["Bo", "Dan"], "free_beds": 0},
      args=("Bo",),
      after=lambda s, a: {"patients": [p for p in s["patients"] if p != a[0]],
                          "free_beds": s["free_beds"] + 1}),
    T("state", "log_rainfall",
      {"rainfall_mm": [2, 0, 5], "total_mm": 7},
      {"rainfall_mm": [], "total_mm": 0},
      args=(4,),
      after=lambda s, a: {"rainfall_mm": s["rainfall_mm"] + [a[0]], "total_mm": s["total_mm"] + a[0]}),
    T("state", "reset_trip_meter",
      {"trip_km": 342.7, "odometer_km": 80231.0},
      {"trip_km": 12.0, "odometer_km": 1500.5},
      after=lambda s, a: {"trip_km": 0, "odometer_km": s["odometer_km"]}),
    T("state", "transfer_to_savings",
      {"checking": 900.0, "savings": 1500.0},
      {"checking": 300.0, "savings": 0.0},
      args=(250.0,),
      after=lambda s, a: {"checking": s["checking"] - a[0], "savings": s["savings"] + a[0]}),
]
