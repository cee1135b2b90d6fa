"""kernel.genesis: the Prototypal Awakening creates the primordial objects once."""
import transaction
import ZODB
from BTrees.Length import Length
from BTrees.OOBTree import OOBTree

from kernel import genesis
from kernel.image import default_personas
from kernel.primitives import Primitive


def awakened_db():
    db = ZODB.DB(None)
    assert genesis.ensure_awake(db, default_personas()) is True
    return db


def test_genesis_creates_the_primordial_objects():
    db = awakened_db()
    connection = db.open(transaction_manager=transaction.TransactionManager())
    lobby = genesis.lobby_of(connection)
    assert set(lobby.slot_names()) == {"traits", "persona", "personas", "orchestrator",
                                       "ledger", "memory", "history", "mandates", "examples"}
    assert isinstance(lobby.traits._own_methods()["describe"], Primitive)
    personas = {name: getattr(lobby.personas, name) for name in lobby.personas.slot_names()}
    assert sorted(personas) == ["ALFRED", "BABS", "BRICK", "ROBIN"]
    for name, persona in personas.items():
        assert persona.parents == (lobby.persona,) and persona.name == name
        assert name in persona.codex
    assert len({p.codex for p in personas.values()}) == 4
    assert len({p.model_id for p in personas.values()}) == 4
    assert "{description}" in lobby.orchestrator.meta_prompt
    assert {e["persona"] for e in lobby.orchestrator.examples} == set(personas)
    assert all(p.routing for p in personas.values())
    assert isinstance(lobby.ledger.entries, OOBTree) and isinstance(lobby.ledger.size, Length)
    assert isinstance(lobby.history.sessions, OOBTree)
    connection.close()
    db.close()


def test_genesis_is_one_transaction_and_idempotent():
    db = awakened_db()
    assert genesis.ensure_awake(db, default_personas()) is False
    notes = [txn.description for txn in db.storage.iterator()]
    assert notes.count(genesis.GENESIS_NOTE.encode()) == 1
    assert len(notes) == 2   # the root's creation, then genesis
    db.close()
