"""The eighth held-out set of `_doesNotUnderstand` tasks: the long tail.

Written blind by a helper that saw only its brief (and the task format of
`bench/dnu_open_tasks.py`), never the kernel, the tests or the earlier task bodies. Every
selector here is one no earlier set used: everyday messages from varied domains (bakeries,
bike shares, dentists, ferries, greenhouses, podcasts, laundromats, warehouses, aquariums,
tax forms, recipes, sports leagues, parking garages), sent to ordinary objects that have no
method for them. 10 tasks per kind (numbers, strings, lists, booleans, arguments, state),
60 in all.

Each task is judged on its receiver (`slots`) and on a second one (`also`: the same slot
names and types, other values, the same arguments). The second receiver is chosen so that a
plausible wrong method — a wrong or swapped formula, a flipped or off-by-one comparison, an
ignored slot or argument, a returned constant, the wrong end of a list — fails on at least
one of the two; for booleans the two receivers give different answers, and values where
different sensible formulas would coincide are avoided.
"""
import math

from dnu_open_tasks import T, _near, _one_of, _text_with


def _label_with(first, second):
    """Accept text holding both parts (case-insensitive), in either order."""
    def accept(result, slots, args):
        if not isinstance(result, str):
            return False
        low = result.lower()
        a, b = str(first(slots, args)).lower(), str(second(slots, args)).lower()
        i, j = low.find(a), low.find(b)
        return i >= 0 and j >= 0 and (low.find(b, i + len(a)) >= 0 or low.find(a, j + len(b)) >= 0)
    return accept


def _masked(result, slots, args):
    """Accept an id with only its last four characters shown and the rest hidden."""
    tid = slots["tax_id"]
    return (isinstance(result, str) and result.endswith(tid[-4:]) and len(result) > 4
            and not any(c.isdigit() for c in result[:-4]))


def _comma_list(result, slots, args):
    """Accept the names joined by commas (with or without a space after each)."""
    return (isinstance(result, str)
            and result.replace(", ", ",") == ",".join(slots["species"]))


def _episode_codes(s, a):
    se, ep = s["season"], s["episode"]
    codes = [f"S{se:02d}E{ep:02d}", f"S{se}E{ep}"]
    return codes + [c.lower() for c in codes]


def _clock_times(s, a):
    h, m = s["hour"], s["minute"]
    twelve = f"{h % 12 or 12}:{m:02d}"
    half = "AM" if h < 12 else "PM"
    return [f"{h:02d}:{m:02d}", f"{h}:{m:02d}", f"{twelve} {half}", f"{twelve} {half.lower()}",
            f"{twelve}{half}", f"{twelve}{half.lower()}"]


TASKS = [
    # -- numbers ---------------------------------------------------------------------------
    T("numbers", "dozens_baked", {"muffins_baked": 84}, {"muffins_baked": 60},
      oracle=lambda s, a: s["muffins_baked"] / 12),
    T("numbers", "ticket_revenue", {"tickets_sold": 120, "ticket_price": 4.5},
      {"tickets_sold": 85, "ticket_price": 12.0},
      oracle=lambda s, a: s["tickets_sold"] * s["ticket_price"]),
    T("numbers", "temperature_spread", {"max_temp_c": 31.5, "min_temp_c": 12.0},
      {"max_temp_c": 24.0, "min_temp_c": -3.5},
      oracle=lambda s, a: s["max_temp_c"] - s["min_temp_c"]),
    T("numbers", "episode_length_hours", {"duration_min": 135}, {"duration_min": 48},
      oracle=lambda s, a: s["duration_min"] / 60),
    T("numbers", "ride_cost", {"unlock_fee": 1.0, "per_minute": 0.15, "ride_minutes": 20},
      {"unlock_fee": 2.5, "per_minute": 0.3, "ride_minutes": 12},
      oracle=lambda s, a: s["unlock_fee"] + s["per_minute"] * s["ride_minutes"]),
    T("numbers", "months_until_checkup", {"months_since_checkup": 4, "checkup_interval_months": 6},
      {"months_since_checkup": 1, "checkup_interval_months": 12},
      oracle=lambda s, a: s["checkup_interval_months"] - s["months_since_checkup"]),
    T("numbers", "occupancy_percent", {"cars_parked": 180, "capacity": 240},
      {"cars_parked": 57, "capacity": 300},
      accept=_near(lambda s, a: s["cars_parked"] / s["capacity"] * 100, 0.05)),
    T("numbers", "flour_per_serving", {"flour_g": 600, "servings": 8},
      {"flour_g": 500, "servings": 4},
      oracle=lambda s, a: s["flour_g"] / s["servings"]),
    T("numbers", "pallets_needed", {"boxes": 130, "boxes_per_pallet": 40},
      {"boxes": 200, "boxes_per_pallet": 40},
      oracle=lambda s, a: math.ceil(s["boxes"] / s["boxes_per_pallet"])),
    T("numbers", "goals_per_match", {"goals_scored": 42, "matches_played": 28},
      {"goals_scored": 9, "matches_played": 12},
      oracle=lambda s, a: s["goals_scored"] / s["matches_played"]),

    # -- strings ---------------------------------------------------------------------------
    T("strings", "route_name", {"departure_port": "Dover", "arrival_port": "Calais"},
      {"departure_port": "Oban", "arrival_port": "Mull"},
      accept=_text_with(lambda s, a: s["departure_port"], lambda s, a: s["arrival_port"])),
    T("strings", "name_in_title_case", {"recipe_name": "lemon drizzle cake"},
      {"recipe_name": "CHICKEN tikka masala"},
      oracle=lambda s, a: " ".join(w.capitalize() for w in s["recipe_name"].split())),
    T("strings", "episode_code", {"season": 3, "episode": 7}, {"season": 12, "episode": 14},
      accept=_one_of(_episode_codes)),
    T("strings", "masked_tax_id", {"tax_id": "123456789"}, {"tax_id": "987650123"},
      accept=_masked),
    T("strings", "machine_label", {"machine_type": "dryer", "machine_number": 12},
      {"machine_type": "washer", "machine_number": 3},
      accept=_label_with(lambda s, a: s["machine_type"], lambda s, a: s["machine_number"])),
    T("strings", "patient_surname", {"patient_name": "Dana Whitfield"},
      {"patient_name": "Jo Anne Park"},
      oracle=lambda s, a: s["patient_name"].split()[-1]),
    T("strings", "comma_separated_species", {"species": ["guppy", "tetra", "molly"]},
      {"species": ["angelfish", "pleco"]},
      accept=_comma_list),
    T("strings", "appointment_time", {"hour": 9, "minute": 5}, {"hour": 14, "minute": 30},
      accept=_one_of(_clock_times)),
    T("strings", "scoreline",
      {"home_team": "Rovers", "home_goals": 2, "away_goals": 1, "away_team": "United"},
      {"home_team": "City", "home_goals": 0, "away_goals": 3, "away_team": "Athletic"},
      accept=_text_with(lambda s, a: s["home_team"], lambda s, a: str(s["home_goals"]),
                        lambda s, a: str(s["away_goals"]), lambda s, a: s["away_team"])),
    T("strings", "first_address_line", {"address": "12 Mill Lane\nLeeds\nLS1 4AB"},
      {"address": "Flat 3, 8 Quay Street\nBristol\nBS1 4DJ"},
      oracle=lambda s, a: s["address"].split("\n")[0]),

    # -- lists -----------------------------------------------------------------------------
    T("lists", "best_two_lap_times", {"lap_times_s": [62.1, 59.8, 61.0, 60.2]},
      {"lap_times_s": [55.4, 57.9, 54.8]},
      oracle=lambda s, a: sorted(s["lap_times_s"])[:2]),
    T("lists", "sold_out_items",
      {"items": ["rye", "bagel", "scone", "brioche"], "stock": [0, 5, 0, 2]},
      {"items": ["croissant", "baguette", "eclair"], "stock": [3, 0, 1]},
      oracle=lambda s, a: [i for i, n in zip(s["items"], s["stock"]) if n == 0]),
    T("lists", "alphabetical_roster", {"members": ["Tomas", "Ada", "Lena", "Bo"]},
      {"members": ["Wren", "Cleo", "Ines"]},
      oracle=lambda s, a: sorted(s["members"])),
    T("lists", "skus_to_reorder",
      {"skus": ["A1", "A2", "A3", "A4"], "on_hand": [12, 3, 7, 0], "reorder_point": 5},
      {"skus": ["B1", "B2", "B3"], "on_hand": [2, 9, 4], "reorder_point": 10},
      oracle=lambda s, a: [k for k, n in zip(s["skus"], s["on_hand"]) if n < s["reorder_point"]]),
    T("lists", "episode_lengths_hours", {"durations_min": [45, 90, 30]},
      {"durations_min": [120, 75]},
      oracle=lambda s, a: [m / 60 for m in s["durations_min"]]),
    T("lists", "departures_after_noon", {"departure_hours": [7, 10, 13, 16, 19]},
      {"departure_hours": [6, 14, 15, 21]},
      oracle=lambda s, a: [h for h in s["departure_hours"] if h > 12]),
    T("lists", "daily_growth_mm", {"heights_mm": [10, 14, 19, 25]}, {"heights_mm": [40, 41, 45]},
      oracle=lambda s, a: [b - a_ for a_, b in zip(s["heights_mm"], s["heights_mm"][1:])]),
    T("lists", "last_three_readings", {"ph_readings": [7.2, 7.0, 6.8, 6.9, 7.1]},
      {"ph_readings": [6.5, 6.6, 6.7, 6.9]},
      oracle=lambda s, a: s["ph_readings"][-3:]),
    T("lists", "free_spaces_per_level",
      {"capacity_per_level": [50, 60, 40], "cars_per_level": [48, 22, 40]},
      {"capacity_per_level": [30, 30], "cars_per_level": [5, 29]},
      oracle=lambda s, a: [c - n for c, n in zip(s["capacity_per_level"], s["cars_per_level"])]),
    T("lists", "running_total_points", {"points_per_game": [3, 1, 0, 3]},
      {"points_per_game": [1, 1, 3]},
      oracle=lambda s, a: [sum(s["points_per_game"][:i + 1])
                           for i in range(len(s["points_per_game"]))]),

    # -- booleans --------------------------------------------------------------------------
    T("booleans", "needs_recharge", {"battery_percent": 12, "min_percent": 10},
      {"battery_percent": 25, "min_percent": 30},
      oracle=lambda s, a: s["battery_percent"] < s["min_percent"]),
    T("booleans", "is_overbooked", {"tickets_sold": 312, "seat_capacity": 300},
      {"tickets_sold": 280, "seat_capacity": 300},
      oracle=lambda s, a: s["tickets_sold"] > s["seat_capacity"]),
    T("booleans", "is_overdue_for_cleaning",
      {"months_since_cleaning": 8, "cleaning_interval_months": 6},
      {"months_since_cleaning": 9, "cleaning_interval_months": 12},
      oracle=lambda s, a: s["months_since_cleaning"] > s["cleaning_interval_months"]),
    T("booleans", "ph_in_safe_range", {"ph": 7.1, "ph_min": 6.5, "ph_max": 7.5},
      {"ph": 7.9, "ph_min": 6.5, "ph_max": 7.5},
      oracle=lambda s, a: s["ph_min"] <= s["ph"] <= s["ph_max"]),
    T("booleans", "has_guest", {"guest_names": ["Ana Ruiz"]}, {"guest_names": []},
      oracle=lambda s, a: len(s["guest_names"]) > 0),
    T("booleans", "serves_everyone", {"servings": 6, "guests": 8}, {"servings": 10, "guests": 8},
      oracle=lambda s, a: s["servings"] >= s["guests"]),
    T("booleans", "is_over_weight_limit", {"load_kg": 1450.0, "max_load_kg": 1200.0},
      {"load_kg": 900.0, "max_load_kg": 1200.0},
      oracle=lambda s, a: s["load_kg"] > s["max_load_kg"]),
    T("booleans", "is_refund_due", {"tax_paid": 5200.0, "tax_owed": 4800.0},
      {"tax_paid": 3000.0, "tax_owed": 3500.0},
      oracle=lambda s, a: s["tax_paid"] > s["tax_owed"]),
    T("booleans", "cycle_finished", {"elapsed_min": 50, "cycle_min": 45},
      {"elapsed_min": 20, "cycle_min": 45},
      oracle=lambda s, a: s["elapsed_min"] >= s["cycle_min"]),
    T("booleans", "is_unbeaten", {"wins": 5, "draws": 2, "losses": 0},
      {"wins": 6, "draws": 1, "losses": 1},
      oracle=lambda s, a: s["losses"] == 0),

    # -- arguments -------------------------------------------------------------------------
    T("arguments", "cost_of_loaves", {"loaf_price": 3.5}, {"loaf_price": 2.75}, args=(4,),
      oracle=lambda s, a: s["loaf_price"] * a[0]),
    T("arguments", "fee_for_hours", {"hourly_rate": 2.5, "daily_max": 18.0},
      {"hourly_rate": 4.0, "daily_max": 15.0}, args=(5,),
      oracle=lambda s, a: min(s["hourly_rate"] * a[0], s["daily_max"])),
    T("arguments", "water_needed", {"litres_per_plant_per_day": 0.5},
      {"litres_per_plant_per_day": 1.25}, args=(12, 7),
      oracle=lambda s, a: s["litres_per_plant_per_day"] * a[0] * a[1]),
    T("arguments", "butter_needed_for", {"butter_g": 200, "servings": 8},
      {"butter_g": 90, "servings": 3}, args=(12,),
      oracle=lambda s, a: s["butter_g"] / s["servings"] * a[0]),
    T("arguments", "tax_on", {"tax_rate_percent": 20.0}, {"tax_rate_percent": 12.5},
      args=(35000,),
      oracle=lambda s, a: a[0] * s["tax_rate_percent"] / 100),
    T("arguments", "count_episodes_longer_than", {"durations_min": [35, 52, 61, 28, 44]},
      {"durations_min": [90, 15, 41]}, args=(40,),
      oracle=lambda s, a: sum(1 for m in s["durations_min"] if m > a[0])),
    T("arguments", "is_slot_free", {"booked_hours": [9, 10, 14]}, {"booked_hours": [9, 11, 15]},
      args=(11,),
      oracle=lambda s, a: a[0] not in s["booked_hours"]),
    T("arguments", "points_behind", {"points": 42}, {"points": 45}, args=(50,),
      oracle=lambda s, a: a[0] - s["points"]),
    T("arguments", "boxes_for", {"items_per_box": 12}, {"items_per_box": 25}, args=(50,),
      oracle=lambda s, a: math.ceil(a[0] / s["items_per_box"])),
    T("arguments", "fare_for_adults_and_children", {"adult_fare": 12.0, "child_fare": 6.0},
      {"adult_fare": 9.5, "child_fare": 4.0}, args=(2, 3),
      oracle=lambda s, a: s["adult_fare"] * a[0] + s["child_fare"] * a[1]),

    # -- state -----------------------------------------------------------------------------
    T("state", "top_up_water", {"water_level_l": 173.5, "tank_capacity_l": 200.0},
      {"water_level_l": 88.0, "tank_capacity_l": 120.0},
      after=lambda s, a: {"water_level_l": s["tank_capacity_l"]}),
    T("state", "sell_loaves", {"loaves_left": 30, "loaves_sold": 12},
      {"loaves_left": 8, "loaves_sold": 40}, args=(4,),
      after=lambda s, a: {"loaves_left": s["loaves_left"] - a[0],
                          "loaves_sold": s["loaves_sold"] + a[0]}),
    T("state", "dock_bike", {"bikes_docked": 7, "free_docks": 5},
      {"bikes_docked": 0, "free_docks": 12},
      after=lambda s, a: {"bikes_docked": s["bikes_docked"] + 1,
                          "free_docks": s["free_docks"] - 1}),
    T("state", "add_to_waiting_list", {"waiting_list": ["Kim", "Raj"]}, {"waiting_list": []},
      args=("Lou",),
      after=lambda s, a: {"waiting_list": s["waiting_list"] + [a[0]]}),
    T("state", "unload_cars", {"cars_on_deck": 40}, {"cars_on_deck": 22}, args=(15,),
      after=lambda s, a: {"cars_on_deck": s["cars_on_deck"] - a[0]}),
    T("state", "start_cycle", {"in_use": False, "minutes_remaining": 0, "cycle_min": 45},
      {"in_use": False, "minutes_remaining": 0, "cycle_min": 30},
      after=lambda s, a: {"in_use": True, "minutes_remaining": s["cycle_min"]}),
    T("state", "record_temperature", {"temperature_log": [21.5, 22.0], "latest_temp_c": 22.0},
      {"temperature_log": [], "latest_temp_c": 0.0}, args=(23.4,),
      after=lambda s, a: {"temperature_log": s["temperature_log"] + [a[0]],
                          "latest_temp_c": a[0]}),
    T("state", "publish_episode", {"episodes": ["Pilot"], "episode_count": 1},
      {"episodes": ["Intro", "Q&A"], "episode_count": 2}, args=("Live from Leeds",),
      after=lambda s, a: {"episodes": s["episodes"] + [a[0]],
                          "episode_count": s["episode_count"] + 1}),
    T("state", "record_win", {"wins": 5, "games_played": 9}, {"wins": 0, "games_played": 2},
      after=lambda s, a: {"wins": s["wins"] + 1, "games_played": s["games_played"] + 1}),
    T("state", "raise_rate_by", {"hourly_rate": 2.5}, {"hourly_rate": 4.0}, args=(10,),
      after=lambda s, a: {"hourly_rate": s["hourly_rate"] * (1 + a[0] / 100)}),
]
