"""Benchmark: how often the image's own methods alone answer a task set right (no model).

`_doesNotUnderstand` chooses a precedent first (`kernel.dnu.precedents`: an example of the
mandate's own selector, over the receiver's very slot names — "exact" — or read onto them by
kind — "read") and installs it as final under the conditions of `dnu._precedent_verdict`. This
bench measures what that knowledge is worth before any model runs: for every task of a set, the
examples a fresh image would show BRICK (genesis, `library.nearest`), the precedents among
them — a group of readings kept, as the learner keeps it, only when every reading behaves
alike on the receiver and on the learner's probe receivers, and not the same on all of them —
each run on the task's receiver and on its second receiver through the image's own
guardian and sandbox, judged by the task's oracle. It prints, per set: tasks with a precedent,
right and wrong, exact and read, and the wrong ones. Runs in seconds, on an in-memory image.

    python bench/precedents.py [open dev blind fresh unseen novel sealed]
"""
import argparse
import collections
import importlib
import sys

import transaction
import ZODB

from kernel import behaviour, dnu, genesis, library, sandbox
from kernel.image import default_personas
from kernel.values import plain

SETS = ("open", "dev", "blind", "fresh", "unseen", "novel", "sealed", "tail", "lists", "listwork",
        "mixwork")


def run_on(lobby, task, source, slots, args=None):
    """(result, slots after) of `source` called as the task asks (or with `args`) on a new
    object with `slots`, through the guardian and the sandbox; None when it fails."""
    receiver = lobby.traits.clone(**slots)
    receiver.define(task.selector, source, author="bench")
    try:
        result = receiver.send(task.selector, *(task.args if args is None else args))
    except (Exception, sandbox.BudgetExceeded):
        return None
    return plain(result), plain(receiver.slots())


def behaves_right(lobby, task, source):
    """True when `source` answers `task` right on its receiver and on its second one."""
    for slots in (task.slots, task.also):
        ran = run_on(lobby, task, source, slots)
        if ran is None or not task.judge(*ran, slots):
            return False
    return True


def first_reading(lobby, task, group):
    """The group's source when all its readings behave alike on the receiver and on the
    learner's probe receivers (`behaviour.probe_calls`), and not alike on all of them (a
    constant): what `Learner._precedents` and `dnu.decide` keep; else None."""
    calls = behaviour.probe_calls(task.selector, task.slots, task.args)
    runs = [[run_on(lobby, task, source, {**task.slots, **call.slots}, call.args)
             for call in calls] for source in group]
    if len({repr(run) for run in runs}) != 1 or None in runs[0][:1]:
        return None
    constant = len({repr(ran and ran[0]) for ran in runs[0]}) == 1 and all(
        ran and ran[1] == {**task.slots, **call.slots} for ran, call in zip(runs[0], calls))
    return None if constant else group[0]


def measure(lobby, tasks):
    """(counts, the tasks whose precedents are wrong or disagree or that have none)."""
    catalogue = library.catalogue(lobby)
    counts, missed = collections.Counter(), []
    for task in tasks:
        examples = library.nearest(catalogue, task.selector, task.slots, list(task.args),
                                   dnu.DEFAULT_EXAMPLES)
        analogies = dnu.analogies(catalogue, task.selector, task.slots, list(task.args))
        mandate = dnu.Mandate("bench", "bench", task.slots, (), (), task.selector,
                              tuple(task.args), examples=tuple(e.prompt() for e in examples),
                              analogies=tuple(e.prompt() for e in analogies))
        kind, sources = None, []
        for kind, groups in dnu.precedents_by_kind(mandate):
            sources = [s for s in (first_reading(lobby, task, g) for g in groups) if s]
            if sources:
                break
        if not sources:
            counts["none"] += 1
            missed.append((task.selector, task.slots, "none", []))
            continue
        verdicts = {behaves_right(lobby, task, s) for s in sources}
        outcome = "disagree" if len(verdicts) > 1 else "right" if verdicts == {True} else "wrong"
        counts[f"{kind} {outcome}"] += 1
        if outcome != "right":
            missed.append((task.selector, task.slots, outcome, sources))
        transaction.abort()
    return counts, missed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sets", nargs="*", help=f"task sets, of {', '.join(SETS)} (all)")
    parser.add_argument("--none", action="store_true",
                        help="also list the tasks without a precedent")
    parser.add_argument("--totals", action="store_true",
                        help="print the totals only (for sets that must stay blind)")
    args = parser.parse_args(argv)
    unknown = set(args.sets) - set(SETS)
    if unknown:
        parser.error(f"unknown task sets: {', '.join(sorted(unknown))}")
    args.sets = args.sets or list(SETS)
    db = ZODB.DB(None)
    genesis.ensure_awake(db, default_personas())
    connection = db.open()
    lobby = genesis.lobby_of(connection)
    print(f"{len(library.catalogue(lobby))} examples in a fresh image")
    for name in args.sets:
        tasks = importlib.import_module(f"dnu_{name}_tasks").TASKS
        counts, missed = measure(lobby, tasks)
        shown = ", ".join(f"{key} {counts[key]}" for key in sorted(counts))
        print(f"{name} ({len(tasks)} tasks): {shown}")
        for selector, slots, outcome, sources in missed:
            if args.totals or outcome == "none" and not args.none:
                continue
            bodies = " | ".join(s.strip().splitlines()[-1].strip() for s in sources)
            print(f"    {outcome}: {selector} {slots} -> {bodies}")
    connection.close()
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
