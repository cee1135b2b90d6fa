"""The request ledger: how each request's effects commit exactly once.

Every request a worker executes writes its ledger entry (request id → the reply it gave) in
the same transaction as its effects. A request delivered again — after a worker died, an
orchestrator re-dispatch or a client retry — finds its entry and gets the stored reply; its
commands never run twice. Two workers racing on one id collide on the same BTree key, so the
ZEO server lets only one commit.
"""
import time


def lookup(lobby, request_id):
    """The stored entry of `request_id`, or None."""
    entry = lobby.ledger.entries.get(request_id)
    return dict(entry) if entry is not None else None


def record(lobby, request_id, persona, session, message):
    """Enter `request_id` with the reply `message` (call inside the request's transaction)."""
    lobby.ledger.entries[request_id] = {"persona": persona, "session": session,
                                        "time": time.time(), "message": message}
    lobby.ledger.size.change(1)


def size(lobby):
    """How many requests the image has answered."""
    return lobby.ledger.size()
