"""A tuning set of list tasks for `_doesNotUnderstand` without an expectation (session 17).

Written in session 17 from the kinds of list work named in the brief of `dnu_lists_tasks.py`
(filtering, position and slices, counting matches, each item transformed, joining, two lists
compared, the top N, duplicates removed, totals of a subset, commands that change the list),
without reading that held-out set. Tuning on lists happens here, never on the held-out sets.
"""
from dnu_open_tasks import T

TASKS = [
    T("lists", "even_numbers", {"numbers": [1, 2, 3, 4, 6]}, {"numbers": [8, 5]},
      oracle=lambda s, a: [n for n in s["numbers"] if n % 2 == 0]),
    T("lists", "names_starting_with", {"names": ["ann", "bob", "amy"]},
      {"names": ["cy", "al"]}, args=("a",),
      oracle=lambda s, a: [n for n in s["names"] if n.startswith(a[0])]),
    T("lists", "first_three", {"items": [5, 6, 7, 8]}, {"items": [1, 2, 3, 4, 9]},
      oracle=lambda s, a: s["items"][:3]),
    T("lists", "second_place", {"runners": ["zoe", "max", "ivy"]},
      {"runners": ["al", "bo"]}, oracle=lambda s, a: s["runners"][1]),
    T("lists", "count_of", {"votes": ["yes", "no", "yes"]}, {"votes": ["no", "no"]},
      args=("yes",), oracle=lambda s, a: s["votes"].count(a[0])),
    T("lists", "doubled", {"amounts": [1, 4, 5]}, {"amounts": [10, 0]},
      oracle=lambda s, a: [2 * n for n in s["amounts"]]),
    T("lists", "shouted_words", {"words": ["hi", "there"]}, {"words": ["ok"]},
      oracle=lambda s, a: [w.upper() for w in s["words"]]),
    T("lists", "comma_list", {"cities": ["Oslo", "Rome"]}, {"cities": ["Lima", "Baku", "Nis"]},
      accept=lambda r, s, a: isinstance(r, str) and r.replace(" ", "") == ",".join(s["cities"])),
    T("lists", "shared_friends", {"mine": ["ann", "bo", "cy"], "yours": ["cy", "ann", "di"]},
      {"mine": ["x", "y"], "yours": ["y"]},
      accept=lambda r, s, a: isinstance(r, (list, tuple, set))
      and sorted(r) == sorted(set(s["mine"]) & set(s["yours"]))),
    T("lists", "top_three_scores", {"scores": [4, 9, 1, 7, 8]}, {"scores": [3, 30, 20, 10]},
      oracle=lambda s, a: sorted(s["scores"], reverse=True)[:3]),
    T("lists", "distinct_tags", {"tags": ["a", "b", "a", "c"]}, {"tags": ["x", "x"]},
      accept=lambda r, s, a: isinstance(r, (list, tuple, set))
      and sorted(r) == sorted(set(s["tags"]))),
    T("lists", "total_above", {"sales": [5, 20, 30, 2]}, {"sales": [100, 1]}, args=(10,),
      oracle=lambda s, a: sum(n for n in s["sales"] if n > a[0])),
    T("lists", "smallest_two", {"weights": [9, 3, 7, 1]}, {"weights": [5, 4, 6]},
      oracle=lambda s, a: sorted(s["weights"])[:2]),
    T("lists", "long_titles", {"titles": ["Up", "Heat", "Jaws!"]}, {"titles": ["Alien", "It"]},
      oracle=lambda s, a: [t for t in s["titles"] if len(t) > 3]),
    T("lists", "drop_item", {"basket": ["egg", "jam", "tea"]}, {"basket": ["tea"]},
      args=("jam",), after=lambda s, a: {"basket": [b for b in s["basket"] if b != a[0]]}),
    T("lists", "add_guest", {"guests": ["ann"]}, {"guests": []}, args=("bo",),
      after=lambda s, a: {"guests": s["guests"] + [a[0]]}),
    T("lists", "count_negative", {"readings": [-1, 4, -3, 0]}, {"readings": [2, -8]},
      oracle=lambda s, a: sum(1 for n in s["readings"] if n < 0)),
    T("lists", "last_two", {"moves": ["e4", "e5", "Nf3"]}, {"moves": ["d4", "d5", "c4", "e6"]},
      oracle=lambda s, a: s["moves"][-2:]),
]
