"""A BAT OS home: one data directory holding everything one instance needs.

`batos init` makes a home from the project's `conf/` templates: its own `batos.toml` (with the
ZEO address every later command and process reads), its own `zeo.conf`, and the `run/` and
`log/` directories. The Living Image, `live_image.fs`, is created beside them by the ZEO server.
`Home.open` refuses a directory that is not a home, or whose configuration is corrupt, with
one clear line — before anything is written.
"""
import dataclasses
import ipaddress
import logging
import os
import pathlib
import random
import re
import shutil
import socket
import tomllib

from kernel import limits
from kernel.errors import ConfigError, HomeError

log = logging.getLogger(__name__)

CONF_DIR = pathlib.Path(__file__).resolve().parent.parent / "conf"
CONFIG_NAME = "batos.toml"
ZEO_CONF_NAME = "zeo.conf"
IMAGE_NAME = "live_image.fs"
HOME_KIND = "batos-home"
HOME_FORMAT = 1
ENV_HOME = "BATOS_HOME"
DEFAULT_HOME = "var"
FIXED_PORTS_FROM = 20000       # `free_port` chooses from here up to the ephemeral range


def parse_address(text):
    """`HOST:PORT` (or `[IPv6]:PORT`) → `(host, port)`; a `ConfigError` for anything else."""
    match = re.fullmatch(r"\[?([^\[\]]*?)\]?:(\d{1,5})", str(text).strip())
    if not match or not match.group(1) or int(match.group(2)) > 65535:
        raise ConfigError(f"{text!r} is not an address of the form HOST:PORT")
    return match.group(1), int(match.group(2))


def format_address(address):
    """`(host, port)` → `HOST:PORT`, bracketing IPv6 hosts."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback_host(host):
    """True for `localhost` and loopback IP addresses: hosts only this machine can reach.
    Wildcards, interface names and other host names count as remote."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_port(host="127.0.0.1"):
    """A TCP port on `host` that nothing listens on right now, for a home's endpoints.
    Chosen below the kernel's ephemeral range when it can be: a port from that range (what
    binding port 0 gives) can be taken, before the endpoint binds it, by any outgoing
    connection's local end — a ZEO client's, a worker's — and the endpoint then fails with
    "Address already in use" (seen once in a full test run)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    low = _ephemeral_low()
    rng = random.SystemRandom()
    for port in [rng.randrange(FIXED_PORTS_FROM, low) for _ in range(64)] + [0]:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise HomeError(f"no free TCP port on {host}")


def _ephemeral_low():
    """The first port of the kernel's range for outgoing connections (Linux; else the IANA
    range's)."""
    try:
        text = pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return max(FIXED_PORTS_FROM + 1024, int(text.split()[0]))
    except (OSError, ValueError, IndexError):
        return 49152


def default_home_path():
    """The home a command uses without `--home`: `$BATOS_HOME`, else `./var`."""
    return pathlib.Path(os.environ.get(ENV_HOME) or DEFAULT_HOME)


def newest_run_home():
    """The newest `./var/run-*` home (`make run` makes one per run, named by its time), when
    `./var` itself is not a home and `$BATOS_HOME` is unset; else None."""
    base = pathlib.Path(DEFAULT_HOME)
    if os.environ.get(ENV_HOME) or (base / CONFIG_NAME).exists():
        return None
    runs = sorted(path for path in base.glob("run-*") if (path / CONFIG_NAME).is_file())
    return runs[-1] if runs else None


def read_toml(path, what):
    """Parse a TOML file, turning any failure into a one-line `HomeError`."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise HomeError(f"{what} {path} is missing") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise HomeError(f"{what} {path} is corrupt: {exc}") from None
    except OSError as exc:
        raise HomeError(f"cannot read {what} {path}: {exc.strerror}") from None


@dataclasses.dataclass(frozen=True)
class Home:
    """An opened, validated data directory and its configuration."""

    path: pathlib.Path
    config: dict

    @property
    def image_path(self):
        """The Living Image's FileStorage file."""
        return self.path / IMAGE_NAME

    @property
    def zeo_conf_path(self):
        """The home's ZConfig template for the ZEO server."""
        return self.path / ZEO_CONF_NAME

    @property
    def run_dir(self):
        """Runtime files: pid, effective server config, the served address."""
        return self.path / "run"

    @property
    def log_dir(self):
        """Log files of the processes of this home."""
        return self.path / "log"

    @property
    def zeo_address(self):
        """The `(host, port)` the home's ZEO server serves."""
        return parse_address(self.setting("zeo", "address"))

    @property
    def zeo_wait_timeout(self):
        """Seconds a client waits for the server before reporting it unavailable."""
        return float(self.setting("zeo", "wait_timeout", default=10.0))

    @property
    def zeo_cache(self):
        """The `[zeo]` cache sizes as keyword arguments of `kernel.image.connect`: they bound
        a client process's memory however large the image grows."""
        try:
            objects = int(self.setting("zeo", "cache_objects", default=10000))
            mib = float(self.setting("zeo", "client_cache_mib", default=20))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{self.path / CONFIG_NAME}: a [zeo] cache setting is not a "
                              f"number ({exc})") from None
        if objects < 1 or mib <= 0:
            raise ConfigError(f"{self.path / CONFIG_NAME}: [zeo] cache_objects and "
                              f"client_cache_mib must be positive")
        return {"cache_objects": objects, "client_cache_bytes": int(mib * 1024 * 1024)}

    @property
    def remote(self):
        """True when `[remote] enabled` is on: the orchestrator's frontend takes CURVE-
        authenticated consoles (`kernel.keys`), the ZEO server SSL clients (`kernel.certs`)."""
        enabled = self.setting("remote", "enabled", False)
        if not isinstance(enabled, bool):
            raise ConfigError(f"{self.path / CONFIG_NAME}: setting remote.enabled must be true "
                              f"or false, not {enabled!r}")
        return enabled

    @property
    def orchestrator_endpoints(self):
        """The orchestrator's ZeroMQ endpoints: frontend, backend, events."""
        return {name: self.setting("orchestrator", name)
                for name in ("frontend", "backend", "events")}

    @property
    def worker_counts(self):
        """Persona → how many worker processes supervisord runs for it; a persona set to 0
        has none here (its workers run elsewhere, e.g. on another host in remote mode)."""
        return {name: int(count) for name, count in self.config.get("workers", {}).items()
                if int(count) > 0}

    @property
    def size_limits(self):
        """The size bounds (`[orchestrator]`, `[conversation]`, `[memory]`, `[ledger]`) as
        keyword arguments of `kernel.limits.Limits` (`kernel.settings` installs them)."""
        return limits.settings_from(self.config, self.path / CONFIG_NAME)

    @property
    def sandbox_limits(self):
        """The `[sandbox]` budgets as keyword arguments of `kernel.sandbox.Limits`
        (`kernel.settings` installs them)."""
        section = self.config.get("sandbox", {})
        limits = {}
        try:
            if "cpu_seconds" in section:
                limits["cpu_seconds"] = float(section["cpu_seconds"])
            if "memory_mib" in section:
                limits["memory_bytes"] = int(section["memory_mib"]) * 1024 * 1024
            if "max_call_depth" in section:
                limits["max_call_depth"] = int(section["max_call_depth"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{self.path / CONFIG_NAME}: a [sandbox] setting is not a "
                              f"number ({exc})") from None
        if "isolation" in section:
            if section["isolation"] not in ("process", "thread"):
                raise ConfigError(f"{self.path / CONFIG_NAME}: sandbox.isolation must be "
                                  f'"process" or "thread", not {section["isolation"]!r}')
            limits["isolation"] = section["isolation"]
        return limits

    @property
    def personas(self):
        """Persona name → {model_id, role, codex}, as written into the image at genesis."""
        return personas_from(self.config, self.path / CONFIG_NAME)

    def setting(self, section, key, default=dataclasses.MISSING):
        """One configuration value; a `ConfigError` naming `section.key` if it is missing."""
        value = self.config.get(section, {}).get(key, default)
        if value is dataclasses.MISSING:
            raise ConfigError(f"{self.path / CONFIG_NAME}: setting {section}.{key} is missing")
        return value

    @classmethod
    def open(cls, path):
        """Open an existing home, or say in one line why `path` is not one."""
        path = pathlib.Path(path).absolute()
        if not path.exists():
            raise HomeError(f"{path} does not exist; create it with: batos init --home {path}")
        if not path.is_dir():
            raise HomeError(f"{path} is not a directory")
        config_path = path / CONFIG_NAME
        if not config_path.exists():
            raise HomeError(f"{path} is not a BAT OS data directory (no {CONFIG_NAME}); "
                            f"create one with: batos init --home DIR")
        config = read_toml(config_path, "configuration")
        instance = config.get("instance", {})
        if instance.get("kind") != HOME_KIND:
            raise HomeError(f"{config_path} does not belong to a BAT OS home "
                            f"(instance.kind is not {HOME_KIND!r})")
        if instance.get("format") != HOME_FORMAT:
            raise HomeError(f"{config_path}: data directory format {instance.get('format')!r} "
                            f"is not supported (this kernel reads format {HOME_FORMAT})")
        home = cls(path, config)
        home.zeo_address  # validate now: every later step relies on it
        return home

    @classmethod
    def init(cls, path, zeo_address=None):
        """Create a home at `path` from `conf/`; ZEO gets a free loopback port unless given one."""
        path = pathlib.Path(path).absolute()
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            if (path / CONFIG_NAME).exists():
                raise HomeError(f"{path} is already a BAT OS data directory")
            raise HomeError(f"{path} exists and is not empty; choose a new directory")
        template = (CONF_DIR / CONFIG_NAME).read_text(encoding="utf-8")
        template_config = tomllib.loads(template)
        personas_from(template_config, CONF_DIR / CONFIG_NAME)
        if zeo_address is None:
            host, port = parse_address(template_config["zeo"]["address"])
            zeo_address = (host, port or free_port(host))
        else:
            zeo_address = parse_address(zeo_address)
        text, count = re.subn(r'(?m)^address\s*=.*$',
                              f'address = "{format_address(zeo_address)}"', template, count=1)
        if count != 1:
            raise ConfigError(f"{CONF_DIR / CONFIG_NAME} has no zeo.address line")
        text = re.sub(r'"tcp://([0-9.]+):0"',
                      lambda m: f'"tcp://{m.group(1)}:{free_port(m.group(1))}"', text)
        staging = path.with_name(f".{path.name}.init-{os.getpid()}")
        try:
            staging.mkdir(parents=True)
            (staging / "run").mkdir()
            (staging / "log").mkdir()
            (staging / CONFIG_NAME).write_text(text, encoding="utf-8")
            shutil.copyfile(CONF_DIR / ZEO_CONF_NAME, staging / ZEO_CONF_NAME)
            if path.exists():
                path.rmdir()
            staging.rename(path)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise HomeError(f"cannot create {path}: {exc.strerror or exc}") from None
        log.info("initialised home %s (ZEO at %s)", path, format_address(zeo_address))
        return cls.open(path)


def personas_from(config, source):
    """Validate and return the `[personas]` table of a configuration."""
    personas = config.get("personas")
    if not isinstance(personas, dict) or not personas:
        raise ConfigError(f"{source}: no [personas] are configured")
    models = config.get("models", {})
    for name, persona in personas.items():
        if not name.isidentifier() or name.startswith("_"):
            raise ConfigError(f"{source}: persona name {name!r} is not an identifier")
        for key in ("model_id", "codex", "role"):
            if not isinstance(persona.get(key), str) or not persona[key].strip():
                raise ConfigError(f"{source}: setting personas.{name}.{key} is missing")
        if persona["model_id"] not in models:
            raise ConfigError(f"{source}: personas.{name}.model_id names "
                              f"{persona['model_id']!r}, which no [models] entry defines")
    return personas
