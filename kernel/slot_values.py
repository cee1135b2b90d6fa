"""Only image values enter the image: what a slot may hold, and containers that know their owner.

A slot value is pickled into the Living Image and unpickled by every process that loads its
object, and by the ZEO server when it merges concurrent changes. One value that does not load
(a function, a bound method, a primitive, a `Method` record, an iterator) makes its object
unloadable everywhere; one value that is huge once its shared references are expanded (a list
of a list of … the same list) makes every comparison, rendering and merge of it explode. So
`admit` lets into a slot only:

- None, bool, int (at most `MAX_INT_BITS` bits, so it still prints), finite float, str;
- lists, tuples and dicts of those (dict keys: str, int, finite float, bool, None), at most
  `MAX_DEPTH` deep and `MAX_ITEMS` items and `MAX_CHARS` characters counted as a tree — a
  shared reference counts every time it is reached, so a DAG is as large as its expansion;
- image objects (`UvmObject`s) and the kernel's persistent containers (BTrees, counters).

Anything else is a `SlotError`, raised before anything is stored. Admitted lists and dicts are
copied into `OwnedList` / `OwnedDict`: containers that know the object whose slot holds them.
Changing one in place — `self.items.append(4)`, or through any alias, `box["k"].append(4)` —
marks that owner changed (so what a method returned is what commits, and no other process is
left behind) after asking `kernel.sandbox` whether the running method has the authority to
change that owner. They pickle as plain lists and dicts: the image holds plain values, and
`UvmObject.__setstate__` makes them owned again on load.
"""
import math

from kernel.errors import SlotError

MAX_DEPTH = 32
MAX_ITEMS = 100_000
MAX_CHARS = 4_000_000
MAX_INT_BITS = 14_000  # about 4,200 decimal digits: Python's int→str limit is 4,300
KEY_TYPES = (str, int, float, bool, type(None))

IMAGE_OBJECT_TYPES = ()  # UvmObject, registered by kernel.uvm (which imports this module)
KERNEL_CONTAINER_MODULES = ("BTrees.",)


def register_image_object(cls):
    """Declare `cls` an image object: a slot may refer to instances of it."""
    global IMAGE_OBJECT_TYPES
    IMAGE_OBJECT_TYPES += (cls,)
    return cls


def authority_check(owner):
    """Replaced by kernel.sandbox: raise when the running method may not change `owner`."""


class _Budget:
    """How much of the bounds one admission has used (shared references counted each time)."""

    __slots__ = ("items", "chars", "what")

    def __init__(self, what):
        self.items = 0
        self.chars = 0
        self.what = what

    def count(self, chars=0):
        self.items += 1
        self.chars += chars
        if self.items > MAX_ITEMS:
            raise SlotError(f"{self.what} holds more than {MAX_ITEMS:,} items (shared "
                            "references counted each time they are reached)")
        if self.chars > MAX_CHARS:
            raise SlotError(f"{self.what} holds more than {MAX_CHARS:,} characters")


def admit(value, owner=None, what="a slot value"):
    """`value` as it may be stored in a slot of `owner`: checked, and with every list and dict
    copied into containers owned by `owner`. Raises `SlotError` saying what is not allowed."""
    return _admit(value, owner, _Budget(what), 0)


def check_result(value, what="a method's result"):
    """Raise `SlotError` unless `value` is an image value within the bounds (sets allowed, as
    results are rendered, not stored); returns it unchanged."""
    _admit(value, None, _Budget(what), 0, copy=False, sets=True)
    return value


def _admit(value, owner, budget, depth, copy=True, sets=False):
    kind = type(value)
    if value is None or kind is bool:
        budget.count()
        return value
    if kind is int:
        if value.bit_length() > MAX_INT_BITS:
            raise SlotError(f"{budget.what} holds an integer of {value.bit_length():,} bits; "
                            f"the limit is {MAX_INT_BITS:,}")
        budget.count()
        return value
    if kind is float:
        if not math.isfinite(value):
            raise SlotError(f"{budget.what} holds {value!r}: only finite numbers are image "
                            "values (NaN equals nothing, not even itself)")
        budget.count()
        return value
    if kind is str:
        budget.count(len(value))
        return value
    if isinstance(value, IMAGE_OBJECT_TYPES) or (
            kind.__module__.startswith(KERNEL_CONTAINER_MODULES) and hasattr(value, "_p_oid")):
        budget.count()
        return value
    if depth >= MAX_DEPTH:
        raise SlotError(f"{budget.what} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, (list, tuple)) and kind in (list, tuple, OwnedList):
        budget.count()
        items = [_admit(item, owner, budget, depth + 1, copy, sets) for item in value]
        if not copy:
            return value
        return tuple(items) if kind is tuple else OwnedList(items, owner=owner)
    if isinstance(value, dict) and kind in (dict, OwnedDict):
        budget.count()
        pairs = [(_key(key, budget), _admit(item, owner, budget, depth + 1, copy, sets))
                 for key, item in value.items()]
        return OwnedDict(pairs, owner=owner) if copy else value
    if sets and kind in (set, frozenset):
        budget.count()
        for item in value:
            _admit(item, owner, budget, depth + 1, False, sets)
        return value
    raise SlotError(f"{budget.what} holds a {kind.__name__}: a slot holds only None, bool, int, "
                    "finite float, str, lists, tuples and dicts of those, and image objects")


def _key(key, budget):
    if type(key) not in KEY_TYPES and not (type(key) is tuple and all(
            type(part) in KEY_TYPES for part in key)):
        raise SlotError(f"{budget.what} has a dict key of type {type(key).__name__}; keys are "
                        "str, int, float, bool or None")
    if type(key) is float and not math.isfinite(key):
        raise SlotError(f"{budget.what} has the dict key {key!r}")
    budget.count(len(key) if type(key) is str else 0)
    return key


def own(value, owner, _made=None):
    """`value` as loaded from the image, with its lists and dicts owned by `owner` (no checks:
    they were made when it was stored). Each container is copied once, so a value written
    before values were checked, with shared references, costs its stored size, not its
    expansion."""
    kind = type(value)
    if kind not in (list, dict, tuple, OwnedList, OwnedDict):
        return value
    made = {} if _made is None else _made
    if id(value) in made:
        return made[id(value)]
    if kind is list or kind is OwnedList:
        copy = made[id(value)] = OwnedList(owner=owner)
        list.extend(copy, [own(item, owner, made) for item in value])
    elif kind is dict or kind is OwnedDict:
        copy = made[id(value)] = OwnedDict(owner=owner)
        dict.update(copy, [(key, own(item, owner, made)) for key, item in value.items()])
    else:
        items = tuple(own(item, owner, made) for item in value)
        copy = made[id(value)] = value if all(a is b for a, b in zip(items, value)) else items
    return copy


def plain_copy(value):
    """`value` with its owned containers turned back into plain lists and dicts."""
    kind = type(value)
    if kind is OwnedList or kind is list:
        return [plain_copy(item) for item in value]
    if kind is OwnedDict or kind is dict:
        return {key: plain_copy(item) for key, item in value.items()}
    if kind is tuple:
        return tuple(plain_copy(item) for item in value)
    return value


class _Owned:
    """What an owned container does before it changes: check the running method's authority
    over its owner, mark the owner changed, and admit what enters it."""

    __slots__ = ()

    def __init__(self, contents=(), owner=None):
        super().__init__(contents)
        self.owner = owner

    plain = None  # the container type it stands for, and pickles as: the image holds those

    def __reduce_ex__(self, protocol):
        return (self.plain, (self.plain(self),))

    def __copy__(self):
        return self.plain(self)

    def _changing(self):
        owner = self.owner
        if owner is not None:
            authority_check(owner)
            owner._p_changed = True

    def _entering(self, value):
        return admit(value, self.owner, "a value put into a slot's container")


class OwnedList(_Owned, list):
    """A list held in a slot: changing it in place marks its owner changed (after the running
    method's authority over that owner is checked); it pickles as a plain list."""

    __slots__ = ("owner",)
    plain = list

    def append(self, value):
        """Append an image value."""
        self._changing()
        super().append(self._entering(value))

    def extend(self, values):
        """Extend with image values."""
        self._changing()
        super().extend([self._entering(value) for value in values])

    def insert(self, index, value):
        """Insert an image value."""
        self._changing()
        super().insert(index, self._entering(value))

    def __setitem__(self, index, value):
        self._changing()
        if isinstance(index, slice):
            value = [self._entering(item) for item in value]
        else:
            value = self._entering(value)
        super().__setitem__(index, value)

    def __iadd__(self, values):
        self.extend(values)
        return self

    def __imul__(self, count):
        self._changing()
        return super().__imul__(count)

    def __delitem__(self, index):
        self._changing()
        super().__delitem__(index)

    def remove(self, value):
        """Remove the first item equal to `value`."""
        self._changing()
        super().remove(value)

    def pop(self, *index):
        """Remove and return an item."""
        self._changing()
        return super().pop(*index)

    def clear(self):
        """Remove every item."""
        self._changing()
        super().clear()

    def sort(self, *, key=None, reverse=False):
        """Sort in place."""
        self._changing()
        super().sort(key=key, reverse=reverse)

    def reverse(self):
        """Reverse in place."""
        self._changing()
        super().reverse()


class OwnedDict(_Owned, dict):
    """A dict held in a slot: changing it in place marks its owner changed (after the running
    method's authority over that owner is checked); it pickles as a plain dict."""

    __slots__ = ("owner",)
    plain = dict

    def __setitem__(self, key, value):
        self._changing()
        super().__setitem__(_key(key, _Budget("a slot's dict")), self._entering(value))

    def __delitem__(self, key):
        self._changing()
        super().__delitem__(key)

    def setdefault(self, key, default=None):
        """The value of `key`, set to `default` first when absent."""
        if key not in self:
            self[key] = default
        return super().__getitem__(key)

    def update(self, *others, **pairs):
        """Set every pair of `others` and `pairs`."""
        for key, value in dict(*others, **pairs).items():
            self[key] = value

    def __ior__(self, other):
        self.update(other)
        return self

    def pop(self, *key_default):
        """Remove `key` and return its value (or the default)."""
        self._changing()
        return super().pop(*key_default)

    def popitem(self):
        """Remove and return the last pair."""
        self._changing()
        return super().popitem()

    def clear(self):
        """Remove every pair."""
        self._changing()
        super().clear()
