"""kernel.ledger: exactly-once replies for the newest requests, without growing forever."""
from kernel import ledger


def record_many(lobby, count, prefix="r", keep=None):
    for number in range(count):
        ledger.record(lobby, f"{prefix}{number}", "ROBIN", "s", {"reply": number}, keep=keep)


def test_the_ledger_keeps_the_newest_entries_and_forgets_the_oldest(lobby, bounds,
                                                                     monkeypatch):
    monkeypatch.setattr(bounds, "ledger_keep", 20)
    record_many(lobby, 1000)
    assert ledger.size(lobby) == 1000  # every request ever answered is counted
    assert 20 <= ledger.held(lobby) <= 22 and ledger.held(lobby) == len(lobby.ledger.entries)
    for number in range(980, 1000):  # the newest are answered from the ledger: exactly once
        assert ledger.lookup(lobby, f"r{number}")["message"] == {"reply": number}
    assert ledger.lookup(lobby, "r0") is None
    assert len(lobby.ledger.order) == ledger.held(lobby)


def test_a_ledger_from_before_the_bound_is_indexed_on_its_next_entry(lobby):
    record_many(lobby, 30, keep=1000)
    del lobby.ledger.order, lobby.ledger.held  # as in images made before the bound existed
    assert ledger.held(lobby) == 30
    record_many(lobby, 1, prefix="new", keep=10)
    assert ledger.held(lobby) == 10 and ledger.lookup(lobby, "new0") is not None
    assert ledger.lookup(lobby, "r21") is not None and ledger.lookup(lobby, "r20") is None
