"""Remote access to the orchestrator: ZeroMQ CURVE keys and the allow-list of consoles.

Loopback only is the default. With `[remote] enabled = false` (as `batos init` writes it)
every orchestrator endpoint must be a loopback (or ipc/inproc) address and nothing needs a
key; a non-loopback frontend or events endpoint is refused with a `ConfigError`.

With `[remote] enabled = true` the orchestrator's two console-facing sockets — the frontend
(requests) and the events publisher — become CURVE servers (libzmq's CurveZMQ: encrypted, and
every client proves a key pair) and may bind any address, e.g.
`frontend = "tcp://0.0.0.0:5555"` in `[orchestrator]`. A ZAP handler (pyzmq's own
`zmq.auth.thread.ThreadAuthenticator`) lets a connection in only if its public key is in the
home's allow-list, and the orchestrator checks every request's CURVE user id against the
current list too, so revoking a key also silences connections that are already open. The
allow-list is re-read whenever its directory changes: `batos keys new/allow/revoke` work on a
running orchestrator, no restart. (An events subscription that is already open keeps
receiving until it reconnects; requests from a revoked key get nothing at once.) The backend,
where workers register, is never remote: it must stay on loopback and speaks plain ZMTP.

Everything lives in the home's `keys/` directory, never in the image::

    keys/orchestrator.key_secret   the orchestrator's key pair (mode 0600)
    keys/orchestrator.key          its public key: give it to consoles
    keys/consoles/NAME.key_secret  console key pairs made here (mode 0600), NAME.key beside
    keys/allowed/NAME.key          the allow-list: public keys of consoles that may connect

The files are pyzmq's own certificate format (`zmq.auth.create_certificates`,
`zmq.auth.load_certificate`). Processes of the home itself (workers asking BRICK, `batos
status`, `batos ask`, the console) use the console key named `local`, made with the
orchestrator's key by `ensure_home_keys` (`batos up` calls it). A client picks its key with
`--key NAME` (a name under `keys/consoles/` or a path to a `.key_secret` file), else
`$BATOS_KEY`, else `local`.

A console on another host needs a home of its own (`batos init`) whose `[remote]` is enabled
and whose `[orchestrator]` frontend/events name the orchestrator's host, plus two files copied
from the orchestrator's home: `keys/orchestrator.key` (into its `keys/`) and its own
`keys/consoles/NAME.key_secret` made there with `batos keys new NAME`.
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
PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
Z85_KEY_PATTERN = re.compile(r"[0-9A-Za-z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}")
CONSOLE_ENDPOINTS = ("frontend", "events")
REFRESH_INTERVAL = 0.2
PUBLIC_CERTIFICATE = """#   ZeroMQ CURVE Public Certificate (BAT OS allow-list)
#   A console's public key: safe to share.

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
    """What the orchestrator needs to serve CURVE: its key pair and the allow-list directory."""

    public: bytes
    secret: bytes
    allowed_dir: pathlib.Path


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
    """Refuse endpoints that would expose the orchestrator without authentication.

    The backend must always be loopback (workers do not authenticate); the frontend and the
    events publisher may be non-loopback only in remote mode, where CURVE guards them.
    """
    endpoints = home.orchestrator_endpoints
    config = home.path / "batos.toml"
    if not is_loopback(endpoints["backend"]):
        raise ConfigError(f"{config}: orchestrator.backend {endpoints['backend']!r} is not a "
                          "loopback address; workers connect without keys, so it must stay "
                          "on loopback (e.g. tcp://127.0.0.1:PORT)")
    if home.remote:
        return
    for name in CONSOLE_ENDPOINTS:
        if not is_loopback(endpoints[name]):
            raise ConfigError(f"{config}: orchestrator.{name} {endpoints[name]!r} is not a "
                              "loopback address and remote mode is off; set [remote] enabled = "
                              "true (consoles then need keys: batos keys new NAME) or bind "
                              "127.0.0.1")


def connect_endpoint(endpoint):
    """The address a client on this host connects to for a bound `endpoint`: a wildcard
    host (`*`, `0.0.0.0`, `::`) becomes the loopback address."""
    match = re.fullmatch(r"tcp://(\*|0\.0\.0\.0|\[::\]|::):(\d+)", endpoint.strip())
    if match is None:
        return endpoint
    return f"tcp://{'[::1]' if ':' in match.group(1) else '127.0.0.1'}:{match.group(2)}"


# -- the key ring of a home ----------------------------------------------------------------------

class KeyRing:
    """The `keys/` directory of one home: the orchestrator's key pair, console key pairs made
    here, and the allow-list. Changes are made under an exclusive lock and appear atomically
    (written in a private temporary directory, then renamed into place)."""

    def __init__(self, home_path):
        self.root = pathlib.Path(home_path) / KEYS_DIR
        self.allowed_dir = self.root / "allowed"
        self.consoles_dir = self.root / "consoles"
        self.server_secret_path = self.root / (SERVER_NAME + SECRET_SUFFIX)
        self.server_public_path = self.root / (SERVER_NAME + PUBLIC_SUFFIX)

    # -- writing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self):
        for directory in (self.root, self.allowed_dir, self.consoles_dir):
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

    def _allow_made(self, name):
        """Put the public key of console pair NAME (made here) on the allow-list."""
        write_public(self.allowed_dir / (name + PUBLIC_SUFFIX),
                     read_public(self.console_secret_path(name)))

    def ensure_server(self):
        """The orchestrator's key pair, made now if the home has none yet."""
        with self._locked():
            if not self.server_secret_path.exists():
                self._make_pair(self.root, SERVER_NAME)
                log.info("made the orchestrator's CURVE key pair in %s", self.root)
        return self.server_keys()

    def ensure_local(self):
        """The home's own console key (`local`, allowed), made now if missing."""
        with self._locked():
            if not self.console_secret_path(LOCAL_NAME).exists():
                self._make_pair(self.consoles_dir, LOCAL_NAME)
                self._allow_made(LOCAL_NAME)

    def new(self, name):
        """Make a console key pair NAME and allow it; returns the secret file's path."""
        check_name(name)
        with self._locked():
            if self.console_secret_path(name).exists():
                raise CurveKeyError(f"a console key named {name!r} already exists in "
                                    f"{self.consoles_dir}")
            if (self.allowed_dir / (name + PUBLIC_SUFFIX)).exists():
                raise CurveKeyError(f"the allow-list already has a key named {name!r}; revoke it "
                                    "first or choose another name")
            self._make_pair(self.consoles_dir, name)
            self._allow_made(name)
        return self.console_secret_path(name)

    def allow(self, source, name=None):
        """Allow a console's public key: `source` is a certificate file (public or secret;
        only the public key is kept) or a Z85 public key of 40 characters. Returns its name."""
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
            if (self.allowed_dir / (name + PUBLIC_SUFFIX)).exists():
                raise CurveKeyError(f"the allow-list already has a key named {name!r}")
            write_public(self.allowed_dir / (name + PUBLIC_SUFFIX), public)
        return name

    def revoke(self, name):
        """Take NAME off the allow-list (its key pair, if made here, stays)."""
        check_name(name)
        with self._locked():
            try:
                (self.allowed_dir / (name + PUBLIC_SUFFIX)).unlink()
            except FileNotFoundError:
                raise CurveKeyError(f"no key named {name!r} is allowed (see: batos keys list)") \
                    from None

    # -- reading ------------------------------------------------------------------------------

    def console_secret_path(self, name):
        """Where a console key pair named NAME made in this home lives."""
        return self.consoles_dir / (name + SECRET_SUFFIX)

    def server_keys(self):
        """(public, secret) of the orchestrator; a `CurveKeyError` if it has none yet."""
        if not self.server_secret_path.exists():
            raise CurveKeyError(f"the orchestrator has no key pair in {self.root} yet; make it "
                                "with: batos keys new NAME (or batos up)")
        return load_pair(self.server_secret_path)

    def server_public(self):
        """The orchestrator's public key, from `keys/orchestrator.key` (the file consoles on
        other hosts copy)."""
        if not self.server_public_path.exists():
            raise CurveKeyError(f"{self.server_public_path} is missing: copy it from the "
                                "orchestrator's home (keys/orchestrator.key)")
        return read_public(self.server_public_path)

    def allowed(self):
        """Name → public key of every console on the allow-list."""
        if not self.allowed_dir.is_dir():
            return {}
        return {path.name[:-len(PUBLIC_SUFFIX)]: read_public(path)
                for path in sorted(self.allowed_dir.glob("*" + PUBLIC_SUFFIX))}

    def consoles(self):
        """Name → public key of every console key pair made in this home."""
        if not self.consoles_dir.is_dir():
            return {}
        return {path.name[:-len(SECRET_SUFFIX)]: read_public(path)
                for path in sorted(self.consoles_dir.glob("*" + SECRET_SUFFIX))}

    def entries(self):
        """`batos keys list`: every known console key with whether it is allowed and whether
        its secret is in this home."""
        allowed, made = self.allowed(), self.consoles()
        return [{"name": name, "public": (allowed.get(name) or made[name]).decode(),
                 "allowed": name in allowed, "secret_here": name in made}
                for name in sorted(set(allowed) | set(made))]

    def client_keys(self, key=None):
        """The `ClientCurve` for key `key` (a console name or a `.key_secret` path; default
        `$BATOS_KEY`, then `local`)."""
        key = key or os.environ.get(ENV_KEY) or LOCAL_NAME
        if "/" in key or key.endswith(SECRET_SUFFIX):
            path = pathlib.Path(key)
        else:
            check_name(key)
            path = self.console_secret_path(key)
        if not path.exists():
            raise CurveKeyError(f"no console key {key!r} ({path} is missing); make one with: "
                                f"batos keys new NAME")
        public, secret = load_pair(path)
        return ClientCurve(public, secret, self.server_public())


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


def write_public(path, public):
    """Write a public certificate in pyzmq's format (what `zmq.auth.load_certificate` and the
    authenticator read), atomically: a reader never sees half a file."""
    path = pathlib.Path(path)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_text(PUBLIC_CERTIFICATE.format(public=public.decode("ascii")),
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


# -- what processes use --------------------------------------------------------------------------

def ensure_home_keys(home):
    """In remote mode, make the orchestrator's key pair and the `local` console key if they are
    missing (`batos up` and the orchestrator call this before anything connects)."""
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
    return ServerCurve(public, secret, ring.allowed_dir)


def client_curve(home, key=None):
    """A client's CURVE keys for this home: None when remote mode is off, else the console key
    chosen by `key`, `$BATOS_KEY` or `local` (see `KeyRing.client_keys`)."""
    if not home.remote:
        return None
    return KeyRing(home.path).client_keys(key)


def frontend_client(home, key=None, timeout=120.0):
    """A `Client` of the home's orchestrator, with CURVE keys in remote mode."""
    return Client(connect_endpoint(home.orchestrator_endpoints["frontend"]), timeout=timeout,
                  curve=client_curve(home, key))


def secure_server(socket, curve):
    """Make `socket` a CURVE server (before it binds)."""
    socket.curve_secretkey = curve.secret
    socket.curve_publickey = curve.public
    socket.curve_server = True


def secure_client(socket, curve):
    """Make `socket` a CURVE client of the orchestrator (before it connects)."""
    socket.curve_secretkey = curve.secret
    socket.curve_publickey = curve.public
    socket.curve_serverkey = curve.server_public


class Gatekeeper:
    """The orchestrator's ZAP handler and allow-list, in one ZeroMQ context.

    Start it before binding the CURVE sockets. `refresh()` (called from the broker's loop)
    re-reads the allow-list when its directory changed; `permits(frame)` tells whether a
    received message comes from a key that is allowed now.
    """

    def __init__(self, context, allowed_dir):
        # imported here: it pulls in asyncio, which only the orchestrator needs
        from zmq.auth.thread import ThreadAuthenticator
        self.allowed_dir = pathlib.Path(allowed_dir)
        self.authenticator = ThreadAuthenticator(context, log=log)
        self.authenticator.start()
        self.seen = None
        self.looked_at = 0.0
        self.allowed = frozenset()
        self.refresh()

    def refresh(self):
        """Reload the allow-list if its directory changed since the last look (looking at
        most every `REFRESH_INTERVAL` seconds)."""
        now = time.monotonic()
        if now - self.looked_at < REFRESH_INTERVAL:
            return
        self.looked_at = now
        try:
            stamp = self.allowed_dir.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp == self.seen:
            return
        self.seen = stamp
        self.allowed_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.authenticator.configure_curve(domain="*", location=str(self.allowed_dir))
        self.allowed = frozenset(self.authenticator.certs.get("*", {}))
        log.info("allow-list loaded: %d console key(s)", len(self.allowed))

    def permits(self, frame):
        """Does `frame` (a received `zmq.Frame`) come from a key on the current allow-list?"""
        try:
            user = frame.get("User-Id")
        except zmq.ZMQError:  # a connection without a user id
            return False
        return user is not None and user.encode("ascii", "replace") in self.allowed

    def stop(self):
        """Stop the ZAP handler thread."""
        self.authenticator.stop()
