"""What a persona's reasoning may do to the image: the command schema and its executor.

A persona's answer to a chat is `{"reply": text, "commands": [...]}`: the plan chosen by
`kernel.understanding` and the reply saying what it did. Each command has an `op` and its
fields; targets are lobby paths. `ANSWER_SCHEMA` is the single definition of what a command
may be; every plan is validated against it before it acts.

`execute` runs a list of commands inside the caller's transaction — the worker puts the
request's ledger entry in the same one — and returns one plain result per command.
"""
import functools
import json

import jsonschema

from kernel import memory, paths
from kernel.errors import BatosError, SlotError
from kernel.values import plain

TARGET = {"type": "string", "minLength": 1, "maxLength": 200}
NAME = {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]{0,63}$"}

COMMAND_SCHEMAS = {
    "send": {"target": TARGET, "selector": NAME, "args": {"type": "array", "maxItems": 5}},
    "define": {"target": TARGET, "selector": NAME, "source": {"type": "string",
                                                             "maxLength": 20000}},
    "clone": {"proto": TARGET, "name": TARGET, "slots": {"type": "object"}},
    "set": {"target": TARGET, "slot": NAME, "value": {}},
    "remember": {"text": {"type": "string", "minLength": 1, "maxLength": 4000}},
    "recall": {"query": {"type": "string", "minLength": 1, "maxLength": 400}},
}
REQUIRED = {"send": ["target", "selector"], "define": ["target", "selector", "source"],
            "clone": ["proto", "name"], "set": ["target", "slot", "value"],
            "remember": ["text"], "recall": ["query"]}

ANSWER_SCHEMA = {
    "type": "object",
    "properties": {
        "reply": {"type": "string", "maxLength": 4000},
        "commands": {"type": "array", "maxItems": 4, "items": {"oneOf": [
            {"type": "object",
             "properties": {"op": {"const": op}, **fields},
             "required": ["op"] + REQUIRED[op], "additionalProperties": False}
            for op, fields in COMMAND_SCHEMAS.items()]}},
    },
    "required": ["reply", "commands"],
    "additionalProperties": False,
}


class CommandError(BatosError):
    """An answer or command is malformed, or a command failed. Final for that request."""


@functools.lru_cache(maxsize=64)
def _validator(schema_json):
    """A compiled validator per schema (checking the schema itself costs milliseconds)."""
    schema = json.loads(schema_json)
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    return validator(schema)


def validate(answer, schema=ANSWER_SCHEMA):
    """Check a parsed answer against a schema; a `CommandError` naming the first problem.

    An answer is checked in two steps with the same rules as `ANSWER_SCHEMA`: its envelope
    (commands are objects with a known `op`), then each command against its own op's schema
    only — not against every alternative of the `oneOf`, which costs six times as much.
    """
    if schema is not ANSWER_SCHEMA:
        return _check(_compiled(schema), answer)
    _check(_ENVELOPE_VALIDATOR, answer)
    for index, command in enumerate(answer["commands"]):
        _check(_COMMAND_VALIDATORS[command["op"]], command, ("commands", index))
    return answer


def _check(validator, instance, prefix=()):
    if validator.is_valid(instance):  # the common case, without collecting errors
        return instance
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    where = "/".join(str(p) for p in (*prefix, *error.absolute_path)) or "answer"
    raise CommandError(f"{where}: {error.message}")


def _compiled(schema):
    return _validator(json.dumps(schema, sort_keys=True))


_COMMAND_VALIDATORS = {item["properties"]["op"]["const"]: _compiled(item)
                       for item in ANSWER_SCHEMA["properties"]["commands"]["items"]["oneOf"]}
_ENVELOPE_VALIDATOR = _compiled({**ANSWER_SCHEMA, "properties": {
    **ANSWER_SCHEMA["properties"],
    "commands": {**ANSWER_SCHEMA["properties"]["commands"], "items": {
        "type": "object", "required": ["op"],
        "properties": {"op": {"enum": sorted(_COMMAND_VALIDATORS)}}}}}})


def execute(lobby, commands, persona, session):
    """Run validated commands in the current transaction; one plain result per command."""
    results = []
    for command in commands:
        handler = HANDLERS[command["op"]]
        results.append(plain(handler(lobby, command, persona, session)))
    return results


def _send(lobby, command, persona, session):
    return paths.resolve(lobby, command["target"]).send(command["selector"],
                                                        *command.get("args", []))


def _define(lobby, command, persona, session):
    method = paths.resolve(lobby, command["target"]).define(
        command["selector"], command["source"], author=persona)
    return {"defined": command["selector"], "audit": method.provenance["audit"]}


def _clone(lobby, command, persona, session):
    parent, name = paths.parent_and_name(lobby, command["name"])
    if name in parent.slot_names():
        raise SlotError(f"{command['name']} already exists")
    obj = paths.resolve(lobby, command["proto"]).clone(**command.get("slots", {}))
    obj._label = ".".join(paths.split(command["name"]))
    setattr(parent, name, obj)
    return {"created": obj.label}


def _set(lobby, command, persona, session):
    setattr(paths.resolve(lobby, command["target"]), command["slot"], command["value"])
    return {"set": f"{command['target']}.{command['slot']}"}


def _remember(lobby, command, persona, session):
    return {"remembered": memory.remember(lobby, command["text"], session)}


def _recall(lobby, command, persona, session):
    return {"recalled": memory.recall(lobby, command["query"])}


HANDLERS = {"send": _send, "define": _define, "clone": _clone, "set": _set,
            "remember": _remember, "recall": _recall}
