"""kernel.conversation: a session's turns stay bounded however long the conversation runs."""
from kernel import conversation


def test_a_thousand_turns_keep_the_log_at_its_bound(lobby, bounds):
    long_text = "word " * 3000  # 15,000 characters, more than a turn may keep
    for number in range(1, 1001):
        role = "user" if number % 2 else "persona"
        assert conversation.append(lobby, "runaway", role, f"{number}: {long_text}") == number
    turns = conversation.turns_of(lobby, "runaway")
    assert len(turns) == bounds.max_turns == 200
    assert list(turns.keys()) == list(range(801, 1001))
    assert all(len(turn["text"]) <= bounds.max_turn_chars for turn in turns.values())
    assert turns[1000]["text"].startswith("1000: word word")
    assert turns[1000]["text"].endswith("more characters cut]")

    window = conversation.window(lobby, "runaway")
    assert [t["text"].split(":")[0] for t in window] == [str(n) for n in range(993, 1001)]
    assert sum(len(t["text"]) for t in window) <= bounds.window_turns * bounds.max_turn_chars


def test_the_bounds_follow_the_configuration(lobby, bounds, monkeypatch):
    monkeypatch.setattr(bounds, "max_turns", 5)
    monkeypatch.setattr(bounds, "max_turn_chars", 100)
    monkeypatch.setattr(bounds, "window_turns", 2)
    for number in range(12):
        conversation.append(lobby, "s", "user", f"turn {number} " + "." * 500)
    assert list(conversation.turns_of(lobby, "s").keys()) == [8, 9, 10, 11, 12]
    window = conversation.window(lobby, "s")
    assert [t["text"][:7] for t in window] == ["turn 10", "turn 11"]
    assert all(len(t["text"]) <= 100 for t in window)


def test_short_turns_are_kept_whole_and_sessions_are_separate(lobby, bounds):
    conversation.append(lobby, "a", "user", "hello", max_turns=2)
    conversation.append(lobby, "a", "persona", "hi there", persona="ROBIN", max_turns=2)
    conversation.append(lobby, "b", "user", "elsewhere", max_turns=2)
    assert [(t["role"], t["persona"], t["text"]) for t in conversation.window(lobby, "a")] == [
        ("user", None, "hello"), ("persona", "ROBIN", "hi there")]
    assert [t["text"] for t in conversation.window(lobby, "b")] == ["elsewhere"]
