"""BABS's memory: what the system was told to remember, recalled by ranked keywords.

Memories are entries of an `LOBTree` (id → text, session, time) with a `Length` counter;
recall scores each memory by how many of the query's content words (stemmed, so "leave"
finds "leaves") it contains, newer first among equals, and says whether the best ones cover
*every* content word of the query (`complete`): "what is my uncle's name?" is not answered
by "my aunt's name is Rosa", only pointed to as the closest thing remembered. At most `max_memories` are kept (`[memory] max_entries` in
batos.toml, see `kernel.limits`): remembering one more forgets the oldest, so neither the
image nor the scan of every recall grows without bound.
"""
import re
import time

from kernel.limits import LIMITS

WORD = re.compile(r"[a-z0-9]+")
STOP_WORDS = frozenset("""a about an and any are at be best can did do does ever for have i
in is it know me my of on or our s tell the to told was we what when where which who why you
your remember recall remembered recollect said say mentioned anything something""".split())
SUFFIXES = ("ing", "ed", "es", "s")
PRONOUNS = {"my": "your", "i": "you", "me": "you", "mine": "yours", "am": "are",
            "our": "your", "we": "you", "us": "you", "myself": "yourself"}


def stem(word):
    """A crude stem: `leaves`, `leaving`, `named` → `leav`, `leav`, `nam`; short words stay."""
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[:-len(suffix)].rstrip("e")
    return word.rstrip("e") if len(word) > 3 else word


def words(text):
    """The stemmed lower-case content words of `text`."""
    return {stem(w) for w in WORD.findall(text.lower()) if w not in STOP_WORDS}


def second_person(text):
    """A fact as told ("my bike is red") said back to the person ("your bike is red")."""
    return re.sub(r"\b(my|i|me|mine|am|our|we|us|myself)\b",
                  lambda m: _cased(PRONOUNS[m.group(0).lower()], m.group(0)), text,
                  flags=re.I)


def _cased(word, like):
    return word.capitalize() if like[:1].isupper() and like != "I" else word


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
    """The memories that best match `query`, best first, as plain dicts with a score and
    whether they hold every content word of the query (`complete`)."""
    wanted = words(query)
    if not wanted:
        return []
    scored = []
    for number, entry in lobby.memory.entries.items():
        score = len(wanted & words(entry["text"]))
        if score:
            scored.append((score, number, entry))
    scored.sort(key=lambda item: (-item[0], -item[1]))
    return [{"id": n, "text": e["text"], "score": s, "complete": s == len(wanted)}
            for s, n, e in scored[:limit]]
