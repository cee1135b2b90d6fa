"""The request ledger: how each request's effects commit exactly once.

Every request a worker executes writes its ledger entry (request id → the reply it gave) in
the same transaction as its effects. A request delivered again — after a worker died, an
orchestrator re-dispatch or a client retry — finds its entry and gets the stored reply; its
commands never run twice. Two workers racing on one id collide on the same BTree key, so the
ZEO server lets only one commit.

The ledger keeps the newest `keep` entries (`[ledger] keep` in batos.toml, see
`kernel.limits`), so it does not grow with every request forever: an `OOTreeSet` of
`(time, id)` orders the entries and a `Length` counts them; once the count passes `keep` by a
tenth, the oldest are dropped in one batch (batches, not one per request, so concurrent
requests seldom contend for the same oldest entries). Exactly-once holds for every id among
the newest `keep`; `keep` must exceed the requests answered while a redelivery can still come.
`size` counts every request ever answered.
"""
import itertools
import json
import math
import time

from BTrees.Length import Length
from BTrees.OOBTree import OOTreeSet

from kernel.limits import LIMITS


def lookup(lobby, request_id):
    """The stored entry of `request_id`, or None."""
    return _entry(lobby.ledger.entries.get(request_id))


def _entry(stored):
    """An entry as stored — JSON text, or a dict in images from before — as a new dict."""
    if stored is None:
        return None
    return json.loads(stored) if isinstance(stored, str) else dict(stored)


def record(lobby, request_id, persona, session, message, keep=None):
    """Enter `request_id` with the reply `message` (call inside the request's transaction),
    dropping the oldest entries once more than `keep` (default: `LIMITS.ledger_keep`) are held."""
    book = lobby.ledger
    order, count = index(book)
    now = _stamp()
    # one string per entry: a leaf of 30 entries pickles as 30 objects, not as every dict,
    # list and string inside 30 replies (each new entry re-stores its whole leaf)
    book.entries[request_id] = json.dumps({"persona": persona, "session": session,
                                           "time": now, "message": message},
                                          ensure_ascii=False, separators=(",", ":"))
    book.size.change(1)
    order.add((now, request_id))
    count.change(1)
    _drop_oldest(book, order, count, keep or LIMITS.ledger_keep)


def index(book):
    """The ledger's `(time, id)` order and count of held entries, made from the entries the
    first time (images from before the ledger was bounded have neither)."""
    own = book.slots()
    if "order" not in own:
        book.order = OOTreeSet((_entry(stored)["time"], request_id)
                               for request_id, stored in book.entries.items())
        book.held = Length(len(book.order))
        return book.order, book.held
    return own["order"], own["held"]


_last_stamp = 0.0


def _stamp():
    """The time now, strictly later than this process's previous stamp (the clock's
    resolution can give two quick entries the same time, and then their order is lost)."""
    global _last_stamp
    now = time.time()
    _last_stamp = now if now > _last_stamp else math.nextafter(_last_stamp, math.inf)
    return _last_stamp


def _drop_oldest(book, order, count, keep):
    """Once the entries exceed `keep` by a tenth of it, drop the oldest back down to `keep`."""
    excess = count() - keep
    if excess < max(1, keep // 10):
        return
    for stamp in list(itertools.islice(order, excess)):
        order.remove(stamp)
        book.entries.pop(stamp[1], None)
    count.change(-excess)


def held(lobby):
    """How many entries the ledger holds now (at most `keep` plus a tenth of it)."""
    count = lobby.ledger.slots().get("held")
    return count() if count is not None else len(lobby.ledger.entries)


def size(lobby):
    """How many requests the image has answered."""
    return lobby.ledger.size()
