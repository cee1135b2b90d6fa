"""A separate client process of the Living Image, driven by the tests over stdin/stdout.

Each stdin line is a JSON command `{"op": NAME, ...}`; each answer is one JSON line. Being a
real process with its own ZEO client, it lets tests race real clients against one server.
"""
import json
import sys

from kernel import dnu, llm, paths, sandbox
from kernel.home import parse_address
from kernel.image import connect
from kernel.cli import shown
from kernel.values import plain


def say(**fields):
    """Write one JSON answer line."""
    print(json.dumps(fields, default=repr), flush=True)


def wait_for_line():
    """Block until the test sends the next line (used to hold a transaction open)."""
    return sys.stdin.readline()


class Actor:
    """The operations a test can ask of this client process."""

    def __init__(self, address):
        self.address = address
        self.image = None

    def op_connect(self):
        self.image = connect(self.address, client_label="test-actor")
        return {"awakened": self.image.awakened}

    def op_clone(self, proto, path, slots):
        def clone(lobby):
            parent, name = paths.parent_and_name(lobby, path)
            setattr(parent, name, paths.resolve(lobby, proto).clone(**slots))
        self.image.run(clone, note=f"clone {path}")

    def op_define(self, path, selector, source):
        self.image.run(lambda lobby: paths.resolve(lobby, path).define(selector, source)
                       and None, note=f"define {path}.{selector}")

    def op_send(self, path, selector, args=()):
        return self.image.run(lambda lobby: plain(paths.resolve(lobby, path).send(selector,
                                                                                  *args)))

    def op_look(self, path):
        def look(lobby):
            try:
                obj = paths.resolve(lobby, path)
            except LookupError:
                return None
            return {"slots": {name: shown(value) for name, value in obj.slots().items()},
                    "methods": sorted(obj._own_methods()),
                    "parents": [parent.label for parent in obj.parents]}
        return self.image.run(look)

    def op_link(self, path, slot, target):
        self.image.run(lambda lobby: setattr(paths.resolve(lobby, path), slot,
                                             paths.resolve(lobby, target)), note=f"link {path}")

    def op_set_slots(self, path, slots):
        for name, value in slots.items():
            self.image.run(lambda lobby, name=name, value=value: setattr(
                paths.resolve(lobby, path), name, value), note=f"set {path}.{name}")

    def op_hold_set(self, path, slot, value):
        attempts = []

        def hold(lobby):
            attempts.append(1)
            setattr(paths.resolve(lobby, path), slot, value)
            if len(attempts) == 1:
                say(held=True)
                wait_for_line()
        self.image.run(hold, note=f"set {path}.{slot}")
        return {"attempts": len(attempts)}

    def op_hang(self, path, count):
        with self.image.transaction(note="never committed") as lobby:
            target = paths.resolve(lobby, path)
            for i in range(count):
                setattr(target, f"uncommitted{i}", lobby.traits.clone(n=i))
            lobby._p_jar.savepoint()  # push the changes as far as they go before the vote
            say(hanging=True)
            wait_for_line()

    def op_big_commit(self, path, count):
        def write(lobby):
            target = paths.resolve(lobby, path)
            for i in range(count):
                setattr(target, f"part{i}", lobby.traits.clone(n=i, payload="x" * 1000))
            target.complete = count
            say(committing=True)
        self.image.run(write, note="big commit")

    def op_learn(self, path, selector, args=(), models=None):
        # a generous time bound: what these tests count must not depend on the machine's load
        learner = dnu.Learner(self.image, llm.ModelRegistry(models or {}), seconds=60.0)
        try:
            return learner.send(path, selector, args).as_json()
        except dnu.LearningFailed as failure:
            return failure.outcome.as_json()

    def op_configure(self, **limits):
        sandbox.configure(**limits)

    def op_retries(self):
        return self.image.retries


def main():
    actor = Actor(parse_address(sys.argv[1]))
    say(ready=True)
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        command = json.loads(line)
        op = getattr(actor, "op_" + command.pop("op"))
        try:
            result = op(**command)
        except (Exception, sandbox.BudgetExceeded) as exc:  # report, keep serving the test
            say(ok=False, error=f"{type(exc).__name__}: {exc}")
        else:
            say(ok=True, result=result)
    if actor.image is not None:
        actor.image.close()


if __name__ == "__main__":
    main()
