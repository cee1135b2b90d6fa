"""UvmObject: the one class of the Living Image's entities.

An object is its *slots* (plain attributes whose names do not start with `_`), an ordered
tuple of *parents* it delegates to (Io-style differential inheritance: `clone()` makes a new
object whose only parent is the receiver), and its own *methods* (selector → `Method` or
`Primitive`). Slots live in the instance's own `__dict__`, so reading one costs a plain
attribute read; only a miss reaches `__getattr__`, which walks the parents once, in order,
cycle-safe.

Names that start with `_` (`_p_*`, `_v_*`, dunders and the kernel's own `_parents`,
`_methods`, `_label`) are never slots and never reach `_doesNotUnderstand`, so pickling and
Python's protocols keep working.

The Persistence Covenant: every method that changes state ends with `self._p_changed = True`.
Assigning a slot marks the object changed already; the Covenant matters for in-place mutation.

Only image values enter a slot (`kernel.slot_values.admit`, on every assignment): plain data
within size bounds, and image objects; lists and dicts become containers owned by the object,
so changing one in place marks its owner changed. Parents and labels are the kernel's:
`clone(**slots)` makes slots only.

Two transactions that change *different* slots of one object both commit:
`_p_resolveConflict` merges the three states key by key on the ZEO server; the method table
is a BTree of its own, so concurrent definitions of different selectors merge there. The
same slot changed to different values stays a `ConflictError`, and the loser retries.
"""
import io
import keyword
import logging
import pickle
import weakref

import persistent
from BTrees.OOBTree import OOBTree, OOBucket
from ZODB.ConflictResolution import PersistentReference
from ZODB.POSException import ConflictError

from kernel import methods, sandbox, slot_values
from kernel.errors import MessageNotUnderstood, SlotError

log = logging.getLogger(__name__)

_NO_CACHE = {}
# The image objects made in this process, by identity, while they live: a method's disposable
# process refers to those not yet stored this way (kernel.isolation).
UNSAVED = weakref.WeakValueDictionary()
SINGLE_CHAIN_LIMIT = 32  # objects `lookup` follows before it guards against cycles

# How many times, in this process, something happened that may change what a lookup finds: a
# slot set or deleted, parents or a method table changed, an object's state loaded or
# invalidated (ZODB calls `_p_invalidate` for another process's commit, an abort, a rolled back
# savepoint). A lookup cached under an older generation is found again.
_generation = 0


def lineage_changed():
    """Invalidate every cached lookup of this process (see `_generation`)."""
    global _generation
    _generation += 1


class MethodBucket(OOBucket):
    """A leaf of a `MethodTable`. A table past one leaf keeps its leaves as records of their
    own, so an install elsewhere may change only a leaf: its invalidation, too, invalidates
    the cached lookups."""

    def _p_invalidate(self):
        lineage_changed()
        super()._p_invalidate()


class MethodTable(OOBTree):
    """An object's own methods, selector → `Method`/`Primitive`: a BTree of its own, so that
    concurrent installs of different selectors merge on the server (in C) without touching
    the object. Any change to it made elsewhere (another process, an abort, a rolled-back
    savepoint) reaches this process as an invalidation of the table or one of its
    `MethodBucket`s, which invalidates the cached lookups."""

    _bucket_type = MethodBucket

    def _p_invalidate(self):
        lineage_changed()
        super()._p_invalidate()


class UvmObject(persistent.Persistent):
    """An entity of the Living Image: slots, ordered parents and methods, all persistent."""

    _parents = ()
    _methods = None
    _label = None

    def __init__(self, *, parents=(), label=None, **slots):
        sandbox.note_created(self)
        UNSAVED[id(self)] = self
        if parents:
            self.set_parents(parents)
        if label is not None:
            self._label = label
        for name, value in slots.items():
            check_slot_name(name)
            setattr(self, name, value)

    # -- slots -------------------------------------------------------------------------------

    def __setattr__(self, name, value):
        if not name.startswith("_"):
            check_slot_name(name)
            value = slot_values.admit(value, self, f"slot {name!r}")
        if not name.startswith(("_v_", "_p_")):
            lineage_changed()
        super().__setattr__(name, value)

    def __delattr__(self, name):
        if not name.startswith(("_v_", "_p_")):
            lineage_changed()
        super().__delattr__(name)

    def __setstate__(self, state):
        lineage_changed()
        super().__setstate__(state)
        slots = self.__dict__
        for name, value in slots.items():
            if type(value) in (list, dict, tuple) and not name.startswith("_"):
                slots[name] = slot_values.own(value, self)

    def _p_invalidate(self):
        lineage_changed()
        super()._p_invalidate()

    def slot_names(self):
        """The names of this object's own slots (not its parents')."""
        self._p_activate()
        return [name for name in self.__dict__ if not name.startswith("_")]

    def slots(self):
        """This object's own slots as a new dict."""
        self._p_activate()
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    # -- parents and delegation -------------------------------------------------------------

    @property
    def parents(self):
        """The ordered parents this object delegates to."""
        return tuple(self._parents)

    def set_parents(self, parents):
        """Replace the parent list; every parent must be a UvmObject."""
        parents = tuple(parents)
        for parent in parents:
            if not isinstance(parent, UvmObject):
                raise SlotError(f"a parent must be a UvmObject, not {type(parent).__name__}")
        self._parents = parents

    def clone(self, **slots):
        """A new object whose only parent is this one, with `slots` as its own slots (slots
        only: a parent list or a label is the kernel's to give)."""
        made = UvmObject(parents=(self,))
        for name, value in slots.items():
            setattr(made, name, value)
        return made

    def _lineage(self):
        """This object, then its ancestors depth-first in parent order, each once."""
        seen = set()
        stack = [self]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            obj._p_activate()
            yield obj
            stack.extend(reversed(obj.__dict__.get("_parents", ())))

    def lookup(self, selector):
        """Find `selector` along the lineage: `(holder, value, is_method)` or None.

        The hot path of every inherited slot read and every method call: along a chain of
        single parents (the common shape) it needs no bookkeeping; where an object has several
        parents, or a chain runs suspiciously long (a cycle), the full walk takes over.
        """
        if selector[:1] == "_":
            return None
        generation = _generation  # read before the walk: a change during it invalidates it
        entry = self.__dict__.get("_v_lookup", _NO_CACHE).get(selector)
        if entry is not None and entry[0] == generation:
            return entry[1]
        found = self._find(selector)
        cache = self.__dict__.get("_v_lookup")
        if cache is None:
            cache = self._v_lookup = {}
        cache[selector] = (generation, found)
        return found

    def _find(self, selector):
        """`lookup` without its cache."""
        obj = self
        for _ in range(SINGLE_CHAIN_LIMIT):
            obj._p_activate()
            state = obj.__dict__
            if selector in state:
                return obj, state[selector], False
            own = state.get("_methods")
            if own is not None:
                method = own.get(selector)
                if method is not None:
                    return obj, method, True
            parents = state.get("_parents")
            if not parents:
                return None
            if len(parents) > 1:
                break
            obj = parents[0]
        return self._walk(selector)

    def _walk(self, selector):
        """`lookup` over the whole lineage, as `_lineage` orders it, each object once."""
        for obj in self._lineage():
            state = obj.__dict__
            if selector in state:
                return obj, state[selector], False
            own = state.get("_methods")
            if own is not None and selector in own:
                return obj, own[selector], True
        return None

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        value = self._resolve(name)
        if name not in RESERVED_NAMES and name not in UvmObject.__dict__:
            setattr(UvmObject, name, Selector(name))  # the next read skips this detour
        return value

    def _resolve(self, name):
        """The value of message `name`: an inherited slot, or a method bound to this object."""
        found = self.lookup(name)
        if found is None:
            raise MessageNotUnderstood(self.label, name)
        _holder, value, is_method = found
        return value.bind(self) if is_method else value

    def responds_to(self, selector):
        """True when a slot or method `selector` is found on this object or an ancestor."""
        return not selector.startswith("_") and self.lookup(selector) is not None

    # -- messages ------------------------------------------------------------------------------

    def send(self, selector, *args):
        """Send a message: call the method `selector` with `args`, or read slot `selector`.

        A miss goes to `_doesNotUnderstand`, the hook of self-creation.
        """
        if not isinstance(selector, str) or not selector.isidentifier() \
                or selector.startswith("_"):
            raise SlotError(f"{selector!r} is not a selector")
        found = self.lookup(selector)
        if found is None:
            return self._doesNotUnderstand(selector, args)
        _holder, value, is_method = found
        if is_method:
            return value.bind(self)(*args)
        if args:
            raise SlotError(f"{self.label}.{selector} is a slot; a slot takes no arguments")
        return value

    def _doesNotUnderstand(self, selector, args):
        """The miss: a `MessageNotUnderstood` naming receiver, selector and the call's
        arguments — the raw material of a mandate (see `kernel.dnu`)."""
        raise MessageNotUnderstood(self.label, selector, self._p_oid, list(args))

    # -- methods -------------------------------------------------------------------------------

    def define(self, selector, source, author="kernel", **provenance):
        """Audit and install `source` as this object's method `selector`; return the Method."""
        check_slot_name(selector)
        if selector in self.slot_names():
            raise SlotError(f"{self.label} has a slot {selector!r}; remove it before "
                            "defining a method of that name")
        return methods.install(self, selector, source, author=author, **provenance)

    def _own_methods(self):
        """This object's own selector → Method/Primitive mapping (read only by convention)."""
        methods = self._methods
        return methods if methods is not None else {}

    def _install_method(self, selector, method):
        """Store a method under `selector` in this object's method table, a `MethodTable`
        made on the first install (a plain OOBTree from an older image is replaced by one)."""
        table = self._methods
        if type(table) is not MethodTable:
            self._methods = table = MethodTable(table or {})
        table[selector] = method
        lineage_changed()

    def _remove_method(self, selector):
        """Remove `selector` from this object's own method table (a revert to before it was
        defined, `kernel.versions`); a `KeyError` when it has no such method of its own."""
        table = self._methods
        if table is None or selector not in table:
            raise KeyError(selector)
        del table[selector]
        lineage_changed()

    # -- description ---------------------------------------------------------------------------

    @property
    def label(self):
        """A human name for messages: the path it was made at, else its oid."""
        label = self._label
        if label:
            return label
        oid = self._p_oid
        return f"<object {int.from_bytes(oid, 'big'):#x}>" if oid else "<new object>"

    def describe(self):
        """Own slots, parents (by label) and methods (with provenance) as plain data."""
        return {"label": self.label,
                "slots": self.slots(),
                "parents": [p.label for p in self.parents],
                "methods": {s: m.describe() for s, m in sorted(self._own_methods().items())}}

    def __repr__(self):
        return f"<UvmObject {self.label}>"

    # -- conflict resolution -------------------------------------------------------------------

    def _p_resolveConflict(self, old_state, saved_state, new_state):
        """Three-way merge of two concurrent changes, run by the ZEO server on a conflict."""
        return merge_states(old_state, saved_state, new_state)


sandbox.allow_writes(UvmObject)
slot_values.register_image_object(UvmObject)

RESERVED_NAMES = frozenset(name for name in dir(UvmObject) if not name.startswith("_"))


class Selector:
    """A class-level entry for a message some image object has answered in this process.

    Without it, every method call and inherited slot read first fails the normal attribute
    lookup (an `AttributeError` made and caught inside Python) before `__getattr__` runs the
    lineage walk; with it, the walk runs at once. It is a non-data descriptor, so an object's
    own slot of the same name still wins, and an object that does not answer the message
    still raises `MessageNotUnderstood`. Entries are never removed: they hold no state.
    """

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __get__(self, obj, cls=None):
        if obj is None:
            return self
        entry = obj.__dict__.get("_v_lookup", _NO_CACHE).get(self.name)
        if entry is not None and entry[0] == _generation and entry[1] is not None:
            _holder, value, is_method = entry[1]  # a cached lookup: no walk at all
            return value.bind(obj) if is_method else value
        return obj._resolve(self.name)


def check_slot_name(name):
    """Refuse names that cannot be slots: non-identifiers, `_` names, keywords, the kernel's API."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise SlotError(f"{name!r} is not a valid slot name (it must be a Python identifier)")
    if name.startswith("_"):
        raise SlotError(f"{name!r} starts with '_': such names are never slots")
    if name in RESERVED_NAMES:
        raise SlotError(f"{name!r} is reserved by the kernel (one of {sorted(RESERVED_NAMES)})")


def _fingerprint(value):
    """`value` as bytes that are equal exactly when two slot values are the same image value:
    its pickle, references by oid. Costs time linear in the pickle, however many shared
    references the value holds (comparing the values themselves can cost their expansion),
    and NaN has one fingerprint (NaN is unequal even to itself)."""
    stream = io.BytesIO()
    pickler = pickle.Pickler(stream, protocol=3)
    pickler.persistent_id = _reference
    try:
        pickler.dump(value)
    except Exception as exc:  # a value that does not pickle here cannot be merged: conflict
        raise ConflictError(f"cannot compare a slot value to merge it ({exc})") from None
    return stream.getvalue()


def _reference(obj):
    """How a merge names an object the value refers to: by oid (or, unsaved, by identity)."""
    if isinstance(obj, PersistentReference):
        return ("oid", obj.oid)
    if isinstance(obj, persistent.Persistent):
        return ("oid", obj._p_oid) if obj._p_oid is not None else ("new", id(obj))
    return None


def merge_states(old, saved, new):
    """Merge `new` into `saved` relative to their common ancestor `old`, key by key.

    A key changed on one side only takes that side's value; changed on both sides to the
    same value, fine; to different values, a `ConflictError`. (Method tables are BTrees of
    their own, which merge concurrent installs of different selectors themselves.) Values are
    compared by `_fingerprint`, so a merge on the ZEO server costs time linear in the states,
    whatever they hold.
    """
    if not all(isinstance(s, dict) for s in (old, saved, new)):
        raise ConflictError("cannot merge states that are not dicts")
    merged = dict(saved)
    for key in set(old) | set(saved) | set(new):
        o, s, n = (_fingerprint(state[key]) if key in state else None
                   for state in (old, saved, new))
        if s == n or o == n:
            continue
        if o == s:
            if key not in new:
                merged.pop(key, None)
            else:
                merged[key] = new[key]
        else:
            raise ConflictError(f"slot {key!r} changed to different values concurrently")
    return merged
