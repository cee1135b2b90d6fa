"""Genesis, the Prototypal Awakening: the primordial objects of an empty Living Image.

The first process to find no lobby in the image's root creates, in ONE transaction: the lobby
(the root namespace), the root traits (with the kernel's primitives), the persona prototype
and the configured personas (ALFRED, BRICK, ROBIN, BABS: codex, role, model_id, routing),
the orchestrator with its routing meta-prompt and examples, the request ledger, memory,
history, the mandates of `_doesNotUnderstand` and the example methods it learns from
(`kernel.library`). Many processes may start at once on an empty image: every one tries,
the ZEO server lets exactly one commit (the others get a `ConflictError` on the root),
and the losers then load the winner's lobby. Later runs only load.
"""
import logging

import transaction
from BTrees.Length import Length
from BTrees.LOBTree import LOBTree
from BTrees.OOBTree import OOBTree, OOTreeSet

from kernel import library, primitives
from kernel.errors import RetriesExhausted
from kernel.uvm import UvmObject

log = logging.getLogger(__name__)

LOBBY_KEY = "lobby"
GENESIS_NOTE = "genesis: the Prototypal Awakening"
GENESIS_USER = "kernel"

# How ALFRED routes (docs/design.md §4, choose don't generate): for each persona this template is
# filled with the persona's `routing` description and its examples, and the request goes to the
# persona under whose filled template the request's own words are likeliest.
ROUTING_META_PROMPT = "{description}\n{examples}- "

# The examples routing starts with; corrections by people are added to them in the image.
ROUTING_EXAMPLES = (
    ("Is the cluster up?", "ALFRED"),
    ("Show the status of the image.", "ALFRED"),
    ("Audit this code for safety.", "ALFRED"),
    ("How many objects does the image hold?", "ALFRED"),
    ("Write a function that adds two numbers.", "BRICK"),
    ("Teach rect a method for its diagonal.", "BRICK"),
    ("Code a loop that prints ten lines.", "BRICK"),
    ("Give the shape a method that returns its name.", "BRICK"),
    ("I feel lost and tired.", "ROBIN"),
    ("Is it fair to keep a secret from a friend?", "ROBIN"),
    ("I'm worried about my father.", "ROBIN"),
    ("I am so happy, I passed my exam!", "ROBIN"),
    ("Remember that the keys are in the drawer.", "BABS"),
    ("What did I tell you about the trip?", "BABS"),
    ("Note that Leo likes jazz.", "BABS"),
    ("Do you know anything about my plans for June?", "BABS"),
)


def lobby_of(connection):
    """The lobby of an awakened image, or None when the image has had no genesis yet."""
    return connection.root().get(LOBBY_KEY)


def awaken(connection, personas):
    """Create the primordial objects in `connection`'s current transaction; return the lobby.

    The caller commits. `personas` maps a name to {model_id, role, codex}.
    """
    root = connection.root()
    traits = UvmObject(label="traits")
    for name in primitives.names():
        traits._install_method(name, primitives.Primitive(name))
    lobby = UvmObject(parents=(traits,), label="lobby")
    persona = UvmObject(parents=(traits,), label="persona",
                        name="", role="", codex="", model_id="", routing="")
    namespace = UvmObject(parents=(traits,), label="personas")
    for name, spec in personas.items():
        setattr(namespace, name, UvmObject(
            parents=(persona,), label=f"personas.{name}", name=name, role=spec["role"],
            codex=spec["codex"].strip(), model_id=spec["model_id"],
            routing=spec.get("routing", f"Requests for the {spec['role']}.").strip()))
    lobby.traits = traits
    lobby.persona = persona
    lobby.personas = namespace
    lobby.orchestrator = UvmObject(parents=(traits,), label="orchestrator",
                                   meta_prompt=ROUTING_META_PROMPT, personas_path="personas",
                                   router="ALFRED", examples=[
                                       {"text": text, "persona": name, "source": "genesis"}
                                       for text, name in ROUTING_EXAMPLES if name in personas])
    lobby.ledger = UvmObject(parents=(traits,), label="ledger",
                             entries=OOBTree(), size=Length(), order=OOTreeSet(),
                             held=Length())
    lobby.memory = UvmObject(parents=(traits,), label="memory",
                             entries=LOBTree(), size=Length())
    lobby.history = UvmObject(parents=(traits,), label="history", sessions=OOBTree())
    lobby.mandates = UvmObject(parents=(traits,), label="mandates", entries=OOBTree())
    library.seed(lobby, traits)
    root[LOBBY_KEY] = lobby
    return lobby


def ensure_awake(db, personas):
    """Return after the image has a lobby: load it, or perform genesis exactly once.

    Concurrent starters race on the root object; the losers' `ConflictError` is expected and
    means "someone else awakened it", so they abort and load.
    """
    manager = transaction.TransactionManager()
    connection = db.open(transaction_manager=manager)
    try:
        for attempt in range(1, 21):
            manager.begin()
            if lobby_of(connection) is not None:
                manager.abort()
                return False
            awaken(connection, personas)
            txn = manager.get()
            txn.note(GENESIS_NOTE)
            txn.user = GENESIS_USER
            try:
                manager.commit()
            except transaction.interfaces.TransientError:
                manager.abort()
                log.info("genesis attempt %d lost the race; loading the winner's image", attempt)
                continue
            log.info("genesis: the image has awakened with personas %s", sorted(personas))
            return True
        raise RetriesExhausted("genesis could neither commit nor find a lobby in 20 attempts")
    finally:
        connection.close()
