"""Conversations in the image: one BTree of turns per session.

A turn costs the same at turn 1 and at turn 10,000: turns are keyed by their number in an
`IOBTree`, never appended to one growing list, and prompts read a bounded window of the most
recent turns.
"""
import time

from BTrees.IOBTree import IOBTree


def turns_of(lobby, session, create=False):
    """The session's turn tree (made on first use when `create`)."""
    sessions = lobby.history.sessions
    turns = sessions.get(session)
    if turns is None and create:
        turns = sessions[session] = IOBTree()
    return turns


def append(lobby, session, role, text, persona=None):
    """Add one turn (inside the request's transaction); return its number."""
    turns = turns_of(lobby, session, create=True)
    number = (turns.maxKey() + 1) if len(turns) else 1
    turns[number] = {"role": role, "persona": persona, "text": text, "time": time.time()}
    return number


def window(lobby, session, size=8):
    """The last `size` turns of a session, oldest first."""
    turns = turns_of(lobby, session)
    if not turns:
        return []
    last = turns.maxKey()
    return [dict(turn) for turn in turns.values(min=max(1, last - size + 1))]
