"""BABS's memory: what the system was told to remember, recalled by ranked keywords.

Memories are entries of an `LOBTree` (id → text, session, time) with a `Length` counter;
recall scores each memory by how many of the query's words it contains (newer first among
equals) and returns the best few. At most `max_memories` are kept (`[memory] max_entries` in
batos.toml, see `kernel.limits`): remembering one more forgets the oldest, so neither the
image nor the scan of every recall grows without bound.
"""
import re
import time

from kernel.limits import LIMITS

WORD = re.compile(r"[a-z0-9]+")
STOP_WORDS = frozenset("a an and are do does for i in is it me my of on or the to was what "
                       "who you".split())


def words(text):
    """The lower-case keywords of `text`."""
    return {w for w in WORD.findall(text.lower()) if w not in STOP_WORDS}


def remember(lobby, text, session=None, keep=None):
    """Store a memory (inside the request's transaction), forgetting the oldest beyond `keep`
    (default: the process's `LIMITS.max_memories`); return its id."""
    memory = lobby.memory
    number = (memory.entries.maxKey() + 1) if memory.entries else 1
    memory.entries[number] = {"text": text, "session": session, "time": time.time()}
    memory.size.change(1)
    for old in list(memory.entries.keys(max=number - (keep or LIMITS.max_memories))):
        del memory.entries[old]
        memory.size.change(-1)
    return number


def recall(lobby, query, limit=3):
    """The memories that best match `query`, best first, as plain dicts with a score."""
    wanted = words(query)
    if not wanted:
        return []
    scored = []
    for number, entry in lobby.memory.entries.items():
        score = len(wanted & words(entry["text"]))
        if score:
            scored.append((score, number, entry))
    scored.sort(key=lambda item: (-item[0], -item[1]))
    return [{"id": n, "text": e["text"], "score": s} for s, n, e in scored[:limit]]
