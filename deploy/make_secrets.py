"""Make what docker-compose.yml's broker and clients need and no repository may hold: a private CA, the broker's
TLS certificate, and an MQTT password for every gateway and every cloud role.

    python deploy/make_secrets.py --gateway gw-1 --gateway gw-2

writes, under the deploy folder (``--out`` elsewhere):

- ``secrets/ca.key``: the CA's private key. Keep it off the broker; it only signs broker certificates.
- ``mosquitto/certs/ca.crt``: the CA every client trusts through ``IOTSPHERE_MQTT_CA``.
- ``mosquitto/certs/server.crt`` and ``server.key``: the broker's certificate, named for ``--hostname``s
  (default ``mosquitto``, the compose service, and ``localhost``) and 127.0.0.1/::1.
- ``mosquitto/passwords``: hashed by ``mosquitto_passwd``, one user per gateway id and per ``user`` of
  ``mosquitto/acl`` (the cloud roles; the ACL says what each may do).
- ``secrets/compose.env``: for ``docker compose --env-file``, the plain passwords as ``<USER>_MQTT_PASSWORD=…``,
  and, made once and kept, PostgreSQL's password, the field-encryption key every cloud process shares and the
  signing keys' passphrase (``COMPOSE_SECRETS``); other variables added to it are kept.
- ``secrets/emqx-users.csv``: the same users for the clustered broker's bootstrap file (deploy/emqx, docs/broker.md).

Running it again keeps the CA, every password and key already made, adds new users, drops users no longer named and
issues a fresh server certificate from the same CA, so adding a gateway never disturbs the others.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shared.atomic_files import atomic_write
from shared.topics import validate_id

DEPLOY = Path(__file__).resolve().parent
ACL = DEPLOY / "mosquitto" / "acl"
CA_DAYS = 3650
SERVER_DAYS = 397  # what public CAs may issue; renew by running this script again
LOOPBACK = ("127.0.0.1", "::1")
#: what docker-compose.yml substitutes besides the MQTT passwords, and how each is made (once: a new field key would
#: leave encrypted columns unreadable, a new passphrase the signing keys)
COMPOSE_SECRETS = {
    "POSTGRES_PASSWORD": lambda: secrets.token_urlsafe(24),
    "IOTSPHERE_FIELD_KEY": lambda: Fernet.generate_key().decode("ascii"),
    "IOTSPHERE_KEY_PASSPHRASE": lambda: secrets.token_urlsafe(32),
}


class SecretsError(click.ClickException):
    """Input or tooling that stops the secrets being made; the message says what to change."""


def cloud_roles(acl: Path = ACL) -> list[str]:
    """The ``user`` entries of the shipped ACL: every cloud role the broker knows, and so needs a password."""
    return [line.split(maxsplit=1)[1].strip() for line in acl.read_text().splitlines() if line.startswith("user ")]


def env_name(user: str) -> str:
    """``gw-1`` → ``GW1_MQTT_PASSWORD``, the variable docker-compose.yml substitutes into the user's MQTT URL."""
    return re.sub(r"[^A-Z0-9]", "", user.upper()) + "_MQTT_PASSWORD"


def _users(gateways: tuple[str, ...], roles: list[str]) -> list[str]:
    for gateway in gateways:
        try:
            validate_id(gateway, "gateway id")
        except ValueError as exc:
            raise SecretsError(str(exc)) from None
        if gateway in roles:
            raise SecretsError(f"gateway id {gateway!r} is a cloud role's broker user: pick another id")
    users = list(dict.fromkeys([*roles, *gateways]))
    names: dict[str, str] = {}
    for user in users:
        if env_name(user) in names:
            raise SecretsError(f"users {names[env_name(user)]!r} and {user!r} would share {env_name(user)}")
        names[env_name(user)] = user
    return users


def _read_env(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and line[0] != "#")


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _ca(key_path: Path, cert_path: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The existing CA, or a new one: clients keep trusting the same ``ca.crt`` across runs."""
    if key_path.exists() and cert_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        return key, x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "IoTSphere MQTT CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign, cRLSign
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    atomic_write(key_path, _pem_key(key), mode=0o600)
    atomic_write(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return key, cert


def _server_certificate(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, hostnames: tuple[str, ...]
) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName(host) for host in hostnames] + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in LOOPBACK]
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )  # digitalSignature
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _pem_key(key), cert.public_bytes(serialization.Encoding.PEM)


def _password_file(path: Path, passwords: dict[str, str]) -> None:
    """Hash with mosquitto's own tool (``-U`` rewrites a ``user:password`` file in place, so no password ever
    appears on a command line), then move the hashed file into place."""
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        raise SecretsError(
            "mosquitto_passwd is not on PATH: install the mosquitto package (Debian/Ubuntu: apt-get install "
            "mosquitto), or run this script inside the eclipse-mosquitto:2 image"
        )
    plain = path.with_name(f".{path.name}.plain")
    atomic_write(plain, "".join(f"{user}:{password}\n" for user, password in passwords.items()).encode())
    try:
        subprocess.run([tool, "-U", str(plain)], check=True, capture_output=True, text=True)
        plain.replace(path)
    except subprocess.CalledProcessError as exc:
        raise SecretsError(f"mosquitto_passwd failed: {exc.stderr.strip() or exc.stdout.strip()}") from None
    finally:
        plain.unlink(missing_ok=True)


@click.command()
@click.option("--gateway", "gateways", multiple=True, required=True, help="A gateway id (repeat for each gateway).")
@click.option(
    "--hostname",
    "hostnames",
    multiple=True,
    default=("mosquitto", "localhost"),
    show_default=True,
    help="A DNS name clients use for the broker (repeat); 127.0.0.1 and ::1 are always in the certificate.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEPLOY,
    help="Folder to write mosquitto/ and secrets/ under (default: this deploy folder).",
)
def main(gateways: tuple[str, ...], hostnames: tuple[str, ...], out: Path) -> None:
    """Make the private CA, the broker certificate and the MQTT passwords docker-compose.yml expects."""
    users = _users(gateways, cloud_roles())
    certs, secret_dir = out / "mosquitto" / "certs", out / "secrets"
    ca_key, ca_cert = _ca(secret_dir / "ca.key", certs / "ca.crt")
    server_key, server_cert = _server_certificate(ca_key, ca_cert, hostnames)
    atomic_write(certs / "server.key", server_key, mode=0o600)
    atomic_write(certs / "server.crt", server_cert, mode=0o644)

    env_file = secret_dir / "compose.env"
    known = _read_env(env_file)
    passwords = {user: known.get(env_name(user)) or secrets.token_urlsafe(24) for user in users}
    _password_file(out / "mosquitto" / "passwords", passwords)
    users_csv = "".join(f"{user},{password},false\n" for user, password in passwords.items())
    atomic_write(secret_dir / "emqx-users.csv", f"user_id,password,is_superuser\n{users_csv}".encode())
    made = {name: known.get(name) or make() for name, make in COMPOSE_SECRETS.items()}
    # what the operator added stays; the MQTT passwords are redone for the users named
    kept = {name: value for name, value in known.items() if not name.endswith("_MQTT_PASSWORD")}
    variables = {**{env_name(user): password for user, password in passwords.items()}, **made, **kept}
    lines = "".join(f"{name}={value}\n" for name, value in variables.items())
    atomic_write(env_file, f"# docker compose --env-file: secrets by deploy/make_secrets.py\n{lines}".encode())

    click.echo(f"CA: {certs / 'ca.crt'} (its key: {secret_dir / 'ca.key'}, keep it off the broker)")
    click.echo(f"Broker certificate for {', '.join([*hostnames, *LOOPBACK])}: {certs / 'server.crt'}")
    click.echo(f"MQTT users {', '.join(users)}: hashed in {out / 'mosquitto' / 'passwords'}, plain in {env_file}")
    click.echo(f"{', '.join(COMPOSE_SECRETS)}: in {env_file}")
    click.echo(
        "The eclipse-mosquitto image reads its files as uid 1883: "
        f"chown 1883 {certs / 'server.key'} {out / 'mosquitto' / 'passwords'}"
    )


if __name__ == "__main__":
    main()
