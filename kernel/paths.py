"""Lobby paths: how people, commands and messages name objects in the Living Image.

A path is a dotted chain of slot names starting at the lobby — `personas.BRICK`,
`shapes.rect` — optionally written with a leading `lobby.`; `lobby` alone is the lobby.
Each step reads a slot (own or inherited), never a method.
"""
from kernel.errors import PathError
from kernel.uvm import UvmObject

LOBBY = "lobby"


def split(path):
    """`'lobby.a.b'` → `['a', 'b']`; a `PathError` for anything that is not a path."""
    if not isinstance(path, str) or not path.strip():
        raise PathError("an object path must be a non-empty dotted name such as shapes.rect")
    parts = path.strip().split(".")
    if parts[0] == LOBBY:
        parts = parts[1:]
    for part in parts:
        if not part.isidentifier() or part.startswith("_"):
            raise PathError(f"{path!r} is not an object path (bad step {part!r})")
    return parts


def resolve(lobby, path):
    """The object at `path`, or a `PathError` naming the first step that is missing."""
    obj = lobby
    walked = [LOBBY]
    for part in split(path):
        found = obj.lookup(part) if isinstance(obj, UvmObject) else None
        if found is None or found[2]:
            raise PathError(f"no object at {path!r}: {'.'.join(walked)} has no slot {part!r}")
        obj = found[1]
        walked.append(part)
    if not isinstance(obj, UvmObject):
        raise PathError(f"{path!r} is a {type(obj).__name__} value, not an object")
    return obj


def parent_and_name(lobby, path):
    """For a path about to be created: the existing parent object and the new slot name."""
    parts = split(path)
    if not parts:
        raise PathError("the lobby itself cannot be created or replaced")
    parent = resolve(lobby, ".".join([LOBBY] + parts[:-1]))
    return parent, parts[-1]
