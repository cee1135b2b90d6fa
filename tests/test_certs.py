"""kernel.certs: remote ZEO over SSL with client certificates signed by the home's own CA.

Real certificates (made by `batos certs` / `kernel.certs`), a real ZEO server process in
remote mode, real ZEO clients: the home's own client connects, clients without a certificate,
with a certificate of another CA, or with the server's certificate are refused.
"""
import base64
import gc
import json
import re
import socket
import ssl
import stat
import warnings

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from ZEO.ClientStorage import ClientStorage
from ZEO.Exceptions import ClientDisconnected

from kernel import certs
from kernel.errors import ConfigError, ServerUnavailable
from kernel.home import Home, format_address
from kernel.image import connect
from tests.conftest import run_batos
from zeo_server import launcher
from zeo_server.launcher import ServerStartError
from zeo_server.server import render_config

REFUSED_WAIT = 2.0   # seconds a refused client keeps trying before it reports the server gone


def set_remote(home, enabled=True, address=None):
    """Rewrite the home's batos.toml: remote mode on/off, optionally another ZEO address."""
    config = home.path / "batos.toml"
    text = re.sub(r"(?m)^enabled = (true|false)", f"enabled = {str(enabled).lower()}",
                  config.read_text(), count=1)
    if address:
        text = re.sub(r'(?m)^address = ".*"$', f'address = "{address}"', text, count=1)
    config.write_text(text)
    return Home.open(home.path)


@pytest.fixture
def remote_home(home):
    """A home in remote mode with its CA, server and client certificates."""
    home = set_remote(home)
    certs.init(home)
    return home


@pytest.fixture
def remote_zeo(remote_home):
    """The remote home's ZEO server, requiring client certificates; yields its address."""
    address, stop, _process = launcher.start(remote_home)
    yield address
    stop()


@pytest.fixture
def other_home(tmp_path):
    """A second home in remote mode with a CA of its own."""
    home = set_remote(Home.init(tmp_path / "other"))
    certs.init(home)
    return home


def context_with(ca, cert=None, key=None):
    """A client context trusting `ca` and presenting `cert` (none when not given)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    if cert:
        context.load_cert_chain(str(cert), str(key))
    return context


def refused(address, home, **ssl_options):
    """True when connecting with these options fails as a server that is not there."""
    try:
        image = connect(address, personas=home.personas, wait_timeout=REFUSED_WAIT,
                        **ssl_options)
    except ServerUnavailable:
        # ZEO stops its client's loop with the refused TLS handshake's transport still open;
        # it is collected here, where that is expected, not in whichever test runs next
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
        return True
    image.close()
    return False


def load(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


# -- making certificates -----------------------------------------------------------------------

def test_init_makes_a_ca_and_server_and_client_certificates_it_signed(remote_home):
    ca = load(certs.ca_identity(remote_home).cert)
    server = load(certs.server_identity(remote_home).cert)
    client = load(certs.client_identity(remote_home).cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for leaf in (server, client):
        leaf.verify_directly_issued_by(ca)
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", socket.gethostname()} <= set(names.get_values_for_type(x509.DNSName))
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} >= {"127.0.0.1", "::1"}
    usage = x509.ExtendedKeyUsage
    assert list(server.extensions.get_extension_for_class(usage).value) == \
        [ExtendedKeyUsageOID.SERVER_AUTH]
    assert list(client.extensions.get_extension_for_class(usage).value) == \
        [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_private_keys_are_readable_by_the_owner_only(remote_home):
    bundle = certs.new_client(remote_home, "laptop")
    assert stat.S_IMODE(certs.certs_dir(remote_home).stat().st_mode) == 0o700
    for key in (certs.ca_identity(remote_home).key, certs.server_identity(remote_home).key,
                certs.client_identity(remote_home).key, bundle / "client.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_init_refuses_to_replace_certificates_unless_forced(remote_home):
    before = certs.list_certificates(remote_home)
    certs.new_client(remote_home, "laptop")
    with pytest.raises(certs.CertificateError, match="--force"):
        certs.init(remote_home)
    assert certs.list_certificates(remote_home)[:3] == before
    certs.init(remote_home, hosts=["zeo.example"], force=True)
    after = certs.list_certificates(remote_home)
    assert [row["fingerprint"] for row in after] != [row["fingerprint"] for row in before]
    assert len(after) == 3   # the old CA's client bundles are void and gone
    server = load(certs.server_identity(remote_home).cert)
    assert "zeo.example" in server.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


def test_client_names_are_checked_and_not_reissued_silently(remote_home):
    with pytest.raises(certs.CertificateError, match="not a client name"):
        certs.new_client(remote_home, "../escape")
    first = certs.new_client(remote_home, "laptop")
    with pytest.raises(certs.CertificateError, match="already exists"):
        certs.new_client(remote_home, "laptop")
    old = certs.describe(first / "client.pem")["fingerprint"]
    certs.new_client(remote_home, "laptop", force=True)
    assert certs.describe(first / "client.pem")["fingerprint"] != old


def test_a_client_needs_a_ca_to_be_issued(home):
    with pytest.raises(certs.CertificateError, match="batos certs init"):
        certs.new_client(home, "laptop")


# -- remote mode on and off --------------------------------------------------------------------

def test_remote_off_serves_plain_tcp_on_loopback_without_certificates(home):
    assert certs.connect_options(home) == {}
    assert not re.search(r"(?m)^\s*<ssl>", render_config(home, home.zeo_address).read_text())


def test_a_non_loopback_address_is_refused_without_remote_mode(home):
    with pytest.raises(ConfigError, match=r"not loopback.*\[remote\] enabled = true"):
        render_config(home, ("0.0.0.0", 0))
    away = set_remote(home, enabled=False, address="192.0.2.7:8100")
    with pytest.raises(ConfigError, match="192.0.2.7:8100 is not loopback"):
        certs.connect_options(away)
    result = run_batos("inspect", "personas", home=away.path)
    assert result.returncode == 1 and "is not loopback" in result.stderr


def test_remote_mode_serves_any_address_with_the_ssl_section(remote_home):
    text = render_config(remote_home, ("0.0.0.0", 0)).read_text()
    section = text[text.index("<zeo>"):text.index("</zeo>")]
    assert re.search(r"(?m)^\s*<ssl>$", section)
    assert f"authenticate {certs.ca_identity(remote_home).cert}" in section
    assert f"certificate {certs.server_identity(remote_home).cert}" in section


def test_remote_mode_without_certificates_refuses_to_serve_and_to_connect(home):
    home = set_remote(home)
    with pytest.raises(ServerStartError, match="batos certs init"):
        launcher.start(home)
    with pytest.raises(certs.CertificateError, match="client.pem is missing"):
        certs.connect_options(home)


def test_a_wrong_remote_setting_is_a_config_error(home):
    config = home.path / "batos.toml"
    config.write_text(config.read_text().replace("enabled = false", 'enabled = "yes"', 1))
    with pytest.raises(ConfigError, match="remote.enabled must be true or false"):
        Home.open(home.path).remote


# -- connecting --------------------------------------------------------------------------------

def test_the_homes_own_client_commits_and_reads_over_ssl(remote_home, remote_zeo):
    writer = connect(remote_zeo, personas=remote_home.personas,
                     **certs.connect_options(remote_home))
    reader = connect(remote_zeo, personas=remote_home.personas,
                     **certs.connect_options(remote_home))
    try:
        assert writer.awakened != reader.awakened   # one of them ran genesis, over SSL
        with writer.transaction(note="over ssl") as lobby:
            lobby.secret_box = lobby.traits.clone(width=3)
        assert reader.run(lambda lobby: lobby.secret_box.width) == 3
        assert reader.history(1)[0]["note"] == "over ssl"
    finally:
        writer.close()
        reader.close()


def test_the_server_speaks_tls_with_the_certificate_of_the_home(remote_home, remote_zeo):
    context = certs.client_context(remote_home)
    hostname = certs.server_hostname(remote_home)
    with socket.create_connection(remote_zeo) as raw, \
            context.wrap_socket(raw, server_hostname=hostname) as tls:
        served = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
    assert served == load(certs.server_identity(remote_home).cert)


def test_a_plain_tcp_client_cannot_connect(remote_home, remote_zeo):
    with pytest.raises(ClientDisconnected):
        ClientStorage(remote_zeo, wait_timeout=REFUSED_WAIT)
    assert refused(remote_zeo, remote_home)


def test_an_ssl_client_without_a_certificate_is_refused(remote_home, remote_zeo):
    context = context_with(certs.ca_identity(remote_home).cert)
    assert refused(remote_zeo, remote_home, ssl=context, ssl_server_hostname="localhost")


def test_a_certificate_of_another_ca_is_refused(remote_home, remote_zeo, other_home):
    foreign = certs.client_identity(other_home)
    context = context_with(certs.ca_identity(remote_home).cert, foreign.cert, foreign.key)
    assert refused(remote_zeo, remote_home, ssl=context, ssl_server_hostname="localhost")


def test_the_servers_own_certificate_is_no_client_certificate(remote_home, remote_zeo):
    server = certs.server_identity(remote_home)
    context = context_with(certs.ca_identity(remote_home).cert, server.cert, server.key)
    assert refused(remote_zeo, remote_home, ssl=context, ssl_server_hostname="localhost")


def test_a_client_refuses_a_server_its_ca_did_not_sign(remote_home, remote_zeo, other_home):
    assert refused(remote_zeo, remote_home, **certs.connect_options(other_home))


def test_a_client_refuses_a_server_under_another_name(remote_home, remote_zeo):
    context = certs.client_context(remote_home)
    assert refused(remote_zeo, remote_home, ssl=context, ssl_server_hostname="zeo.example")


def test_an_issued_client_bundle_lets_another_home_connect(remote_home, remote_zeo, tmp_path):
    bundle = certs.new_client(remote_home, "laptop")
    laptop = set_remote(Home.init(tmp_path / "laptop"), address=format_address(remote_zeo))
    certs.certs_dir(laptop).mkdir(mode=0o700)
    for name in ("ca.pem", "client.pem", "client.key"):
        (certs.certs_dir(laptop) / name).write_bytes((bundle / name).read_bytes())
    image = connect(laptop.zeo_address, personas=laptop.personas,
                    **certs.connect_options(laptop))
    try:
        with image.transaction() as lobby:
            lobby.from_laptop = lobby.traits.clone(n=1)
    finally:
        image.close()
    result = run_batos("inspect", "from_laptop", "--json", home=remote_home.path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["slots"] == {"n": 1}


# -- the command line --------------------------------------------------------------------------

def test_batos_certs_init_new_client_and_list(home):
    made = run_batos("certs", "init", "--host", "zeo.example", home=home.path)
    assert made.returncode == 0, made.stderr
    assert "remote mode is off" in made.stdout
    again = run_batos("certs", "init", home=home.path)
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "--force" in again.stderr
    issued = run_batos("certs", "new-client", "laptop", home=home.path)
    assert issued.returncode == 0 and "clients/laptop" in issued.stdout
    listed = run_batos("certs", "list", "--json", home=home.path)
    rows = json.loads(listed.stdout)
    assert [row["file"].split("/certs/")[1] for row in rows] == \
        ["ca.pem", "server.pem", "client.pem", "clients/laptop/client.pem"]
    assert all(row["issuer"] == rows[0]["subject"] and not row["expired"] for row in rows)
    assert rows[3]["subject"].startswith("CN=laptop,")
    human = run_batos("certs", "list", home=home.path)
    assert rows[1]["fingerprint"] in human.stdout and "expires" in human.stdout


def test_batos_certs_bad_input_is_one_line(home):
    missing = run_batos("certs", "new-client", home=home.path)
    assert missing.returncode == 2 and "needs a NAME" in missing.stderr
    bad = run_batos("certs", "new-client", "a/b", home=home.path)
    assert bad.returncode == 1 and "not a client name" in bad.stderr
    no_ca = run_batos("certs", "new-client", "laptop", home=home.path)
    assert no_ca.returncode == 1 and "batos certs init" in no_ca.stderr
    empty = run_batos("certs", "list", home=home.path)
    assert empty.returncode == 0 and "no certificates" in empty.stdout


def test_the_cli_reaches_a_remote_mode_server_over_ssl(remote_home, remote_zeo):
    made = run_batos("new", "box", "--slots", '{"w": 2}', home=remote_home.path)
    assert made.returncode == 0, made.stderr
    shown = run_batos("inspect", "box", "--json", home=remote_home.path)
    assert json.loads(shown.stdout)["slots"] == {"w": 2}


# -- a whole cluster in remote mode --------------------------------------------------------------

RULES = [
    {"persona": "ALFRED", "match": "choose persona", "reply": "ROBIN"},
    {"match": r"choose plan[\s\S]*\n\nremember ", "reply": "remember"},
    {"match": "choose plan", "reply": "reply"},
    {"match": r"User: ", "reply": "hello"},
]


@pytest.mark.cluster
def test_a_remote_mode_cluster_runs_every_process_over_ssl(tmp_path):
    """supervisord's ZEO server requires certificates; the orchestrator, the workers and the
    CLI all connect with the home's client certificate, and no private key enters the image."""
    (tmp_path / "rules.json").write_text(json.dumps(RULES))
    env = {"BATOS_LLM": f"scripted:{tmp_path / 'rules.json'}"}
    home = set_remote(Home.init(tmp_path / "home"))
    run_batos("certs", "init", home=home.path, check=True)
    up = run_batos("up", home=home.path, env=env, timeout=300)
    try:
        assert up.returncode == 0, up.stderr
        asked = run_batos("ask", "remember the sky", "--persona", "ROBIN", home=home.path,
                          env=env)
        # a worker committed
        assert asked.stdout.strip() == "ROBIN: I will remember that: The sky", asked.stderr
        status = run_batos("status", home=home.path, env=env)
        assert "ledger: 1 request(s) answered" in status.stdout, status.stderr
        image = connect(home.zeo_address, personas=home.personas, **certs.connect_options(home))
        try:
            assert image.run(lambda lobby: lobby.ledger.size()) == 1
        finally:
            image.close()
        assert refused(home.zeo_address, home)   # the cluster's ZEO refuses plain clients
    finally:
        run_batos("down", home=home.path)
    stored = home.image_path.read_bytes()
    for key in certs.certs_dir(home).glob("*.key"):
        body = b"".join(key.read_bytes().splitlines()[1:-1])
        assert body not in stored and base64.b64decode(body) not in stored
