"""Benchmark, offline: the learner's choice among judged candidates, replayed on recorded runs.

`bench/dnu_tasks.py --part open --record FILE` keeps, for every task sent without an
expectation, what `dnu.decide` judged last (the candidates with their behaviour, channel and
fit, the temperature and prompt each sample was written at; how many prompts; the examples
shown) and which candidates the task's oracle finds right. This replays `dnu.decide` and other
ways of choosing among the samples on them, without the model: a rule is compared with
`decide` on the very same samples, which live runs cannot do (runs of the same code differ by
±4 tasks of 60 in what the model samples). Then, by the prompt and temperature the samples
were written at, how many of them were right and on how many tasks: where the right samples
come from. It prints totals only, so it may read the recordings of the sets that must stay
blind.

    python bench/choice.py FILE...
"""
import argparse
import collections
import itertools
import math
import pickle
import sys

from kernel import behaviour, dnu


def _right(replay, cluster):
    return cluster is not None and replay["right"].get(cluster.representative.source, False)


def decided(replay):
    """`dnu.decide`'s choice, as the learner made it."""
    candidates, prompts, examples = replay["decided"]
    verdict = dnu.decide(candidates, prompts, examples)
    return None if verdict is None else verdict.cluster


def where_samples_decide(key, only_split=False):
    """A rule: `decide`'s choice where a precedent decides; where the samples do (or, with
    `only_split`, where they have not agreed: `dnu._agreed`), the voted behaviour that
    counts (`dnu._counts`) of the highest `key`."""
    def choose(replay):
        chosen = decided(replay)
        if chosen is None or chosen.precedent:
            return chosen
        groups = behaviour.clusters(replay["decided"][0])
        varying = [c for c in groups if dnu._counts(c)] or groups
        if only_split and dnu._agreed(chosen, varying):
            return chosen
        return max((c for c in varying if c.votes), key=key, default=chosen)
    return choose


def _coolest(cluster):
    """Minus the lowest temperature a sample of the cluster was written at."""
    return -min(m.temperature for m in cluster.members if m.sampled)


def _weighted_votes(rate):
    return lambda c: sum(math.exp(-rate * m.temperature) for m in c.members if m.sampled)


RULES = {
    "decide (the learner's)": decided,
    "split: votes + 0.5 x channel": where_samples_decide(
        lambda c: c.votes + 0.5 * dnu._channel(c), only_split=True),
    "split: votes + channel": where_samples_decide(
        lambda c: c.votes + dnu._channel(c), only_split=True),
    "split: log votes + channel": where_samples_decide(
        lambda c: math.log(c.votes) + dnu._channel(c), only_split=True),
    "votes weighted exp(-T)": where_samples_decide(_weighted_votes(1.0)),
    "votes weighted exp(-4 T)": where_samples_decide(_weighted_votes(4.0)),
    "coolest sample, then votes": where_samples_decide(lambda c: (_coolest(c), c.votes)),
}


def profile(replays):
    """Where the tasks stand before any rule: on how many a sample (or any judged behaviour,
    the image's and neighbours included) was right, and of which kind the behaviour `decide`
    chose was, how often right, and how often wrong where a sample was right."""
    counts = collections.Counter()
    for replay in replays:
        groups = behaviour.clusters(replay["decided"][0])
        sampled_right = any(_right(replay, c) for c in groups if c.votes)
        counts["a sample right"] += sampled_right
        counts["any judged right"] += any(_right(replay, c) for c in groups)
        chosen = decided(replay)
        kind = chosen.precedent or "samples"
        counts[f"{kind}: chosen"] += 1
        counts[f"{kind}: right"] += _right(replay, chosen)
        counts[f"{kind}: wrong, a sample right"] += not _right(replay, chosen) and sampled_right
    return counts


def sources_of_right(replays):
    """By (prompt, temperature): samples written, how many were right, and on how many tasks
    one was; then on how many tasks a sample of some of these was right."""
    written, right, tasks_right = (collections.Counter() for _ in range(3))
    covered = []
    for replay in replays:
        keys = set()
        for c in replay["decided"][0]:
            if c.sampled:
                key = (c.view, c.temperature)
                written[key] += 1
                if replay["right"].get(c.source, False):
                    right[key] += 1
                    keys.add(key)
        tasks_right.update(keys)
        covered.append(keys)
    lines = [f"  prompt {v}, T {t}: {right[v, t]} of {written[v, t]} samples right, on "
             f"{tasks_right[v, t]} tasks" for v, t in sorted(written)]
    for size in range(2, len(written)):
        best = max(itertools.combinations(sorted(written), size),
                   key=lambda keys: sum(1 for k in covered if k & set(keys)))
        lines.append(f"  best {size} of them: {' + '.join(map(str, best))}, on "
                     f"{sum(1 for k in covered if k & set(best))} tasks")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    for name in args.files:
        with open(name, "rb") as file:
            recorded = pickle.load(file)
        replays = [r for r in recorded["replays"] if r is not None]
        print(f"\n{name}: {recorded['tasks']}, {len(recorded['replays'])} tasks, "
              f"{len(replays)} decided")
        print("  " + ", ".join(f"{k} {v}" for k, v in sorted(profile(replays).items())))
        for label, rule in RULES.items():
            right = sum(1 for r in replays if _right(r, rule(r)))
            print(f"  {label:<30} right {right}")
        print("\n".join(sources_of_right(replays)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
