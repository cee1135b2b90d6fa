"""A tuning set of mixed `_doesNotUnderstand` tasks (session 18).

Written by a helper from the brief of the held-out sets (ten per kind: numbers, strings, lists,
booleans, arguments, state), without reading them or the kernel; tuning happens here, never on
the held-out sets.
"""
import math

from dnu_open_tasks import T, _near, _one_of, _text_with


def _contains_all(*parts):
    """Accept text holding every one of `parts` (in any order, ignoring case)."""
    def accept(result, slots, args):
        if not isinstance(result, str):
            return False
        low = result.lower()
        return all(str(p(slots, args)).lower() in low for p in parts)
    return accept


def _items_in_order(key):
    """Accept text naming every item of the list slot `key`, in order."""
    def accept(result, slots, args):
        if not isinstance(result, str):
            return False
        at = 0
        for item in slots[key]:
            found = result.find(item, at)
            if found < 0:
                return False
            at = found + len(item)
        return True
    return accept


def _first_words(r, s, a):
    words = s["article"].split()[:a[0]]
    return r == " ".join(words) or (isinstance(r, list) and r == words)


TASKS = [
    # -- numbers ---------------------------------------------------------------------------
    T("numbers", "loaves_left", {"loaves_baked": 120, "loaves_sold": 85},
      {"loaves_baked": 60, "loaves_sold": 12},
      oracle=lambda s, a: s["loaves_baked"] - s["loaves_sold"]),
    T("numbers", "total_seats", {"rows": 12, "seats_per_row": 18},
      {"rows": 9, "seats_per_row": 25},
      oracle=lambda s, a: s["rows"] * s["seats_per_row"]),
    T("numbers", "average_stay_days", {"total_bed_days": 450, "patients_discharged": 60},
      {"total_bed_days": 100, "patients_discharged": 8},
      oracle=lambda s, a: s["total_bed_days"] / s["patients_discharged"]),
    T("numbers", "monthly_repayment", {"loan_amount": 12000, "months": 48},
      {"loan_amount": 7200, "months": 60},
      oracle=lambda s, a: s["loan_amount"] / s["months"]),
    T("numbers", "pupils_per_teacher", {"pupils": 240, "teachers": 16},
      {"pupils": 175, "teachers": 14},
      accept=_near(lambda s, a: s["pupils"] / s["teachers"], 0.5)),
    T("numbers", "minutes_until_boarding",
      {"departure_minute": 615, "current_minute": 540, "boarding_lead_minutes": 30},
      {"departure_minute": 900, "current_minute": 700, "boarding_lead_minutes": 40},
      oracle=lambda s, a: s["departure_minute"] - s["boarding_lead_minutes"] - s["current_minute"]),
    T("numbers", "full_egg_boxes", {"eggs_collected": 100, "eggs_per_box": 12},
      {"eggs_collected": 47, "eggs_per_box": 6},
      oracle=lambda s, a: s["eggs_collected"] // s["eggs_per_box"]),
    T("numbers", "elevation_gain", {"start_altitude_m": 850, "summit_altitude_m": 2130},
      {"start_altitude_m": 1400, "summit_altitude_m": 1975},
      oracle=lambda s, a: s["summit_altitude_m"] - s["start_altitude_m"]),
    T("numbers", "sheets_needed", {"pages": 90, "pages_per_sheet": 4},
      {"pages": 25, "pages_per_sheet": 2},
      oracle=lambda s, a: math.ceil(s["pages"] / s["pages_per_sheet"])),
    T("numbers", "percent_of_copies_sold", {"copies_printed": 800, "copies_sold": 620},
      {"copies_printed": 1200, "copies_sold": 300},
      accept=_near(lambda s, a: 100 * s["copies_sold"] / s["copies_printed"], 0.5)),

    # -- strings ---------------------------------------------------------------------------
    T("strings", "headline_in_capitals", {"headline": "Storm hits coast"},
      {"headline": "Mayor opens bridge"},
      oracle=lambda s, a: s["headline"].upper()),
    T("strings", "program_line", {"piece": "Ave Maria", "composer": "Schubert"},
      {"piece": "Messiah", "composer": "Handel"},
      accept=_contains_all(lambda s, a: s["piece"], lambda s, a: s["composer"])),
    T("strings", "kennel_tag", {"dog_name": "Biscuit", "kennel_number": 7},
      {"dog_name": "Pepper", "kennel_number": 12},
      accept=_contains_all(lambda s, a: s["dog_name"], lambda s, a: s["kennel_number"])),
    T("strings", "iban_without_spaces", {"iban": "GB29 NWBK 6016 1331 9268 19"},
      {"iban": "DE89 3704 0044 0532 0130 00"},
      oracle=lambda s, a: s["iban"].replace(" ", "")),
    T("strings", "class_label", {"year": 7, "form_letter": "B"},
      {"year": 10, "form_letter": "C"},
      accept=lambda r, s, a: isinstance(r, str)
      and f"{s['year']}{s['form_letter']}" in r.replace(" ", "")),
    T("strings", "byline", {"author": "Jane Doe"}, {"author": "Tomas Reyes"},
      accept=_text_with(lambda s, a: s["author"], start=("by",))),
    T("strings", "screening_time", {"hour": 9, "minute": 5}, {"hour": 20, "minute": 30},
      accept=_one_of(lambda s, a: {f"{s['hour']:02d}:{s['minute']:02d}",
                                   f"{s['hour']}:{s['minute']:02d}"})),
    T("strings", "crops_as_text", {"crops": ["wheat", "barley", "oats"]},
      {"crops": ["rye", "maize"]},
      accept=_items_in_order("crops")),
    T("strings", "first_word_of_title", {"title": "Annual Report 2023"},
      {"title": "Spring Catalogue"},
      oracle=lambda s, a: s["title"].split()[0]),
    T("strings", "harvest_month_abbreviation", {"harvest_month": "September"},
      {"harvest_month": "March"},
      accept=_one_of(lambda s, a: {s["harvest_month"][:3], s["harvest_month"][:3].upper(),
                                   s["harvest_month"][:3] + "."})),

    # -- lists -----------------------------------------------------------------------------
    T("lists", "tools_available",
      {"tool_names": ["drill", "saw", "ladder", "sander", "hedge trimmer"],
       "loaned_out": ["saw", "sander"]},
      {"tool_names": ["mower", "drill", "rake"], "loaned_out": ["mower"]},
      oracle=lambda s, a: [t for t in s["tool_names"] if t not in s["loaned_out"]]),
    T("lists", "fever_readings", {"temperatures": [36.6, 38.9, 36.9, 39.4]},
      {"temperatures": [39.1, 36.5, 38.6]},
      oracle=lambda s, a: [t for t in s["temperatures"] if t >= 38]),
    T("lists", "marks_sorted_high_to_low", {"marks": [55, 78, 91, 62]},
      {"marks": [40, 88, 73]},
      oracle=lambda s, a: sorted(s["marks"], reverse=True)),
    T("lists", "film_lengths_over_two_hours", {"film_minutes": [95, 130, 120, 118, 150]},
      {"film_minutes": [125, 90, 140]},
      oracle=lambda s, a: [m for m in s["film_minutes"] if m > 120]),
    T("lists", "crates_heavier_than_average", {"crate_weights": [18, 23, 21, 14]},
      {"crate_weights": [30, 12, 27]},
      oracle=lambda s, a: [w for w in s["crate_weights"]
                           if w > sum(s["crate_weights"]) / len(s["crate_weights"])]),
    T("lists", "next_three_departures",
      {"departures": ["08:10", "09:25", "10:40", "11:05", "12:30"]},
      {"departures": ["14:00", "15:20", "16:45", "18:10"]},
      oracle=lambda s, a: s["departures"][:3]),
    T("lists", "deposits_only", {"transactions": [120, -45, 300, -20, 75]},
      {"transactions": [-10, 50, -5]},
      oracle=lambda s, a: [t for t in s["transactions"] if t > 0]),
    T("lists", "distances_in_metres", {"distances_km": [3, 12.5, 7]},
      {"distances_km": [1, 0.5, 20]},
      oracle=lambda s, a: [d * 1000 for d in s["distances_km"]]),
    T("lists", "longest_headline",
      {"headlines": ["Rain again", "Council approves new library plans", "Fair opens"]},
      {"headlines": ["Markets rally after long slump", "Tide high", "School wins"]},
      oracle=lambda s, a: max(s["headlines"], key=len)),
    T("lists", "odd_page_numbers", {"page_count": 7}, {"page_count": 10},
      oracle=lambda s, a: list(range(1, s["page_count"] + 1, 2))),

    # -- booleans --------------------------------------------------------------------------
    T("booleans", "enough_flour_for_batch", {"flour_kg": 5, "flour_per_batch_kg": 5},
      {"flour_kg": 4, "flour_per_batch_kg": 5},
      oracle=lambda s, a: s["flour_kg"] >= s["flour_per_batch_kg"]),
    T("booleans", "is_ward_full", {"beds": 20, "patients": 20}, {"beds": 20, "patients": 17},
      oracle=lambda s, a: s["patients"] >= s["beds"]),
    T("booleans", "runs_past_midnight", {"start_minute": 1350, "length_minutes": 120},
      {"start_minute": 1200, "length_minutes": 150},
      oracle=lambda s, a: s["start_minute"] + s["length_minutes"] > 1440),
    T("booleans", "passed_all_subjects", {"marks": [55, 50, 61], "pass_mark": 50},
      {"marks": [80, 45, 90], "pass_mark": 50},
      oracle=lambda s, a: all(m >= s["pass_mark"] for m in s["marks"])),
    T("booleans", "is_in_credit", {"balance": 250}, {"balance": -40},
      oracle=lambda s, a: s["balance"] > 0),
    T("booleans", "fits_in_berth", {"boat_length_m": 11.5, "berth_length_m": 12},
      {"boat_length_m": 14, "berth_length_m": 12},
      oracle=lambda s, a: s["boat_length_m"] <= s["berth_length_m"]),
    T("booleans", "is_baggage_overweight", {"bag_kg": 24.5, "allowance_kg": 23},
      {"bag_kg": 20, "allowance_kg": 23},
      oracle=lambda s, a: s["bag_kg"] > s["allowance_kg"]),
    T("booleans", "needs_walk", {"hours_since_walk": 5, "walk_interval_hours": 4},
      {"hours_since_walk": 2, "walk_interval_hours": 4},
      oracle=lambda s, a: s["hours_since_walk"] >= s["walk_interval_hours"]),
    T("booleans", "can_start_hike",
      {"members_present": 6, "minimum_group_size": 4, "weather_ok": True},
      {"members_present": 3, "minimum_group_size": 4, "weather_ok": True},
      oracle=lambda s, a: s["members_present"] >= s["minimum_group_size"] and s["weather_ok"]),
    T("booleans", "is_headline_too_long",
      {"headline": "Council votes to extend the harbour wall by two hundred metres",
       "max_characters": 40},
      {"headline": "Harbour wall to grow", "max_characters": 40},
      oracle=lambda s, a: len(s["headline"]) > s["max_characters"]),

    # -- arguments -------------------------------------------------------------------------
    T("arguments", "loaves_from_flour", {"flour_per_loaf_g": 500}, {"flour_per_loaf_g": 450},
      args=(6000,), oracle=lambda s, a: a[0] // s["flour_per_loaf_g"]),
    T("arguments", "seats_left_after_booking", {"seats": 120, "booked": 95},
      {"seats": 80, "booked": 30}, args=(10,),
      oracle=lambda s, a: s["seats"] - s["booked"] - a[0]),
    T("arguments", "is_tool_available", {"available_tools": ["drill", "saw", "sander"]},
      {"available_tools": ["drill", "ladder"]}, args=("saw",),
      oracle=lambda s, a: a[0] in s["available_tools"]),
    T("arguments", "count_scoring_at_least", {"scores": [45, 70, 62, 88, 70]},
      {"scores": [71, 69, 90]}, args=(70,),
      oracle=lambda s, a: sum(1 for x in s["scores"] if x >= a[0])),
    T("arguments", "minutes_late", {"scheduled_minute": 600}, {"scheduled_minute": 620},
      args=(635,), oracle=lambda s, a: a[0] - s["scheduled_minute"]),
    T("arguments", "months_to_save_for", {"balance": 200, "monthly_saving": 150},
      {"balance": 50, "monthly_saving": 100}, args=(1000,),
      oracle=lambda s, a: math.ceil((a[0] - s["balance"]) / s["monthly_saving"])),
    T("arguments", "mooring_fee_for_nights",
      {"rate_per_metre_per_night": 3, "boat_length_m": 12},
      {"rate_per_metre_per_night": 2.5, "boat_length_m": 9}, args=(4,),
      oracle=lambda s, a: s["rate_per_metre_per_night"] * s["boat_length_m"] * a[0]),
    T("arguments", "first_words", {"article": "The mayor said the bridge will reopen in May"},
      {"article": "Heavy rain flooded the market square"}, args=(3,),
      accept=_first_words),
    T("arguments", "food_needed_for_days", {"dogs": 6, "grams_per_dog_per_day": 300},
      {"dogs": 4, "grams_per_dog_per_day": 250}, args=(7,),
      oracle=lambda s, a: s["dogs"] * s["grams_per_dog_per_day"] * a[0]),
    T("arguments", "fields_larger_than", {"field_sizes": [4, 12, 7, 20]},
      {"field_sizes": [8, 3, 7, 15]}, args=(7,),
      oracle=lambda s, a: [f for f in s["field_sizes"] if f > a[0]]),

    # -- state -----------------------------------------------------------------------------
    T("state", "add_flour", {"flour_kg": 12}, {"flour_kg": 3}, args=(25,),
      after=lambda s, a: {"flour_kg": s["flour_kg"] + a[0]}),
    T("state", "mark_paid", {"order_number": 311, "paid": False},
      {"order_number": 58, "paid": True},
      after=lambda s, a: {"paid": True}),
    T("state", "change_gate", {"flight": "BA117", "gate": "B12"},
      {"flight": "LH902", "gate": "A3"}, args=("C4",),
      after=lambda s, a: {"gate": a[0]}),
    T("state", "admit_patient", {"patients": ["Ruiz", "Okafor"], "free_beds": 3},
      {"patients": ["Lind"], "free_beds": 1}, args=("Chen",),
      after=lambda s, a: {"patients": s["patients"] + [a[0]], "free_beds": s["free_beds"] - 1}),
    T("state", "depart_boat", {"moored_boats": ["Seabird", "Aurora", "Kestrel"]},
      {"moored_boats": ["Aurora", "Gull"]}, args=("Aurora",),
      after=lambda s, a: {"moored_boats": [b for b in s["moored_boats"] if b != a[0]]}),
    T("state", "feed_all_dogs", {"food_kg": 20, "dogs": 6, "kg_per_dog": 0.5},
      {"food_kg": 9, "dogs": 4, "kg_per_dog": 0.75},
      after=lambda s, a: {"food_kg": s["food_kg"] - s["dogs"] * s["kg_per_dog"]}),
    T("state", "raise_ticket_price_by", {"ticket_price": 9.5}, {"ticket_price": 12},
      args=(1.5,), after=lambda s, a: {"ticket_price": s["ticket_price"] + a[0]}),
    T("state", "add_tag", {"tags": ["local", "weather"]}, {"tags": ["sport"]},
      args=("flood",), after=lambda s, a: {"tags": s["tags"] + [a[0]]}),
    T("state", "pick_apples", {"apples_on_tree": 200, "apples_picked": 35},
      {"apples_on_tree": 80, "apples_picked": 0}, args=(50,),
      after=lambda s, a: {"apples_on_tree": s["apples_on_tree"] - a[0],
                          "apples_picked": s["apples_picked"] + a[0]}),
    T("state", "clear_sign_up_list", {"signed_up": ["Ana", "Ben", "Cleo"]},
      {"signed_up": ["Dev"]},
      after=lambda s, a: {"signed_up": []}),
]
