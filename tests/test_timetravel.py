"""kernel.timetravel: the image as it was, read-only, against a real ZEO server.

Methods are learned through the real `_doesNotUnderstand` cycle with the scripted model (the
only double); the views are ZODB's historical connections over ZEO.
"""
import datetime

import pytest

from conftest import scripted_learner
from kernel import timetravel
from kernel.image import connect
from kernel.timetravel import (BadWhen, BeforeHistory, HistoryPacked, PastMiss, ReadOnlyPast,
                               parse_when)
from kernel.values import plain

AREA = "def area(self):\n    return self.width * self.height\n"
PERIMETER = "def perimeter(self):\n    return 2 * (self.width + self.height)\n"
BUMP = ("def bump(self):\n    self.count = self.count + 1\n    self._p_changed = True\n"
        "    return self.count\n")
GROW = ("def grow(self):\n    for i in range(2):\n        self.count = self.count + 1\n"
        "    return self.count\n")  # a loop: it runs in a disposable process
PUSH = ("def push(self):\n    self.items.append(9)\n    self._p_changed = True\n"
        "    return len(self.items)\n")
TOTAL = "def total(self):\n    t = 0\n    for i in self.items:\n        t = t + i\n    return t\n"
SWALLOW = ("def quiet(self):\n    try:\n        self.count = 99\n    except Exception:\n"
           "        return 'caught'\n    return 'changed'\n")


@pytest.fixture
def learner(image, tmp_path, monkeypatch):
    """A `_doesNotUnderstand` engine whose BRICK writes AREA and PERIMETER."""
    return scripted_learner(image, tmp_path, monkeypatch,
                            {"area": AREA, "perimeter": PERIMETER})


def newest_tid(image):
    """The id `batos log` shows for the newest transaction."""
    return image.history(1)[0]["tid"]


def make_rect(image):
    def make(lobby):
        lobby.rect = lobby.traits.clone(width=3, height=4)
        lobby.rect._label = "rect"
    image.run(make, note="new rect", user="test")


def send_at(image, path, selector, when, *args):
    return timetravel.send_at(image, path, selector, list(args), when, plain)[0]


def inspect_at(image, path, when):
    return timetravel.inspect_at(image, path, when, lambda obj: plain(obj.describe()))


def test_inspect_and_send_at_each_point_of_learning_changing_and_learning_again(image,
                                                                                 learner):
    make_rect(image)
    made = newest_tid(image)
    assert learner.send("rect", "area").result == 12  # learned by BRICK
    learned = newest_tid(image)
    image.run(lambda lobby: setattr(lobby.rect, "width", 5), note="width 5", user="test")
    changed = newest_tid(image)
    assert learner.send("rect", "perimeter").result == 18  # learned again
    learned_again = newest_tid(image)

    assert inspect_at(image, "rect", made)["methods"] == {}
    assert inspect_at(image, "rect", made)["slots"] == {"width": 3, "height": 4}
    assert send_at(image, "rect", "area", learned) == 12
    assert sorted(inspect_at(image, "rect", learned)["methods"]) == ["area"]
    assert send_at(image, "rect", "area", "before:" + changed) == 12
    assert send_at(image, "rect", "area", changed) == 20
    assert inspect_at(image, "rect", changed)["slots"]["width"] == 5
    with pytest.raises(PastMiss):
        send_at(image, "rect", "perimeter", changed)
    assert send_at(image, "rect", "perimeter", learned_again) == 18
    described = inspect_at(image, "rect", learned_again)
    assert described["methods"]["perimeter"]["provenance"]["author"] == "BRICK"
    assert described["at"]["label"].startswith("as of transaction ")
    # a time between two transactions is the state the earlier one left
    between = timetravel.tid_time(timetravel.parse_when(changed).before)
    assert send_at(image, "rect", "area",
                   between.strftime("%Y-%m-%d %H:%M:%S.%f")) in (12, 20)
    assert image.run(lambda lobby: lobby.rect.width) == 5  # the present is untouched


def test_a_miss_in_the_past_is_one_final_error_and_learns_nothing(image, learner):
    make_rect(image)
    made = newest_tid(image)
    learner.send("rect", "area")
    mandates = image.run(lambda lobby: len(lobby.mandates.entries))
    log = image.history(5)
    with pytest.raises(PastMiss) as miss:
        send_at(image, "rect", "perimeter", made)
    assert "rect did not understand 'perimeter' as of transaction" in str(miss.value)
    assert "a view of the past cannot learn" in str(miss.value)
    assert "\n" not in str(miss.value) and not miss.value.transient
    with pytest.raises(PastMiss):
        send_at(image, "rect", "area", "before:" + log[0]["tid"])  # before it was learned
    assert image.run(lambda lobby: len(lobby.mandates.entries)) == mandates
    assert image.history(5) == log  # no mandate, no transaction


def test_a_view_of_the_past_refuses_every_change_and_the_present_stays(image):
    def make(lobby):
        lobby.counter = lobby.traits.clone(count=1, items=[1, 2])
        lobby.counter._label = "counter"
        for selector, source in (("bump", BUMP), ("quiet", SWALLOW), ("grow", GROW),
                                 ("push", PUSH), ("total", TOTAL)):
            lobby.counter.define(selector, source)
    image.run(make, note="counter")
    then = newest_tid(image)
    image.run(lambda lobby: setattr(lobby.counter, "count", 2), note="count 2")
    image.run(lambda lobby: setattr(lobby.counter, "items", [5]), note="items")
    log = image.history(5)
    assert send_at(image, "counter", "total", then) == 3  # a loop, in the past
    # "quiet" catches the refusal: still refused; "grow" changes it from its own process
    for selector in ("bump", "quiet", "grow", "push"):
        with pytest.raises(ReadOnlyPast, match="read-only: the message tried to change it"):
            send_at(image, "counter", selector, then)
    with pytest.raises(ReadOnlyPast):
        with timetravel.view(image, then) as past:
            past.lobby.counter.count = 7
    with pytest.raises(ReadOnlyPast):
        with timetravel.view(image, then) as past:
            past.lobby.fresh = past.lobby.traits.clone()
    with timetravel.view(image, then) as past:  # the same moment again: as it was
        assert past.lobby.counter.count == 1 and "fresh" not in past.lobby.slot_names()
        assert past.lobby.counter.items == [1, 2]
        assert past.connection.before is not None and past.connection.isReadOnly()
    assert image.run(lambda lobby: lobby.counter.count) == 2
    assert image.history(5) == log


@pytest.mark.parametrize("text, kind", [
    ("2026-12-02 06:40:05", "time"), ("2026-12-02T06:40:05.25Z", "time"),
    ("2026-12-02", "time"), ("2026-12-02T07:40:05+01:00", "time"),
    ("040d6c50163a0599", "tid"), ("42413173554f524d2f65343d", "tid"),
    ("before:040d6c50163a0599", "before"), ("BEFORE:42413173554f524d2f65343d", "before")])
def test_when_takes_a_utc_time_a_transaction_id_or_before(text, kind):
    when = parse_when(text)
    assert when.kind == kind and len(when.before) == 8
    if kind == "tid":
        assert when.text == "040d6c50163a0599" or len(when.text) == 16


def test_times_are_utc_and_a_transaction_id_means_as_that_transaction_left_it():
    assert parse_when("2026-12-02T07:40:05+01:00").before == \
        parse_when("2026-12-02 06:40:05").before
    tid = bytes.fromhex("040d6c50163a0599")
    assert parse_when(tid.hex()).before > tid  # includes the transaction
    assert parse_when("before:" + tid.hex()).before == tid  # excludes it
    # the id batos log prints (the hex of FileStorage's undo id) names the same transaction
    import base64
    log_id = base64.encodebytes(tid).rstrip().hex()
    assert parse_when(log_id).before == parse_when(tid.hex()).before
    moment = timetravel.tid_time(tid)
    assert moment.tzinfo == datetime.timezone.utc


@pytest.mark.parametrize("text", ["yesterday", "", "before:", "before:xyz", "12:00",
                                  "2026-13-01", "0123", "1800-01-01"])
def test_a_bad_when_is_one_line_naming_the_forms(text):
    with pytest.raises(BadWhen) as bad:
        parse_when(text)
    assert "\n" not in str(bad.value) and not bad.value.transient


def test_a_time_before_the_first_transaction_says_so(image):
    with pytest.raises(BeforeHistory, match="there is no image as of 2001-01-01 00:00:00 UTC: "
                                            "its oldest transaction kept is"):
        inspect_at(image, "lobby", "2001-01-01")
    first = image.history(1000)[-1]["tid"]  # "initial database creation": no lobby yet
    with pytest.raises(BeforeHistory, match="had not awakened yet"):
        inspect_at(image, "lobby", first)


def test_a_time_after_the_newest_transaction_is_the_image_as_it_is(image):
    image.run(lambda lobby: setattr(lobby, "marker", 1), note="marker")
    future = (datetime.datetime.now(datetime.timezone.utc)
              + datetime.timedelta(days=365)).strftime("%Y-%m-%d %H:%M:%S")
    assert inspect_at(image, "lobby", future)["slots"]["marker"] == 1


def test_after_a_pack_a_moment_before_it_is_a_plain_error(image):
    make_rect(image)
    old = newest_tid(image)
    old_time = timetravel.tid_text(parse_when(old).before)
    image.run(lambda lobby: setattr(lobby.rect, "width", 5), note="width 5")
    image.pack(days=0)
    image.run(lambda lobby: setattr(lobby.rect, "width", 6), note="width 6")
    for when in (old, "before:" + old, old_time[:-4]):
        with pytest.raises(HistoryPacked) as packed:
            inspect_at(image, "rect", when)
        message = str(packed.value)
        assert "history before" in message and "was removed by batos pack --days 0" in message
        assert "the oldest moment you can ask for is" in message and "\n" not in message
    after_pack = image.history(2)[1]["tid"]  # the pack's own record
    assert inspect_at(image, "rect", after_pack)["slots"]["width"] == 5
    assert inspect_at(image, "rect", newest_tid(image))["slots"]["width"] == 6


def test_a_pack_made_without_batos_is_found_when_a_record_is_missing(home, zeo, image):
    make_rect(image)
    old = newest_tid(image)
    image.run(lambda lobby: setattr(lobby.rect, "width", 5), note="width 5")
    image.run(lambda lobby: setattr(lobby, "other", 1), note="lobby changes")
    image.db.pack()  # ZODB's own pack: no bound recorded in the image
    # (this client may still hold the old records in its ZEO cache — they are exact, so a
    # view may show them; a new client, as every batos command is, finds them gone)
    fresh = connect(zeo, personas=home.personas)
    try:
        with pytest.raises((HistoryPacked, BeforeHistory), match="pack"):
            inspect_at(fresh, "rect", old)
    finally:
        fresh.close()
