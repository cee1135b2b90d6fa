"""kernel.image against a real ZEO server: transactions, retries, many client processes."""
import types

import pytest
import zodbpickle.pickle
from ZODB.FileStorage import FileStorage

from kernel import genesis
from kernel.errors import MessageNotUnderstood
from kernel.image import connect

from conftest import run_batos

AREA = "def area(self):\n    return self.width * self.height\n"

# these tests share the module's one home and server, each on a fresh lobby (tests/conftest.py)
shared = pytest.mark.shared_server


@shared
def test_transaction_commits_note_and_user(image):
    with image.transaction(note="make a shape", user="tester") as lobby:
        lobby.shape = lobby.traits.clone(width=2)
    newest = image.history(1)[0]
    assert (newest["note"], newest["user"]) == ("make a shape", "tester")
    with image.transaction() as lobby:
        assert lobby.shape.width == 2


@shared
def test_exception_aborts_the_whole_transaction(image):
    with pytest.raises(ZeroDivisionError):
        with image.transaction() as lobby:
            lobby.half = 1
            1 / 0
    with image.transaction() as lobby:
        assert not lobby.responds_to("half")


@shared
def test_run_returns_the_result_and_does_not_retry_final_errors(image):
    calls = []

    def fails(lobby):
        calls.append(1)
        return lobby.nothing_here

    with pytest.raises(MessageNotUnderstood):
        image.run(fails)
    assert len(calls) == 1 and image.retries == 0
    assert image.run(lambda lobby: lobby.personas.BRICK.role) == "builder"


@shared
def test_a_second_process_sees_a_clone_and_its_method_after_sync(actors):
    writer, reader = actors(2)
    reader.call("connect")
    assert reader.call("look", path="shapes") is None   # reader's view before the write
    writer.call("connect")
    writer.call("clone", proto="traits", path="shapes", slots={"width": 3, "height": 4})
    writer.call("define", path="shapes", selector="area", source=AREA)
    seen = reader.call("look", path="shapes")
    assert seen == {"slots": {"width": 3, "height": 4}, "methods": ["area"],
                    "parents": ["traits"]}
    assert reader.call("send", path="shapes", selector="area") == 12


@shared
def test_four_processes_setting_different_slots_of_one_object_all_win(actors, image):
    with image.transaction() as lobby:
        lobby.shared = lobby.traits.clone()
    workers = actors(4)
    for worker in workers:
        worker.call("connect")
    for n, worker in enumerate(workers):
        worker.write(op="set_slots", path="shared",
                     slots={f"w{n}_s{i}": n * 100 + i for i in range(50)})
    for worker in workers:
        assert worker.read(timeout=300)["ok"]
    # the ZEO server merged every concurrent change: no client ever had to retry
    assert [worker.call("retries") for worker in workers] == [0, 0, 0, 0]
    with image.transaction() as lobby:
        slots = lobby.shared.slots()
    assert len(slots) == 200
    assert slots == {f"w{n}_s{i}": n * 100 + i for n in range(4) for i in range(50)}


@shared
def test_the_same_slot_set_concurrently_ends_with_one_value_and_the_loser_retries(
        actors, image):
    with image.transaction() as lobby:
        lobby.shared = lobby.traits.clone(colour="grey")
    first, second = actors(2)
    for actor, colour in ((first, "red"), (second, "blue")):
        actor.call("connect")
        actor.write(op="hold_set", path="shared", slot="colour", value=colour)
        assert actor.read() == {"held": True}   # both transactions have read and written
    first.write(op="commit")
    assert first.read() == {"ok": True, "result": {"attempts": 1}}
    second.write(op="commit")
    assert second.read() == {"ok": True, "result": {"attempts": 2}}
    assert first.call("retries") == 0 and second.call("retries") == 1
    with image.transaction() as lobby:
        assert lobby.shared.colour in ("red", "blue")


def test_six_processes_on_an_empty_image_make_exactly_one_genesis(actors, home):
    starters = actors(6)
    for starter in starters:
        starter.write(op="connect")
    answers = [starter.read() for starter in starters]
    assert all(answer["ok"] for answer in answers), answers
    assert sum(answer["result"]["awakened"] for answer in answers) == 1
    image = connect(home.zeo_address, personas=home.personas)
    try:
        notes = [row["note"] for row in image.history(1000)]
        assert notes.count(genesis.GENESIS_NOTE) == 1
        assert notes.count("initial database creation") == 1
    finally:
        image.close()


def kill_during(actors, image, op, announcement, count):
    """Make `lobby.target`, have a client start `op` on it, and SIGKILL it at `announcement`."""
    with image.transaction() as lobby:
        lobby.target = lobby.traits.clone()
    victim, = actors(1)
    victim.call("connect")
    victim.write(op=op, path="target", count=count)
    assert victim.read() == {announcement: True}
    victim.kill()


@shared
def test_a_client_killed_inside_a_transaction_leaves_nothing_behind(actors, image, home):
    kill_during(actors, image, "hang", "hanging", 200)
    with image.transaction() as lobby:
        assert lobby.target.slots() == {}
    assert run_batos("check", home=home.path).returncode == 0


@shared
def test_a_client_killed_while_committing_leaves_all_or_nothing(actors, image, home):
    kill_during(actors, image, "big_commit", "committing", 3000)
    with image.transaction() as lobby:
        slots = lobby.target.slots()
        lobby.after = 1            # the server still takes commits
    assert slots == {} or (slots["complete"] == 3000 and len(slots) == 3001)
    checked = run_batos("check", home=home.path)
    assert checked.returncode == 0, checked.stderr


class RecordingUnpickler(zodbpickle.pickle.Unpickler):
    """Unpickles a record, noting every global it names."""

    def __init__(self, data, found):
        import io
        super().__init__(io.BytesIO(data))
        self.found = found

    def find_class(self, module, name):
        value = super().find_class(module, name)
        self.found.append((module, name, value))
        return value

    def persistent_load(self, reference):
        return reference


@shared
def test_no_function_object_is_ever_pickled_into_the_image(image, home, zeo):
    with image.transaction() as lobby:
        lobby.shapes = lobby.traits.clone(width=3, height=4)
        lobby.shapes.define("area", AREA)
    with image.transaction() as lobby:
        lobby.shapes.define("area", "def area(self):\n    return self.width * 2\n")
        assert lobby.shapes.area() == 6
        assert lobby.traits.send("describe")["label"] == "traits"
    image.close()
    storage = FileStorage(str(home.image_path), read_only=True)
    found, records = [], 0
    try:
        for txn in storage.iterator():
            for record in txn:
                if record.data is None:
                    continue
                records += 1
                unpickler = RecordingUnpickler(record.data, found)
                unpickler.load()   # the class record
                unpickler.load()   # the state
    finally:
        storage.close()
    assert records > 10 and found
    callables = [(m, n) for m, n, v in found
                 if isinstance(v, (types.FunctionType, types.BuiltinFunctionType,
                                   types.MethodType, types.CodeType))
                 and (m, n) not in SAFE_RECONSTRUCTORS]
    assert callables == []
    assert ("kernel.primitives", "Primitive") in {(m, n) for m, n, _ in found}


# Functions that pickle itself uses to rebuild plain values, not stored behaviour.
SAFE_RECONSTRUCTORS = {("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
                       ("builtins", "set"), ("builtins", "frozenset")}


def test_a_lost_server_is_a_transient_error_and_the_image_works_again(home):
    from zeo_server import launcher
    address, stop, _ = launcher.start(home)
    image = connect(address, personas=home.personas, wait_timeout=30)
    try:
        stop()
        _, stop, _ = launcher.start(home)
        assert image.run(lambda lobby: lobby.personas.ALFRED.role) == "steward"
    finally:
        image.close()
        stop()


@shared
def test_a_connection_keeps_at_most_cache_objects_loaded_between_transactions(home, zeo):
    from BTrees.LOBTree import LOBTree
    image = connect(zeo, personas=home.personas, cache_objects=50,
                    client_cache_bytes=1024 * 1024)
    try:
        with image.transaction() as lobby:
            lobby.many = LOBTree({n: lobby.traits.clone(n=n) for n in range(500)})
        with image.transaction() as lobby:
            assert sum(item.n for item in lobby.many.values()) == sum(range(500))
        loaded = [detail["ngsize"] for detail in image.db.cacheDetailSize()]
        assert loaded and max(loaded) <= 50
    finally:
        image.close()


def test_oids_fetched_before_a_server_crash_never_go_to_a_new_object(home):
    """A ZEO server killed -9 hands out its unused oids again after the restart: a client
    that fetched some before the crash must not give one of them to a new object."""
    from zeo_server import launcher
    address, stop, process = launcher.start(home)
    first = connect(address, personas=home.personas, wait_timeout=30)
    second = None
    try:
        with first.transaction() as lobby:
            lobby.a = lobby.traits.clone(n=1)  # `first` now holds pre-fetched oids
        process.kill()
        process.wait()
        _, stop, _ = launcher.start(home)
        second = connect(address, personas=home.personas, wait_timeout=30)
        with second.transaction() as lobby:
            lobby.b = lobby.traits.clone(n=2)
        first.run(lambda lobby: setattr(lobby, "c", lobby.traits.clone(n=3)))
        found = second.run(lambda lobby: [(o._p_oid, o.n) for o in (lobby.a, lobby.b, lobby.c)])
        assert [n for _oid, n in found] == [1, 2, 3]
        assert len({oid for oid, _n in found}) == 3
    finally:
        first.close()
        if second is not None:
            second.close()
        stop()


@shared
def test_a_method_redefined_or_shadowed_in_another_process_is_seen_at_once(actors):
    """Lookups are cached per process; another process's change invalidates them."""
    writer, reader = actors(2)
    writer.call("connect")
    writer.call("clone", proto="traits", path="proto", slots={"width": 3, "height": 4})
    writer.call("define", path="proto", selector="area", source=AREA)
    writer.call("clone", proto="proto", path="middle", slots={})
    for n in range(40):  # a table of several leaves: a later install changes one leaf only
        writer.call("define", path="middle", selector=f"m{n:02}",
                    source=f"def m{n:02}(self):\n    return {n}\n")
    writer.call("clone", proto="middle", path="leaf", slots={})
    reader.call("connect")
    assert reader.call("send", path="leaf", selector="area") == 12  # now cached in reader
    assert reader.call("send", path="leaf", selector="area") == 12
    writer.call("define", path="proto", selector="area",
                source="def area(self):\n    return self.width + self.height\n")
    assert reader.call("send", path="leaf", selector="area") == 7
    writer.call("define", path="middle", selector="area",  # shadows proto's, same table
                source="def area(self):\n    return 100\n")
    assert reader.call("send", path="leaf", selector="area") == 100
    writer.call("set_slots", path="leaf", slots={"width": 10})
    writer.call("define", path="middle", selector="area", source=AREA)
    assert reader.call("send", path="leaf", selector="area") == 40
