"""KeyStore against a real SQLite file: hashed at rest, revocable, one live key per gateway."""

from __future__ import annotations

import pytest

from cloud.api.keys import KeyStore, RevokedKey, UnknownKey
from cloud.api.roles import Role
from tests.rows import count


@pytest.mark.sqlite_only  # reads the file's bytes
def test_secret_is_never_written_to_the_database_file(db, config) -> None:
    issued = KeyStore(db).create(Role.ADMIN, "alice")
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything into the main file

    secret = issued.token.split("_", 2)[2]
    stored = b"".join(p.read_bytes() for p in config.database_path.parent.glob("iotsphere.db*"))
    assert issued.key.key_id.encode() in stored  # the file is the one we wrote to
    assert secret.encode() not in stored
    assert issued.token.encode() not in stored
    (row,) = db["api_keys"].rows
    assert row["secret_hash"].startswith("sha256$") and secret not in row["secret_hash"]


def test_tokens_are_random_and_authenticate_to_their_key(db) -> None:
    store = KeyStore(db)
    first, second = store.create(Role.VIEWER, "a"), store.create(Role.VIEWER, "b")

    assert first.token != second.token and first.key.key_id != second.key.key_id
    assert store.authenticate(first.token) == first.key
    assert store.authenticate(second.token).name == "b"


def test_revoked_key_no_longer_authenticates_and_revoking_again_keeps_the_time(db) -> None:
    store = KeyStore(db)
    issued = store.create(Role.OPERATOR, "bob")

    revoked = store.revoke(issued.key.key_id)

    with pytest.raises(RevokedKey):
        store.authenticate(issued.token)
    assert store.revoke(issued.key.key_id).revoked_at == revoked.revoked_at


def test_revoking_an_unknown_key_is_a_clear_error(db) -> None:
    with pytest.raises(LookupError, match="no API key with id 'nope'"):
        KeyStore(db).revoke("nope")


def test_a_wrong_secret_for_a_revoked_key_does_not_reveal_revocation(db) -> None:
    store = KeyStore(db)
    issued = store.create(Role.VIEWER, "carol")
    store.revoke(issued.key.key_id)

    with pytest.raises(UnknownKey):
        store.authenticate(issued.token[:-1] + ("x" if issued.token[-1] != "x" else "y"))


def test_gateway_keys_name_their_gateway_and_only_one_is_live(db) -> None:
    store = KeyStore(db)
    first = store.create(Role.GATEWAY, "gateway gw-7", gateway_id="gw-7")

    with pytest.raises(ValueError, match="already has a live key"):
        store.create(Role.GATEWAY, "again", gateway_id="gw-7")
    store.revoke(first.key.key_id)
    replacement = store.create(Role.GATEWAY, "replacement", gateway_id="gw-7")

    assert store.authenticate(replacement.token).gateway_id == "gw-7"


@pytest.mark.parametrize(
    ("role", "name", "gateway", "message"),
    [
        (Role.GATEWAY, "gw", None, "needs the gateway id"),
        (Role.GATEWAY, "gw", "gw/1", "invalid gateway id"),
        (Role.VIEWER, "v", "gw-1", "only gateway keys belong to a gateway"),
        (Role.VIEWER, "  ", None, "key name must be"),
        ("superuser", "x", None, "is not a valid Role"),
    ],
)
def test_bad_key_requests_are_refused_and_store_nothing(db, role, name, gateway, message) -> None:
    with pytest.raises(ValueError, match=message):
        KeyStore(db).create(role, name, gateway)
    assert count(db, "api_keys") == 0
