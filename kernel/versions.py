"""Versions: every state an object's slots and a method's source have had, and revert.

The image's history is ZODB's own: `DB.history(oid, size)` lists the revisions of one record
(newest first, each with its transaction's id, time, user and note), and a historical view
(`kernel.timetravel.View`) reads the objects as each revision left them.

- `object_versions(image, path)`: the revisions of the object's own record — its slots (and
  parents) after each transaction that changed them, with the slots it changed.
- `method_versions(image, path, selector)`: each distinct state of the selector in the
  method table of the object that holds it — every `Method` it was bound to (source and
  provenance: persona, model, audit verdict, attempts, mandate) and every removal. A method
  table is a BTree of its own (`kernel.uvm.MethodTable`, with buckets of their own once it is
  large), so the candidate moments are the revisions of the table's records; each is read in
  a view and consecutive moments with the same `Method` record are one version.
- `revert(image, path, selector, to)`: ONE new transaction that installs an earlier version's
  source again (audited again by the guardian, its original provenance kept — a provisional
  version stays provisional (`kernel.dnu`) — with `reverted_to` saying who reverted it and
  to what) or removes the method. Unlike ZODB's undo of the transaction that installed
  it — refused once a later transaction changed the same method table, e.g. another method
  learned on the same object — a revert always applies to the image as it is, touches only
  that selector, and is itself undone like any transaction (`batos log`, `/undo`).

Versions are numbered from 1, oldest first; `source_diff` gives the unified diff between two.
"""
import difflib
import json
import logging

from BTrees.OOBTree import OOBTree
from ZODB.POSException import POSKeyError
from ZODB.utils import p64, u64

from kernel import paths, timetravel
from kernel.errors import BatosError, TooLarge
from kernel.methods import Method
from kernel.values import plain

log = logging.getLogger(__name__)

ALL = 1_000_000  # "every revision" for `DB.history`
REMOVE = "none"  # `revert --to none`: remove the method


class NoVersions(BatosError):
    """The object never had the method (or history of it is gone). Final."""


class BadVersion(BatosError):
    """The version asked for is not one `batos history` lists. Final."""


class VersionsMoved(BatosError):
    """The method changed (another process) between reading its versions and reverting it;
    nothing was changed. Final for this revert — retrying its transaction meets the same
    change — but running the command again reads the versions afresh."""


# -- transactions -------------------------------------------------------------------------------

def _text(value):
    """Transaction metadata arrives as bytes from the storage; show it as text."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")


def _revision(entry):
    """Plain data of one `DB.history` entry: the transaction that wrote a revision."""
    tid = entry["tid"]
    return {"tid": tid.hex(), "time": timetravel.tid_text(tid),
            "user": _text(entry.get("user_name")), "note": _text(entry.get("description"))}


def _view_at(image, tid):
    """A view of the image as transaction `tid` left it. Not refused for a revision older
    than the last pack's bound: the revisions `DB.history` still lists are exact, and what
    a pack removed around them reads as removed."""
    return timetravel.View(image, timetravel.When(tid.hex(), p64(u64(tid) + 1), "tid"),
                           bounded=False)


def _current(image, fn):
    """`fn(lobby)` on the image as it is now, in a transaction that changes nothing."""
    with image.transaction(dry_run=True) as lobby:
        return fn(lobby)


# -- an object's slots --------------------------------------------------------------------------

def object_versions(image, path, limit=20):
    """The newest `limit` revisions of the object at `path`, oldest first, numbered from
    its first: slots, parents and the slots each revision changed, with who, when and the
    transaction note."""
    oid = _current(image, lambda lobby: paths.resolve(lobby, path)._p_oid)
    entries = list(reversed(image.db.history(oid, size=ALL)))  # oldest first
    first = max(0, len(entries) - limit)
    previous = _object_state(image, oid, entries[first - 1]["tid"]) if first else None
    versions = []
    for number, entry in enumerate(entries[first:], start=first + 1):
        state = _object_state(image, oid, entry["tid"])
        versions.append({"version": number, **_revision(entry), **state,
                         "changed": _changed(previous, state)})
        previous = state
    versions[-1]["current"] = True
    return {"path": path, "oid": f"{u64(oid):#x}", "versions": versions, "older": first > 0}


def _object_state(image, oid, tid):
    """Slots and parents of object `oid` as transaction `tid` left them (a value a pack
    removed reads as such)."""
    with _view_at(image, tid) as past:
        obj = past.connection.get(oid)
        try:
            return {"slots": {name: _shown(value) for name, value in
                              sorted(obj.slots().items())},
                    "parents": [parent.label for parent in obj.parents]}
        except POSKeyError:
            return {"slots": {}, "parents": [], "gone": True}


def _shown(value):
    """A slot value as plain data, or one line saying why it cannot be shown."""
    try:
        return plain(value)
    except TooLarge as exc:
        return f"<{exc}>"
    except POSKeyError:
        return "<removed by a pack>"


def _changed(previous, state):
    """The names of the slots that differ between two states (all of them for the first),
    "(parents)" when the parents changed."""
    if previous is None:
        return sorted(state["slots"])
    names = sorted(name for name in set(previous["slots"]) | set(state["slots"])
                   if previous["slots"].get(name, _ABSENT) != state["slots"].get(name, _ABSENT))
    if previous["parents"] != state["parents"]:
        names.append("(parents)")
    return names


_ABSENT = object()


# -- a method's source --------------------------------------------------------------------------

def method_versions(image, path, selector, limit=None):
    """Every version of `selector` on the object at `path` (or on the ancestor that holds it
    now), oldest first; `limit` keeps the newest. A `NoVersions` when it never had one."""
    holder_oid, holder, table_oid, inherited = _current(image, lambda lobby: _holder(
        lobby, path, selector))
    if table_oid is None:
        raise NoVersions(f"{path} has never had a method {selector!r} (it has no methods)")
    versions = _table_versions(image, table_oid, selector)
    if not versions:
        record = timetravel.packed_bound(image)
        raise NoVersions(f"{path} has never had a method {selector!r}" + (
            f" since {timetravel.tid_text(bytes.fromhex(record['before']))} (history before "
            "that was removed by batos pack)" if record else ""))
    for number, version in enumerate(versions, 1):
        version["version"] = number
    versions[-1]["current"] = True
    shown = versions if limit is None else versions[-limit:]
    return {"path": path, "selector": selector, "holder": holder, "inherited": inherited,
            "holder_oid": f"{u64(holder_oid):#x}", "versions": shown,
            "older": len(shown) < len(versions)}


def _holder(lobby, path, selector):
    """The object whose own method table holds `selector` now (the object at `path` when
    none does), its label, its table's oid and whether it is an ancestor."""
    start = obj = paths.resolve(lobby, path)
    found = obj.lookup(selector)
    if found is not None and found[2]:
        obj = found[0]
    table = obj._methods
    return (obj._p_oid, obj.label, (table._p_oid if table is not None else None),
            obj is not start)


def _table_versions(image, table_oid, selector):
    """The distinct states of `selector` over the revisions of a method table's records
    (the table, and the buckets and inner nodes found in any of its states), oldest first."""
    revisions, states, known, pending = {}, {}, set(), [table_oid]
    while pending:  # every record the table's items ever lived in, and each of its moments
        oid = pending.pop()
        known.add(oid)
        for entry in image.db.history(oid, size=ALL):
            revisions.setdefault(entry["tid"], entry)
        for tid in sorted(set(revisions) - set(states)):
            with _view_at(image, tid) as past:
                table = past.connection.get(table_oid)
                states[tid] = _method_state(table, selector)
                pending += [node for node in _nodes(table)
                            if node not in known and node not in pending]
    versions, last = [], None
    for tid in sorted(revisions):
        state = states[tid]
        if state is None and not versions:
            continue  # not defined yet
        key = state["method_oid"] if state else None
        if versions and key == last:
            continue
        versions.append({**_revision(revisions[tid]), **(state or REMOVED)})
        last = key
    return versions


REMOVED = {"state": "removed", "source": None, "provenance": None, "method_oid": None}


def _nodes(tree):
    """The oids of the records a BTree's items live in besides the tree's own: its inner
    trees and buckets (none while it is small enough to keep its items inline)."""
    tree._p_activate()
    state = tree.__getstate__()
    if state is None or len(state) == 1:
        return []
    found, stack = [], list(state[0][::2])
    while stack:
        node = stack.pop()
        found.append(node._p_oid)
        if isinstance(node, OOBTree):
            node._p_activate()
            inner = node.__getstate__()
            if inner is not None and len(inner) == 2:
                stack.extend(inner[0][::2])
    return found


def _method_state(table, selector):
    """What `selector` is bound to in a (historical) method table: None for nothing."""
    value = table.get(selector)
    if value is None:
        return None
    oid = getattr(value, "_p_oid", None)
    if isinstance(value, Method):
        return {"state": "defined", "source": value.source,
                "provenance": plain(dict(value.provenance)), "method_oid": f"{u64(oid):#x}"}
    return {"state": "primitive", "source": None,
            "provenance": {"primitive": getattr(value, "name", repr(value))},
            "method_oid": f"{u64(oid):#x}" if oid else repr(value)}


# -- revert ---------------------------------------------------------------------------------------

def revert(image, path, selector, to=None, user="batos", record=None):
    """Install version `to` (a number from `method_versions`, or `REMOVE`; default: the
    version before the current one, or removal when there is none) of `selector` again, in
    one new transaction. Returns what was done, with the transaction's note; `record(lobby,
    done)`, if given, runs in the same transaction (a worker's ledger entry)."""
    known = method_versions(image, path, selector)
    versions = known["versions"]
    current = versions[-1]
    target = _target(versions, to)
    if target is None and current["state"] == "removed":
        raise BadVersion(f"{path}.{selector} is removed already (version {current['version']})")
    if target is not None and target["method_oid"] == current["method_oid"]:
        raise BadVersion(f"{path}.{selector} is version {target['version']} already"
                         + ("" if target is current else
                            f" (version {current['version']} is the same method)"))
    if target is not None and target["state"] == "primitive":
        raise BadVersion(f"version {target['version']} of {path}.{selector} is a primitive; "
                         "primitives are the kernel's and are not reinstalled by revert")
    what = (f"version {target['version']}" if target is not None
            else "no method (removed)")
    note = f"revert {path}.{selector} to {what}"
    holder_oid = p64(int(known["holder_oid"], 16))

    def apply(lobby):
        holder = lobby._p_jar.get(holder_oid)
        method = holder._own_methods().get(selector)
        now = f"{u64(method._p_oid):#x}" if getattr(method, "_p_oid", None) else None
        if now != current["method_oid"]:
            raise VersionsMoved(f"{path}.{selector} changed while it was being reverted; run "
                                "batos history and the revert again")
        if target is None:
            holder._remove_method(selector)
            return None
        provenance = {k: v for k, v in (target["provenance"] or {}).items()
                      if k not in ("author", "audit", "created", "reverted_to")}
        provenance["reverted_to"] = {"version": target["version"], "tid": target["tid"],
                                     "created": (target["provenance"] or {}).get("created"),
                                     "by": user}
        author = (target["provenance"] or {}).get("author", user)
        return holder.define(selector, target["source"], author=author, **provenance)

    done = {"path": path, "selector": selector, "holder": known["holder"],
            "to": target["version"] if target is not None else REMOVE,
            "from": current["version"], "note": note,
            "source": target["source"] if target is not None else None}

    def apply_and_record(lobby):
        apply(lobby)
        if record is not None:
            record(lobby, done)

    image.run(apply_and_record, note=note, user=user)
    log.info("%s: %s (was version %s)", user, note, current["version"])
    return done


def _target(versions, to):
    """The version `to` names (None: removal)."""
    if to is None:
        return versions[-2] if len(versions) > 1 and versions[-2]["state"] != "removed" \
            else None
    if str(to).lower() == REMOVE:
        return None
    try:
        number = int(to)
    except (TypeError, ValueError):
        raise BadVersion(f"--to {to!r} is neither a version number (batos history lists them) "
                         f"nor {REMOVE!r}") from None
    found = next((v for v in versions if v["version"] == number), None)
    if found is None:
        raise BadVersion(f"there is no version {number}: the versions are 1 to "
                         f"{versions[-1]['version']}")
    return None if found["state"] == "removed" else found


# -- rendering ------------------------------------------------------------------------------------

def source_diff(older, newer):
    """The unified diff between two versions' sources (a removal is an empty source)."""
    return list(difflib.unified_diff(
        (older.get("source") or "").splitlines(), (newer.get("source") or "").splitlines(),
        f"version {older['version']}", f"version {newer['version']}", lineterm=""))


def method_lines(data, diff=False):
    """Human lines for `method_versions`' result; with `diff`, each version after the first
    as its differences from the one before."""
    lines = [f"{data['path']}.{data['selector']}"
             + (f" (held by {data['holder']})" if data.get("inherited") else "")
             + f": {len(data['versions'])} version(s)"
             + (", older ones not shown" if data["older"] else "")]
    previous = None
    for version in data["versions"]:
        lines.append(_version_head(version) + _provenance_text(version))
        if diff and previous is not None:
            lines += [f"    {line}" for line in source_diff(previous, version)]
        elif version["source"]:
            lines += [f"    | {line}" for line in version["source"].rstrip().splitlines()]
        previous = version
    return lines


def object_lines(data):
    """Human lines for `object_versions`' result."""
    lines = [f"{data['path']} (oid {data['oid']}): {len(data['versions'])} version(s)"
             + (", older ones not shown" if data["older"] else "")]
    for version in data["versions"]:
        lines.append(_version_head(version))
        changed = version["changed"]
        lines.append("    changed: " + (", ".join(changed) if changed else
                                        "no slot (the kernel's own state: methods, label)"))
        for name, value in version["slots"].items():
            mark = "*" if name in changed else " "
            lines.append(f"   {mark} {name} = {_short(value)}")
    return lines


def _version_head(version):
    state = {"defined": "", "removed": "  (removed)", "primitive": "  (primitive)"}.get(
        version.get("state"), "")
    return (f"  v{version['version']}{' (current)' if version.get('current') else ''}  "
            f"{version['time']}  {version['tid']}  {version['user'] or '-'}  "
            f"{version['note']}{state}")


def _provenance_text(version):
    prov = version.get("provenance") or {}
    if version.get("state") != "defined":
        return ""
    audit = prov.get("audit") or {}
    parts = [f"by {prov.get('author', '?')}"]
    if prov.get("model"):
        parts.append(f"model {prov['model']}")
    parts.append(f"audit {'ok' if audit.get('ok') else 'REJECTED'}")
    if prov.get("attempts"):
        parts.append(f"{prov['attempts']} attempt(s)")
    if prov.get("provisional"):
        parts.append("PROVISIONAL")
    if prov.get("confirmed_by"):
        parts.append(f"confirmed by {prov['confirmed_by']}")
    if prov.get("reverted_to"):
        parts.append(f"reverted to v{prov['reverted_to']['version']} by "
                     f"{prov['reverted_to'].get('by')}")
    return "\n    " + ", ".join(parts)


def _short(value, width=64):
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= width else text[:width - 1] + "…"
