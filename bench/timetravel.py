"""Benchmark: opening a view of the past plus one inspect, against the same read now.

Builds an image of 10,000 transactions (`--transactions`): each sets `rect.width` (so `rect`
has 10,000 revisions), every 10th also sets a slot of a second object, every 500th installs a
new version of `rect.area`. It is written straight into the home's FileStorage, then served by
a real ZEO server, and a fresh ZEO client measures:

- *now*: `batos inspect rect` as a worker does it — a transaction on the current image
  (`Image.transaction`, whose `server_sync` ping is part of every read), resolve, describe;
- *at*: `timetravel.inspect_at(image, "rect", TID, describe)` — the last pack's bound read,
  a new historical connection (`DB.open(before=…)`), the lobby and `rect` loaded with
  `loadBefore` through ZEO, describe — for moments 100 transactions back ("recent") and
  9,900 back ("old": FileStorage's `loadBefore` walks the object's revisions back from the
  newest), each moment asked once (a new connection, records not in the client cache), and
  one moment asked again (warm: pooled connection, cached records);
- `versions.method_versions(rect, area)` and `versions.object_versions(rect)` (20 newest).

Prints the figures, then one JSON line (report only: no goal was set).
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import transaction  # noqa: E402
import ZODB  # noqa: E402
from ZODB.FileStorage import FileStorage  # noqa: E402

from kernel import genesis, paths, timetravel, versions  # noqa: E402
from kernel.home import Home  # noqa: E402
from kernel.image import connect  # noqa: E402
from kernel.values import plain  # noqa: E402
from zeo_server import launcher  # noqa: E402

SAMPLES = 30


def build(home, transactions):
    """Write the image: genesis, then `transactions` commits; return their ids, oldest
    first."""
    db = ZODB.DB(FileStorage(str(home.image_path)))
    genesis.ensure_awake(db, home.personas)
    manager = transaction.TransactionManager()
    connection = db.open(transaction_manager=manager)
    lobby = genesis.lobby_of(connection)
    lobby.rect = lobby.traits.clone(width=0, height=4)
    lobby.rect._label = "rect"
    lobby.other = lobby.traits.clone(n=0)
    manager.get().note("bench objects")
    manager.commit()
    tids = []
    for n in range(1, transactions + 1):
        lobby.rect.width = n
        if n % 10 == 0:
            lobby.other.n = n
        if n % 500 == 0:
            lobby.rect.define("area", f"def area(self):\n    return self.width * "
                                      f"self.height + {n}\n")
        manager.get().note(f"step {n}")
        manager.commit()
        tids.append(connection._storage.lastTransaction())
    connection.close()
    db.close()
    return tids


def describe(obj):
    return plain(obj.describe())


def timed(fn):
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def median(samples):
    return statistics.median(samples)


def measure(image, tids):
    """Milliseconds: now, at recent / old moments (each once), at one moment again."""
    now = [timed(lambda: image.run(lambda lobby: describe(paths.resolve(lobby, "rect"))))
           for _ in range(SAMPLES)]
    total = len(tids)

    def at(tid):
        return timetravel.inspect_at(image, "rect", tid.hex(), describe)

    recent = [timed(lambda i=i: at(tids[total - 100 - i])) for i in range(SAMPLES)]
    old = [timed(lambda i=i: at(tids[100 + i])) for i in range(SAMPLES)]
    at(tids[total // 2])
    warm = [timed(lambda: at(tids[total // 2])) for _ in range(SAMPLES)]
    assert at(tids[100])["slots"]["width"] == 101
    assert at(tids[total - 100])["slots"]["width"] == total - 99
    method = timed(lambda: versions.method_versions(image, "rect", "area"))
    count = len(versions.method_versions(image, "rect", "area")["versions"])
    slots = timed(lambda: versions.object_versions(image, "rect"))
    return {"now_ms": median(now), "at_recent_ms": median(recent), "at_old_ms": median(old),
            "at_again_ms": median(warm), "method_versions_ms": method,
            "method_versions": count, "object_versions_20_ms": slots}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        home = Home.init(os.path.join(directory, "home"))
        started = time.perf_counter()
        tids = build(home, args.transactions)
        built = time.perf_counter() - started
        address, stop, _ = launcher.start(home)
        try:
            image = connect(address, personas=home.personas)
            try:
                figures = measure(image, tids)
            finally:
                image.close()
        finally:
            stop()
    figures.update(transactions=args.transactions, build_s=round(built, 1))
    now = figures["now_ms"]
    print(f"image of {args.transactions} transactions built in {built:.1f} s")
    print(f"inspect rect now:                          {now:.2f} ms")
    for key, what in (("at_recent_ms", "100 transactions back, first time"),
                      ("at_old_ms", f"{args.transactions - 100} back, first time"),
                      ("at_again_ms", "one moment again (pooled, cached)")):
        print(f"open a view + inspect rect, {what:<34} {figures[key]:.2f} ms "
              f"({figures[key] / now:.1f}x now)")
    print(f"batos history rect area ({figures['method_versions']} versions): "
          f"{figures['method_versions_ms']:.0f} ms; batos history rect (20 newest of "
          f"{args.transactions + 1}): {figures['object_versions_20_ms']:.0f} ms")
    goals = [(f"view + inspect vs now, {key[3:-3]}", figures[key] / now, None, None)
             for key in ("at_recent_ms", "at_old_ms", "at_again_ms")]
    print(json.dumps({"goals": [{"name": n, "ratio": round(r, 2), "target": t, "met": m}
                                for n, r, t, m in goals],
                      **{k: round(v, 3) if isinstance(v, float) else v
                         for k, v in figures.items()}}))


if __name__ == "__main__":
    main()
