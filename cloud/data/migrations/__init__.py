"""The schema's Alembic history: one linear line of revisions in ``versions/`` (docs/data-layer.md says why).

The baseline is the schema the legacy steps reach at step 21. A database made before the data layer comes through
those steps (``cloud.data.legacy``) and is stamped at the baseline; a new one is built by the revisions
(``cloud.data.migrate``). This module stays light: ``open_database`` reads ``HEAD`` on every open.
"""

from __future__ import annotations

from pathlib import Path

#: the first revision: the schema of legacy step 21
BASELINE = "0001"
#: the newest revision. Bump it with every revision: ``cloud.storage.open_database`` compares a file's stored revision
#: with it to skip Alembic when nothing is pending (tests/data/test_migrations.py checks it is the script head)
HEAD = "0008"

LOCATION = Path(__file__).resolve().parent
