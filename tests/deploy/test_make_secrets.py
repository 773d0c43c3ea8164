"""deploy/make_secrets.py as an operator runs it: what it makes, what a second run keeps, what it refuses."""

from __future__ import annotations

import ipaddress
import stat

from cryptography import x509
from cryptography.fernet import Fernet

from tests.deploy.shipped_broker import compose_env, make_secrets


def _users(password_file) -> list[str]:
    return [line.split(":", 1)[0] for line in password_file.read_text().splitlines()]


def test_the_broker_certificate_is_issued_by_the_ca_for_the_compose_host_and_loopback(tmp_path):
    made = make_secrets(tmp_path, "--gateway", "gw-1")
    assert made.returncode == 0, made.stderr
    certs = tmp_path / "mosquitto" / "certs"
    ca = x509.load_pem_x509_certificate((certs / "ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate((certs / "server.crt").read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["mosquitto", "localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    secrets = tmp_path / "secrets"
    for private in (secrets / "ca.key", certs / "server.key", secrets / "compose.env", secrets / "emqx-users.csv"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private


def test_every_cloud_role_and_gateway_gets_a_hashed_password(tmp_path):
    assert make_secrets(tmp_path, "--gateway", "gw-1", "--gateway", "gw-2").returncode == 0
    password_file = (tmp_path / "mosquitto" / "passwords").read_text()
    env = compose_env(tmp_path)
    passwords = {name: value for name, value in env.items() if name.endswith("_MQTT_PASSWORD")}
    assert _users(tmp_path / "mosquitto" / "passwords") == ["cloud", "ingest", "gw-1", "gw-2"]
    assert sorted(passwords) == [
        "CLOUD_MQTT_PASSWORD",
        "GW1_MQTT_PASSWORD",
        "GW2_MQTT_PASSWORD",
        "INGEST_MQTT_PASSWORD",
    ]
    assert len(set(passwords.values())) == 4
    assert sorted(set(env) - set(passwords)) == ["IOTSPHERE_FIELD_KEY", "IOTSPHERE_KEY_PASSPHRASE", "POSTGRES_PASSWORD"]
    Fernet(env["IOTSPHERE_FIELD_KEY"])  # a key the cloud can encrypt with
    assert not any(password in password_file for password in passwords.values())
    emqx_users = (tmp_path / "secrets" / "emqx-users.csv").read_text().splitlines()
    assert emqx_users[0] == "user_id,password,is_superuser"
    assert emqx_users[1:] == [
        f"{user},{passwords[key]},false"
        for user, key in zip(
            ["cloud", "ingest", "gw-1", "gw-2"],
            ["CLOUD_MQTT_PASSWORD", "INGEST_MQTT_PASSWORD", "GW1_MQTT_PASSWORD", "GW2_MQTT_PASSWORD"],
            strict=True,
        )
    ]


def test_a_second_run_keeps_the_ca_the_passwords_of_users_still_named_and_added_variables(tmp_path):
    assert make_secrets(tmp_path, "--gateway", "gw-1", "--gateway", "gw-2").returncode == 0
    ca_before = (tmp_path / "mosquitto" / "certs" / "ca.crt").read_bytes()
    before = compose_env(tmp_path)
    with (tmp_path / "secrets" / "compose.env").open("a") as env:
        env.write("GW1_API_KEY=added by the operator\n")
    assert make_secrets(tmp_path, "--gateway", "gw-1", "--gateway", "gw-3").returncode == 0
    after = compose_env(tmp_path)
    assert (tmp_path / "mosquitto" / "certs" / "ca.crt").read_bytes() == ca_before
    kept = ("CLOUD_MQTT_PASSWORD", "GW1_MQTT_PASSWORD", "POSTGRES_PASSWORD", "IOTSPHERE_FIELD_KEY")
    assert {name: after[name] for name in kept} == {name: before[name] for name in kept}
    assert "GW2_MQTT_PASSWORD" not in after and after["GW3_MQTT_PASSWORD"]
    assert after["GW1_API_KEY"] == "added by the operator"
    assert _users(tmp_path / "mosquitto" / "passwords") == ["cloud", "ingest", "gw-1", "gw-3"]


def test_bad_gateway_ids_are_refused_before_anything_is_written(tmp_path):
    for bad, message in (
        ("gw/1", "invalid gateway id 'gw/1'"),
        ("ingest", "gateway id 'ingest' is a cloud role's broker user"),
    ):
        made = make_secrets(tmp_path, "--gateway", bad)
        assert made.returncode == 1 and message in made.stderr and "Traceback" not in made.stderr
    clash = make_secrets(tmp_path, "--gateway", "gw-1", "--gateway", "gw1")
    assert "users 'gw-1' and 'gw1' would share GW1_MQTT_PASSWORD" in clash.stderr
    assert list(tmp_path.iterdir()) == []


def test_without_mosquitto_passwd_the_script_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    made = make_secrets(tmp_path, "--gateway", "gw-1")
    assert made.returncode == 1 and "mosquitto_passwd is not on PATH" in made.stderr
    assert not (tmp_path / "mosquitto" / "passwords").exists()
