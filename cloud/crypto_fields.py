"""Encryption at rest for sensitive text fields (technician notes, feedback comments), with Fernet.

The key is ``$IOTSPHERE_FIELD_KEY`` (a Fernet key) if set, else ``field-encryption.key`` in the cloud's keys
folder, created on first use with mode 0600. Every writer must reach the same key: the API and CLI are given
the keys folder of their ``CloudConfig``; the ingest writer has only a SQLite connection, so
``cipher_for_database`` finds the folder from the database file the same way ``CloudConfig`` places both
(``<data_dir>/iotsphere.db`` and ``<data_dir>/keys``). A PostgreSQL database has no file, and the processes
writing to it may run on several machines: there the key is ``$IOTSPHERE_FIELD_KEY``, which every process must be
given (else the key file in the keys folder of the process's own configured data folder, ``IOTSPHERE_DATA_DIR``,
which holds for processes sharing one machine and folder).

The cipher itself is ``shared.field_cipher``'s, which gateways use for their outbox with a key of their own.
"""

from __future__ import annotations

import sqlite3
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Connection

from cloud.config import CloudConfig, field_key
from cloud.data.connections import connection_over, database_file
from shared.field_cipher import FieldCipher, FieldKeyError, is_encrypted, key_file

__all__ = [
    "KEY_ENV",
    "KEY_FILE",
    "FieldCipher",
    "FieldKeyError",
    "cipher_for_database",
    "cipher_for_keys_dir",
    "is_encrypted",
]

KEY_ENV = "IOTSPHERE_FIELD_KEY"
KEY_FILE = "field-encryption.key"


def cipher_for_keys_dir(keys_dir: Path) -> FieldCipher:
    """The cipher with the env key, or the key file in ``keys_dir`` (created 0600 on first use)."""
    return _cipher(Path(keys_dir).resolve(), field_key())


def cipher_for_database(conn: sqlite3.Connection | Connection) -> FieldCipher:
    """The cipher of the cloud data folder holding this connection's database file (PostgreSQL: see above)."""
    connection = connection_over(conn) if isinstance(conn, sqlite3.Connection) else conn
    if connection.dialect.name == "postgresql":
        return cipher_for_keys_dir(CloudConfig().keys_dir)
    file = database_file(connection)
    if file is None:
        if key := field_key():
            return _cipher(None, key)
        raise FieldKeyError(f"a database that is no file has no keys folder: set {KEY_ENV}")
    return cipher_for_keys_dir(CloudConfig(data_dir=Path(file).parent).keys_dir)


@lru_cache(maxsize=8)
def _cipher(keys_dir: Path | None, env_key: str | None) -> FieldCipher:
    if env_key:
        return FieldCipher(env_key.encode("ascii"))
    assert keys_dir is not None
    return FieldCipher(key_file(keys_dir / KEY_FILE))
