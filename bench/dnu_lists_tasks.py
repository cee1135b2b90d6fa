"""Held-out `_doesNotUnderstand` tasks about LISTS, without an expectation.

Thirty everyday messages to ordinary objects whose slot holds a list (of numbers, of texts,
now and then of flags kept beside another list): filtering, picking by position or slice,
counting matches, transforming each item, joining, comparing two lists, the top N, removing
duplicates, totals of a filtered subset, and a few commands that change the list. All are of
kind "lists". Each is judged, like its sibling sets, on the real receiver and on a second one
(`also`) chosen so that a wrong-but-plausible method fails on at least one of them.

Written blind on 2026-12-04 by a helper that saw only its brief (the Task format and the
selectors already taken), before the set was used for any tuning.
"""
import statistics
from collections import Counter

from dnu_open_tasks import T, _near, _same


def _same_items(fn):
    """Accept a list, tuple or set holding exactly the items of fn(s, a), in any order."""
    def accept(r, s, a):
        if not isinstance(r, (list, tuple, set, frozenset)):
            return False
        wanted = fn(s, a)
        return len(r) == len(wanted) and sorted(r) == sorted(wanted)
    return accept


def _lengths(r, s, a):
    """Word lengths as a list in order, or as a mapping word -> length."""
    words = s["words"]
    if isinstance(r, dict):
        return r == {w: len(w) for w in words}
    return _same(r, [len(w) for w in words])


TASKS = [
    # -- picking and ordering --------------------------------------------------------------
    T("lists", "median_temperature",
      {"temperatures": [18.0, 12.5, 21.5, 15.0, 9.0]},
      {"temperatures": [10.0, 4.0, 8.0, 20.0]},
      oracle=lambda s, a: statistics.median(s["temperatures"])),
    T("lists", "second_fastest_lap",
      {"lap_times": [62.4, 59.8, 61.1, 60.5]},
      {"lap_times": [48.0, 47.2, 49.9]},
      oracle=lambda s, a: sorted(s["lap_times"])[1]),
    T("lists", "every_other_song",
      {"songs": ["Intro", "Hello", "Skyline", "Drift", "Echo"]},
      {"songs": ["One", "Two", "Three", "Four"]},
      oracle=lambda s, a: s["songs"][::2]),
    T("lists", "shortest_name",
      {"students": ["Christopher", "Liam", "Isabella"]},
      {"students": ["Maximilian", "Eva", "Jonathan"]},
      oracle=lambda s, a: min(s["students"], key=len)),
    T("lists", "most_common_color",
      {"car_colors": ["red", "blue", "red", "green", "blue", "red"]},
      {"car_colors": ["blue", "green", "silver", "green"]},
      oracle=lambda s, a: Counter(s["car_colors"]).most_common(1)[0][0]),
    T("lists", "fruits_by_length",
      {"fruits": ["banana", "fig", "kiwi", "apple"]},
      {"fruits": ["watermelon", "plum", "cherry"]},
      oracle=lambda s, a: sorted(s["fruits"], key=len)),
    T("lists", "top_scores",
      {"scores": [70, 95, 88, 60, 91]},
      {"scores": [50, 80, 80, 40]},
      args=(2,),
      accept=_same_items(lambda s, a: sorted(s["scores"], reverse=True)[:a[0]])),
    T("lists", "first_bid_over",
      {"bids": [120, 95, 180, 250]},
      {"bids": [160, 300, 155]},
      args=(150,),
      oracle=lambda s, a: next(b for b in s["bids"] if b > a[0])),

    # -- filtering and counting ------------------------------------------------------------
    T("lists", "songs_containing",
      {"songs": ["Yellow Submarine", "Blue Moon", "Yellow", "Purple Rain"]},
      {"songs": ["Mellow Yellow", "Hey Jude", "Let It Be"]},
      args=("Yellow",),
      oracle=lambda s, a: [t for t in s["songs"] if a[0] in t]),
    T("lists", "ages_between",
      {"camper_ages": [5, 12, 17, 30, 45, 9]},
      {"camper_ages": [15, 25, 19, 11]},
      args=(10, 20),
      oracle=lambda s, a: [n for n in s["camper_ages"] if a[0] <= n <= a[1]]),
    T("lists", "unfinished_tasks",
      {"tasks": ["buy milk", "call mum", "pay rent", "walk dog"],
       "completed": [True, False, True, False]},
      {"tasks": ["email Sam", "fix bike", "book dentist"],
       "completed": [False, True, True]},
      oracle=lambda s, a: [t for t, d in zip(s["tasks"], s["completed"]) if not d]),
    T("lists", "times_ordered",
      {"orders": ["latte", "espresso", "latte", "tea", "latte"]},
      {"orders": ["mocha", "latte"]},
      args=("latte",),
      oracle=lambda s, a: s["orders"].count(a[0])),
    T("lists", "count_odd_numbers",
      {"lottery_numbers": [3, 8, 15, 22, 7]},
      {"lottery_numbers": [2, 4, 9, 10]},
      oracle=lambda s, a: sum(1 for n in s["lottery_numbers"] if n % 2)),
    T("lists", "any_below_freezing",
      {"temperatures_celsius": [3.5, -1.0, 2.0]},
      {"temperatures_celsius": [0.0, 4.5, 1.0]},
      oracle=lambda s, a: any(t < 0 for t in s["temperatures_celsius"])),
    T("lists", "is_alphabetical",
      {"books": ["Dune", "Emma", "Ulysses"]},
      {"books": ["Persuasion", "Emma", "Dune"]},
      oracle=lambda s, a: s["books"] == sorted(s["books"])),

    # -- totals and averages ---------------------------------------------------------------
    T("lists", "total_expenses_over",
      {"expenses": [12.5, 80.0, 45.0, 150.0, 9.99]},
      {"expenses": [100.0, 20.0, 41.0, 40.0]},
      args=(40,),
      accept=_near(lambda s, a: sum(e for e in s["expenses"] if e > a[0]), 0.005)),
    T("lists", "average_of_last",
      {"weights_kg": [70.0, 71.2, 70.8, 69.9, 70.5]},
      {"weights_kg": [80.0, 82.0, 84.0, 86.0]},
      args=(3,),
      accept=_near(lambda s, a: sum(s["weights_kg"][-a[0]:]) / a[0], 0.01)),
    T("lists", "average_without_lowest",
      {"judge_scores": [7, 9, 6, 8]},
      {"judge_scores": [5, 10, 10]},
      accept=_near(lambda s, a: (sum(s["judge_scores"]) - min(s["judge_scores"]))
                   / (len(s["judge_scores"]) - 1), 0.01)),
    T("lists", "percent_done",
      {"tasks": ["buy milk", "call mum", "pay rent", "walk dog"],
       "completed": [True, False, True, True]},
      {"tasks": ["email Sam", "fix bike", "book dentist"],
       "completed": [False, False, True]},
      accept=_near(lambda s, a: 100.0 * sum(s["completed"]) / len(s["completed"]), 0.05)),
    T("lists", "basket_total",
      {"prices": [2.5, 1.0, 4.0], "quantities": [2, 3, 1]},
      {"prices": [10.0, 0.5], "quantities": [1, 6]},
      accept=_near(lambda s, a: sum(p * q for p, q in zip(s["prices"], s["quantities"])),
                   0.005)),

    # -- transforming and comparing --------------------------------------------------------
    T("lists", "word_lengths",
      {"words": ["garden", "rose", "tulip"]},
      {"words": ["a", "sunflower"]},
      accept=_lengths),
    T("lists", "prices_in_cents",
      {"prices": [1.99, 0.5, 12.0]},
      {"prices": [1.15, 0.29, 4.0]},
      oracle=lambda s, a: [round(p * 100) for p in s["prices"]]),
    T("lists", "daily_changes",
      {"closing_prices": [100.0, 103.5, 101.0, 106.0]},
      {"closing_prices": [50.0, 50.0, 40.0]},
      oracle=lambda s, a: [b - p for p, b in zip(s["closing_prices"], s["closing_prices"][1:])]),
    T("lists", "missing_ingredients",
      {"ingredients_needed": ["flour", "eggs", "milk", "sugar"],
       "pantry": ["eggs", "sugar", "salt"]},
      {"ingredients_needed": ["butter", "salt"],
       "pantry": ["salt", "pepper"]},
      accept=_same_items(lambda s, a: [i for i in s["ingredients_needed"]
                                       if i not in s["pantry"]])),
    T("lists", "friends_in_common",
      {"friends": ["Ana", "Ben", "Cai", "Dee"]},
      {"friends": ["Eve", "Fay"]},
      args=(["Ben", "Dee", "Eve"],),
      accept=_same_items(lambda s, a: [f for f in s["friends"] if f in a[0]])),

    # -- commands that change the list -----------------------------------------------------
    T("lists", "remove_duplicate_songs",
      {"songs": ["Halo", "Numb", "Halo", "Creep", "Numb"]},
      {"songs": ["Creep", "Creep", "Angel"]},
      after=lambda s, a: {"songs": list(dict.fromkeys(s["songs"]))}),
    T("lists", "swap_first_and_last",
      {"lineup": ["Ana", "Ben", "Cai", "Dee"]},
      {"lineup": ["Eve", "Fay", "Gus", "Hal", "Ivy"]},
      after=lambda s, a: {"lineup": s["lineup"][-1:] + s["lineup"][1:-1] + s["lineup"][:1]}),
    T("lists", "move_to_front",
      {"waiting_list": ["Ann", "Bo", "Cy", "Di"]},
      {"waiting_list": ["Eli", "Fern", "Cy"]},
      args=("Cy",),
      after=lambda s, a: {"waiting_list": [a[0]] + [w for w in s["waiting_list"] if w != a[0]]}),
    T("lists", "remove_readings_below",
      {"readings": [4.0, 2.5, 7.1, 3.0]},
      {"readings": [1.0, 8.0, 2.9]},
      args=(3.0,),
      after=lambda s, a: {"readings": [r for r in s["readings"] if r >= a[0]]}),
    T("lists", "replace_item",
      {"shopping_list": ["milk", "bread", "jam"]},
      {"shopping_list": ["bread", "eggs"]},
      args=("bread", "bagels"),
      after=lambda s, a: {"shopping_list": [a[1] if i == a[0] else i
                                            for i in s["shopping_list"]]}),
]
