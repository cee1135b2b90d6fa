"""Benchmark: `_doesNotUnderstand` with the real default model on missing-method tasks.

Part 1 times `batos send rect area` and `… perimeter` as a person runs them: a fresh process
each, model load included, without an expectation and then with `--expect 14`. Part 2 runs the
task list below in one process (one model load) with the caller's expectation, and prints the
success rate (and how many of the methods are right on a second receiver with other
values too), mean attempts and median seconds per task. Part 3 (issue 14) sends the held-out
tasks of `dnu_open_tasks.py` WITHOUT an expectation, as chat and most real sends do, each to a
fresh object of one living image, and judges the method installed with the task's oracle on
the receiver and on a second object with other slot values (a clone of the first, so it
inherits the method): correct or wrong, final or provisional, or failed; and on how many
tasks one of the model's samples was a right method (what a perfect choice among them would
reach: where it is low, the model, not the choosing, is the limit). It ends with one JSON
line of goals. A real ZEO server on a free port serves a fresh home. Set BATOS_LLM to
benchmark another backend; by default the configured GGUF model runs.

`--part expect|open|cold` runs one part; `--tasks dev` runs part 3 on the tuning set
(`dnu_dev_tasks.py`) instead of the held-out one, `--tasks blind` on the held-out set written
blind to the seed library (`dnu_blind_tasks.py`), `--tasks fresh` on the one written blind in
session 8, before the library's second part was measured (`dnu_fresh_tasks.py`),
`--tasks unseen` on the one written blind in session 9, before the library's third part
(general operations) and related precedents were measured on it (`dnu_unseen_tasks.py`),
`--tasks novel` on the one written blind in session 10, before that session's changes
(`dnu_novel_tasks.py`), `--tasks sealed` on the one written blind in session 11, before that
session's changes (`dnu_sealed_tasks.py`), `--tasks tail` on the one written blind in
session 13, before that session's changes were measured (`dnu_tail_tasks.py`), `--tasks lists`
on thirty list tasks written blind in session 17 (`dnu_lists_tasks.py`), `--tasks listwork`
on the list tuning set written beside it (`dnu_listwork_tasks.py`), `--tasks mixwork` on the
mixed tuning set written by a helper in session 18 (`dnu_mixwork_tasks.py`), `--tasks vault`
on the one written blind in session 21, before that session's changes (`dnu_vault_tasks.py`);
`--only SELECTOR…` runs some tasks; `--record FILE` keeps what part 3 decided for a replay
of the choice (`bench/choice.py`); `--temperatures T,…` tries other writer temperatures, and
`--setting NAME=VALUE` any other `[dnu]` setting (`examples`, `views`, …);
`--quiet` prints part 3's totals only, for a set that must stay blind;
`--library idioms` removes the seed library's domain methods (`kernel.seed_methods`) from the
image first, to measure what they add; `--first-sample` has the learner install the first
prompt's coolest sample alone, written greedily (`FirstSampleLearner`), to compare the
writer's prompts without the sampling's noise.
"""
import argparse
import collections
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time

import dnu_blind_tasks
import dnu_dev_tasks
import dnu_fresh_tasks
import dnu_listwork_tasks
import dnu_lists_tasks
import dnu_mixwork_tasks
import dnu_novel_tasks
import dnu_open_tasks
import dnu_sealed_tasks
import dnu_tail_tasks
import dnu_unseen_tasks
import dnu_vault_tasks
import precedents
from kernel import behaviour, dnu, llm, paths, sandbox, seed_methods
from kernel.home import Home
from kernel.image import connect
from kernel.values import matches, plain
from zeo_server import launcher

TASKS = [  # (slots, selector, arguments, expected result)
    ({"width": 3, "height": 4}, "area", [], 12),
    ({"width": 3, "height": 4}, "perimeter", [], 14),
    ({"width": 2, "height": 3, "depth": 4}, "volume", [], 24),
    ({"radius": 2}, "diameter", [], 4),
    ({"count": 5}, "double", [], 10),
    ({"count": 5}, "half", [], 2.5),
    ({"a": 7, "b": 5}, "total", [], 12),
    ({"a": 7, "b": 5}, "difference", [], 2),
    ({"a": 7, "b": 5}, "product", [], 35),
    ({"a": 7, "b": 5}, "average", [], 6),
    ({"price": 10, "quantity": 3}, "cost", [], 30),
    ({"width": 3, "height": 4}, "scaled_width", [2], 6),
    ({"balance": 100}, "after_deposit", [50], 150),
    ({"balance": 100}, "after_withdrawal", [30], 70),
    ({"side": 5}, "square_area", [], 25),
    ({"side": 3}, "cube_volume", [], 27),
    ({"base": 6, "height": 4}, "triangle_area", [], 12),
    ({"distance": 100, "hours": 4}, "speed", [], 25),
    ({"value": 7}, "plus", [3], 10),
    ({"value": 7}, "times", [3], 21),
    ({"value": -5}, "magnitude", [], 5),
    ({"first": "Ada", "last": "Lovelace"}, "full_name", [], "Ada Lovelace"),
    ({"name": "Robin"}, "greeting", [], "Hello, Robin"),
    ({"items": [1, 2, 3, 4]}, "total_items", [], 10),
    ({"items": [1, 2, 3, 4]}, "count_items", [], 4),
    ({"items": [3, 9, 4]}, "largest", [], 9),
    ({"items": [3, 9, 4]}, "smallest", [], 3),
    ({"width": 3, "height": 4}, "is_square", [], False),
    ({"celsius": 100}, "fahrenheit", [], 212),
]
# Each task of part 2 again on a second receiver with other values (its slots, its arguments
# and the right result there): a method that met the caller's one expected value but computes
# something else (`self.height + 10` for a perimeter of 14) is counted apart.
SECOND_RECEIVERS = {
    "area": ({"width": 5, "height": 7}, [], 35),
    "perimeter": ({"width": 5, "height": 7}, [], 24),
    "volume": ({"width": 3, "height": 5, "depth": 2}, [], 30),
    "diameter": ({"radius": 7}, [], 14),
    "double": ({"count": 9}, [], 18),
    "half": ({"count": 9}, [], 4.5),
    "total": ({"a": 2, "b": 11}, [], 13),
    "difference": ({"a": 20, "b": 6}, [], 14),
    "product": ({"a": 2, "b": 11}, [], 22),
    "average": ({"a": 2, "b": 11}, [], 6.5),
    "cost": ({"price": 4, "quantity": 6}, [], 24),
    "scaled_width": ({"width": 5, "height": 2}, [3], 15),
    "after_deposit": ({"balance": 40}, [15], 55),
    "after_withdrawal": ({"balance": 40}, [15], 25),
    "square_area": ({"side": 7}, [], 49),
    "cube_volume": ({"side": 4}, [], 64),
    "triangle_area": ({"base": 5, "height": 3}, [], 7.5),
    "speed": ({"distance": 90, "hours": 3}, [], 30),
    "plus": ({"value": 11}, [8], 19),
    "times": ({"value": 11}, [8], 88),
    "magnitude": ({"value": -12}, [], 12),
    "full_name": ({"first": "Grace", "last": "Hopper"}, [], "Grace Hopper"),
    "greeting": ({"name": "Alfred"}, [], "Hello, Alfred"),
    "total_items": ({"items": [5, 6, 10]}, [], 21),
    "count_items": ({"items": [5, 6, 10]}, [], 3),
    "largest": ({"items": [12, 2, 7, 5]}, [], 12),
    "smallest": ({"items": [12, 2, 7, 5]}, [], 2),
    "is_square": ({"width": 6, "height": 6}, [], True),
    "fahrenheit": ({"celsius": 30}, [], 86),
}
OUTCOMES = ("correct", "correct, provisional", "wrong, provisional", "wrong and final",
            "failed")


def cold_sends(home):
    """`batos send` in a fresh process each: area and perimeter without an expectation, then
    perimeter on a second object with `--expect 14`; (label, seconds, outcome) each."""
    for path in ("rect", "rect2"):
        subprocess.run([sys.executable, "-m", "kernel.cli", "new", path, "--home",
                        str(home.path), "--slots", '{"width": 3, "height": 4}'], check=True,
                       capture_output=True)
    results = []
    for path, selector, extra in (("rect", "area", []), ("rect", "perimeter", []),
                                  ("rect2", "perimeter", ["--expect", "14"])):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "kernel.cli", "send", path, selector,
                               "--json", "--home", str(home.path)] + extra,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - started
        outcome = json.loads(done.stdout) if done.stdout.strip() else {"reason": done.stderr}
        results.append((f"{selector} {' '.join(extra)}".strip(), seconds, outcome))
    return results


class FirstSampleLearner(dnu.Learner):
    """A learner that installs, provisionally, what the first prompt's coolest sample writes
    freely at temperature 0 — no other sample, no choice — or fails: how right BRICK's first
    reading is, the same on every run of the same prompt, so two versions of the writer's
    prompt (`dnu.WRITER_INSTRUCTIONS`, the examples) compare without the sampling's noise
    (runs of the whole learner differ by ±4 tasks of 60)."""

    def _search(self, claim, mandate, writer, outcome, deadline):
        calls = behaviour.probe_calls(mandate.selector, mandate.slots, mandate.args)
        written, _completion = writer.write(mandate.views(self.views)[0], [], 0.0, free=True)
        candidate = self._judge(mandate.path, mandate, dnu.reads_its_inputs(written, mandate),
                                calls, 0.0)
        outcome.attempts, outcome.model = 1, writer.model_id
        outcome.history.append({"attempt": 1, "candidate": 1, "source": candidate.source,
                                "problem": candidate.problem, "result": candidate.result})
        if not candidate.valid:
            return self._fail(claim, outcome, f"the first sample failed: {candidate.problem}")
        self._install(claim, mandate, candidate.source, outcome, provisional=True)
        return outcome


def learner_for(home, image, first_sample=False, **overrides):
    """One Learner with the home's `[dnu]` settings, as `batos send` makes it (`overrides`:
    settings of the same names, for trying other ones; `first_sample`: a
    `FirstSampleLearner`)."""
    kind = FirstSampleLearner if first_sample else dnu.Learner
    return kind(image, llm.ModelRegistry(home.config["models"]),
                **dnu.learner_settings({**home.config.get("dnu", {}), **overrides}))


def new_object(image, path, slots):
    with image.transaction(note=f"bench object {path}") as lobby:
        setattr(lobby, path, lobby.traits.clone(**slots))
        getattr(lobby, path)._label = path


TASK_SETS = {"open": dnu_open_tasks, "dev": dnu_dev_tasks, "blind": dnu_blind_tasks,
             "fresh": dnu_fresh_tasks, "unseen": dnu_unseen_tasks,
             "novel": dnu_novel_tasks, "sealed": dnu_sealed_tasks, "tail": dnu_tail_tasks,
             "lists": dnu_lists_tasks, "listwork": dnu_listwork_tasks,
             "mixwork": dnu_mixwork_tasks, "vault": dnu_vault_tasks}


def remove_domain_examples(image):
    """The image without the seed library's domain methods: the idioms only."""
    with image.transaction(note="bench: idioms only") as lobby:
        for name, *_rest in seed_methods.DOMAIN_EXAMPLES:
            delattr(lobby.examples, name)


def run_tasks(home, image, learner):
    """Every task of part 2 through one Learner, with its expectation; a row per task."""
    rows = []
    for n, (slots, selector, args, expected) in enumerate(TASKS):
        path = f"task{n}"
        new_object(image, path, slots)
        started = time.perf_counter()
        try:
            outcome = learner.send(path, selector, args, expected)
            ok, attempts, source = True, outcome.attempts, outcome.source
        except dnu.LearningFailed as failure:
            ok, attempts, source = False, failure.outcome.attempts, failure.outcome.reason
        seconds = time.perf_counter() - started
        rows.append((selector, ok, ok and right_elsewhere(image, path, selector), attempts,
                     seconds, source))
    return rows


def right_elsewhere(image, path, selector):
    """True when the method learned at `path` also answers right on a second receiver with
    other values (`SECOND_RECEIVERS`): a formula, not a number that happened to match."""
    slots, args, wanted = SECOND_RECEIVERS[selector]
    with image.transaction(dry_run=True) as lobby:
        other = paths.resolve(lobby, path).clone(**slots)
        try:
            return matches(other.send(selector, *args), wanted)
        except (Exception, sandbox.BudgetExceeded):
            return False


def judge(image, path, task, result):
    """True when the method installed at `path` is right: on the receiver (its result, or
    for a command the slots it left) and on a clone with the task's other slot values."""
    def check(lobby):
        receiver = paths.resolve(lobby, path)
        if not task.judge(plain(result), plain(receiver.slots()), task.slots):
            return False
        other = receiver.clone(**task.also)
        try:
            again = plain(other.send(task.selector, *task.args))
        except (Exception, sandbox.BudgetExceeded):
            return False
        return task.judge(again, plain(other.slots()), task.also)

    with image.transaction(dry_run=True) as lobby:
        return check(lobby)


def run_open_tasks(image, learner, tasks, label, quiet=False):
    """Every task of part 3 WITHOUT an expectation; a row per task, printed as it ends (with
    `quiet`, a dot: for a set that must stay blind)."""
    print(f"\n{len(tasks)} {label} tasks WITHOUT an expectation:", flush=True)
    rows = []
    for n, task in enumerate(tasks):
        rows.append(open_task(image, learner, task, f"open{n}"))
        if quiet:
            print(".", end="\n" if n % 20 == 19 else "", flush=True)
        else:
            print_row(*rows[-1])
    return rows


def open_task(image, learner, task, path):
    """One task of part 3: (task, outcome kind, seconds, source or reason, whether a sample
    was right, what became of the samples)."""
    new_object(image, path, task.slots)
    started = time.perf_counter()
    try:
        outcome = learner.send(path, task.selector, list(task.args))
    except dnu.LearningFailed as failure:
        return task, "failed", time.perf_counter() - started, None, failure.outcome.reason, \
            sampled_right(image, task, failure.outcome), sample_problems(failure.outcome), \
            replay_of(image, task, failure.outcome)
    seconds = time.perf_counter() - started
    right = judge(image, path, task, outcome.result) and keeps_the_covenant(
        task, outcome.source or "")
    kind = ("correct" if right else "wrong and final") if not outcome.provisional else \
        ("correct, provisional" if right else "wrong, provisional")
    return task, kind, seconds, outcome.source, (outcome.evidence or {}).get("reason"), \
        sampled_right(image, task, outcome), sample_problems(outcome), \
        replay_of(image, task, outcome)


def keeps_the_covenant(task, source):
    """False for a state-changing task's method that does not write `self._p_changed = True`:
    a command must keep the Covenant to be right."""
    return task.kind != "state" or "self._p_changed = True" in source


def replay_of(image, task, outcome):
    """What `bench/choice.py` needs to replay the task's choice offline: what `decide`
    judged last (`Outcome.decided`) and which of its candidates' sources are right methods
    (by the task's oracle, as the installed one is judged); None when nothing was decided."""
    if outcome.decided is None:
        return None
    candidates = outcome.decided[0]
    sources = {c.source for c in candidates if c.valid}
    with image.transaction(dry_run=True) as lobby:
        right = {s: precedents.behaves_right(lobby, task, s) and keeps_the_covenant(task, s)
                 for s in sources}
    return {"decided": outcome.decided, "right": right}


def samples_of(outcome):
    """The model's samples in an outcome's history (not the expressions a search proposed)."""
    return [entry for entry in outcome.history if entry.get("candidate") != "search"]


def sample_problems(outcome):
    """What became of the model's samples for a task: a Counter of "ran" and of the kinds of
    problem of those that did not (the guardian's rejection, the trial's exception, …)."""
    counted = collections.Counter()
    for entry in samples_of(outcome):
        problem = entry.get("problem")
        if problem is None:
            counted["ran"] += 1
        elif problem.startswith("the trial run raised"):
            counted[problem.split(":")[0].replace("the trial run ", "")] += 1
        else:
            counted[problem.split(":")[0].split(",")[0]] += 1
    return counted


def sampled_right(image, task, outcome):
    """True when one of the model's samples for the task (`Outcome.history`) was a right
    method: what a perfect choice among the samples would have installed."""
    sources = {entry["source"] for entry in samples_of(outcome) if not entry.get("problem")}
    with image.transaction(dry_run=True) as lobby:
        return any(precedents.behaves_right(lobby, task, source) for source in sources)


def print_row(task, kind, seconds, source, reason, *_samples):
    """One task's line: how it ended, how long it took, the method's body, and why it is
    final or not (or why learning failed)."""
    lines = (source or "").strip().splitlines()
    shown = " / ".join(l.strip() for l in lines[1:])[:64]
    print(f"  {kind:<21} {task.kind:<9} {task.selector:<17} {seconds:5.1f} s  {shown}\n"
          f"  {'':<49}({reason})", flush=True)


def print_open(rows):
    """The totals of part 3, overall and by kind of task."""
    counts = collections.Counter(row[1] for row in rows)
    by_kind = collections.defaultdict(collections.Counter)
    for task, kind, *_rest in rows:
        by_kind[task.kind][kind.split(",")[0]] += 1
    print("  " + ", ".join(f"{name} {counts[name]}" for name in OUTCOMES))
    print("  correct by kind: " + ", ".join(f"{k} {c['correct']}/{sum(c.values())}"
                                            for k, c in by_kind.items()))
    print(f"  a sample was right on {sum(1 for row in rows if row[5])} of {len(rows)} tasks "
          "(what a perfect choice among the samples would reach)")
    samples = sum((row[6] for row in rows), collections.Counter())
    written = sum(samples.values())
    others = ", ".join(f"{problem} {n}" for problem, n in samples.most_common()
                       if problem != "ran")
    print(f"  samples: {written} ({written / len(rows):.1f} per task), {samples['ran']} ran"
          + (f"; the others: {others}" if others else ""))
    return counts


def _setting(text):
    """`NAME=VALUE` from the command line: one `[dnu]` setting, its value read as JSON."""
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"{name}: {value!r} is not JSON ({error})") from None


def settings(parser, args):
    """The `--setting`s as `learner_for` overrides; a name `[dnu]` does not have is an error,
    not a run that silently measures the defaults."""
    overrides, known = dict(args.setting), sorted(dnu.learner_settings({}))
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        parser.error(f"--setting: no [dnu] setting named {', '.join(unknown)} "
                     f"(known: {', '.join(known)})")
    return overrides


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("all", "cold", "expect", "open"), default="all")
    parser.add_argument("--tasks", choices=tuple(TASK_SETS), default="open")
    parser.add_argument("--library", choices=("all", "idioms"), default="all")
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--temperatures", type=lambda t: [float(x) for x in t.split(",")],
                        help="the writer's temperatures (`[dnu] temperatures`), comma-separated")
    parser.add_argument("--setting", metavar="NAME=VALUE", action="append", default=[],
                        type=_setting, help="another `[dnu]` setting for this run, its value "
                        "as JSON (`--setting examples=0 --setting views=1`)")
    parser.add_argument("--record", metavar="FILE",
                        help="pickle what each task of part 3 decided, for bench/choice.py")
    parser.add_argument("--quiet", action="store_true",
                        help="print part 3's totals only (for sets that must stay blind)")
    parser.add_argument("--first-sample", action="store_true",
                        help="install the first prompt's greedy free sample alone "
                             "(to compare the writer's prompts)")
    args = parser.parse_args(argv)
    overrides = settings(parser, args)
    if args.temperatures:
        overrides["temperatures"] = args.temperatures
    module = TASK_SETS[args.tasks]
    open_tasks = [t for t in module.TASKS if not args.only or t.selector in args.only]
    rows = open_rows = []
    with tempfile.TemporaryDirectory() as directory:
        home = Home.init(os.path.join(directory, "home"))
        address, stop, _ = launcher.start(home)
        try:
            if args.part in ("all", "cold"):
                print("cold `batos send` (a fresh process each, model load included):")
                for label, seconds, outcome in cold_sends(home):
                    print(f"  {label:<24} result {outcome.get('result')!r:<6} "
                          f"learned {outcome.get('learned')} (provisional "
                          f"{outcome.get('provisional')}) in {outcome.get('attempts')} "
                          f"attempt(s), {seconds:.1f} s")
            image = connect(address, personas=home.personas)
            try:
                if args.library == "idioms":
                    remove_domain_examples(image)
                learner = learner_for(home, image, args.first_sample, **overrides)
                if args.part in ("all", "expect"):
                    rows = run_tasks(home, image, learner)
                if args.part in ("all", "open"):
                    open_rows = run_open_tasks(image, learner, open_tasks, args.tasks,
                                               args.quiet)
            finally:
                image.close()
        finally:
            stop()
    goals, figures = [], {}
    if rows:
        print(f"\n{len(rows)} missing-method tasks with the caller's expectation:")
        for selector, ok, right, attempts, seconds, source in rows:
            summary = (source or "").strip().splitlines()[-1] if source else ""
            verdict = "FAIL" if not ok else "ok  " if right else "odd "
            print(f"  {verdict} {selector:<17} {attempts} attempt(s) "
                  f"{seconds:5.1f} s  {summary[:70]}")
        succeeded = [r for r in rows if r[1]]
        rate = len(succeeded) / len(rows)
        right = sum(1 for r in rows if r[2]) / len(rows)
        print(f"\nsuccess {len(succeeded)}/{len(rows)} = {100 * rate:.0f}% (right on a second "
              f"receiver too: {sum(1 for r in rows if r[2])}, {100 * right:.0f}%; 'odd': met "
              f"the expectation only), mean attempts {statistics.mean(r[3] for r in rows):.2f}, "
              f"median {statistics.median(r[4] for r in rows):.1f} s per task")
        goals.append({"name": "with expectations: learned", "ratio": round(rate, 3),
                      "target": 0.95, "met": rate >= 0.95})
        figures["expect_right_elsewhere"] = round(right, 3)
        figures["expect_median_seconds"] = round(statistics.median(r[4] for r in rows), 2)
    if open_rows:
        counts = print_open(open_rows)
        total = len(open_rows)
        correct = counts["correct"] / total
        right = (counts["correct"] + counts["correct, provisional"]) / total
        wrong_final = counts["wrong and final"] / total
        median = statistics.median(r[2] for r in open_rows)
        print(f"  correct and final {100 * correct:.0f}%, right answer (final or provisional) "
              f"{100 * right:.0f}%, installed wrong as final {100 * wrong_final:.0f}%, median "
              f"{median:.1f} s per task")
        goals += [{"name": "without expectation: correct (final)", "ratio": round(correct, 3),
                   "target": 0.85, "met": correct >= 0.85},
                  {"name": "without expectation: installed wrong as final",
                   "ratio": round(wrong_final, 3), "target": 0.05, "met": wrong_final <= 0.05},
                  {"name": "median seconds per task", "ratio": round(median, 2),
                   "target": 10.0, "met": median <= 10.0}]
        figures.update({"open_tasks": total, "open_right_answer": round(right, 3),
                        "open_sampled_right": sum(1 for row in open_rows if row[5]),
                        **{k.replace(" ", "_").replace(",", ""): counts[k] for k in OUTCOMES}})
    if args.record:
        with open(args.record, "wb") as file:
            pickle.dump({"tasks": args.tasks, "replays": [row[7] for row in open_rows]}, file)
    print(json.dumps({"goals": goals, **figures}))


if __name__ == "__main__":
    main()
