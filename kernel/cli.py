"""`batos`: the command line of a BAT OS home.

Every command takes `--home DIR` (default `$BATOS_HOME`, then `./var`). Commands that need the
Living Image connect to the home's ZEO server and say so in one line when none answers. Bad
input — a missing path, a foreign or corrupt data directory, malformed JSON — is one clear line
on stderr and a non-zero exit, with nothing written.

`inspect` and `send` take `--at WHEN` for the image as it was, read-only (`kernel.timetravel`);
`history` and `revert` show and reinstall the versions of an object's slots and methods
(`kernel.versions`); `undo` is ZODB's undo of one whole transaction.
"""
import argparse
import datetime
import json
import logging
import os
import signal
import sys
import time

from kernel import (certs, demo, dnu, guardian, llm, paths, runtime_probe, sandbox,
                    settings, supervise, timetravel, versions)
from kernel.client import ClusterSilent, NoAnswer, RequestFailed, new_request_id
from kernel.values import plain
from kernel import image as image_module
from kernel.errors import BatosError, HomeError, ServerUnavailable, SlotError, TooLarge
from kernel.home import Home, default_home_path, format_address, newest_run_home
from kernel.uvm import check_slot_name
from kernel import keys
from kernel import backup as backups
from zeo_server import maintenance, repair

log = logging.getLogger(__name__)

CLI_USER = "batos-cli"


class UsageError(BatosError):
    """The command line itself is wrong (bad JSON, bad option value). Final."""


class MethodFailed(BatosError):
    """A method sent from the command line raised; nothing it did was committed. Final."""


# -- rendering ---------------------------------------------------------------------------------

def short(value, width=72):
    """One line of at most `width` characters for human output."""
    text = json.dumps(plain(value), ensure_ascii=False)
    text = text.replace("\\n", " ")
    return text if len(text) <= width else text[:width - 1] + "…"


def shown(value):
    """`plain(value)`, or one line saying why it cannot be shown (one slot too large to render
    must not hide the others)."""
    try:
        return plain(value)
    except TooLarge as exc:
        return f"<{exc}>"


def describe_object(obj):
    """Everything `inspect` shows about one object, as plain data."""
    description = obj.describe()
    description["slots"] = {k: shown(v) for k, v in sorted(description["slots"].items())}
    if obj._p_oid is not None:
        description["oid"] = f"{int.from_bytes(obj._p_oid, 'big'):#x}"
    return description


LISTED_RECORDS = 20


def print_object(description, out):
    """Human rendering of `describe_object`."""
    print(f"{description['label']}  (oid {description.get('oid', '-')})", file=out)
    print(f"  parents: {', '.join(description['parents']) or '(none)'}", file=out)
    print("  slots:" if description["slots"] else "  slots: (none)", file=out)
    for name, value in description["slots"].items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            # records such as the orchestrator's routing examples: one per line, newest last
            print(f"    {name} = {len(value)} records" + (f", the newest {LISTED_RECORDS}:"
                  if len(value) > LISTED_RECORDS else ":"), file=out)
            for record in value[-LISTED_RECORDS:]:
                print(f"      - {short(record, 120)}", file=out)
            continue
        print(f"    {name} = {short(value, 64)}", file=out)
    print("  methods:" if description["methods"] else "  methods: (none)", file=out)
    for selector, method in description["methods"].items():
        if method["kind"] == "primitive":
            print(f"    {selector}  (primitive) {method['doc']}", file=out)
            continue
        prov = method["provenance"]
        verdict = "ok" if prov.get("audit", {}).get("ok") else "REJECTED"
        print(f"    {selector}  by {prov.get('author')} at {prov.get('created')}, audit "
              f"{verdict}, {method['versions']} version(s){standing(prov)}", file=out)
        if prov.get("provisional"):
            print(f"      PROVISIONAL: {(prov.get('evidence') or {}).get('reason', 'a guess')}; "
                  f"batos confirm {description['label']} {selector} makes it final", file=out)
        for line in method["source"].rstrip().splitlines():
            print(f"      | {line}", file=out)


def standing(provenance):
    """How sure the image is of a learned method, for one line of human output."""
    if provenance.get("provisional"):
        return ", PROVISIONAL"
    if provenance.get("confirmed_by"):
        return f", confirmed by {provenance['confirmed_by']}"
    return ""


def emit(data, as_json, render, out=sys.stdout):
    """Print `data` as one JSON document or with `render`."""
    if as_json:
        json.dump(data, out, ensure_ascii=False, indent=2, default=repr)
        out.write("\n")
    else:
        render(data, out)


# -- input -------------------------------------------------------------------------------------

def parse_json(text, what):
    """Parse a JSON value given on the command line, or a `UsageError` naming `what`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} is not valid JSON ({exc.msg} at column {exc.colno}): "
                         f"{text!r}") from None


def parse_slots(text):
    """`--slots` must be a JSON object of valid slot names."""
    slots = parse_json(text, "--slots")
    if not isinstance(slots, dict):
        raise UsageError(f"--slots must be a JSON object, not {type(slots).__name__}")
    for name in slots:
        check_slot_name(name)
    return slots


# -- the command registry ----------------------------------------------------------------------

JSON_HELP = "print the result as one JSON document"
AT_HELP = ("read-only, on the image as it was at WHEN: a UTC time (2026-12-02 06:40:05), a "
           "transaction id from batos log or batos history, or before:TID")
PATH_HELP = "a lobby path such as rect or personas.BRICK"

COMMANDS = {}  # name → (handler, help, arguments), each registered beside its handler
ORDER = ("init", "awaken", "new", "inspect", "define", "send", "confirm", "log", "pack",
         "history", "undo", "revert", "backup", "restore", "check", "repair", "certs", "up",
         "down", "status", "restart", "ask", "console", "keys", "models", "audit")  # --help's


def command(name, help_text, *arguments):
    """Register the decorated handler as `batos NAME`; each of `arguments` adds one argument
    (or group) to the command's parser (`arg`, `one_of`)."""
    def register(handler):
        COMMANDS[name] = (handler, help_text, arguments)
        return handler
    return register


def arg(*names, **options):
    """One argument of a command, as `argparse.ArgumentParser.add_argument` takes it."""
    return lambda parser: parser.add_argument(*names, **options)


def one_of(*arguments, required=False):
    """Arguments of which a command takes at most one (exactly one when `required`)."""
    def add(parser):
        group = parser.add_mutually_exclusive_group(required=required)
        for argument in arguments:
            argument(group)
    return add


JSON = arg("--json", action="store_true", help=JSON_HELP)
KEY = arg("--key", help="remote mode: the console key, a NAME in HOME/keys/consoles or a "
                        ".key_secret file (default: $BATOS_KEY, then the home's own key)")


# -- commands ----------------------------------------------------------------------------------

def open_image(home):
    """This process's settings from the home (`kernel.settings.start`), then a connection to
    the home's ZEO server, or a one-line `ServerUnavailable`."""
    settings.start(home)
    try:
        return image_module.connect_home(home, wait_timeout=home.zeo_wait_timeout,
                                         client_label=f"batos-cli@{home.path}")
    except ServerUnavailable as exc:
        raise ServerUnavailable(f"{exc} for home {home.path}; start it with: "
                                f"python -m zeo_server --home {home.path}") from None


def with_image(home, fn):
    """Run `fn(image)` on an open image and close it afterwards."""
    image = open_image(home)
    try:
        return fn(image)
    finally:
        image.close()


@command("init", "create a data directory with its own configuration",
         arg("--zeo-address", help="HOST:PORT (default: a free loopback port)"))
def cmd_init(args):
    home = Home.init(args.home, args.zeo_address)
    print(f"initialised {home.path}; ZEO address {format_address(home.zeo_address)}")
    print(f"start its server with: python -m zeo_server --home {home.path}")


@command("new", "create an object at PATH as a clone of --proto",
         arg("path", help="where the new object goes: " + PATH_HELP),
         arg("--proto", default="traits", help="prototype path (default: traits)"),
         arg("--slots", default="{}", help="JSON object of slot values"), JSON)
def cmd_new(args):
    slots = parse_slots(args.slots)
    home = Home.open(args.home)

    def create(lobby):
        parent, name = paths.parent_and_name(lobby, args.path)
        if name in parent.slot_names():
            raise SlotError(f"{args.path} already exists")
        proto = paths.resolve(lobby, args.proto)
        obj = proto.clone(**slots)
        obj._label = ".".join(paths.split(args.path))
        setattr(parent, name, obj)
        return describe_object(obj)

    description = with_image(home, lambda image: image.run(
        create, note=f"new {args.path} from {args.proto}", user=CLI_USER))
    emit(description, args.json, print_object)


@command("inspect", "show an object's slots, parents and methods",
         arg("path", help="the object: " + PATH_HELP), arg("--at", metavar="WHEN", help=AT_HELP),
         JSON)
def cmd_inspect(args):
    home = Home.open(args.home)
    if args.at is not None:
        when = timetravel.parse_when(args.at)  # a bad WHEN needs no server
        description = with_image(home, lambda image: timetravel.inspect_at(
            image, args.path, when, describe_object))
        emit(description, args.json, lambda d, out: (
            print(f"{d['at']['label']} (read-only)", file=out), print_object(d, out)))
        return

    def look(lobby):
        return describe_object(paths.resolve(lobby, args.path))

    emit(with_image(home, lambda image: image.run(look)), args.json, print_object)


@command("define", "audit and install a method on the object at PATH",
         arg("path", help="the object: " + PATH_HELP), arg("selector", help="the method's name"),
         one_of(arg("--source", help="the method's source text"),
                arg("--file", help="a file holding the method's source"), required=True),
         JSON)
def cmd_define(args):
    home = Home.open(args.home)
    if args.file:
        try:
            with open(args.file, encoding="utf-8") as handle:
                source = handle.read()
        except OSError as exc:
            raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    else:
        source = args.source

    def define(lobby):
        method = paths.resolve(lobby, args.path).define(args.selector, source, author=CLI_USER)
        return method.describe()

    result = with_image(home, lambda image: image.run(
        define, note=f"define {args.path}.{args.selector}", user=CLI_USER))
    emit(result, args.json, lambda d, out: print(
        f"defined {args.path}.{args.selector} (audit ok)", file=out))


@command("send", "send a message to the object at PATH, learning the method if it is "
                 "missing",
         arg("path", help="the receiver: " + PATH_HELP),
         arg("selector", help="the message's name"),
         arg("args", nargs="*", metavar="ARG", help="arguments as JSON values"),
         arg("--expect", metavar="JSON", help="the result the caller expects; a learned method "
                                              "must produce it"),
         arg("--at", metavar="WHEN", help=AT_HELP + "; a missing method is an error there, "
                                                    "never learned"), JSON)
def cmd_send(args):
    values = [parse_json(arg, f"argument {i}") for i, arg in enumerate(args.args, 1)]
    expect = parse_json(args.expect, "--expect") if args.expect is not None \
        else dnu.NO_EXPECTATION
    home = Home.open(args.home)
    if args.at is not None:
        if args.expect is not None:
            raise UsageError("--expect is for a method to be learned; with --at nothing is "
                             "learned (compare the result yourself)")
        return send_at(args, home, values)

    def send(image):
        try:
            return make_learner(home, image).send(args.path, args.selector, values, expect)
        except (BatosError, dnu.LearningFailed):
            raise
        except sandbox.BudgetExceeded as exc:  # stopped; its transaction is aborted
            raise MethodFailed(f"{args.path}.{args.selector} was stopped: {exc}") from None
        except Exception as exc:  # the method's own failure; its transaction is aborted
            raise MethodFailed(f"{args.path}.{args.selector} raised {type(exc).__name__}: "
                               f"{exc}") from exc

    try:
        outcome = with_image(home, send)
    except dnu.LearningFailed as failure:
        if args.json:
            emit(failure.outcome.as_json(), True, None)
        raise BatosError(f"could not learn {args.path}.{args.selector}: {failure}") from None
    emit(outcome.as_json(), args.json, print_outcome)


def send_at(args, home, values):
    """`batos send --at WHEN`: the message runs on the image as it was, read-only; a miss
    there is one line (nothing is learned), a method that raises is `MethodFailed`."""
    when = timetravel.parse_when(args.at)

    def send(image):
        try:
            return timetravel.send_at(image, args.path, args.selector, values, when, plain)
        except (BatosError, dnu.LearningFailed):
            raise
        except sandbox.BudgetExceeded as exc:
            raise MethodFailed(f"{args.path}.{args.selector} was stopped: {exc}") from None
        except Exception as exc:  # the method's own failure, in the past
            raise MethodFailed(f"{args.path}.{args.selector} raised {type(exc).__name__}: "
                               f"{exc} ({when.label()})") from exc

    result, at = with_image(home, send)
    emit({"result": result, "at": at}, args.json, lambda data, out: (
        print(json.dumps(data["result"], ensure_ascii=False), file=out),
        print(f"({data['at']['label']}; read-only)", file=out)))


def make_learner(home, image):
    """The `_doesNotUnderstand` engine for this home, with its `[dnu]` settings and models."""
    return dnu.Learner(image, llm.ModelRegistry(home.config.get("models", {})), user=CLI_USER,
                       **dnu.learner_settings(home.config.get("dnu", {})))


def print_outcome(data, out):
    """Human rendering of a send: the result, then what was learned on the way."""
    print(json.dumps(data["result"], ensure_ascii=False), file=out)
    if data["learned"]:
        kind = "PROVISIONALLY " if data["provisional"] else ""
        print(f"{kind}learned in {data['attempts']} attempt(s) by {data['persona']} with "
              f"{data['model']}, audit {'ok' if data['audit']['ok'] else 'REJECTED'}, "
              f"{data['seconds']:.1f} s:", file=out)
        for line in data["source"].rstrip().splitlines():
            print(f"  | {line}", file=out)
        if data["provisional"]:
            print(f"provisional: {data['evidence']['reason']}; it says so until an expectation "
                  "or batos confirm decides", file=out)
    elif data["confirmed"]:
        print("the provisional method met the expectation: it is final now", file=out)
    elif data["waited"]:
        print(f"learned meanwhile by another process ({data['persona']})"
              + (", provisionally" if data["provisional"] else ""), file=out)


@command("confirm", "make a provisional learned method final",
         arg("path", help="the object's lobby path"),
         arg("selector", help="the provisional method"), JSON)
def cmd_confirm(args):
    """`batos confirm PATH SELECTOR`: a provisional learned method becomes final."""
    home = Home.open(args.home)
    description = with_image(home, lambda image: image.run(
        lambda lobby: dnu.confirm(lobby, args.path, args.selector, by=CLI_USER),
        note=f"{CLI_USER} confirmed {args.path}.{args.selector}", user=CLI_USER))
    emit(description, args.json, lambda d, out: print(
        f"confirmed {args.path}.{args.selector}: it is final now", file=out))


@command("audit", "judge a method's source with the PersistenceGuardian",
         arg("file", nargs="?", help="a file holding the method's source"),
         arg("--rules", action="store_true",
             help="print the guardian's rule catalogue (rule id and reason) instead"), JSON)
def cmd_audit(args):
    """`batos audit FILE`: the guardian's verdict on a source file (exit 1 when rejected);
    `batos audit --rules`: the guardian's rule catalogue, one id and its reason a line."""
    if args.rules:
        width = max(len(rule) for rule in guardian.RULES)
        emit(guardian.RULES, args.json, lambda rules, out: print("\n".join(
            f"{rule:<{width}}  {reason}" for rule, reason in rules.items()), file=out))
        return 0
    if args.file is None:
        raise UsageError("audit needs a FILE to judge, or --rules for the catalogue")
    try:
        with open(args.file, encoding="utf-8") as handle:
            source = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {args.file}: {getattr(exc, 'strerror', None) or exc}") \
            from None
    verdict = guardian.audit(source)
    emit(verdict.as_record(), args.json,
         lambda record, out: print(f"{args.file}: {verdict.report()}", file=out))
    return 0 if verdict.ok else 1


@command("log", "the image's history: time (UTC), id (for batos undo, the console's /undo "
                "and --at), user and note of each transaction, newest first",
         arg("--limit", type=int, default=100,
             help="how many transactions to show (default: 100)"), JSON)
def cmd_log(args):
    home = Home.open(args.home)
    entries = with_image(home, lambda image: image.history(args.limit))

    def render(rows, out):
        for row in rows:
            when = datetime.datetime.fromtimestamp(row["time"], datetime.timezone.utc) \
                .replace(tzinfo=None).isoformat(" ", "seconds")
            print(f"{when}  {row['tid']}  {row['user'] or '-':<12}  {row['note']}", file=out)

    emit(entries, args.json, render)


@command("pack", "drop old history from the image (through the server); --at, history and "
                 "revert cannot reach past it",
         arg("--days", type=float, default=0.0,
             help="days of history to keep (default: 0, only the current state)"))
def cmd_pack(args):
    home = Home.open(args.home)
    bound = with_image(home, lambda image: image.pack(days=args.days, user=CLI_USER))
    print(f"packed {home.image_path} (kept {args.days:g} day(s) of history: the image as it "
          f"was before {timetravel.tid_text(timetravel.time_tid(bound))} is gone)")


@command("history", "every version of an object's slots, or of a method's source: who, "
                    "when, note, provenance",
         arg("path", help="the object: " + PATH_HELP),
         arg("selector", nargs="?", help="a method: its versions instead of the object's slots"),
         arg("--diff", action="store_true",
             help="show each method version as its differences from the one before"),
         arg("--limit", type=int, default=20,
             help="how many of the newest versions to show (default: 20)"), JSON)
def cmd_history(args):
    """`batos history PATH [SELECTOR]`: every version of an object's slots, or of a
    method's source, with who, when, the note and the method's provenance."""
    home = Home.open(args.home)
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.selector is None:
        if args.diff:
            raise UsageError("--diff compares a method's sources: name the SELECTOR")
        data = with_image(home, lambda image: versions.object_versions(
            image, args.path, limit=args.limit))
        emit(data, args.json, lambda d, out: print("\n".join(versions.object_lines(d)),
                                                   file=out))
        return
    data = with_image(home, lambda image: versions.method_versions(
        image, args.path, args.selector, limit=args.limit))
    emit(data, args.json, lambda d, out: print("\n".join(versions.method_lines(
        d, diff=args.diff)), file=out))


@command("undo", "undo everything one transaction did, with ZODB's undo (refused once a "
                 "later transaction changed the same objects: then batos revert one method)",
         arg("txn", metavar="ID", help="the transaction's id from batos log"))
def cmd_undo(args):
    """`batos undo ID`: ZODB's undo of one whole transaction (an id from batos log)."""
    home = Home.open(args.home)
    note = with_image(home, lambda image: image.undo(args.txn, user=CLI_USER))
    print(f"undone: {note}")


@command("revert", "install an earlier version of a method again (or remove it) in ONE new "
                   "transaction. Use it for one method when later transactions touched the "
                   "same object (ZODB then refuses to undo the one that installed it); use "
                   "batos undo to take back everything one recent transaction did",
         arg("path", help="the object: " + PATH_HELP),
         arg("selector", help="the method to revert"),
         arg("--to", metavar="VERSION",
             help="a version number from batos history, or 'none' to remove the method "
                  "(default: the version before the current one; none when there is none)"),
         JSON)
def cmd_revert(args):
    """`batos revert PATH SELECTOR [--to VERSION]`: one new transaction that installs an
    earlier version of a method again, or removes it."""
    home = Home.open(args.home)
    done = with_image(home, lambda image: versions.revert(
        image, args.path, args.selector, to=args.to, user=CLI_USER))
    emit(done, args.json, lambda d, out: print(
        f"{d['note']} (was version {d['from']}; batos log shows it, batos undo undoes it)",
        file=out))


@command("check", "check the image file: fstest, fsrefs and a load of every object")
def cmd_check(args):
    """`batos check`: fstest, fsrefs and a load of every current object of the image file,
    read-only beside a running server (zeo_server/maintenance.py); one line per problem."""
    home = Home.open(args.home)
    if not home.image_path.exists():
        raise BatosError(f"{home.image_path} does not exist yet: the image has never been served")
    report = maintenance.check(home.image_path,
                               progress=maintenance.progress_printer(sys.stderr))
    if not report.ok:
        for problem in report.problems:
            print(problem, file=sys.stderr)
        hint = (f"; {len(report.unloadable)} object(s) cannot be loaded: batos repair --dry-run "
                "shows what batos repair would quarantine") if report.unloadable else ""
        raise BatosError(f"{home.image_path} is damaged ({len(report.problems)} problem(s))"
                         f"{hint}")
    print(f"{home.image_path}: ok")


@command("repair", "move slot values that cannot be loaded into lobby.quarantine, in one "
                   "transaction (through the server)",
         arg("--dry-run", action="store_true", help="list what it would do and change nothing"),
         JSON)
def cmd_repair(args):
    """`batos repair [--dry-run]`: move the slot values that cannot be loaded out of their
    objects into lobby.quarantine, in one transaction through the home's ZEO server
    (zeo_server/repair.py); objects whose whole state is unreadable are only reported."""
    home = Home.open(args.home)
    if not home.image_path.exists():
        raise BatosError(f"{home.image_path} does not exist yet: the image has never been served")
    try:
        image = open_image(home)
    except ServerUnavailable as exc:
        raise BatosError(f"batos repair works through the home's ZEO server: {exc}") from None
    try:
        report = repair.repair(image, home.image_path, dry_run=args.dry_run, user=CLI_USER,
                               progress=maintenance.progress_printer(sys.stderr))
    finally:
        image.close()

    def render(data, out):
        if not report.quarantined and not report.untouched:
            print(f"nothing to repair: all {report.objects} objects of {home.image_path} load",
                  file=out)
        for q in report.quarantined:
            written = f"; written by {q.written.line()}" if q.written else ""
            print(f"{'would quarantine' if report.dry_run else 'quarantined'} {q.where} "
                  f"(oid {q.oid:#x}): {q.error}{written}", file=out)
        for u in report.untouched:
            written = f"; last written by {u.found.written.line()}" if u.found.written else ""
            print(f"left untouched: {u.found.name} (oid {u.found.oid:#x}, "
                  f"{u.found.class_name}): {u.reason}{written}", file=out)
        for found in report.still_unloadable:
            print(f"still cannot be loaded: {found.line()}", file=out)
        if report.quarantined:
            print("dry run: nothing was changed" if report.dry_run else
                  f"committed in one transaction: {report.note} (see batos log; batos inspect "
                  f"{repair.QUARANTINE_SLOT})", file=out)

    emit(report.as_json(), args.json, render)
    if not report.ok:
        left = len(report.untouched) + len(report.still_unloadable)
        raise BatosError(f"{left} object(s) {'would stay' if report.dry_run else 'stay'} "
                         "unloadable: undo the transaction that wrote them (batos log, the "
                         "console's /undo), restore a backup, or, once nothing refers to "
                         "them, batos pack drops them")


@command("certs", "remote ZEO's certificates: init (CA, server, this home's client), "
                  "new-client NAME, list",
         arg("action", choices=["init", "new-client", "list"], help="what to do (see above)"),
         arg("name", nargs="?", help="the client to issue (new-client)"),
         arg("--host", action="append", default=[],
             help="another name the ZEO server is reached by (init; repeatable)"),
         arg("--force", action="store_true", help="replace what exists"), JSON)
def cmd_certs(args):
    """`batos certs init | new-client NAME | list`: the home's CA and certificates that remote
    mode's ZEO server requires (kernel/certs.py)."""
    home = Home.open(args.home)
    if (args.action == "new-client") != bool(args.name):
        raise UsageError("batos certs new-client needs a NAME" if args.name is None
                         else f"batos certs {args.action} takes no NAME")
    if args.action == "init":
        certs.init(home, hosts=args.host, force=args.force)
        print(f"made the CA, the ZEO server's and this home's client certificate in "
              f"{certs.certs_dir(home)}")
        if not home.remote:
            print(f"remote mode is off: set [remote] enabled = true in "
                  f"{home.path / 'batos.toml'} to require them")
    elif args.action == "new-client":
        bundle = certs.new_client(home, args.name, force=args.force)
        print(f"issued {args.name}: copy ca.pem, client.pem and client.key from {bundle} into "
              f"the other host's HOME/certs/")
    else:
        def render(rows, out):
            if not rows:
                print(f"no certificates in {certs.certs_dir(home)} (make them with: "
                      f"batos certs init)", file=out)
            for row in rows:
                print(f"{row['file']}\n  subject {row['subject']}\n  expires {row['not_after']}"
                      f"{' (EXPIRED)' if row['expired'] else ''}\n  sha256 {row['fingerprint']}",
                      file=out)

        emit(certs.list_certificates(home), args.json, render)


@command("awaken", "the main job: bring a home's cluster up, awaken the image, show BRICK "
                   "learning, bring it down")
def cmd_awaken(args):
    """The main job: a home, its cluster under supervisord with the default model, genesis,
    the lobby and personas, the living image at work — BRICK learning methods it was never
    given, ROBIN calling them, ALFRED routing a question — then the console. The cluster is
    brought down when the console closes, and when the command fails or is interrupted."""
    try:
        home = Home.open(args.home)
    except BatosError:
        home = Home.init(args.home)
        print(f"initialised {home.path}")
    fresh = not home.image_path.exists()  # the cluster's workers awaken it as they start
    print("checking that the llama.cpp runtime runs the models on this CPU…")
    for result in runtime_probe.check_home(home):
        print(f"  {result.line()}")
    print("starting the cluster (supervisord: ZEO, orchestrator, one worker per persona)…")
    with supervise.running(home):
        services = supervise.live_services(home) or {}
        print("up: " + ", ".join(f"{name} ×{count}" for name, count in sorted(services.items())))
        image = open_image(home)
        try:
            print("genesis: the image has awakened" if fresh else "the image was already awake")
            show_lobby(image)
            image.run(demo.make_demo_rect, note="new rect from traits", user=CLI_USER)
        finally:
            image.close()
        with keys.frontend_client(home, timeout=300) as client:
            demo.demonstrate(client)
        print()
        cmd_status(argparse.Namespace(home=str(home.path), json=False))
        print("\nopening the console, a session of its own (/help for commands; Ctrl-C "
              "cancels a request; /quit, Ctrl-D or Ctrl-C at an empty prompt leave and stop "
              "the cluster)")
        from console import chat_client
        chat_client.main(home)
    print(f"\ncluster stopped. Bring it back with: batos up --home {home.path}")


def show_lobby(image):
    """Print the lobby and the personas."""
    def describe(lobby):
        return [describe_object(lobby)] + [describe_object(getattr(lobby.personas, name))
                                           for name in sorted(lobby.personas.slot_names())]

    for description in image.run(describe):
        print()
        print_object(description, sys.stdout)


@command("up", "start the cluster (supervisord: ZEO, orchestrator, workers)")
def cmd_up(args):
    home = Home.open(args.home)
    runtime_probe.check_home(home)
    supervise.up(home)
    services = supervise.live_services(home) or {}
    print(f"cluster of {home.path} is up: " + ", ".join(
        f"{name} ×{count}" for name, count in sorted(services.items())))
    print(f"frontend {home.orchestrator_endpoints['frontend']}; logs in {home.log_dir}")


@command("down", "stop the cluster")
def cmd_down(args):
    home = Home.open(args.home)
    supervise.down(home)
    print(f"cluster of {home.path} is down")


@command("status", "programs, live workers per persona, ledger size", JSON)
def cmd_status(args):
    home = Home.open(args.home)
    if not supervise.is_up(home):
        raise supervise.ClusterError(f"the cluster of {home.path} is not running "
                                     "(start it with: batos up)")
    answer = supervise.ping(home) or {}
    status = {"programs": supervise.programs(home), "workers": answer.get("services"),
              "busy": answer.get("busy"),
              "ledger": with_image(home, lambda image: image.run(
                  lambda lobby: lobby.ledger.size()))}

    def render(data, out):
        for program in data["programs"]:
            crashes = (f", restarted {program['restarts']}×" if program["restarts"] else "") + (
                f", last exit: {program['last_exit']}" if program["last_exit"] else "")
            print(f"{program['name']:<28} {program['state']:<10} pid {program['pid']}{crashes}",
                  file=out)
        workers, busy = data["workers"], data["busy"] or {}
        print("workers: " + (", ".join(f"{k} {v}" + (f" ({busy[k]} busy)" if busy.get(k) else "")
                                       for k, v in sorted(workers.items()))
                             if workers is not None else "orchestrator not answering"), file=out)
        print(f"ledger: {data['ledger']} request(s) answered", file=out)

    emit(status, args.json, render)


@command("restart", "restart the workers of one persona",
         arg("persona", help="the persona whose workers restart, e.g. BRICK"))
def cmd_restart(args):
    home = Home.open(args.home)
    supervise.restart(home, args.persona)
    print(f"restarted the workers of {args.persona}")


@command("keys", "remote mode: CURVE keys of the consoles and workers allowed to reach the "
                 "orchestrator; export-worker NAME DIR: the files a worker home on another "
                 "host needs",
         arg("action", choices=["list", "new", "allow", "revoke", "export-worker"],
             help="what to do (see above)"),
         arg("target", nargs="?", metavar="NAME|FILE|KEY",
             help="new/revoke/export-worker: a key name; allow: a public key file or a Z85 "
                  "key"),
         arg("directory", nargs="?", metavar="DIR",
             help="export-worker: the worker home (or a directory to copy there)"),
         arg("--role", choices=list(keys.ROLES), default=keys.CONSOLE,
             help="new/allow/revoke: a console key (requests, events; the default) or a "
                  "worker key (registers as a persona's worker)"),
         arg("--name", help="allow: the name it gets (default: the file's name)"), JSON)
def cmd_keys(args):
    """`batos keys list | new NAME | allow FILE|KEY [--name NAME] | revoke NAME [--role
    console|worker] | export-worker NAME DIR`: the CURVE keys of consoles and workers that
    remote mode's orchestrator requires (kernel/keys.py)."""
    home = Home.open(args.home)
    ring = keys.KeyRing(home.path)
    if args.action == "list":
        server = ring.server_keys()[0].decode() if ring.server_secret_path.exists() else None
        emit({"remote": home.remote, "server": server, "keys": ring.entries()},
             args.json, print_keys)
        return
    if args.target is None or (args.action == "export-worker") != (args.directory is not None):
        raise UsageError(f"batos keys {args.action} needs " + {
            "allow": "a FILE or KEY", "export-worker": "a NAME and a DIR"}.get(
                args.action, "a NAME (and nothing else)"))
    if args.action == "revoke":
        ring.revoke(args.target, args.role)
        print(f"revoked {'worker key ' if args.role == keys.WORKER else ''}{args.target}: the "
              "orchestrator refuses it from now on")
        return
    if args.action == "export-worker":
        print_worker_export(home, args.target, keys.export_worker(home, args.target,
                                                                  args.directory))
        return
    ring.ensure_server()
    if args.action == "new":
        secret = ring.new(args.target, args.role)
        print(f"made {args.role} key {args.target} and allowed it: {secret}")
        print(f"a worker on another host needs it: batos keys export-worker {args.target} DIR"
              if args.role == keys.WORKER else
              f"a console on another host needs {secret} in its home's keys/consoles/ and "
              f"{ring.server_public_path} in its keys/ (then: batos console --key "
              f"{args.target})")
    else:
        name = ring.allow(args.target, args.name, args.role)
        print(f"allowed {'worker key ' if args.role == keys.WORKER else ''}{name}")
    if not home.remote:
        print(f"remote mode is off: set [remote] enabled = true in {home.path / 'batos.toml'} "
              "for the orchestrator to require keys")


def print_worker_export(home, name, written):
    """What `batos keys export-worker` wrote, and the settings the worker home needs."""
    target = written[0].parent.parent
    print(f"wrote {len(written)} files into {target}:")
    for path in written:
        print(f"  {path.relative_to(target)}")
    print(f"the worker home's batos.toml (batos init) needs: [remote] enabled = true and "
          f'worker_key = "{name}"; [zeo] address = this ZEO server '
          f"({home.setting('zeo', 'address')}) and [orchestrator] backend = this backend "
          f"({home.orchestrator_endpoints['backend']}), as that host reaches them; then: "
          f"batos-worker --home HOME --persona NAME")


def print_keys(data, out):
    """Human rendering of `batos keys list`."""
    print(f"remote mode: {'on' if data['remote'] else 'off'}", file=out)
    print(f"{'orchestrator':<20} {data['server'] or '(no key pair yet)'}  (server)", file=out)
    for entry in data["keys"]:
        print(f"{entry['name']:<20} {entry['role']:<8} {entry['public']}  "
              f"{'allowed' if entry['allowed'] else 'NOT allowed'}"
              f"{', secret here' if entry['secret_here'] else ''}", file=out)


def model_users(home):
    """Model id → the personas (and the console) that use it, from the home's configuration."""
    users = {}
    for name, persona in sorted(home.personas.items()):
        users.setdefault(persona["model_id"], []).append(name)
    console_model = home.config.get("console", {}).get("model_id")
    if console_model:
        users.setdefault(console_model, []).append("console")
    return users


@command("models", "the configured models (local GGUF or served) and the personas using "
                   "each; test NAME: a one-prompt smoke test with first-token time and tokens/s",
         arg("action", choices=["list", "test"], help="what to do (see above)"),
         arg("name", nargs="?", metavar="NAME", help="test: the model id"),
         arg("--tokens", type=int, default=32,
             help="test: how many tokens to generate (default: 32)"), JSON)
def cmd_models(args):
    """`batos models list | test NAME`: the configured models, local or served, and who uses
    each; `test` runs one prompt through a model and measures it."""
    home = Home.open(args.home)
    models = home.config.get("models", {})
    if args.action == "list":
        users = model_users(home)
        rows = []
        for model_id in sorted(models):
            spec = llm.ModelSpec.from_config(model_id, models)
            rows.append({"model": model_id, "kind": "served" if spec.served else "local",
                         "where": spec.url or spec.gguf,
                         "server": spec.server if spec.served else None,
                         "used_by": users.get(model_id, [])})
        emit(rows, args.json, print_models)
        return
    if args.name is None:
        raise UsageError("batos models test needs a NAME (batos models list shows them)")
    if args.name not in models:
        raise UsageError(f"no model {args.name!r} is configured; configured: "
                         f"{', '.join(sorted(models))}")
    emit(smoke_test(llm.ModelRegistry(models), args.name, args.tokens), args.json,
         print_smoke_test)


SMOKE_SYSTEM = "You are a helpful assistant."
SMOKE_PROMPT = "In two sentences, what is a living object system?"


def smoke_test(registry, model_id, max_tokens):
    """One prompt through the model: load (or connect) time, first-token time, tokens/s."""
    started = time.perf_counter()
    model = registry.get(model_id)
    loaded = time.perf_counter()
    arrivals = []
    completion = model.complete(SMOKE_SYSTEM, SMOKE_PROMPT, max_tokens=max_tokens,
                                temperature=0.0,
                                on_token=lambda piece: arrivals.append(time.perf_counter()))
    ended = time.perf_counter()
    first = (arrivals[0] - loaded) if arrivals else None
    tokens = completion.completion_tokens
    after_first = ended - arrivals[0] if arrivals else 0.0
    return {"model": model_id, "backend": type(model).__name__,
            "load_seconds": round(loaded - started, 3),
            "first_token_seconds": None if first is None else round(first, 3),
            "tokens": tokens, "seconds": round(ended - loaded, 3),
            "tokens_per_second": round((tokens - 1) / after_first, 2)
            if tokens > 1 and after_first > 0 else None,
            "text": completion.text}


def print_models(rows, out):
    """Human rendering of `batos models list`."""
    for row in rows:
        kind = f"served by {row['server']}" if row["kind"] == "served" else "local"
        print(f"{row['model']:<22} {kind:<28} {row['where']}", file=out)
        print(f"{'':<22} used by: {', '.join(row['used_by']) or 'nobody'}", file=out)


def print_smoke_test(data, out):
    """Human rendering of `batos models test`."""
    print(f"{data['model']} ({data['backend']}): ready in {data['load_seconds']} s, first "
          f"token after {data['first_token_seconds']} s, {data['tokens']} tokens in "
          f"{data['seconds']} s, {data['tokens_per_second']} tokens/s", file=out)
    print(f"  {' '.join(data['text'].split())}", file=out)


@command("console", "chat with the cluster (the Synaptic Console)",
         arg("--session", help="conversation to continue (default: a new one)"),
         arg("--no-translate", action="store_true",
             help="send lines as plain chat, without the console's model"),
         arg("--timeout", type=float, default=600.0,
             help="seconds one stage of a request (queued, thinking, …) may last before it is "
                  "given up (default: 600)"), KEY)
def cmd_console(args):
    from console import chat_client
    home = Home.open(args.home)
    try:
        return chat_client.main(home, args.session, translate=not args.no_translate,
                                timeout=args.timeout, key=args.key)
    except ClusterSilent as exc:
        raise ClusterSilent(f"{exc}{cluster_hint(home)}") from None


def cluster_hint(home):
    """What to try when a home's cluster does not answer."""
    return f"; is the cluster of {home.path} up? (batos status --home {home.path})"


@command("ask", "send one request to the cluster and print the reply",
         arg("text", help="what to say"),
         arg("--persona", help="the persona to ask (default: ALFRED routes)"),
         arg("--session", default="default",
             help="the conversation it belongs to (default: default)"),
         arg("--id", help="request id; re-sending an id never repeats effects"),
         arg("--timeout", type=float, default=600.0,
             help="seconds one stage of the request (queued, thinking, …) may last before it "
                  "is given up (default: 600)"), JSON, KEY)
def cmd_ask(args):
    """`batos ask`: the orchestrator is asked first (none answering: one line within
    seconds), then the request; Ctrl-C cancels it (withdrawn if no worker started it)."""
    home = Home.open(args.home)
    payload = {"id": args.id or new_request_id(), "session": args.session, "intent": "chat",
               "text": args.text}
    if args.persona:
        payload["persona"] = args.persona
    client = keys.frontend_client(home, args.key, timeout=args.timeout)
    try:
        client.check()
        message = client.request(payload)
    except RequestFailed as exc:
        raise BatosError(f"{exc}" + (" (retrying may help)" if exc.transient else "")) \
            from None
    except NoAnswer as exc:
        raise BatosError(f"{exc}{cluster_hint(home)}") from None
    finally:
        client.close()
    emit(message, args.json, lambda m, out: print(
        f"{m.get('persona')}: {m.get('reply')}" + (" (replayed)" if m.get("replayed") else ""),
        file=out))


@command("backup", "back up the image with ZODB's repozo (incremental unless --full), "
                   "while the server runs",
         arg("--to", metavar="DIR", help="backup repository (default: HOME/backups)"),
         arg("--full", action="store_true", help="a full backup, not incremental"),
         arg("--gzip", action="store_true", help="compress the backup file"),
         arg("--quick", action="store_true",
             help="check only the last increment's md5, not the whole image"),
         arg("--list", action="store_true", help="list the backups and exit"), JSON)
def cmd_backup(args):
    """`batos backup`: repozo's full or incremental backup of the image, server running."""
    home = Home.open(args.home)
    repository = args.to or backups.default_repository(home)
    if args.list:
        return print_backups(backups.list_backups(repository), repository, args.json)
    outcome = backups.backup(home.image_path, repository, full=args.full, compress=args.gzip,
                             quick=args.quick)

    def render(data, out):
        for f in outcome.files:
            print(f"{f.kind} backup {f.path} ({f.size} bytes{', gzip' if f.compressed else ''})"
                  f", {backups.describe_outcome(outcome)}", file=out)
        if not outcome.files:
            print(f"nothing committed since the last backup in {repository}; it covers "
                  f"{backups.describe_outcome(outcome)}", file=out)

    emit(outcome.as_json(), args.json, render)


@command("restore", "restore the image from backups (the server of the home must be "
                    "stopped unless --to FILE)",
         arg("--from", dest="source", metavar="DIR",
             help="backup repository (default: HOME/backups)"),
         arg("--date", help="the state as of YYYY-MM-DD-HH-MM-SS UTC (default: the newest "
                            "backup)"),
         arg("--to", metavar="FILE", help="restore into a new file instead of the home's image"),
         arg("--list", action="store_true", help="list the backups and exit"), JSON)
def cmd_restore(args):
    """`batos restore`: the image as of a backup, into the live image (server stopped) or
    --to FILE."""
    home = Home.open(args.home)
    repository = args.source or backups.default_repository(home)
    if args.list:
        return print_backups(backups.list_backups(repository), repository, args.json)
    outcome = backups.restore_home(home, repository, date=args.date, target=args.to)

    def render(data, out):
        print(f"restored {outcome.target} from {len(outcome.files)} file(s) of {repository}, "
              f"{backups.describe_outcome(outcome)}", file=out)
        if outcome.kept:
            print(f"the image it replaced is kept as {outcome.kept}", file=out)
        if outcome.target == home.image_path.absolute():
            print(f"start it with: batos up --home {home.path}", file=out)

    emit(outcome.as_json(), args.json, render)


def print_backups(files, repository, as_json):
    """`--list`: the backups of a repository, oldest first."""
    def render(rows, out):
        if not rows:
            print(f"no backups in {repository}", file=out)
        for row in rows:
            print(f"{row['taken'][:19].replace('T', ' ')} UTC  {row['kind']:<11} "
                  f"{row['bytes']:>12} bytes  {row['file']}", file=out)

    emit([f.as_json() for f in files], as_json, render)


# -- entry point -------------------------------------------------------------------------------

def build_parser():
    """The `batos` argument parser with one sub-command per operation (`COMMANDS`, in
    `ORDER`); every argument and option has its help text."""
    parser = argparse.ArgumentParser(prog="batos", description="BAT OS: the living image.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", default=None,
                        help="data directory (default: $BATOS_HOME, then ./var)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in ORDER:
        handler, help_text, arguments = COMMANDS[name]
        command_parser = sub.add_parser(name, parents=[common], help=help_text,
                                        description=help_text)
        command_parser.set_defaults(handler=handler)
        for argument in arguments:
            argument(command_parser)
    return parser


def resolve_home(args):
    """Set `args.home`: --home, else `$BATOS_HOME`, else ./var — unless ./var is no home and
    `make run` made `var/run-*` homes: then `status` shows the newest, and for any other
    command the returned hint (for a "no home" error) names it."""
    newest = None if args.home else newest_run_home()
    args.home = args.home or str(default_home_path())
    if newest is None:
        return ""
    if args.command == "status":
        print(f"batos: showing the newest home, {newest} (choose one with --home)",
              file=sys.stderr)
        args.home = str(newest)
        return ""
    return f"; the newest home here is {newest}: pass --home {newest}"


def main(argv=None):
    """Entry point of `batos`: configure logging, run one command, map errors to exit codes."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.ERROR,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # a server's refusal is the command's one line, not a log record too
        logging.getLogger("ZEO.asyncio.client").setLevel(logging.CRITICAL)
    hint = resolve_home(args)
    supervise.terminate_as_interrupt()  # SIGTERM runs the same clean-up as Ctrl-C
    try:
        code = args.handler(args) or 0
        sys.stdout.flush()  # a reader that went away is found here, not at exit
        return code
    except BrokenPipeError:  # `batos log | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE  # what a shell reports for a command ended by SIGPIPE
    except BatosError as exc:
        print(f"batos: {exc}{hint if isinstance(exc, HomeError) else ''}", file=sys.stderr)
        return 2 if isinstance(exc, (UsageError, timetravel.BadWhen)) else 1
    except KeyboardInterrupt:
        print("batos: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a kernel bug or an unforeseen failure: one line, details in -v
        log.debug("unexpected failure", exc_info=True)
        print(f"batos: unexpected {type(exc).__name__}: {exc} (run with -v for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
