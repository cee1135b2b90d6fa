"""`batos`: the command line of a BAT OS home.

Every command takes `--home DIR` (default `$BATOS_HOME`, then `./var`). Commands that need the
Living Image connect to the home's ZEO server and say so in one line when none answers. Bad
input — a missing path, a foreign or corrupt data directory, malformed JSON — is one clear line
on stderr and a non-zero exit, with nothing written.
"""
import argparse
import datetime
import json
import logging
import sys

from kernel import dnu, guardian, llm, paths, sandbox, supervise
from kernel.client import Client, NoAnswer, RequestFailed, new_request_id
from kernel.values import plain
from kernel import image as image_module
from kernel.errors import BatosError, ServerUnavailable, SlotError
from kernel.home import Home, default_home_path, format_address
from kernel.uvm import check_slot_name
from zeo_server import maintenance

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


def describe_object(obj):
    """Everything `inspect` shows about one object, as plain data."""
    description = obj.describe()
    description["slots"] = {k: plain(v) for k, v in sorted(description["slots"].items())}
    if obj._p_oid is not None:
        description["oid"] = f"{int.from_bytes(obj._p_oid, 'big'):#x}"
    return description


def print_object(description, out):
    """Human rendering of `describe_object`."""
    print(f"{description['label']}  (oid {description.get('oid', '-')})", file=out)
    print(f"  parents: {', '.join(description['parents']) or '(none)'}", file=out)
    print("  slots:" if description["slots"] else "  slots: (none)", file=out)
    for name, value in description["slots"].items():
        print(f"    {name} = {short(value, 64)}", file=out)
    print("  methods:" if description["methods"] else "  methods: (none)", file=out)
    for selector, method in description["methods"].items():
        if method["kind"] == "primitive":
            print(f"    {selector}  (primitive) {method['doc']}", file=out)
            continue
        prov = method["provenance"]
        verdict = "ok" if prov.get("audit", {}).get("ok") else "REJECTED"
        print(f"    {selector}  by {prov.get('author')} at {prov.get('created')}, audit "
              f"{verdict}, {method['versions']} version(s)", file=out)
        for line in method["source"].rstrip().splitlines():
            print(f"      | {line}", file=out)


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


# -- commands ----------------------------------------------------------------------------------

def open_image(home):
    """Connect to the home's ZEO server, or a one-line `ServerUnavailable`."""
    sandbox.configure(**home.sandbox_limits)
    try:
        return image_module.connect(home.zeo_address, personas=home.personas,
                                    wait_timeout=home.zeo_wait_timeout,
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


def cmd_init(args):
    home = Home.init(args.home, args.zeo_address)
    print(f"initialised {home.path}; ZEO address {format_address(home.zeo_address)}")
    print(f"start its server with: python -m zeo_server --home {home.path}")


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


def cmd_inspect(args):
    home = Home.open(args.home)

    def look(lobby):
        return describe_object(paths.resolve(lobby, args.path))

    emit(with_image(home, lambda image: image.run(look)), args.json, print_object)


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


def cmd_send(args):
    values = [parse_json(arg, f"argument {i}") for i, arg in enumerate(args.args, 1)]
    expect = parse_json(args.expect, "--expect") if args.expect is not None \
        else dnu.NO_EXPECTATION
    home = Home.open(args.home)

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


def make_learner(home, image):
    """The `_doesNotUnderstand` engine for this home, with its `[dnu]` settings and models."""
    settings = home.config.get("dnu", {})
    return dnu.Learner(image, llm.ModelRegistry(home.config.get("models", {})),
                       writer=settings.get("writer", "BRICK"),
                       attempts=int(settings.get("attempts", 3)),
                       wait_seconds=float(settings.get("wait_seconds", 300)), user=CLI_USER,
                       temperatures=settings.get("temperatures", dnu.DEFAULT_TEMPERATURES))


def print_outcome(data, out):
    """Human rendering of a send: the result, then what was learned on the way."""
    print(json.dumps(data["result"], ensure_ascii=False), file=out)
    if data["learned"]:
        print(f"learned in {data['attempts']} attempt(s) by {data['persona']} with "
              f"{data['model']}, audit {'ok' if data['audit']['ok'] else 'REJECTED'}, "
              f"{data['seconds']:.1f} s:", file=out)
        for line in data["source"].rstrip().splitlines():
            print(f"  | {line}", file=out)
    elif data["waited"]:
        print(f"learned meanwhile by another process ({data['persona']})", file=out)


def cmd_audit(args):
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


def cmd_log(args):
    home = Home.open(args.home)
    entries = with_image(home, lambda image: image.history(args.limit))

    def render(rows, out):
        for row in rows:
            when = datetime.datetime.fromtimestamp(row["time"]).isoformat(" ", "seconds")
            print(f"{when}  {row['user'] or '-':<12}  {row['note']}", file=out)

    emit(entries, args.json, render)


def cmd_pack(args):
    home = Home.open(args.home)
    with_image(home, lambda image: image.pack(days=args.days))
    print(f"packed {home.image_path} (kept {args.days:g} day(s) of history)")


def cmd_check(args):
    home = Home.open(args.home)
    if not home.image_path.exists():
        raise BatosError(f"{home.image_path} does not exist yet: the image has never been served")
    report = maintenance.check(home.image_path)
    if not report.ok:
        for problem in report.problems:
            print(problem, file=sys.stderr)
        raise BatosError(f"{home.image_path} is damaged ({len(report.problems)} problem(s))")
    print(f"{home.image_path}: ok")


def cmd_awaken(args):
    """The main job: a home, its cluster under supervisord with the default model, genesis,
    the lobby and personas, the living image at work — BRICK learning methods it was never
    given, ROBIN calling them, ALFRED routing a question — then the console."""
    try:
        home = Home.open(args.home)
    except BatosError:
        home = Home.init(args.home)
        print(f"initialised {home.path}")
    print("starting the cluster (supervisord: ZEO, orchestrator, one worker per persona)…")
    supervise.up(home)
    try:
        services = supervise.live_services(home) or {}
        print("up: " + ", ".join(f"{name} ×{count}" for name, count in sorted(services.items())))
        image = open_image(home)
        try:
            print("genesis: the image has awakened" if image.awakened
                  else "the image was already awake")
            show_lobby(image)
            image.run(make_demo_rect, note="new rect from traits", user=CLI_USER)
        finally:
            image.close()
        with Client(home.orchestrator_endpoints["frontend"], timeout=300) as client:
            demonstrate(client)
        print()
        cmd_status(argparse.Namespace(home=str(home.path), json=False))
        print("\nopening the console (/help for commands; /quit or Ctrl-D to leave and stop "
              "the cluster)")
        from console import chat_client
        chat_client.main(home, session="awaken")
    finally:
        supervise.down(home)
    print(f"\ncluster stopped. Bring it back with: batos up --home {home.path}")


def make_demo_rect(lobby):
    """A rectangle to teach: width 3, height 4, and no methods."""
    if not lobby.responds_to("rect"):
        lobby.rect = lobby.traits.clone(width=3, height=4)
        lobby.rect._label = "rect"


def demonstrate(client):
    """Requests through the orchestrator, each printed with who answered and what was learned."""
    steps = [
        ("BRICK, send rect area (a message rect does not understand)",
         {"intent": "send", "persona": "BRICK", "target": "rect", "selector": "area"}),
        ("BRICK, send rect perimeter, expecting 14",
         {"intent": "send", "persona": "BRICK", "target": "rect", "selector": "perimeter",
          "expect": 14}),
        ("ROBIN, send rect area (learned by BRICK, called by another worker)",
         {"intent": "send", "persona": "ROBIN", "target": "rect", "selector": "area"}),
        ("a question with no persona named (ALFRED routes it)",
         {"intent": "chat", "text": "Who should I ask to remember my birthday?"}),
    ]
    for title, payload in steps:
        print(f"\n> {title}")
        try:
            message = client.request({"id": new_request_id(), "session": "awaken", **payload},
                                     on_progress=lambda m: print(f"  … {m['stage']} "
                                                                 f"({m['persona']})"))
        except (RequestFailed, NoAnswer) as exc:
            print(f"  error: {exc}")
            continue
        print(f"  {message.get('persona')}: result {json.dumps(message.get('result'))}"
              + (f", reply {message['reply']!r}" if message.get("reply") else ""))
        for learned in message.get("learned", []):
            print(f"  learned {learned['target']}.{learned['selector']} in "
                  f"{learned['attempts']} attempt(s):")
            for line in (learned.get("source") or "").rstrip().splitlines():
                print(f"    | {line}")


def show_lobby(image):
    """Print the lobby and the personas."""
    def describe(lobby):
        return [describe_object(lobby)] + [describe_object(getattr(lobby.personas, name))
                                           for name in sorted(lobby.personas.slot_names())]

    for description in image.run(describe):
        print()
        print_object(description, sys.stdout)


def cmd_up(args):
    home = Home.open(args.home)
    supervise.up(home)
    services = supervise.live_services(home) or {}
    print(f"cluster of {home.path} is up: " + ", ".join(
        f"{name} ×{count}" for name, count in sorted(services.items())))
    print(f"frontend {home.orchestrator_endpoints['frontend']}; logs in {home.log_dir}")


def cmd_down(args):
    home = Home.open(args.home)
    supervise.down(home)
    print(f"cluster of {home.path} is down")


def cmd_status(args):
    home = Home.open(args.home)
    if not supervise.is_up(home):
        raise supervise.ClusterError(f"the cluster of {home.path} is not running "
                                     "(start it with: batos up)")
    status = {"programs": supervise.programs(home),
              "workers": supervise.live_services(home),
              "ledger": with_image(home, lambda image: image.run(
                  lambda lobby: lobby.ledger.size()))}

    def render(data, out):
        for program in data["programs"]:
            print(f"{program['name']:<28} {program['state']:<10} pid {program['pid']}", file=out)
        workers = data["workers"]
        print("workers: " + (", ".join(f"{k} {v}" for k, v in sorted(workers.items()))
                             if workers is not None else "orchestrator not answering"), file=out)
        print(f"ledger: {data['ledger']} request(s) answered", file=out)

    emit(status, args.json, render)


def cmd_restart(args):
    home = Home.open(args.home)
    supervise.restart(home, args.persona)
    print(f"restarted the workers of {args.persona}")


def cmd_console(args):
    from console import chat_client
    home = Home.open(args.home)
    return chat_client.main(home, args.session, translate=not args.no_translate,
                            resend_after=args.resend_after, timeout=args.timeout)


def cmd_ask(args):
    home = Home.open(args.home)
    payload = {"id": args.id or new_request_id(), "session": args.session, "intent": "chat",
               "text": args.text}
    if args.persona:
        payload["persona"] = args.persona
    client = Client(home.orchestrator_endpoints["frontend"], timeout=args.timeout)
    try:
        message = client.request(payload)
    except RequestFailed as exc:
        raise BatosError(f"{exc}" + (" (retrying may help)" if exc.transient else "")) \
            from None
    except NoAnswer as exc:
        raise BatosError(f"{exc}; is the cluster up? (batos status)") from None
    finally:
        client.close()
    emit(message, args.json, lambda m, out: print(
        f"{m.get('persona')}: {m.get('reply')}" + (" (replayed)" if m.get("replayed") else ""),
        file=out))


# -- entry point -------------------------------------------------------------------------------

def build_parser():
    """The `batos` argument parser with one sub-command per operation."""
    parser = argparse.ArgumentParser(prog="batos", description="BAT OS: the living image.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", default=None,
                        help="data directory (default: $BATOS_HOME, then ./var)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, handler, help_text):
        command = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        command.set_defaults(handler=handler)
        return command

    command = add("init", cmd_init, "create a data directory with its own configuration")
    command.add_argument("--zeo-address", help="HOST:PORT (default: a free loopback port)")
    add("awaken", cmd_awaken, "the main job: bring a home's cluster up, awaken the image, "
                              "show BRICK learning, bring it down")
    command = add("new", cmd_new, "create an object at PATH as a clone of --proto")
    command.add_argument("path")
    command.add_argument("--proto", default="traits", help="prototype path (default: traits)")
    command.add_argument("--slots", default="{}", help="JSON object of slot values")
    command.add_argument("--json", action="store_true")
    command = add("inspect", cmd_inspect, "show an object's slots, parents and methods")
    command.add_argument("path")
    command.add_argument("--json", action="store_true")
    command = add("define", cmd_define, "audit and install a method on the object at PATH")
    command.add_argument("path")
    command.add_argument("selector")
    source = command.add_mutually_exclusive_group(required=True)
    source.add_argument("--source", help="the method's source text")
    source.add_argument("--file", help="a file holding the method's source")
    command.add_argument("--json", action="store_true")
    command = add("send", cmd_send, "send a message to the object at PATH, learning the "
                                    "method if it is missing")
    command.add_argument("path")
    command.add_argument("selector")
    command.add_argument("args", nargs="*", metavar="ARG", help="arguments as JSON values")
    command.add_argument("--expect", metavar="JSON", help="the result the caller expects; a "
                                                          "learned method must produce it")
    command.add_argument("--json", action="store_true")
    command = add("log", cmd_log, "the image's history: time, user and note of each transaction")
    command.add_argument("--limit", type=int, default=100)
    command.add_argument("--json", action="store_true")
    command = add("pack", cmd_pack, "drop old history from the image (through the server)")
    command.add_argument("--days", type=float, default=0.0)
    add("check", cmd_check, "check the image file's consistency (fstest and fsrefs)")
    add("up", cmd_up, "start the cluster (supervisord: ZEO, orchestrator, workers)")
    add("down", cmd_down, "stop the cluster")
    command = add("status", cmd_status, "programs, live workers per persona, ledger size")
    command.add_argument("--json", action="store_true")
    command = add("restart", cmd_restart, "restart the workers of one persona")
    command.add_argument("persona")
    command = add("ask", cmd_ask, "send one request to the cluster and print the reply")
    command.add_argument("text")
    command.add_argument("--persona", help="the persona to ask (default: ALFRED routes)")
    command.add_argument("--session", default="default")
    command.add_argument("--id", help="request id; re-sending an id never repeats effects")
    command.add_argument("--timeout", type=float, default=300.0)
    command.add_argument("--json", action="store_true")
    command = add("console", cmd_console, "chat with the cluster (the Synaptic Console)")
    command.add_argument("--session", help="conversation to continue (default: a new one)")
    command.add_argument("--no-translate", action="store_true",
                         help="send lines as plain chat, without the console's model")
    command.add_argument("--resend-after", type=float, default=15.0, help="seconds of "
                         "silence before a request is sent again (same id, no duplicate effects)")
    command.add_argument("--timeout", type=float, default=600.0,
                         help="seconds before a request is given up")
    command = add("audit", cmd_audit, "judge a method's source with the PersistenceGuardian")
    command.add_argument("file")
    command.add_argument("--json", action="store_true")
    return parser


def main(argv=None):
    """Entry point of `batos`: configure logging, run one command, map errors to exit codes."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.ERROR,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.home = args.home or str(default_home_path())
    try:
        return args.handler(args) or 0
    except BatosError as exc:
        print(f"batos: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
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
