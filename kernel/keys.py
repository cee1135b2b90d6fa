"""Remote access to the orchestrator: ZeroMQ CURVE keys and the allow-lists of consoles and
workers.

Loopback only is the default. With `[remote] enabled = false` (as `batos init` writes it)
every orchestrator endpoint must be a loopback (or ipc/inproc) address and nothing needs a
key; a non-loopback endpoint is refused with a `ConfigError`.

With `[remote] enabled = true` all three orchestrator sockets become CURVE servers (libzmq's
CurveZMQ: encrypted, and every client proves a key pair) and may bind any address, e.g.
`frontend = "tcp://0.0.0.0:5555"` or `backend = "tcp://0.0.0.0:5556"` in `[orchestrator]`:
the frontend (requests) and the events publisher for consoles, the backend for persona
workers, which may then run on other hosts. A ZAP handler (pyzmq's own
`zmq.auth.thread.ThreadAuthenticator`) lets a connection in only if its public key is on the
allow-list of the socket's ZAP domain — `consoles` for the frontend and events, `workers` for
the backend — and the orchestrator checks the CURVE user id of every request and every worker
message against the current list too, so revoking a key also silences connections that are
already open (a revoked worker is dropped at its next message and the request it held is
re-dispatched). The allow-lists are re-read whenever their directories change: `batos keys
new/allow/revoke` work on a running orchestrator, no restart. (An events subscription that is
already open keeps receiving until it reconnects.)

Console keys and worker keys are two lists, never one: a console key cannot register as a
persona (which would let any console answer other people's requests and read every request a
persona receives), and a worker key cannot send requests or read events (a GPU host that runs
one persona's model gets no console of the cluster with it). A key pair is made for one role
(`batos keys new NAME --role worker`) and allowed in that role only.

Everything lives in the home's `keys/` directory, never in the image::

    keys/orchestrator.key_secret   the orchestrator's key pair (mode 0600)
    keys/orchestrator.key          its public key: give it to consoles and remote workers
    keys/consoles/NAME.key_secret  console key pairs made here (mode 0600), NAME.key beside
    keys/allowed/NAME.key          the consoles' allow-list: public keys that may send requests
    keys/workers/NAME.key_secret   worker key pairs made here (mode 0600), NAME.key beside
    keys/allowed_workers/NAME.key  the workers' allow-list: public keys that may register

The files are pyzmq's own certificate format (`zmq.auth.create_certificates`,
`zmq.auth.load_certificate`). Processes of the home itself use the keys named `local`, made
with the orchestrator's key by `ensure_home_keys` (`batos up` calls it): the console key
`local` for `batos status`, `batos ask`, the console and workers asking BRICK; the worker key
`local` for registering. A client picks its console key with `--key NAME` (a name under
`keys/consoles/` or a path to a `.key_secret` file), else `$BATOS_KEY`, else `local`; a worker
picks its worker key by `$BATOS_WORKER_KEY`, else `[remote] worker_key`, else `local`.

A console on another host needs a home of its own (`batos init`) whose `[remote]` is enabled
and whose `[orchestrator]` frontend/events name the orchestrator's host, plus two files copied
from the orchestrator's home: `keys/orchestrator.key` (into its `keys/`) and its own
`keys/consoles/NAME.key_secret` made there with `batos keys new NAME`. A worker on another
host needs a home of its own too, with `[remote] enabled = true` and `worker_key = "NAME"`,
`[zeo] address` and `[orchestrator] backend` naming the first home's host, and the files
`batos keys export-worker NAME DIR` writes (`export_worker`): the orchestrator's public key,
the worker key pair NAME, and a ZEO client certificate of the first home's CA
(`kernel.certs`), since the worker reads and writes the image over SSL.
"""
import contextlib
import dataclasses
import fcntl
import logging
import os
import pathlib
import re
import shutil
import tempfile
import time

import zmq
import zmq.auth

from kernel.client import Client
from kernel.errors import ConfigError
from kernel.home import is_loopback_host

log = logging.getLogger(__name__)

KEYS_DIR = "keys"
SERVER_NAME = "orchestrator"
LOCAL_NAME = "local"
ENV_KEY = "BATOS_KEY"
ENV_WORKER_KEY = "BATOS_WORKER_KEY"
PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
Z85_KEY_PATTERN = re.compile(r"[0-9A-Za-z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}")
CONSOLE, WORKER = "console", "worker"
ROLES = (CONSOLE, WORKER)
# role → (directory of key pairs made here, allow-list directory, ZAP domain of its sockets)
ROLE_PLACES = {CONSOLE: ("consoles", "allowed", "consoles"),
               WORKER: ("workers", "allowed_workers", "workers")}
ENDPOINT_ROLES = {"frontend": CONSOLE, "events": CONSOLE, "backend": WORKER}
REFRESH_INTERVAL = 0.2
PUBLIC_CERTIFICATE = """#   ZeroMQ CURVE Public Certificate (BAT OS allow-list)
#   A {role}'s public key: safe to share.

metadata
curve
    public-key = "{public}"
"""


class CurveKeyError(ConfigError):
    """A CURVE key is missing, malformed, or already exists under that name. Final: make,
    copy or name the key and try again."""


@dataclasses.dataclass(frozen=True)
class ClientCurve:
    """What a CURVE client socket needs: its own key pair and the server's public key."""

    public: bytes
    secret: bytes
    server_public: bytes


@dataclasses.dataclass(frozen=True)
class ServerCurve:
    """What the orchestrator needs to serve CURVE: its key pair and the allow-list directory
    of each role (`allowed_dirs`: role → directory)."""

    public: bytes
    secret: bytes
    allowed_dirs: dict


def zap_domain(role):
    """The ZAP domain of the sockets that admit keys of `role` (`consoles`, `workers`)."""
    return ROLE_PLACES[check_role(role)][2]


def check_role(role):
    """A key's role is `console` or `worker`; returns it."""
    if role not in ROLES:
        raise CurveKeyError(f"{role!r} is not a key role (one of: {', '.join(ROLES)})")
    return role


# -- configuration -------------------------------------------------------------------------------

def endpoint_host(endpoint):
    """The host part of a `tcp://HOST:PORT` endpoint; None for ipc://, inproc:// and the like."""
    match = re.fullmatch(r"tcp://(?:[^;]*;)?\[?([^\[\]]*?)\]?:(\d+|\*)", endpoint.strip())
    if match is None:
        if re.match(r"(ipc|inproc)://", endpoint):
            return None
        raise ConfigError(f"{endpoint!r} is not a ZeroMQ endpoint of the form tcp://HOST:PORT")
    return match.group(1)


def is_loopback(endpoint):
    """True if `endpoint` can only be reached from this host."""
    host = endpoint_host(endpoint)
    return host is None or is_loopback_host(host)


def check_endpoints(home):
    """Refuse endpoints that would expose the orchestrator without authentication: off remote
    mode every endpoint must be loopback; in remote mode CURVE guards each of them."""
    endpoints = home.orchestrator_endpoints
    for name in ENDPOINT_ROLES:
        endpoint_host(endpoints[name])  # a malformed endpoint is refused in either mode
    if home.remote:
        return
    for name, role in ENDPOINT_ROLES.items():
        if not is_loopback(endpoints[name]):
            how = "batos keys new NAME" + (" --role worker" if role == WORKER else "")
            raise ConfigError(f"{home.path / 'batos.toml'}: orchestrator.{name} "
                              f"{endpoints[name]!r} is not a loopback address and remote mode "
                              f"is off; set [remote] enabled = true ({role}s then need keys: "
                              f"{how}) or bind 127.0.0.1")


def connect_endpoint(endpoint):
    """The address a client on this host connects to for a bound `endpoint`: a wildcard
    host (`*`, `0.0.0.0`, `::`) becomes the loopback address."""
    match = re.fullmatch(r"tcp://(\*|0\.0\.0\.0|\[::\]|::):(\d+)", endpoint.strip())
    if match is None:
        return endpoint
    return f"tcp://{'[::1]' if ':' in match.group(1) else '127.0.0.1'}:{match.group(2)}"


# -- the key ring of a home ----------------------------------------------------------------------

class KeyRing:
    """The `keys/` directory of one home: the orchestrator's key pair, the console and worker
    key pairs made here, and the two allow-lists. Changes are made under an exclusive lock
    and appear atomically (written in a private temporary directory, then renamed into
    place)."""

    def __init__(self, home_path):
        self.root = pathlib.Path(home_path) / KEYS_DIR
        self.made_dirs = {role: self.root / places[0] for role, places in ROLE_PLACES.items()}
        self.allowed_dirs = {role: self.root / places[1] for role, places in ROLE_PLACES.items()}
        self.server_secret_path = self.root / (SERVER_NAME + SECRET_SUFFIX)
        self.server_public_path = self.root / (SERVER_NAME + PUBLIC_SUFFIX)

    # -- writing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self):
        for directory in (self.root, *self.allowed_dirs.values(), *self.made_dirs.values()):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _make_pair(self, directory, name):
        """A new key pair NAME.key / NAME.key_secret in `directory` (secret mode 0600)."""
        staging = pathlib.Path(tempfile.mkdtemp(dir=self.root, prefix=".new-"))
        try:
            public, secret = zmq.auth.create_certificates(staging, name)
            os.chmod(secret, 0o600)
            os.rename(secret, directory / (name + SECRET_SUFFIX))
            os.rename(public, directory / (name + PUBLIC_SUFFIX))
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _allow_made(self, name, role):
        """Put the public key of the `role` pair NAME (made here) on that role's allow-list."""
        write_public(self.allowed_path(name, role), read_public(self.secret_path(name, role)),
                     role)

    def ensure_server(self):
        """The orchestrator's key pair, made now if the home has none yet."""
        with self._locked():
            if not self.server_secret_path.exists():
                if self.server_public_path.exists():  # copied here: another host's key
                    raise CurveKeyError(
                        f"{self.server_public_path} is the public key of an orchestrator on "
                        "another host (this home has no key pair of its own): make keys in "
                        "that orchestrator's home, and copy what this host needs here")
                self._make_pair(self.root, SERVER_NAME)
                log.info("made the orchestrator's CURVE key pair in %s", self.root)
        return self.server_keys()

    def ensure_local(self):
        """The home's own console and worker keys (`local`, allowed), made now if missing."""
        with self._locked():
            for role in ROLES:
                if not self.secret_path(LOCAL_NAME, role).exists():
                    self._make_pair(self.made_dirs[role], LOCAL_NAME)
                    self._allow_made(LOCAL_NAME, role)

    def new(self, name, role=CONSOLE):
        """Make a `role` key pair NAME and allow it in that role; returns the secret file's
        path."""
        check_name(name)
        check_role(role)
        with self._locked():
            if self.secret_path(name, role).exists():
                raise CurveKeyError(f"a {role} key named {name!r} already exists in "
                                    f"{self.made_dirs[role]}")
            if self.allowed_path(name, role).exists():
                raise CurveKeyError(f"the {role}s' allow-list already has a key named "
                                    f"{name!r}; revoke it first or choose another name")
            self._make_pair(self.made_dirs[role], name)
            self._allow_made(name, role)
        return self.secret_path(name, role)

    def allow(self, source, name=None, role=CONSOLE):
        """Allow a public key in `role`: `source` is a certificate file (public or secret;
        only the public key is kept) or a Z85 public key of 40 characters. Returns its name."""
        check_role(role)
        path = pathlib.Path(source)
        if path.is_file():
            public = read_public(path)
            name = name or path.name.split(".")[0]
        elif Z85_KEY_PATTERN.fullmatch(source):
            public = source.encode("ascii")
            if name is None:
                raise CurveKeyError("a key given as text needs a name: batos keys allow KEY "
                                    "--name NAME")
        else:
            raise CurveKeyError(f"{source!r} is neither a key file nor a 40-character Z85 "
                                "public key")
        check_name(name)
        with self._locked():
            if self.allowed_path(name, role).exists():
                raise CurveKeyError(f"the {role}s' allow-list already has a key named "
                                    f"{name!r}")
            write_public(self.allowed_path(name, role), public, role)
        return name

    def revoke(self, name, role=CONSOLE):
        """Take NAME off the allow-list of `role` (its key pair, if made here, stays)."""
        check_name(name)
        check_role(role)
        with self._locked():
            try:
                self.allowed_path(name, role).unlink()
            except FileNotFoundError:
                raise CurveKeyError(f"no {role} key named {name!r} is allowed (see: batos "
                                    "keys list)") from None

    # -- reading ------------------------------------------------------------------------------

    def secret_path(self, name, role=CONSOLE):
        """Where a `role` key pair named NAME made in this home lives."""
        return self.made_dirs[check_role(role)] / (name + SECRET_SUFFIX)

    def allowed_path(self, name, role=CONSOLE):
        """Where the public key NAME allowed in `role` lives."""
        return self.allowed_dirs[check_role(role)] / (name + PUBLIC_SUFFIX)

    def server_keys(self):
        """(public, secret) of the orchestrator; a `CurveKeyError` if it has none yet."""
        if not self.server_secret_path.exists():
            raise CurveKeyError(f"the orchestrator has no key pair in {self.root} yet; make it "
                                "with: batos keys new NAME (or batos up)")
        return load_pair(self.server_secret_path)

    def server_public(self):
        """The orchestrator's public key, from `keys/orchestrator.key` (the file consoles and
        workers on other hosts copy)."""
        if not self.server_public_path.exists():
            raise CurveKeyError(f"{self.server_public_path} is missing: copy it from the "
                                "orchestrator's home (keys/orchestrator.key)")
        return read_public(self.server_public_path)

    def allowed(self, role=CONSOLE):
        """Name → public key of every key on the allow-list of `role`."""
        return _keys_in(self.allowed_dirs[check_role(role)], PUBLIC_SUFFIX)

    def made(self, role=CONSOLE):
        """Name → public key of every `role` key pair made in this home."""
        return _keys_in(self.made_dirs[check_role(role)], SECRET_SUFFIX)

    def entries(self):
        """`batos keys list`: every known key of each role with whether it is allowed and
        whether its secret is in this home."""
        listed = []
        for role in ROLES:
            allowed, made = self.allowed(role), self.made(role)
            listed += [{"name": name, "role": role,
                        "public": (allowed.get(name) or made[name]).decode(),
                        "allowed": name in allowed, "secret_here": name in made}
                       for name in sorted(set(allowed) | set(made))]
        return listed

    def client_keys(self, key=None, role=CONSOLE):
        """The `ClientCurve` for key `key` of `role` (a name made here or a `.key_secret`
        path); a console's default is `$BATOS_KEY`, then `local`; a worker's `local`."""
        key = key or (os.environ.get(ENV_KEY) if role == CONSOLE else None) or LOCAL_NAME
        if "/" in key or key.endswith(SECRET_SUFFIX):
            path = pathlib.Path(key)
        else:
            check_name(key)
            path = self.secret_path(key, role)
        if not path.exists():
            raise CurveKeyError(f"no {role} key {key!r} ({path} is missing); make one with: "
                                f"batos keys new NAME{' --role worker' if role == WORKER else ''}"
                                " (in the orchestrator's home; for another host, copy it "
                                "here)")
        public, secret = load_pair(path)
        return ClientCurve(public, secret, self.server_public())


def _keys_in(directory, suffix):
    """Name → public key of every certificate file ending in `suffix` in `directory`."""
    if not directory.is_dir():
        return {}
    return {path.name[:-len(suffix)]: read_public(path)
            for path in sorted(directory.glob("*" + suffix))}


def check_name(name):
    """Key names are file names: letters, digits, `_ . -`, at most 64 characters."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise CurveKeyError(f"{name!r} is not a key name (letters, digits, _ . -; at most 64)")


def read_public(path):
    """The public key in a pyzmq certificate file (public or secret)."""
    try:
        return zmq.auth.load_certificate(path)[0]
    except (OSError, ValueError) as exc:
        raise CurveKeyError(f"cannot read a CURVE key from {path}: {exc}") from None


def write_public(path, public, role=CONSOLE):
    """Write a public certificate in pyzmq's format (what `zmq.auth.load_certificate` and the
    authenticator read), atomically: a reader never sees half a file."""
    path = pathlib.Path(path)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_text(PUBLIC_CERTIFICATE.format(public=public.decode("ascii"), role=role),
                       encoding="utf-8")
    os.chmod(staging, 0o644)
    os.rename(staging, path)


def load_pair(path):
    """(public, secret) from a `.key_secret` file."""
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise CurveKeyError(f"cannot read a CURVE key from {path}: {exc}") from None
    if not secret:
        raise CurveKeyError(f"{path} holds no secret key (it is a public certificate)")
    return public, secret


# -- a worker home on another host ---------------------------------------------------------------

def export_worker(home, name, directory):
    """Write into `directory` exactly what a worker home on another host needs from `home`
    (the orchestrator's home): `keys/orchestrator.key`, the worker key pair NAME made here
    (`keys/workers/NAME.key_secret` and `.key`), and `certs/{ca.pem,client.pem,client.key}`,
    a ZEO client certificate `worker-NAME` of the home's CA (issued now unless it was before).
    Refuses to overwrite a file. Returns the paths written."""
    from kernel import certs  # cryptography is loaded only by the commands that need it
    ring = KeyRing(home.path)
    check_name(name)
    secret = ring.secret_path(name, WORKER)
    if not secret.exists():
        raise CurveKeyError(f"no worker key pair {name!r} was made in {home.path}; make it "
                            f"with: batos keys new {name} --role worker")
    ring.server_public()  # the orchestrator's key exists
    target = pathlib.Path(directory).absolute()
    if target == home.path.absolute():
        raise CurveKeyError(f"{target} is the orchestrator's own home; export into the worker "
                            "home (or a directory to copy there)")
    bundle = certs.certs_dir(home) / certs.CLIENTS_DIR / f"worker-{name}"
    if not (bundle / "client.pem").exists():
        bundle = certs.new_client(home, f"worker-{name}")
    copies = [(ring.server_public_path, pathlib.Path(KEYS_DIR, SERVER_NAME + PUBLIC_SUFFIX),
               False),
              (secret, pathlib.Path(KEYS_DIR, "workers", name + SECRET_SUFFIX), True),
              (ring.made_dirs[WORKER] / (name + PUBLIC_SUFFIX),
               pathlib.Path(KEYS_DIR, "workers", name + PUBLIC_SUFFIX), False)]
    copies += [(bundle / file, pathlib.Path(certs.CERTS_DIR, file), file == "client.key")
               for file in ("ca.pem", "client.pem", "client.key")]
    existing = [target / path for _source, path, _private in copies if (target / path).exists()]
    if existing:
        raise CurveKeyError(f"{existing[0]} already exists; remove it first to export again")
    for source, path, private in copies:
        (target / path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.copyfile(source, target / path)
        os.chmod(target / path, 0o600 if private else 0o644)
    log.info("exported worker %s into %s", name, target)
    return [target / path for _source, path, _private in copies]


# -- what processes use --------------------------------------------------------------------------

def ensure_home_keys(home):
    """In remote mode, make the orchestrator's key pair and the `local` console and worker keys
    if they are missing (`batos up` and the orchestrator call this before anything
    connects)."""
    if not home.remote:
        return
    ring = KeyRing(home.path)
    ring.ensure_server()
    ring.ensure_local()


def server_curve(home):
    """The orchestrator's security: checks the endpoints, then None (loopback mode) or the
    `ServerCurve` of remote mode, making the home's keys if they are missing."""
    check_endpoints(home)
    if not home.remote:
        return None
    if not zmq.has("curve"):
        raise ConfigError("remote mode needs CURVE, and this libzmq was built without it")
    ensure_home_keys(home)
    ring = KeyRing(home.path)
    public, secret = ring.server_keys()
    return ServerCurve(public, secret, dict(ring.allowed_dirs))


def client_curve(home, key=None):
    """A client's CURVE keys for this home: None when remote mode is off, else the console key
    chosen by `key`, `$BATOS_KEY` or `local` (see `KeyRing.client_keys`)."""
    if not home.remote:
        return None
    return KeyRing(home.path).client_keys(key)


def worker_curve(home):
    """A worker's CURVE keys for registering at the backend: None when remote mode is off,
    else the worker key named by `$BATOS_WORKER_KEY`, `[remote] worker_key` or `local` (a
    name under `keys/workers/` or a path to a `.key_secret` file)."""
    if not home.remote:
        return None
    key = os.environ.get(ENV_WORKER_KEY) or home.setting("remote", "worker_key",
                                                         default=LOCAL_NAME)
    return KeyRing(home.path).client_keys(str(key), role=WORKER)


def frontend_client(home, key=None, timeout=120.0):
    """A `Client` of the home's orchestrator, with CURVE keys in remote mode."""
    return Client(connect_endpoint(home.orchestrator_endpoints["frontend"]), timeout=timeout,
                  curve=client_curve(home, key))


def secure_server(socket, curve, role=CONSOLE):
    """Make `socket` a CURVE server admitting keys of `role` (before it binds)."""
    socket.curve_secretkey = curve.secret
    socket.curve_publickey = curve.public
    socket.curve_server = True
    socket.zap_domain = zap_domain(role).encode()


def secure_client(socket, curve):
    """Make `socket` a CURVE client of the orchestrator (before it connects)."""
    socket.curve_secretkey = curve.secret
    socket.curve_publickey = curve.public
    socket.curve_serverkey = curve.server_public


class Gatekeeper:
    """The orchestrator's ZAP handler and allow-lists, in one ZeroMQ context: one ZAP domain
    per role, so that each socket admits only the keys of its own role.

    Start it before binding the CURVE sockets. `refresh()` (called from the broker's loop)
    re-reads an allow-list when its directory changed; `permits(frame, role)` tells whether a
    received message comes from a key that is allowed in `role` now.
    """

    def __init__(self, context, allowed_dirs):
        # imported here: it pulls in asyncio, which only the orchestrator needs
        from zmq.auth.thread import ThreadAuthenticator
        self.allowed_dirs = {role: pathlib.Path(path) for role, path in allowed_dirs.items()}
        self.authenticator = ThreadAuthenticator(context, log=log)
        self.authenticator.start()
        self.seen = dict.fromkeys(self.allowed_dirs, False)  # role → mtime read (False: never)
        self.looked_at = 0.0
        self.allowed = {role: frozenset() for role in self.allowed_dirs}
        self.refresh()

    def refresh(self):
        """Reload each allow-list whose directory changed since the last look (looking at
        most every `REFRESH_INTERVAL` seconds)."""
        now = time.monotonic()
        if now - self.looked_at < REFRESH_INTERVAL:
            return
        self.looked_at = now
        for role, directory in self.allowed_dirs.items():
            try:
                stamp = directory.stat().st_mtime_ns
            except FileNotFoundError:
                stamp = None
            if stamp == self.seen[role]:
                continue
            self.seen[role] = stamp
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            domain = zap_domain(role)
            self.authenticator.configure_curve(domain=domain, location=str(directory))
            self.allowed[role] = frozenset(self.authenticator.certs.get(domain, {}))
            log.info("allow-list loaded: %d %s key(s)", len(self.allowed[role]), role)

    def permits(self, frame, role=CONSOLE):
        """Does `frame` (a received `zmq.Frame`) come from a key on the current allow-list of
        `role`?"""
        try:
            user = frame.get("User-Id")
        except zmq.ZMQError:  # a connection without a user id
            return False
        return user is not None and user.encode("ascii", "replace") in self.allowed[role]

    def stop(self):
        """Stop the ZAP handler thread."""
        self.authenticator.stop()
