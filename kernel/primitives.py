"""Primitives: the trusted kernel functions that objects in the image refer to by name.

The image never pickles a function. Root traits hold `Primitive("describe")` and the like —
a name only — and each process resolves the name to the kernel function registered here when
the message arrives. A name that is no longer registered is a clear error, not a crash.
"""
import logging
import types

from kernel import sandbox
from kernel.errors import BatosError

log = logging.getLogger(__name__)

REGISTRY = {}


class UnknownPrimitive(BatosError):
    """The image names a primitive this kernel does not provide. Final for this kernel."""


def primitive(name):
    """Register the decorated function as the primitive called `name`."""
    def register(function):
        REGISTRY[name] = function
        return function
    return register


class Primitive:
    """A reference by name to a registered kernel function; pickles as its name only."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        return (Primitive, (self.name,))

    def __eq__(self, other):
        return isinstance(other, Primitive) and other.name == self.name

    def __hash__(self):
        return hash(("Primitive", self.name))

    def bind(self, receiver):
        """The registered function bound to `receiver`."""
        try:
            function = REGISTRY[self.name]
        except KeyError:
            raise UnknownPrimitive(f"this kernel has no primitive {self.name!r}") from None
        return types.MethodType(function, receiver)

    def describe(self):
        """Plain data for `batos inspect`."""
        return {"selector": self.name, "kind": "primitive",
                "doc": (REGISTRY.get(self.name).__doc__ or "").strip()
                if self.name in REGISTRY else "(not provided by this kernel)"}

    def __repr__(self):
        return f"<Primitive {self.name!r}>"


sandbox.seal(Primitive)


@primitive("describe")
def describe(self):
    """Slots, parents and methods of the receiver as plain data."""
    return self.describe()


@primitive("slotNames")
def slot_names(self):
    """The names of the receiver's own slots, sorted."""
    return sorted(self.slot_names())


@primitive("methodNames")
def method_names(self):
    """The selectors of the receiver's own methods, sorted."""
    return sorted(self._own_methods())


@primitive("respondsTo")
def responds_to(self, selector):
    """True when the receiver or one of its ancestors has a slot or method `selector`."""
    return self.responds_to(selector)


@primitive("parentCount")
def parent_count(self):
    """How many parents the receiver delegates to."""
    return len(self.parents)


def names():
    """The names of every primitive this kernel provides."""
    return sorted(REGISTRY)
