"""Conversations in the image: one BTree of turns per session, bounded in length and size.

A turn costs the same at turn 1 and at turn 10,000: turns are keyed by their number in an
`IOBTree`, never appended to one growing list, and prompts read a bounded window of the most
recent turns. A session keeps at most `max_turns` turns (`[conversation]` in batos.toml, see
`kernel.limits`): appending one more drops the oldest, so a runaway conversation cannot grow
the image; turn numbers keep counting, so the newest number says how many turns there were.
A turn's text is cut to `max_turn_chars` characters, saying how much was cut.
"""
import time

from BTrees.IOBTree import IOBTree

from kernel.limits import LIMITS, clip


def turns_of(lobby, session, create=False):
    """The session's turn tree (made on first use when `create`)."""
    sessions = lobby.history.sessions
    turns = sessions.get(session)
    if turns is None and create:
        turns = sessions[session] = IOBTree()
    return turns


def append(lobby, session, role, text, persona=None, max_turns=None, max_chars=None):
    """Add one turn (inside the request's transaction), dropping the session's oldest turns
    beyond `max_turns`; return its number. Bounds default to the process's `LIMITS`."""
    max_turns = max_turns or LIMITS.max_turns
    turns = turns_of(lobby, session, create=True)
    number = (turns.maxKey() + 1) if turns else 1
    turns[number] = {"role": role, "persona": persona, "time": time.time(),
                     "text": clip(text, max_chars or LIMITS.max_turn_chars)}
    for old in list(turns.keys(max=number - max_turns)):
        del turns[old]
    return number


def window(lobby, session, size=None):
    """The last `size` turns of a session (default: the configured window), oldest first."""
    size = size or LIMITS.window_turns
    turns = turns_of(lobby, session)
    if not turns:
        return []
    last = turns.maxKey()
    return [dict(turn) for turn in turns.values(min=max(1, last - size + 1))]
