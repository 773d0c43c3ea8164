"""What the gateway keeps on disk about director documents, shared by the agent and its update child.

The agent reads the accepted document and the digests of those that activated its releases; the update
child (``edge_agent.update_fetch``) reads the cached director keys and records when it may fetch them again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from shared.atomic_files import atomic_write
from shared.director import parse_director_keys

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class DirectorState:
    """On disk: the last accepted document's sequence and hash, the digests of the documents that activated
    the releases in use, the cached director keys and when they were last fetched."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._accepted = folder / "accepted.json"
        self._keys = folder / "keys.json"
        self._documents = folder / "documents.json"
        self._key_hold = folder / "key-fetches-held.json"

    def accepted(self) -> tuple[int | None, str | None]:
        if not self._accepted.exists():
            return None, None
        body = json.loads(self._accepted.read_bytes())
        return int(body["sequence"]), body["sha256"]

    def accept(self, sequence: int, sha256: str) -> None:
        atomic_write(self._accepted, json.dumps({"sequence": sequence, "sha256": sha256}).encode())

    def cached_keys(self) -> dict[str, Ed25519PublicKey]:
        """Keys from the last TUF fetch; none if never fetched or unreadable (they are fetched again)."""
        try:
            return parse_director_keys(self._keys.read_bytes())
        except (OSError, ValueError, TypeError, KeyError):
            return {}

    def cache_keys(self, data: bytes) -> None:
        atomic_write(self._keys, data)

    def documents(self) -> dict[int, str]:
        """Digests of verified documents by sequence (only documents that verified are kept: sequences are theirs)."""
        if not self._documents.exists():
            return {}
        return {int(sequence): digest for sequence, digest in json.loads(self._documents.read_bytes()).items()}

    def remember_document(self, sequence: int, digest: str) -> None:
        atomic_write(self._documents, json.dumps({**self.documents(), sequence: digest}, sort_keys=True).encode())

    def keep_documents(self, sequences: Iterable[int]) -> None:
        """Forget every remembered document but these (those still naming a release in use)."""
        wanted = set(sequences)
        kept = {sequence: digest for sequence, digest in self.documents().items() if sequence in wanted}
        atomic_write(self._documents, json.dumps(kept, sort_keys=True).encode())

    def key_fetches_held_until(self) -> datetime | None:
        """Until when a bad signature may not make the agent fetch the director keys through TUF again."""
        try:
            return datetime.fromisoformat(json.loads(self._key_hold.read_bytes())["until"])
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def hold_key_fetches(self, until: datetime | None) -> None:
        """Hold key fetches off until then; None: the last fetch brought new keys and holds nothing off."""
        if until is None:
            self._key_hold.unlink(missing_ok=True)
        else:
            atomic_write(self._key_hold, json.dumps({"until": until.isoformat()}).encode())
