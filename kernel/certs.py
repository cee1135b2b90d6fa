"""Certificates for remote ZEO: a small certificate authority per home, and who may connect.

Off by default: with `[remote] enabled = false` the ZEO server listens on loopback only and
speaks plain TCP; a non-loopback ZEO address is refused (`ConfigError`). With remote mode on,
the ZEO server requires TLS with a client certificate signed by the home's own CA, and every
process of the home presents one (`connect_options`). `batos certs` manages the files:

    HOME/certs/ca.pem, ca.key            the instance's CA (self-signed; the key never leaves)
    HOME/certs/server.pem, server.key    the ZEO server's certificate (SAN: the ZEO host,
                                         localhost, 127.0.0.1, ::1, this machine, --host names)
    HOME/certs/client.pem, client.key    the identity of this home's own processes
    HOME/certs/clients/NAME/             `batos certs new-client NAME`: ca.pem, client.pem and
                                         client.key for another host; copy the three files into
                                         that host's HOME/certs/ (its batos.toml names this
                                         server's address and enables remote mode)

Keys are unencrypted PEM files of mode 0600 (in a 0700 directory); none of this ever goes into
the Living Image. The server side is ZEO's own: `zeo_server.server.render_config` adds an
`<ssl>` section (certificate, key, `authenticate` = the CA certificate, so any client certificate
the CA signed is accepted and every other is refused during the handshake); the client side is
an `ssl.SSLContext` built the way `ZEO.zconfig.ssl_config` builds one (CERT_REQUIRED, strict
X.509 checks, hostname checked against the server certificate) and handed to
`ZEO.ClientStorage(ssl=..., ssl_server_hostname=...)`. Revoking one client means a new CA:
`batos certs init --force`, then new client bundles.
"""
import dataclasses
import datetime
import ipaddress
import logging
import os
import pathlib
import re
import shutil
import socket
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kernel.errors import BatosError, ConfigError
from kernel.home import CONFIG_NAME, format_address, is_loopback_host

log = logging.getLogger(__name__)

CERTS_DIR = "certs"
CLIENTS_DIR = "clients"
CA_DAYS = 3650
LEAF_DAYS = 825
WILDCARD_HOSTS = {"", "0.0.0.0", "::"}
CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class CertificateError(BatosError):
    """Certificates are missing, already made, expired or unreadable. Final until fixed."""


@dataclasses.dataclass(frozen=True)
class Identity:
    """Where one certificate and its private key live."""

    cert: pathlib.Path
    key: pathlib.Path


def certs_dir(home):
    """The directory holding a home's CA, server and client certificates."""
    return home.path / CERTS_DIR


def ca_identity(home):
    """The home's certificate authority."""
    return Identity(certs_dir(home) / "ca.pem", certs_dir(home) / "ca.key")


def server_identity(home):
    """The ZEO server's certificate."""
    return Identity(certs_dir(home) / "server.pem", certs_dir(home) / "server.key")


def client_identity(home):
    """The certificate this home's own processes present to the ZEO server."""
    return Identity(certs_dir(home) / "client.pem", certs_dir(home) / "client.key")


def check_address(home, address):
    """Refuse a non-loopback ZEO address unless remote mode (SSL) is on. Returns `address`."""
    if not is_loopback_host(address[0]) and not home.remote:
        raise ConfigError(f"ZEO address {format_address(address)} is not loopback: serving or "
                          f"reaching other hosts needs remote mode ([remote] enabled = true in "
                          f"{home.path / CONFIG_NAME}) and certificates (batos certs init)")
    return address


# -- making certificates -----------------------------------------------------------------------

def _now():
    """The current time, as certificates state it (UTC)."""
    return datetime.datetime.now(datetime.UTC)


def _name(common_name, home):
    """A certificate subject: BAT OS, the home's directory name, `common_name`."""
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "BAT OS"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, home.path.name[:64]),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])


def _san_entry(host):
    """A subjectAltName entry: an IP address, else a DNS name."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _sign(subject, public_key, issuer_cert, issuer_key, days, extensions):
    """A certificate for `public_key`, signed by the issuer (self-signed when it is None)."""
    now = _now()
    issuer = issuer_cert.subject if issuer_cert is not None else subject
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False))
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()), False)
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical)
    return builder.sign(issuer_key, hashes.SHA256())


def _usage(digital_signature=False, key_cert_sign=False):
    """keyUsage: signing certificates (a CA) or TLS handshakes (a server or client)."""
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=key_cert_sign, crl_sign=key_cert_sign,
                         encipher_only=False, decipher_only=False)


def make_ca(home):
    """A new CA key and its self-signed certificate (not yet written)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _sign(_name(f"BAT OS CA of {home.path.name}", home), key.public_key(), None, key,
                 CA_DAYS, [(x509.BasicConstraints(ca=True, path_length=0), True),
                           (_usage(key_cert_sign=True), True)])
    return cert, key


def make_leaf(home, ca, common_name, purpose, hosts=()):
    """A key and a certificate signed by `ca` (cert, key) for `purpose` (server or client)."""
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    extensions = [(x509.BasicConstraints(ca=False, path_length=None), True),
                  (_usage(digital_signature=True), True),
                  (x509.ExtendedKeyUsage([purpose]), False)]
    if hosts:
        extensions.append((x509.SubjectAlternativeName([_san_entry(h) for h in hosts]), False))
    cert = _sign(_name(common_name, home), key.public_key(), ca_cert, ca_key, LEAF_DAYS,
                 extensions)
    return cert, key


def server_hosts(home, extra=()):
    """Names the server certificate is valid for: the ZEO host, loopback, this machine, `extra`."""
    hosts = [home.zeo_address[0], "localhost", "127.0.0.1", "::1", socket.gethostname(),
             *extra]
    return list(dict.fromkeys(h for h in hosts if h not in WILDCARD_HOSTS))


def _write_pem(path, data, private):
    """Write one PEM file; private keys are created with mode 0600 and never world-readable."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _save(identity, cert, key):
    """Write a certificate and its unencrypted PKCS#8 key."""
    _write_pem(identity.cert, cert.public_bytes(serialization.Encoding.PEM), private=False)
    _write_pem(identity.key, key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()), private=True)


def _load(identity, with_key=True):
    """Read (cert, key) back, or a one-line `CertificateError` naming the missing file."""
    try:
        cert = x509.load_pem_x509_certificate(identity.cert.read_bytes())
        key = (serialization.load_pem_private_key(identity.key.read_bytes(), None)
               if with_key else None)
    except FileNotFoundError as exc:
        raise CertificateError(f"{exc.filename} is missing; make the certificates with: "
                               f"batos certs init") from None
    except (OSError, ValueError) as exc:
        raise CertificateError(f"cannot read {identity.cert} or its key: {exc}") from None
    return cert, key


def init(home, hosts=(), force=False):
    """Make the home's CA, the ZEO server's certificate and the home's own client certificate.

    Refuses to replace existing files unless `force` (which also voids every client bundle
    made before: they were signed by the old CA; a running ZEO server keeps the old files
    until it restarts). Returns the identities written.
    """
    directory = certs_dir(home)
    identities = [ca_identity(home), server_identity(home), client_identity(home)]
    existing = [p for i in identities for p in (i.cert, i.key) if p.exists()]
    if existing and not force:
        raise CertificateError(f"{directory} already holds certificates ({existing[0].name}); "
                               f"replace them all, and void every client made so far, with: "
                               f"batos certs init --force")
    directory.mkdir(mode=0o700, exist_ok=True)
    if force:
        shutil.rmtree(directory / CLIENTS_DIR, ignore_errors=True)
    ca = make_ca(home)
    _save(ca_identity(home), *ca)
    _save(server_identity(home), *make_leaf(home, ca, f"BAT OS ZEO server of {home.path.name}",
                                            ExtendedKeyUsageOID.SERVER_AUTH,
                                            server_hosts(home, hosts)))
    _save(client_identity(home), *make_leaf(home, ca, f"{home.path.name} processes",
                                            ExtendedKeyUsageOID.CLIENT_AUTH))
    log.info("made a CA, a server and a client certificate in %s", directory)
    return identities


def new_client(home, name, force=False):
    """Issue a client certificate `name` signed by the home's CA; return its bundle directory.

    The bundle (ca.pem, client.pem, client.key) is what another host copies into its own
    `HOME/certs/` to reach this home's ZEO server.
    """
    if not CLIENT_NAME.fullmatch(name or ""):
        raise CertificateError(f"{name!r} is not a client name (letters, digits, '.', '_', "
                               f"'-'; at most 64)")
    ca = _load(ca_identity(home))
    bundle = certs_dir(home) / CLIENTS_DIR / name
    if bundle.exists() and not force:
        raise CertificateError(f"client {name} already exists ({bundle}); reissue it with "
                               f"--force")
    bundle.mkdir(mode=0o700, parents=True, exist_ok=True)
    (certs_dir(home) / CLIENTS_DIR).chmod(0o700)
    _write_pem(bundle / "ca.pem", ca[0].public_bytes(serialization.Encoding.PEM), private=False)
    _save(Identity(bundle / "client.pem", bundle / "client.key"),
          *make_leaf(home, ca, name, ExtendedKeyUsageOID.CLIENT_AUTH))
    log.info("issued client certificate %s in %s", name, bundle)
    return bundle


def describe(path):
    """Subject, issuer, expiry and SHA-256 fingerprint of one certificate file."""
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return {"file": str(path), "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "expired": cert.not_valid_after_utc <= _now(),
            "fingerprint": cert.fingerprint(hashes.SHA256()).hex(":")}


def list_certificates(home):
    """Every certificate of the home (CA, server, own client, issued clients), described."""
    directory = certs_dir(home)
    paths = [i.cert for i in (ca_identity(home), server_identity(home), client_identity(home))]
    paths += sorted((directory / CLIENTS_DIR).glob("*/client.pem"))
    return [describe(path) for path in paths if path.exists()]


# -- using them --------------------------------------------------------------------------------

def _require_valid(cert_path, key_path=None):
    """Refuse a missing or expired certificate (and a missing key) before TLS would."""
    cert, _key = _load(Identity(cert_path, key_path), with_key=False)
    if cert.not_valid_after_utc <= _now():
        raise CertificateError(f"{cert_path} expired on {cert.not_valid_after_utc:%Y-%m-%d}; "
                               f"renew with: batos certs init --force")
    if key_path is not None and not key_path.exists():
        raise CertificateError(f"{key_path} is missing; make the certificates with: "
                               f"batos certs init")


def server_ssl_section(home):
    """The ZConfig `<ssl>` section the ZEO server needs in remote mode, else an empty string."""
    if not home.remote:
        return ""
    server = server_identity(home)
    _require_valid(server.cert, server.key)
    _require_valid(ca_identity(home).cert)
    return ("  <ssl>\n"
            f"    certificate {server.cert}\n"
            f"    key {server.key}\n"
            f"    authenticate {ca_identity(home).cert}\n"
            "  </ssl>\n")


def client_context(home):
    """An `ssl.SSLContext` presenting the home's client certificate and trusting only its CA."""
    identity = client_identity(home)
    _require_valid(identity.cert, identity.key)
    ca = ca_identity(home).cert
    _require_valid(ca)
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
        context.load_cert_chain(str(identity.cert), str(identity.key))
    except (ssl.SSLError, OSError) as exc:
        raise CertificateError(f"cannot use {identity.cert} with {identity.key} and {ca}: "
                               f"{exc}") from None
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.check_hostname = True
    return context


def server_hostname(home):
    """The name a client checks the server certificate against: the ZEO host (loopback for a
    wildcard address, which this home's processes reach through loopback)."""
    host = home.zeo_address[0]
    return "localhost" if host in WILDCARD_HOSTS else host


def connect_options(home):
    """Keyword arguments of `kernel.image.connect` for this home: `{}` off remote mode (after
    refusing a non-loopback address), `ssl` and `ssl_server_hostname` in it."""
    check_address(home, home.zeo_address)
    if not home.remote:
        return {}
    return {"ssl": client_context(home), "ssl_server_hostname": server_hostname(home)}
