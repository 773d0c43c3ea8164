"""The schema steps of the releases before the data layer: 21 ordered steps, recorded in ``schema_migrations``.

Frozen. They run only on a database file made by one of those releases (or one that a test set back), bringing it
to step 21, which is the Alembic baseline (``cloud.data.migrations``); every later change is an Alembic revision.
Each step runs in its own transaction through sqlite-utils, as they always did.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from cloud.data.times import iso


def append_only_trigger(table: str, verb: str, message: str) -> str:
    """SQLite's refusal of every ``verb`` (UPDATE or DELETE) on ``table``, with ``message``."""
    return (
        f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} BEGIN SELECT RAISE(ABORT, '{message}'); END"
    )


#: a gateway event naming a director document never issued to that gateway records a security event (step 21)
UNISSUED_DOCUMENT_TRIGGER = """CREATE TRIGGER gateway_events_unissued_document AFTER INSERT ON gateway_events
           WHEN NEW.document_digest IS NOT NULL AND NOT EXISTS (
             SELECT 1 FROM director_issued i
             WHERE i.document_digest = NEW.document_digest AND i.gateway_id = NEW.gateway_id)
           BEGIN
             INSERT INTO security_events (gateway_id, document_digest, issued_to, kind, rule, detail,
                                          director_sequence, first_seen_at, last_seen_at, sightings, first_msg_id)
             VALUES (NEW.gateway_id, NEW.document_digest,
                     (SELECT i.gateway_id FROM director_issued i WHERE i.document_digest = NEW.document_digest),
                     NEW.kind, NEW.rule, NEW.detail, NEW.director_sequence, NEW.sent_at, NEW.sent_at, 1, NEW.msg_id)
             ON CONFLICT (gateway_id, document_digest) DO UPDATE SET
               kind = excluded.kind, rule = excluded.rule, detail = excluded.detail,
               director_sequence = excluded.director_sequence,
               first_seen_at = min(first_seen_at, excluded.first_seen_at),
               last_seen_at = max(last_seen_at, excluded.last_seen_at), sightings = sightings + 1;
           END"""


def _m1_initial(db: sqlite_utils.Database) -> None:
    db["ingested_messages"].create({"msg_id": str, "channel": str, "gateway_id": str, "received_at": str}, pk="msg_id")
    db["dead_letters"].create({"id": int, "topic": str, "payload": bytes, "reason": str, "received_at": str}, pk="id")
    db["gateways"].create(
        {
            "gateway_id": str,
            "first_seen": str,
            "last_seen": str,
            "online": int,
            "agent_version": str,
            "director_sequence": int,
            "status_json": str,
        },
        pk="gateway_id",
    )
    db["devices"].create(
        {"device_id": str, "gateway_id": str, "device_type": str, "first_seen": str, "last_seen": str},
        pk="device_id",
    )
    db["feature_sets"].create({"version": str, "names_json": str}, pk="version")
    db["features"].create(
        {
            "device_id": str,
            "window_end": str,
            "feature_set_version": str,
            "values_json": str,
            "msg_id": str,
        },
        pk=("device_id", "feature_set_version", "window_end"),
    )
    db["predictions"].create(
        {
            "prediction_id": str,
            "arm": str,
            "device_id": str,
            "device_type": str,
            "prediction_type": str,
            "model_name": str,
            "model_version": str,
            "outputs_json": str,
            "latency_ms": float,
            "made_at": str,
            "feature_window_end": str,
            "gateway_id": str,
            "msg_id": str,
        },
        pk=("prediction_id", "arm"),
    )
    db["predictions"].create_index(["device_id", "prediction_type", "made_at"])
    db["outcomes"].create(
        {
            "outcome_id": str,
            "device_id": str,
            "source": str,
            "observed_at": str,
            "prediction_id": str,
            "component": str,
            "result": str,
            "value": float,
            "technician": str,
            "notes": str,
            "gateway_id": str,
            "received_at": str,
        },
        pk="outcome_id",
    )
    db["outcomes"].create_index(["device_id", "observed_at"])
    db["gateway_events"].create(
        {
            "msg_id": str,
            "gateway_id": str,
            "kind": str,
            "model_name": str,
            "model_version": str,
            "director_sequence": int,
            "rule": str,
            "detail": str,
            "sent_at": str,
        },
        pk="msg_id",
    )
    db["gateway_events"].create_index(["gateway_id", "sent_at"])
    db["models"].create(
        {
            "model_name": str,
            "model_version": str,
            "prediction_type": str,
            "status": str,
            "created_at": str,
            "feature_set_version": str,
            "device_types_json": str,
            "metrics_json": str,
            "lineage_json": str,
            "release_target": str,
            "model_target": str,
            "model_sha256": str,
        },
        pk=("model_name", "model_version"),
    )
    db["api_keys"].create(
        {"key_id": str, "name": str, "role": str, "secret_hash": str, "created_at": str, "revoked_at": str},
        pk="key_id",
    )
    db["director_documents"].create(
        {"gateway_id": str, "sequence": int, "document_json": str, "published_at": str},
        pk="gateway_id",
    )


def _m2_api_key_gateway(db: sqlite_utils.Database) -> None:
    """A gateway key belongs to one gateway."""
    db["api_keys"].add_column("gateway_id", str)


def _m3_features_float32(db: sqlite_utils.Database) -> None:
    """Feature values as packed float32 (``cloud.ingest.feature_codec``), rows kept in time order.

    The key leads with (feature_set_version, window_end): windows arrive in time order, so inserts append to the
    end of the b-tree instead of touching a page per device, and a training read is one range scan. Existing
    JSON rows are converted; one with a value beyond float32's range (none come from a real gateway) is moved to
    ``dead_letters`` with its JSON rather than dropped.
    """
    import json

    from cloud.ingest import feature_codec  # here, not at the top: cloud.ingest imports this module

    db.execute(
        "CREATE TABLE features_f32 (feature_set_version TEXT NOT NULL, window_end TEXT NOT NULL,"
        " device_id TEXT NOT NULL, values_f32 BLOB NOT NULL, msg_id TEXT,"
        " PRIMARY KEY (feature_set_version, window_end, device_id)) WITHOUT ROWID"
    )
    now = iso(datetime.now(UTC))
    old = db.execute("SELECT device_id, window_end, feature_set_version, values_json, msg_id FROM features")
    while chunk := old.fetchmany(10_000):
        kept, refused = [], []
        for device_id, window_end, version, values_json, msg_id in chunk:
            try:
                [blob] = feature_codec.encode(feature_codec.to_matrix([json.loads(values_json)]))
            except ValueError as exc:
                row = {"device_id": device_id, "window_end": window_end, "feature_set_version": version}
                payload = json.dumps({**row, "values": json.loads(values_json), "msg_id": msg_id}).encode()
                refused.append(("migration/features", payload, f"invalid: {exc}", now))
            else:
                kept.append((version, window_end, device_id, blob, msg_id))
        db.conn.executemany("INSERT INTO features_f32 VALUES (?,?,?,?,?)", kept)
        db.conn.executemany("INSERT INTO dead_letters (topic, payload, reason, received_at) VALUES (?,?,?,?)", refused)
    db.execute("DROP TABLE features")
    db.execute("ALTER TABLE features_f32 RENAME TO features")


def _m4_feature_store(db: sqlite_utils.Database) -> None:
    """FeatureStore: each training dataset is recorded.

    ``datasets`` names the exact data a model was trained on: the query that built it (with its ``as_of``, so
    it can be built again) and a hash of its content. No index by device on ``features``: ingest would pay for
    it on every row (see ``cloud.feature_store``).
    """
    db["datasets"].create(
        {"dataset_id": str, "query_json": str, "row_count": int, "content_hash": str, "created_at": str},
        pk="dataset_id",
    )


def _m5_feedback(db: sqlite_utils.Database) -> None:
    """PredictionFeedbackService: users' ratings of predictions, and a prediction's outcomes found by its id.

    ``comments`` holds ciphertext (``cloud.crypto_fields``); ``feedback_id`` is a keyed fingerprint of the
    submission, so the same feedback sent twice is stored once.
    """
    db["feedback"].create(
        {
            "feedback_id": str,
            "prediction_id": str,
            "rating": int,
            "comments": str,
            "submitted_by": str,
            "submitted_at": str,
        },
        pk="feedback_id",
    )
    db["feedback"].create_index(["prediction_id", "submitted_at"])
    db["outcomes"].create_index(["prediction_id"])


def _m6_registry(db: sqlite_utils.Database) -> None:
    """Registry invariants in the schema: one production version per model name and device type; a history.

    ``production_device_type`` scopes a production version ('' = every device type, the fallback), the partial
    unique index keeps one per scope; ``evaluation_passed`` (NULL until evaluated) gates promotion;
    ``targets_version`` names the TUF targets metadata that signed the release (its signing key id).
    """
    db["models"].add_column("production_device_type", str)
    db["models"].add_column("evaluation_passed", int)
    db["models"].add_column("evaluation_json", str)
    db["models"].add_column("targets_version", int)
    db.execute(
        "CREATE UNIQUE INDEX models_one_production ON models (model_name, production_device_type)"
        " WHERE status = 'production'"
    )
    db["model_history"].create(
        {
            "id": int,
            "at": str,
            "actor": str,
            "model_name": str,
            "device_type": str,
            "from_version": str,
            "to_version": str,
            "action": str,
            "reason": str,
            "override": int,
        },
        pk="id",
    )
    db["model_history"].create_index(["model_name", "device_type", "id"])


def _m7_training(db: sqlite_utils.Database) -> None:
    """ModelTrainingPipeline: queued runs with their log, schedules, and evaluations of versions.

    A run moves queued → running → succeeded | failed | cancelled; the worker claims one with a conditional
    UPDATE so two workers never run the same. A schedule keeps its next fire time, so it survives a restart.
    """
    db["training_runs"].create(
        {
            "run_id": str,
            "model_name": str,
            "status": str,
            "requested_by": str,
            "requested_at": str,
            "schedule_id": int,
            "start_date": str,
            "end_date": str,
            "options_json": str,
            "started_at": str,
            "worker": str,
            "finished_at": str,
            "stage": str,
            "progress": float,
            "dataset_id": str,
            "model_version": str,
            "result_json": str,
            "error": str,
        },
        pk="run_id",
    )
    db["training_runs"].create_index(["status", "requested_at"])
    db["training_runs"].create_index(["model_name", "requested_at"])
    db["training_run_logs"].create({"id": int, "run_id": str, "at": str, "message": str}, pk="id")
    db["training_run_logs"].create_index(["run_id", "id"])
    db["training_schedules"].create(
        {
            "schedule_id": int,
            "model_name": str,
            "schedule": str,
            "cron": str,
            "window_days": int,
            "options_json": str,
            "created_by": str,
            "created_at": str,
            "next_run_at": str,
            "last_run_at": str,
            "last_run_id": str,
            "enabled": int,
        },
        pk="schedule_id",
    )
    db["model_evaluations"].create(
        {
            "id": int,
            "model_name": str,
            "model_version": str,
            "dataset_id": str,
            "score_name": str,
            "score": float,
            "rows": int,
            "metrics_json": str,
            "evaluated_at": str,
            "evaluated_by": str,
        },
        pk="id",
    )
    db["model_evaluations"].create_index(["model_name", "model_version", "id"])
    # MLModelRegistry.next_version: the highest numeric version from this index, not a scan of every version
    db.execute(
        "CREATE INDEX models_numeric_version ON models (model_name, CAST(model_version AS INTEGER))"
        " WHERE model_version != '' AND model_version NOT GLOB '*[^0-9]*'"
    )


def _m9_audit_log(db: sqlite_utils.Database) -> None:
    """The hash-chained audit log (``cloud.audit``): ids are assigned by the appender, never reused.

    The triggers refuse UPDATE and DELETE, so no code path edits history by mistake; the chain is what
    shows a deliberate edit of the file.
    """
    db["audit_log"].create(
        {
            "id": int,
            "at": str,
            "actor": str,
            "action": str,
            "target": str,
            "details_json": str,
            "prev_hash": str,
            "hash": str,
        },
        pk="id",
        not_null={"at", "actor", "action", "target", "details_json", "prev_hash", "hash"},
    )
    db["audit_log"].create_index(["actor", "id"])
    db["audit_log"].create_index(["action", "id"])
    for verb in ("UPDATE", "DELETE"):
        db.execute(append_only_trigger("audit_log", verb, "the audit log is append-only"))


def _m13_rollouts(db: sqlite_utils.Database) -> None:
    """Staged rollouts (``cloud.rollouts``): their stages, which gateways each stage directed, and every decision.

    The partial unique index keeps one live (running or halted) rollout per model name and scope, so two
    rollouts never direct the same gateways against each other.
    """
    db["rollouts"].create(
        {
            "rollout_id": int,
            "model_name": str,
            "version": str,
            "device_type": str,
            "status": str,
            "plan_json": str,
            "created_by": str,
            "created_at": str,
            "reason": str,
            "updated_at": str,
            "finished_at": str,
            "outcome": str,
        },
        pk="rollout_id",
    )
    db.execute(
        "CREATE UNIQUE INDEX rollouts_one_live ON rollouts (model_name, device_type)"
        " WHERE status IN ('running', 'halted')"
    )
    db["rollouts"].create_index(["status", "rollout_id"])
    db["rollout_stages"].create(
        {
            "rollout_id": int,
            "stage_index": int,
            "percent": float,
            "max_failure_share": float,
            "deadline_s": float,
            "status": str,
            "started_at": str,
            "deadline_at": str,
            "finished_at": str,
        },
        pk=("rollout_id", "stage_index"),
    )
    db["rollout_gateways"].create(
        {
            "rollout_id": int,
            "gateway_id": str,
            "stage_index": int,
            "previous_version": str,
            "directed_sequence": int,
            "rollback_sequence": int,
        },
        pk=("rollout_id", "gateway_id"),
    )
    db["rollout_decisions"].create(
        {
            "id": int,
            "rollout_id": int,
            "stage_index": int,
            "at": str,
            "actor": str,
            "decision": str,
            "reason": str,
            "details_json": str,
        },
        pk="id",
    )
    db["rollout_decisions"].create_index(["rollout_id", "id"])


def _m10_metric_points(db: sqlite_utils.Database) -> None:
    """ModelPerformanceMonitor: metric time series, tracked by callers or computed from outcomes.

    One value per series and time: the dimensions plus ``metric`` and ``at`` are unique, '' standing for "not
    split by this dimension" (NULLs would never collide), so tracking a point again replaces its value.
    """
    db["metric_points"].create(
        {
            "id": int,
            "model_name": str,
            "prediction_type": str,
            "model_version": str,
            "device_type": str,
            "arm": str,
            "window": str,
            "metric": str,
            "value": float,
            "at": str,
            "source": str,
            "recorded_at": str,
        },
        pk="id",
        not_null={"model_name", "prediction_type", "model_version", "device_type", "arm", "window", "metric", "at"},
    )
    db.execute(
        "CREATE UNIQUE INDEX metric_points_series ON metric_points"
        " (model_name, metric, model_version, device_type, arm, window, at)"
    )
    db["metric_points"].create_index(["prediction_type", "at"])


def _m12_experiments(db: sqlite_utils.Database) -> None:
    """A/B tests (``cloud.experiments``): champion vs challenger, their plan, status, conclusion and decisions.

    The partial unique index keeps one running experiment per model name, since a director document names
    one challenger per model. ``experiment_decisions`` is the log of every action and why.
    """
    db["experiments"].create(
        {
            "experiment_id": str,
            "model_name": str,
            "prediction_type": str,
            "champion_version": str,
            "challenger_version": str,
            "mode": str,
            "challenger_percent": int,
            "metric": str,
            "min_detectable_effect": float,
            "alpha": float,
            "power": float,
            "planned_per_arm": int,
            "guardrails_json": str,
            "gateway_ids_json": str,
            "status": str,
            "created_at": str,
            "created_by": str,
            "started_at": str,
            "started_by": str,
            "stopped_at": str,
            "stopped_by": str,
            "concluded_at": str,
            "concluded_by": str,
            "decision": str,
            "reason": str,
        },
        pk="experiment_id",
        not_null={"model_name", "champion_version", "challenger_version", "mode", "metric", "status"},
    )
    db.execute("CREATE UNIQUE INDEX experiments_one_running ON experiments (model_name) WHERE status = 'running'")
    db["experiments"].create_index(["status", "created_at"])
    db["experiment_decisions"].create(
        {
            "id": int,
            "experiment_id": str,
            "at": str,
            "actor": str,
            "action": str,
            "decision": str,
            "reason": str,
            "details_json": str,
        },
        pk="id",
    )
    db["experiment_decisions"].create_index(["experiment_id", "id"])


def _m11_drift(db: sqlite_utils.Database) -> None:
    """Drift monitoring (``cloud.monitoring``): each version's training reference, and every drift check.

    The reference is written once when the version is trained (``cloud.monitoring.reference``), so checks never
    recompute it; ``drift_checks`` is the history retraining triggers and the dashboard read.
    """
    db["model_references"].create(
        {"model_name": str, "model_version": str, "reference_json": str, "created_at": str},
        pk=("model_name", "model_version"),
    )
    db["drift_checks"].create(
        {
            "id": int,
            "model_name": str,
            "model_version": str,
            "device_type": str,
            "window_start": str,
            "window_end": str,
            "checked_at": str,
            "checked_by": str,
            "status": str,
            "drifted_features": int,
            "quality_findings": int,
            "performance_status": str,
            "result_json": str,
        },
        pk="id",
        not_null={"model_name", "model_version", "checked_at", "status", "result_json"},
    )
    db["drift_checks"].create_index(["model_name", "id"])


def _m14_retraining(db: sqlite_utils.Database) -> None:
    """Automated retraining: a policy per model and every trigger, decision and reason.

    A decision that waits on something (a queued run, a started experiment) stays ``open`` until it is followed
    up. Outcomes and ratings get indexes on their arrival times, which the triggers and guards count by.
    """
    db["retraining_policies"].create(
        {"model_name": str, "policy_json": str, "updated_by": str, "updated_at": str}, pk="model_name"
    )
    db["retraining_decisions"].create(
        {
            "id": int,
            "at": str,
            "model_name": str,
            "trigger": str,
            "decision": str,
            "reason": str,
            "evidence_json": str,
            "run_id": str,
            "model_version": str,
            "experiment_id": str,
            "rollout_id": int,
            "open": int,
        },
        pk="id",
    )
    db["retraining_decisions"].create_index(["model_name", "trigger", "id"])
    db["retraining_decisions"].create_index(["open"])
    db["outcomes"].create_index(["received_at"])
    db["feedback"].create_index(["submitted_at"])


def _m15_audit_checkpoints(db: sqlite_utils.Database) -> None:
    """Signed checkpoints of the audit log (``cloud.audit_checkpoints``): entry count, head hash, time, signature.

    Append-only like the log itself: the triggers stop mistakes, the signatures and exported copies stop the rest.
    """
    db["audit_checkpoints"].create(
        {"id": int, "count": int, "head_hash": str, "at": str, "keyid": str, "signature": str},
        pk="id",
        not_null={"count", "head_hash", "at", "keyid", "signature"},
    )
    for verb in ("UPDATE", "DELETE"):
        db.execute(append_only_trigger("audit_checkpoints", verb, "audit checkpoints are append-only"))


def _m16_director_fleet_and_failures(db: sqlite_utils.Database) -> None:
    """The fleet's desired state moves into the database (``cloud.releases.director``), so a promotion changes it
    in the same transaction as the registry; ``director_failures`` keeps each gateway that could not be directed,
    with why and when, for operators to see and the director publisher to retry. A ``director/fleet.json`` beside
    the database (where the fleet's state was kept before) is imported."""
    db["director_fleet"].create({"model_name": str, "desired_json": str}, pk="model_name", not_null={"desired_json"})
    db["director_failures"].create(
        {
            "gateway_id": str,
            "updates_json": str,
            "reason": str,
            "first_failed_at": str,
            "failed_at": str,
            "attempts": int,
        },
        pk="gateway_id",
        not_null={"updates_json", "reason", "first_failed_at", "failed_at", "attempts"},
    )
    database_file = db.execute("PRAGMA database_list").fetchone()[2]
    legacy = Path(database_file).parent / "director" / "fleet.json" if database_file else None
    if legacy is not None and legacy.exists():
        for name, desired in json.loads(legacy.read_text()).items():
            db["director_fleet"].insert({"model_name": name, "desired_json": json.dumps(desired)})


def _m17_ingest_probe(db: sqlite_utils.Database) -> None:
    """One row the ingest worker rewrites to learn whether the store takes writes at all.

    When a message fails to store on its own, the worker commits this row before it blames the message: if that
    fails too, the store is down (locked, full, read-only) and nothing is dead-lettered (``cloud.ingest.isolation``).
    """
    db.execute("CREATE TABLE ingest_probe (id INTEGER PRIMARY KEY CHECK (id = 1), written_at TEXT NOT NULL)")


#: what each uplink table's readers need of a row: JSON columns, finite numbers, times in ``iso`` form
_UPLINK_ROW_FORMS = {
    "predictions": (("outputs_json",), ("latency_ms",), ("made_at", "feature_window_end")),
    "outcomes": ((), ("value",), ("observed_at",)),
}


def _m18_unreadable_uplink_rows(db: sqlite_utils.Database) -> None:
    """Predictions and outcomes stored before the wire was bounded, that their readers fail on, move to
    ``dead_letters`` with the row as JSON: ``Infinity``/``NaN`` in outputs (stored as text that is no JSON, and then
    the performance view and the report answered 500), an infinite latency or value, a time before year 1000."""
    import math

    from cloud import dead_letters  # here, not at the top: it imports what imports this module
    from shared.strict_json import loads

    now = iso(datetime.now(UTC))

    def readable(row: dict, json_columns: tuple, float_columns: tuple, time_columns: tuple) -> bool:
        try:
            for column in json_columns:
                loads(row[column])
        except (TypeError, ValueError):
            return False
        finite = all(row[c] is None or math.isfinite(row[c]) for c in float_columns)
        return finite and all(row[c] is None or len(row[c]) == len(now) for c in time_columns)

    def as_json(value: object) -> object:
        return repr(value) if isinstance(value, float) and not math.isfinite(value) else value

    for table, forms in _UPLINK_ROW_FORMS.items():
        cursor = db.conn.execute(f"SELECT rowid AS _rowid, * FROM {table}")
        columns = [d[0] for d in cursor.description]
        moved, letters = [], []
        for values in cursor:
            row = dict(zip(columns, values, strict=True))
            if readable(row, *forms):
                continue
            rowid = row.pop("_rowid")
            moved.append((rowid,))
            payload = json.dumps({k: as_json(v) for k, v in row.items()}).encode()
            letters.append((f"migration/{table}", payload, f"invalid: a stored {table} row its readers fail on", now))
        db.conn.executemany(
            "INSERT INTO dead_letters (topic, payload, reason, received_at) VALUES (?,?,?,?)",
            dead_letters.sealed(db.conn, letters),
        )
        db.conn.executemany(f"DELETE FROM {table} WHERE rowid = ?", moved)


def _m19_ingest_sessions(db: sqlite_utils.Database) -> None:
    """Leases on the ingest workers' broker sessions (``cloud.ingest.session_leases``): who may connect to each,
    so a peer adopts the session of a worker that stopped renewing instead of leaving its messages queued."""
    db["ingest_sessions"].create(
        {"client_id": str, "topic_filter": str, "holder": str, "lapses_at": float},
        pk="client_id",
        not_null={"topic_filter", "holder", "lapses_at"},
    )
    db["ingest_sessions"].create_index(["topic_filter", "lapses_at"])


def _m20_dead_letters_encrypted(db: sqlite_utils.Database) -> None:
    """Dead-letter payloads encrypted at rest (``cloud.dead_letters``): those stored before, in plain text (a refused
    outcome's technician notes among them), are encrypted in place, a chunk at a time. ``secure_delete`` zeroes the
    plain text's old space in the file instead of leaving it in free pages."""
    from cloud.crypto_fields import cipher_for_database, is_encrypted

    db.execute("PRAGMA secure_delete = ON")
    last_id, cipher = 0, None
    while chunk := db.execute(
        "SELECT id, payload FROM dead_letters WHERE id > ? ORDER BY id LIMIT 500", [last_id]
    ).fetchall():
        last_id = chunk[-1][0]
        plain = [(row_id, p if isinstance(p, bytes) else (p or "").encode()) for row_id, p in chunk]
        plain = [(row_id, payload) for row_id, payload in plain if not is_encrypted(payload)]
        if plain:
            cipher = cipher or cipher_for_database(db.conn)
            db.conn.executemany(
                "UPDATE dead_letters SET payload = ? WHERE id = ?",
                [(cipher.encrypt_bytes(payload), row_id) for row_id, payload in plain],
            )


def _m21_document_digests(db: sqlite_utils.Database) -> None:
    """Gateway events name their director document by digest (``shared.director.document_digest``), and the cloud
    matches them to the documents it issued by it (``cloud.deployments``), never by a sequence a forgery can copy.

    ``director_issued`` (``cloud.releases.issued``) keeps the digest of every document issued, not only each
    gateway's latest (a commit names the document that activated its release), filled here from the documents
    already issued; ``gateway_events.document_digest`` keeps the digest a gateway named. ``security_events``
    (``cloud.security_events``) keeps each document a gateway reported that the cloud never issued *to it*, one row
    per gateway and document with its sightings; a trigger writes it in the transaction that stores the event,
    whichever code stores it, so no event about a forged document is stored without its security event.
    """
    import hashlib

    db.execute(
        "CREATE TABLE director_issued (document_digest TEXT PRIMARY KEY, gateway_id TEXT NOT NULL,"
        " sequence INTEGER NOT NULL, issued_at TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX director_issued_gateway ON director_issued (gateway_id, sequence)")
    for gateway_id, sequence, document_json in db.execute(
        "SELECT gateway_id, sequence, document_json FROM director_documents"
    ).fetchall():
        db.execute(
            "INSERT OR IGNORE INTO director_issued VALUES (?, ?, ?, ?)",
            [
                hashlib.sha256(document_json.encode()).hexdigest(),
                gateway_id,
                sequence,
                json.loads(document_json)["signed"]["issued_at"],
            ],
        )
    db.execute("ALTER TABLE gateway_events ADD COLUMN document_digest TEXT")
    db.execute(
        """CREATE TABLE security_events (
             gateway_id TEXT NOT NULL,
             document_digest TEXT NOT NULL,
             issued_to TEXT,
             kind TEXT NOT NULL,
             rule TEXT,
             detail TEXT,
             director_sequence INTEGER,
             first_seen_at TEXT NOT NULL,
             last_seen_at TEXT NOT NULL,
             sightings INTEGER NOT NULL,
             first_msg_id TEXT NOT NULL,
             alerted_at TEXT,
             PRIMARY KEY (gateway_id, document_digest))"""
    )
    db.execute("CREATE INDEX security_events_last_seen ON security_events (last_seen_at)")
    db.execute("CREATE INDEX security_events_unalerted ON security_events (first_seen_at) WHERE alerted_at IS NULL")
    db.execute(UNISSUED_DOCUMENT_TRIGGER)


#: Ordered migrations. Append; never edit one that has shipped.
MIGRATIONS: list[tuple[int, Callable[[sqlite_utils.Database], None]]] = [
    (1, _m1_initial),
    (2, _m2_api_key_gateway),
    (3, _m3_features_float32),
    (4, _m4_feature_store),
    (5, _m5_feedback),
    (6, _m6_registry),
    (7, _m7_training),
    (9, _m9_audit_log),
    (10, _m10_metric_points),
    (11, _m11_drift),
    (12, _m12_experiments),
    (13, _m13_rollouts),
    (14, _m14_retraining),
    (15, _m15_audit_checkpoints),
    (16, _m16_director_fleet_and_failures),
    (17, _m17_ingest_probe),
    (18, _m18_unreadable_uplink_rows),
    (19, _m19_ingest_sessions),
    (20, _m20_dead_letters_encrypted),
    (21, _m21_document_digests),
]


def migrate(db: sqlite_utils.Database) -> int:
    """Run pending migrations, each in its own transaction; return the schema version."""
    db["schema_migrations"].create({"version": int, "applied_at": str}, pk="version", if_not_exists=True)
    done = {row["version"] for row in db["schema_migrations"].rows}
    for version, step in sorted(MIGRATIONS, key=lambda migration: migration[0]):
        if version in done:
            continue
        with db.conn:
            step(db)
            db["schema_migrations"].insert({"version": version, "applied_at": iso(datetime.now(UTC))})
    return max(v for v, _ in MIGRATIONS)
