"""`batos check` loads every object; `batos repair` quarantines the slot values that cannot be
loaded (zeo_server/maintenance.py, zeo_server/repair.py), on a real ZEO server with images poisoned the way a hostile
method could before values were checked: straight through a ZODB connection."""
import importlib
import json
import sys
import types
import uuid

import pytest

from conftest import one_line_error, run_batos
from kernel import primitives
from kernel.uvm import UvmObject
from zeo_server import maintenance

POISON_NOTE = "poison traits and shapes"


@pytest.fixture
def throwaway(tmp_path):
    """A module made for the test, imported, then gone (from sys.modules, sys.path and disk)
    once the test calls the returned `forget()`: what a class that no longer exists is."""
    name = f"gone_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "throwaway"
    folder.mkdir()
    source = folder / f"{name}.py"
    source.write_text("import persistent\n\n"
                      "class Thing:\n    def __init__(self, x):\n        self.x = x\n\n"
                      "class Box(persistent.Persistent):\n    pass\n")
    sys.path.insert(0, str(folder))
    module = importlib.import_module(name)

    def forget():
        sys.modules.pop(name, None)
        if str(folder) in sys.path:
            sys.path.remove(str(folder))
        source.unlink(missing_ok=True)
        importlib.invalidate_caches()

    yield module, forget
    forget()


def poison(image, throwaway):
    """`shapes` (a clone of traits with good slots), then, in one transaction by 'mallory', a
    bound method into a slot of traits and an instance of a class about to vanish into a slot
    of shapes. Returns the oids of traits and shapes."""
    module, forget = throwaway
    with image.transaction(note="new shapes", user="alice") as lobby:
        lobby.shapes = lobby.traits.clone(width=3, height=4)
        lobby.shapes._label = "shapes"
    with image.transaction(note=POISON_NOTE, user="mallory") as lobby:
        traits, shapes = lobby.traits, lobby.shapes
        traits._p_activate()  # a ghost's __dict__ is empty, and its state would overwrite it
        shapes._p_activate()
        traits.__dict__["keep"] = types.MethodType(primitives.parent_count, traits)
        traits._p_changed = True
        shapes.__dict__["gone"] = {"thing": module.Thing(5)}
        shapes._p_changed = True
        oids = traits._p_oid, shapes._p_oid
    forget()
    return oids


def history(home):
    """`batos log --json`: the image's transactions, newest first."""
    return json.loads(run_batos("log", "--json", home=home.path, check=True).stdout)


def test_check_loads_every_object_and_names_each_that_cannot_be_loaded(home, image, throwaway):
    assert run_batos("check", home=home.path, check=True).stdout.endswith(": ok\n")
    poison(image, throwaway)
    undo_id = history(home)[0]["tid"]
    checked = run_batos("check", home=home.path)
    assert checked.returncode == 1
    *findings, verdict = checked.stderr.strip().splitlines()
    traits, = [line for line in findings if "'traits'" in line]
    assert traits.startswith("load: oid 0x2 kernel.uvm.UvmObject 'traits': ")
    assert "MessageNotUnderstood" in traits and "parent_count" in traits
    shapes, = [line for line in findings if "'shapes'" in line]
    assert "MissingClass" in shapes and "gone_" in shapes and "cannot import" in shapes
    for line in (traits, shapes):  # the transaction that wrote it: tid, time, user, note
        assert f"by mallory: {POISON_NOTE!r} (undo id {undo_id})" in line
    assert len(findings) == 2
    assert "is damaged (2 problem(s))" in verdict and "batos repair --dry-run" in verdict
    report = maintenance.check(home.image_path)
    assert {found.label for found in report.unloadable} == {"traits", "shapes"}
    assert report.objects > 20


def test_the_poison_breaks_every_inherited_lookup_through_traits(home, image, throwaway):
    poison(image, throwaway)
    for command in (("send", "personas.BRICK", "parentCount"), ("inspect", "traits")):
        failed = run_batos(*command, home=home.path)
        assert failed.returncode == 1 and "parent_count" in failed.stderr, failed.stderr


def test_repair_dry_run_lists_what_it_would_do_and_changes_nothing(home, image, throwaway):
    poison(image, throwaway)
    before = history(home)
    size = home.image_path.stat().st_size
    dry = run_batos("repair", "--dry-run", home=home.path)
    assert dry.returncode == 0, dry.stderr
    assert "would quarantine traits.keep (oid 0x2): builtins.getattr(" in dry.stdout
    assert "would quarantine shapes.gone" in dry.stdout and "gone_" in dry.stdout
    assert f"by mallory: {POISON_NOTE!r}" in dry.stdout
    assert "dry run: nothing was changed" in dry.stdout
    assert history(home) == before and home.image_path.stat().st_size == size
    assert run_batos("check", home=home.path).returncode == 1


def test_repair_quarantines_in_one_transaction_and_everything_loads(home, image, throwaway):
    traits_oid, shapes_oid = poison(image, throwaway)
    poisoned = history(home)[0]
    repaired = run_batos("repair", home=home.path)
    assert repaired.returncode == 0, repaired.stderr
    assert "quarantined traits.keep (oid 0x2)" in repaired.stdout
    assert "quarantined shapes.gone" in repaired.stdout
    log = history(home)
    assert log[1] == poisoned  # exactly one transaction more: the repair's
    assert log[0]["user"] == "batos-cli" and log[0]["note"].startswith("repair: ")
    assert "traits.keep" in log[0]["note"] and "shapes.gone" in log[0]["note"]

    assert run_batos("check", home=home.path, check=True).stdout.endswith(": ok\n")
    assert maintenance.scan_objects(home.image_path).unloadable == ()
    shapes = json.loads(run_batos("inspect", "shapes", "--json", home=home.path,
                                  check=True).stdout)
    assert shapes["slots"] == {"width": 3, "height": 4}
    brick = json.loads(run_batos("inspect", "personas.BRICK", "--json", home=home.path,
                                 check=True).stdout)
    assert brick["label"] == "personas.BRICK" and "parentCount" not in brick["slots"]
    for path in ("shapes", "personas.BRICK"):  # inherited primitives, through traits
        sent = run_batos("send", path, "parentCount", home=home.path, check=True)
        assert sent.stdout.strip() == "1"
    assert run_batos("inspect", "traits", home=home.path, check=True).stdout

    with image.transaction() as lobby:
        quarantine = lobby.quarantine
        assert isinstance(quarantine, UvmObject) and quarantine.count == 2
        entries = {quarantine.send(f"entry_{n}").slot: quarantine.send(f"entry_{n}").slots()
                   for n in (1, 2)}
        assert "keep" not in lobby.traits.slot_names()
    keep, gone = entries["keep"], entries["gone"]
    assert keep["oid"] == f"{int.from_bytes(traits_oid, 'big'):#x}"
    assert keep["object_label"] == "traits" and gone["object_label"] == "shapes"
    assert gone["oid"] == f"{int.from_bytes(shapes_oid, 'big'):#x}"
    for entry in (keep, gone):
        assert entry["written_note"] == POISON_NOTE and entry["written_user"] == "mallory"
        assert entry["written_undo_id"] == poisoned["tid"]
        assert entry["pickle_bytes"] > 0 and bytes.fromhex(entry["pickle_hex"])
        assert all(isinstance(v, (str, int)) for v in entry.values())  # never the value
    assert "builtins.getattr" in keep["value_repr"] and b"parent_count" in \
        bytes.fromhex(keep["pickle_hex"])
    assert "Thing" in gone["value_repr"] and "'x': 5" in gone["value_repr"]
    assert "MessageNotUnderstood" in keep["error"] and "ModuleNotFoundError" in gone["error"]

    again = run_batos("repair", home=home.path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("nothing to repair: all ")
    assert history(home) == log


def test_an_object_whose_class_is_gone_is_reported_not_touched(home, image, throwaway):
    module, forget = throwaway
    with image.transaction(note="a box", user="mallory") as lobby:
        lobby._p_activate()  # genesis's objects may have pushed the lobby out of the cache
        lobby.__dict__["box"] = module.Box()
        lobby._p_changed = True
    forget()
    checked = run_batos("check", home=home.path)
    assert checked.returncode == 1
    assert "Box" in checked.stderr and "'lobby'" in checked.stderr
    repaired = run_batos("repair", home=home.path)
    assert repaired.returncode == 1
    assert "quarantined lobby.box" in repaired.stdout  # the reference to it, from the lobby
    untouched, = [line for line in repaired.stdout.splitlines() if "left untouched" in line]
    assert ".Box): MissingClass: its class " in untouched and "by mallory: 'a box'" in untouched
    assert repaired.stderr.startswith("batos: 1 object(s) stay unloadable")
    assert "batos pack" in repaired.stderr
    # nothing refers to it any more: packing drops it, and the image is clean
    run_batos("pack", home=home.path, check=True)
    assert run_batos("check", home=home.path, check=True).stdout.endswith(": ok\n")


def test_undo_of_the_poisoning_transaction_is_the_other_way_back(home, image, throwaway):
    poison(image, throwaway)
    report = maintenance.check(home.image_path)
    undo_ids = {found.written.undo_id for found in report.unloadable}
    assert len(undo_ids) == 1
    image.undo(undo_ids.pop())
    assert maintenance.check(home.image_path).ok


def test_repair_without_the_server_is_one_line(home, throwaway):
    from zeo_server import launcher
    address, stop, _process = launcher.start(home)
    try:
        from kernel.image import connect
        image = connect(address, personas=home.personas)
        try:
            poison(image, throwaway)
        finally:
            image.close()
    finally:
        stop()
    before = home.image_path.read_bytes()
    line = one_line_error(run_batos("repair", home=home.path))
    assert "batos repair works through the home's ZEO server" in line
    assert "no ZEO server answers" in line
    assert home.image_path.read_bytes() == before
