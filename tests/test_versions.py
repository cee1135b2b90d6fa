"""kernel.versions: every version of an object's slots and of a method, and revert, against a
real ZEO server (methods learned through `_doesNotUnderstand` with the scripted model)."""
import pytest

from conftest import scripted_learner
from kernel import versions
from kernel.errors import BatosError
from kernel.versions import BadVersion, NoVersions

pytestmark = pytest.mark.shared_server  # each test: a fresh lobby on the module's server

AREA = "def area(self):\n    return self.width * self.height\n"
AREA_2 = "def area(self):\n    return self.height * self.width\n"
PERIMETER = "def perimeter(self):\n    return 2 * (self.width + self.height)\n"


@pytest.fixture
def learner(image, tmp_path, monkeypatch):
    """A `_doesNotUnderstand` engine whose BRICK writes AREA and PERIMETER."""
    return scripted_learner(image, tmp_path, monkeypatch,
                            {"area": AREA, "perimeter": PERIMETER})


@pytest.fixture
def rect(image):
    def make(lobby):
        lobby.rect = lobby.traits.clone(width=3, height=4)
        lobby.rect._label = "rect"
    image.run(make, note="new rect", user="test")
    return image


def define(image, source, selector="area", user="alice"):
    image.run(lambda lobby: lobby.rect.define(selector, source, author=user),
              note=f"define rect.{selector}", user=user)


def area(image):
    return image.run(lambda lobby: lobby.rect.send("area"))


def test_method_versions_show_who_when_the_note_and_the_provenance(rect, learner):
    learner.send("rect", "area")
    define(rect, AREA_2)
    data = versions.method_versions(rect, "rect", "area")
    first, second = data["versions"]
    assert (first["version"], second["version"]) == (1, 2) and second["current"]
    assert first["user"] == "BRICK" and first["note"] == "BRICK learned rect.area (receiver rect)"
    assert first["provenance"]["author"] == "BRICK"
    assert first["provenance"]["model"].startswith("scripted:")
    assert first["provenance"]["audit"]["ok"] and first["provenance"]["attempts"] == 1
    assert first["provenance"]["mandate"]["selector"] == "area"
    assert first["source"] == AREA and second["source"] == AREA_2
    assert second["user"] == "alice" and second["time"].endswith(" UTC")
    assert len(first["tid"]) == 16
    diff = versions.source_diff(first, second)
    assert "-    return self.width * self.height" in diff
    assert "+    return self.height * self.width" in diff
    lines = "\n".join(versions.method_lines(data, diff=True))
    assert "by BRICK, model scripted:rules.json, audit ok, 1 attempt(s)" in lines
    assert "+++ version 2" in lines


def test_object_versions_show_each_change_of_its_slots(rect):
    for width in (5, 6):
        rect.run(lambda lobby: setattr(lobby.rect, "width", width), note=f"width {width}",
                 user="bob")
    rect.run(lambda lobby: setattr(lobby.rect, "depth", 2), note="depth", user="carol")
    data = versions.object_versions(rect, "rect")
    assert [v["changed"] for v in data["versions"]] == [["height", "width"], ["width"],
                                                        ["width"], ["depth"]]
    assert [v["slots"].get("width") for v in data["versions"]] == [3, 5, 6, 6]
    assert data["versions"][-1]["user"] == "carol" and not data["older"]
    newest = versions.object_versions(rect, "rect", limit=2)
    assert [v["version"] for v in newest["versions"]] == [3, 4] and newest["older"]
    assert newest["versions"][0]["changed"] == ["width"]  # against version 2, not shown


def test_revert_reinstalls_an_earlier_version_and_undo_takes_the_revert_back(rect, learner):
    learner.send("rect", "area")
    define(rect, AREA_2)
    rect.run(lambda lobby: setattr(lobby.rect, "width", 10), note="width 10")
    done = versions.revert(rect, "rect", "area", user="dave")  # to the version before
    assert (done["from"], done["to"]) == (2, 1) and done["note"] == \
        "revert rect.area to version 1"
    assert area(rect) == 40
    method = rect.run(lambda lobby: dict(lobby.rect._own_methods()["area"].provenance))
    assert method["author"] == "BRICK" and method["model"].startswith("scripted:")
    assert method["reverted_to"]["version"] == 1 and method["reverted_to"]["by"] == "dave"
    history = versions.method_versions(rect, "rect", "area")["versions"]
    assert [v["source"] for v in history] == [AREA, AREA_2, AREA]
    assert history[-1]["user"] == "dave"
    revert_txn = rect.history(1)[0]
    assert revert_txn["note"] == "revert rect.area to version 1"
    rect.undo(revert_txn["tid"], user="dave")  # undo the revert
    assert rect.run(lambda lobby: lobby.rect._own_methods()["area"].source) == AREA_2
    assert rect.run(lambda lobby: lobby.rect.width) == 10  # later changes stay


def test_revert_works_where_undo_of_the_learning_transaction_is_refused(rect, learner):
    learner.send("rect", "area")
    learned = rect.history(1)[0]["tid"]
    learner.send("rect", "perimeter")  # the same object's method table changed again
    with pytest.raises(BatosError, match="cannot undo"):
        rect.undo(learned)
    done = versions.revert(rect, "rect", "area")  # only version: removed
    assert done["to"] == versions.REMOVE
    assert rect.run(lambda lobby: (lobby.rect.responds_to("area"),
                                   lobby.rect.responds_to("perimeter"))) == (False, True)
    last = versions.method_versions(rect, "rect", "area")["versions"][-1]
    assert last["state"] == "removed" and last["current"]
    versions.revert(rect, "rect", "area", to=1)
    assert area(rect) == 12


def test_bad_versions_and_missing_methods_are_one_line(rect):
    with pytest.raises(NoVersions, match="rect has never had a method 'area'"):
        versions.method_versions(rect, "rect", "area")
    define(rect, AREA)
    for to, message in ((7, "there is no version 7: the versions are 1 to 1"),
                        ("latest", "neither a version number"), (1, "is version 1 already")):
        with pytest.raises(BadVersion, match=message):
            versions.revert(rect, "rect", "area", to=to)
    versions.revert(rect, "rect", "area", to="none")
    with pytest.raises(BadVersion, match="removed already"):
        versions.revert(rect, "rect", "area", to="none")


def test_an_inherited_method_has_the_versions_of_the_object_that_holds_it(rect):
    define(rect, AREA)

    def small(lobby):
        lobby.small = lobby.rect.clone(width=1)
        lobby.small._label = "small"
    rect.run(small)
    define(rect, AREA_2)
    data = versions.method_versions(rect, "small", "area")
    assert data["holder"] == "rect" and len(data["versions"]) == 2
    assert "(held by rect)" in versions.method_lines(data)[0]


def test_a_method_table_past_one_bucket_keeps_every_version(rect):
    def many(lobby):  # more selectors than one BTree bucket holds: the table splits
        for n in range(80):
            lobby.rect.define(f"m{n:02d}", f"def m{n:02d}(self):\n    return {n}\n")
    rect.run(many, note="many methods")
    for value in (100, 200):
        rect.run(lambda lobby: lobby.rect.define("m42", f"def m42(self):\n    return {value}\n"),
                 note=f"m42 {value}")
    table_state = rect.run(lambda lobby: lobby.rect._methods.__getstate__())
    assert len(table_state) == 2  # buckets of their own, not items inline
    data = versions.method_versions(rect, "rect", "m42")
    assert [v["source"].split()[-1] for v in data["versions"]] == ["42", "100", "200"]
    versions.revert(rect, "rect", "m42", to=1)
    assert rect.run(lambda lobby: lobby.rect.send("m42")) == 42


def test_after_a_pack_history_begins_at_the_state_it_kept(rect):
    define(rect, AREA)
    define(rect, AREA_2)
    rect.pack(days=0)
    data = versions.method_versions(rect, "rect", "area")
    assert [v["source"] for v in data["versions"]] == [AREA_2]
    rect.run(lambda lobby: setattr(lobby.rect, "width", 5), note="width 5")
    assert [v["slots"]["width"] for v in versions.object_versions(rect, "rect")["versions"]] \
        == [3, 5]
