"""kernel.memory, kernel.conversation and kernel.ledger: the image's records of requests."""
from kernel import conversation, ledger, memory


def test_recall_ranks_by_matching_keywords_then_recency(lobby):
    memory.remember(lobby, "Robin likes tea")
    memory.remember(lobby, "the sky is blue")
    memory.remember(lobby, "Robin likes blue tea cups")
    found = memory.recall(lobby, "what does Robin like in blue tea?")
    assert [m["text"] for m in found] == ["Robin likes blue tea cups", "Robin likes tea",
                                          "the sky is blue"]
    assert found[0]["score"] == 4 and memory.recall(lobby, "the a of") == []
    assert found[0]["complete"] and not found[1]["complete"]


def test_recall_finds_other_forms_of_a_word_and_says_when_it_is_only_close(lobby):
    memory.remember(lobby, "My train leaves at 7 pm")
    memory.remember(lobby, "My sister's name is Clara")
    assert memory.recall(lobby, "When does my train leave?")[0]["complete"]
    neighbour = memory.recall(lobby, "What is my neighbour's name?")
    assert neighbour[0]["text"] == "My sister's name is Clara" and not neighbour[0]["complete"]
    assert memory.recall(lobby, "What do you remember about my grandfather?") == []


def test_a_fact_is_said_back_to_the_person():
    assert memory.second_person("My bike is red and I am glad") \
        == "Your bike is red and you are glad"


def test_conversations_keep_a_bounded_window(lobby):
    for i in range(20):
        conversation.append(lobby, "s", "user", f"turn {i}")
    window = conversation.window(lobby, "s", size=3)
    assert [t["text"] for t in window] == ["turn 17", "turn 18", "turn 19"]
    assert conversation.window(lobby, "other") == []


def test_the_ledger_counts_and_returns_stored_replies(lobby):
    assert ledger.lookup(lobby, "r1") is None
    ledger.record(lobby, "r1", "ROBIN", "s", {"reply": "hi"})
    assert ledger.lookup(lobby, "r1")["message"] == {"reply": "hi"}
    assert ledger.size(lobby) == 1


def test_memory_forgets_the_oldest_beyond_its_bound(lobby, bounds, monkeypatch):
    monkeypatch.setattr(bounds, "max_memories", 5)
    for number in range(1, 13):
        assert memory.remember(lobby, f"fact {number} about tea") == number
    assert list(lobby.memory.entries.keys()) == [8, 9, 10, 11, 12]
    assert lobby.memory.size() == 5
    assert [m["id"] for m in memory.recall(lobby, "tea", limit=10)] == [12, 11, 10, 9, 8]
