"""Every director document the cloud issued, by digest: what gateway events are matched against.

``director_documents`` keeps only each gateway's latest document, but events may name an older one (a commit or a
rollback names the document that activated the release), so the digest of each document is kept here when it is
issued, in the same transaction. The digest is that of ``DirectorDocument.to_json()``, the bytes the publisher
sends, so it equals the digest a gateway computes of what it received (``shared.director.document_digest``).

Its rows are the ``director`` owner's (``cloud.data.director``).
"""

from __future__ import annotations

import sqlite_utils

from cloud.data import director as stored
from cloud.data.connections import connection_of
from shared.director import DirectorDocument, document_digest


def record(db: sqlite_utils.Database, document: DirectorDocument) -> str:
    """Keep the digest of a document being issued (in the caller's transaction); return it."""
    digest = document_digest(document.to_json())
    signed = document.signed
    stored.record_issued(connection_of(db), digest, signed.gateway_id, signed.sequence, signed.issued_at)
    return digest
