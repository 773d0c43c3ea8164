"""Ed25519 keys and signatures (``cryptography``) with stable key ids.

A key id is the hex SHA-256 of the raw 32-byte public key, so it can be computed on either side
from the public key alone.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_key_bytes(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_hex(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    return public_key_bytes(key).hex()


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    return hashlib.sha256(public_key_bytes(key)).hexdigest()


def load_public_key_hex(value: str) -> Ed25519PublicKey:
    raw = bytes.fromhex(value)
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    """Base64 signature of ``message``."""
    return base64.b64encode(key.sign(message)).decode("ascii")


def verify(public_key: Ed25519PublicKey, message: bytes, signature_b64: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature_b64, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def encrypt_private_key(key: Ed25519PrivateKey, passphrase: bytes, name: str = "key") -> bytes:
    """PKCS#12 container, AES-256-CBC under PBKDF2-SHA256 (keys are encrypted at rest).

    The rounds are ``IOTSPHERE_KEY_KDF_ROUNDS``, by default 600,000 (OWASP's 2023 figure): ~0.15 s per load, so a
    stolen key file costs an attacker that much per passphrase guess. The count is stored in each file, so the
    variable may lower it where keys are throwaway (the test suite) without changing how keys are read.
    """
    from cryptography.hazmat.primitives.serialization import pkcs12  # cloud only: ~9 MB a gateway never needs

    from shared.settings import settings

    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(settings().key_kdf_rounds)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(passphrase)
    )
    return pkcs12.serialize_key_and_certificates(name.encode(), key, None, None, encryption)


def decrypt_private_key(data: bytes, passphrase: bytes) -> Ed25519PrivateKey:
    """Raise ValueError for a wrong passphrase or damaged file."""
    from cryptography.hazmat.primitives.serialization import pkcs12  # cloud only: ~9 MB a gateway never needs

    key, _certificate, _others = pkcs12.load_key_and_certificates(data, passphrase)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key
