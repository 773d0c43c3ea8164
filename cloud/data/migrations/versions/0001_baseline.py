"""Baseline: the schema the legacy steps reach at step 21 (``cloud.data.legacy``), on SQLite and PostgreSQL.

Generated from ``cloud.data.schema.metadata`` by ``alembic revision --autogenerate`` against an empty database, then
frozen: the expression index, the CHECK of ``ingest_probe`` and the triggers (which autogenerate does not see) are
written out below, each trigger once per dialect. A database the legacy steps made is stamped here instead of running
it (``cloud.data.migrations.upgrade``), so this builds new databases only; ``schema_migrations`` gets the legacy steps'
versions, as a file they built has them.

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from cloud.data.legacy import MIGRATIONS, UNISSUED_DOCUMENT_TRIGGER, append_only_trigger
from cloud.data.times import iso

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

#: each append-only table and what its trigger says to an UPDATE or DELETE
APPEND_ONLY = {
    "audit_log": "the audit log is append-only",
    "audit_checkpoints": "audit checkpoints are append-only",
}

#: ``legacy.UNISSUED_DOCUMENT_TRIGGER`` on PostgreSQL, as a trigger function
POSTGRESQL_UNISSUED_DOCUMENT = [
    """CREATE FUNCTION gateway_events_unissued_document() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.document_digest IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM director_issued i WHERE i.document_digest = NEW.document_digest AND i.gateway_id = NEW.gateway_id)
  THEN
    INSERT INTO security_events AS s (gateway_id, document_digest, issued_to, kind, rule, detail,
                                      director_sequence, first_seen_at, last_seen_at, sightings, first_msg_id)
    VALUES (NEW.gateway_id, NEW.document_digest,
            (SELECT i.gateway_id FROM director_issued i WHERE i.document_digest = NEW.document_digest),
            NEW.kind, NEW.rule, NEW.detail, NEW.director_sequence, NEW.sent_at, NEW.sent_at, 1, NEW.msg_id)
    ON CONFLICT (gateway_id, document_digest) DO UPDATE SET
      kind = excluded.kind, rule = excluded.rule, detail = excluded.detail,
      director_sequence = excluded.director_sequence,
      first_seen_at = least(s.first_seen_at, excluded.first_seen_at),
      last_seen_at = greatest(s.last_seen_at, excluded.last_seen_at), sightings = s.sightings + 1;
  END IF;
  RETURN NULL;
END $$""",
    "CREATE TRIGGER gateway_events_unissued_document AFTER INSERT ON gateway_events"
    " FOR EACH ROW EXECUTE FUNCTION gateway_events_unissued_document()",
]


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("schema_migrations"):
        raise RuntimeError(
            "this database was made by the legacy steps: it is at the baseline already, not empty. Open it with the "
            "cloud (any `iotsphere cloud` command), which runs the steps it lacks and stamps it, before using alembic"
        )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("role", sa.Text(), nullable=True),
        sa.Column("secret_hash", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Text(), nullable=True),
        sa.Column("revoked_at", sa.Text(), nullable=True),
        sa.Column("gateway_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.Text(), nullable=False),
        sa.Column("at", sa.Text(), nullable=False),
        sa.Column("keyid", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=True),
        sa.Column("at", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("details_json", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.Text(), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("idx_audit_log_action_id", "audit_log", ["action", "id"], unique=False)
    op.create_index("idx_audit_log_actor_id", "audit_log", ["actor", "id"], unique=False)

    op.create_table(
        "datasets",
        sa.Column("dataset_id", sa.Text(), nullable=True),
        sa.Column("query_json", sa.Text(), nullable=True),
        sa.Column("row_count", sa.Integer(), nullable=True),
        sa.Column("content_hash", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("dataset_id"),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer(), nullable=True),
        sa.Column("topic", sa.Text(), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("received_at", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "devices",
        sa.Column("device_id", sa.Text(), nullable=True),
        sa.Column("gateway_id", sa.Text(), nullable=True),
        sa.Column("device_type", sa.Text(), nullable=True),
        sa.Column("first_seen", sa.Text(), nullable=True),
        sa.Column("last_seen", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("device_id"),
    )
    op.create_table(
        "director_documents",
        sa.Column("gateway_id", sa.Text(), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=True),
        sa.Column("document_json", sa.Text(), nullable=True),
        sa.Column("published_at", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("gateway_id"),
    )
    op.create_table(
        "director_failures",
        sa.Column("gateway_id", sa.Text(), nullable=True),
        sa.Column("updates_json", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("first_failed_at", sa.Text(), nullable=False),
        sa.Column("failed_at", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("gateway_id"),
    )
    op.create_table(
        "director_fleet",
        sa.Column("model_name", sa.Text(), nullable=True),
        sa.Column("desired_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("model_name"),
    )
    op.create_table(
        "director_issued",
        sa.Column("document_digest", sa.Text(), nullable=True),
        sa.Column("gateway_id", sa.Text(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("document_digest"),
    )
    op.create_index("director_issued_gateway", "director_issued", ["gateway_id", "sequence"], unique=False)

    op.create_table(
        "drift_checks",
        sa.Column("id", sa.Integer(), nullable=True),
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("model_version", sa.Text(), nullable=False),
        sa.Column("device_type", sa.Text(), nullable=True),
        sa.Column("window_start", sa.Text(), nullable=True),
        sa.Column("window_end", sa.Text(), nullable=True),
        sa.Column("checked_at", sa.Text(), nullable=False),
        sa.Column("checked_by", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("drifted_features", sa.Integer(), nullable=True),
        sa.Column("quality_findings", sa.Integer(), nullable=True),
        sa.Column("performance_status", sa.Text(), nullable=True),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("idx_drift_checks_model_name_id", "drift_checks", ["model_name", "id"], unique=False)

    op.create_table(
        "experiment_decisions",
        sa.Column("id", sa.Integer(), nullable=True),
        sa.Column("experiment_id", sa.Text(), nullable=True),
        sa.Column("at", sa.Text(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=True),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "idx_experiment_decisions_experiment_id_id", "experiment_decisions", ["experiment_id", "id"], unique=False
    )

    op.create_table(
        "experiments",
        sa.Column("experiment_id", sa.Text(), nullable=True),
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("prediction_type", sa.Text(), nullable=True),
        sa.Column("champion_version", sa.Text(), nullable=False),
        sa.Column("challenger_version", sa.Text(), nullable=False),
        sa.Column("mode", sa.Text(), nullable=False),
        sa.Column("challenger_percent", sa.Integer(), nullable=True),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("min_detectable_effect", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=True),
        sa.Column("alpha", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=True),
        sa.Column("power", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=True),
        sa.Column("planned_per_arm", sa.Integer(), nullable=True),
        sa.Column("guardrails_json", sa.Text(), nullable=True),
        sa.Column("gateway_ids_json", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("started_at", sa.Text(), nullable=True),
        sa.Column("started_by", sa.Text(), nullable=True),
        sa.Column("stopped_at", sa.Text(), nullable=True),
        sa.Column("stopped_by", sa.Text(), nullable=True),
        sa.Column("concluded_at", sa.Text(), nullable=True),
        sa.Column("concluded_by", sa.Text(), nullable=True),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("experiment_id"),
    )
    op.create_index(
        "experiments_one_running",
        "experiments",
        ["model_name"],
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_index("idx_experiments_status_created_at", "experiments", ["status", "created_at"], unique=False)

    op.create_table(
        "feature_sets",
        sa.Column("version", sa.Text(), nullable=True),
        sa.Column("names_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "features",
        sa.Column("feature_set_version", sa.Text(), nullable=False),
        sa.Column("window_end", sa.Text(), nullable=False),
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("values_f32", sa.LargeBinary(), nullable=False),
        sa.Column("msg_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("feature_set_version", "window_end", "device_id"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "feedback",
        sa.Column("feedback_id", sa.Text(), nullable=True),
        sa.Column("prediction_id", sa.Text(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("comments", sa.Text(), nullable=True),
        sa.Column("submitted_by", sa.Text(), nullable=True),
        sa.Column("submitted_at", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("feedback_id"),
    )
    op.create_index(
        "idx_feedback_prediction_id_submitted_at", "feedback", ["prediction_id", "submitted_at"], unique=False
    )
    op.create_index("idx_feedback_submitted_at", "feedback", ["submitted_at"], unique=False)

    op.create_table(
        "gateway_events",
        sa.Column("msg_id", sa.Text(), nullable=True),
        sa.Column("gateway_id", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=True),
        sa.Column("model_name", sa.Text(), nullable=True),
        sa.Column("model_version", sa.Text(), nullable=True),
        sa.Column("director_sequence", sa.Integer(), nullable=True),
        sa.Column("rule", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.Text(), nullable=True),
        sa.Column("document_digest", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("msg_id"),
    )
    op.create_index("idx_gateway_events_gateway_id_sent_at", "gateway_events", ["gateway_id", "sent_at"], unique=False)

    op.create_table(
        "gateways",
        sa.Column("gateway_id", sa.Text(), nullable=True),
        sa.Column("first_seen", sa.Text(), nullable=True),
        sa.Column("last_seen", sa.Text(), nullable=True),
        sa.Column("online", sa.Integer(), nullable=True),
        sa.Column("agent_version", sa.Text(), nullable=True),
        sa.Column("director_sequence", sa.Integer(), nullable=True),
        sa.Column("status_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("gateway_id"),
    )
    op.create_table(
        "ingest_probe",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=True),
        sa.Column("written_at", sa.Text(), nullable=False),
        sa.CheckConstraint("id = 1"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "ingest_sessions",
        sa.Column("client_id", sa.Text(), nullable=True),
        sa.Column("topic_filter", sa.Text(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("lapses_at", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("client_id"),
    )
    op.create_index(
        "idx_ingest_sessions_topic_filter_lapses_at", "ingest_sessions", ["topic_filter", "lapses_at"], unique=False
    )

    op.create_table(
        "ingested_messages",
        sa.Column("msg_id", sa.Text(), nullable=True),
        sa.Column("channel", sa.Text(), nullable=True),
        sa.Column("gateway_id", sa.Text(), nullable=True),
        sa.Column("received_at", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("msg_id"),
    )
    op.create_table(
        "metric_points",
        sa.Column("id", sa.Integer(), nullable=True),
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("prediction_type", sa.Text(), nullable=False),
        sa.Column("model_version", sa.Text(), nullable=False),
        sa.Column("device_type", sa.Text(), nullable=False),
        sa.Column("arm", sa.Text(), nullable=False),
        sa.Column("window", sa.Text(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("value", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=True),
        sa.Column("at", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("idx_metric_points_prediction_type_at", "metric_points", ["prediction_type", "at"], unique=False)
    op.create_index(
        "metric_points_series",
        "metric_points",
        ["model_name", "metric", "model_version", "device_type", "arm", "window", "at"],
        unique=True,
    )

    op.create_table(
        "model_evaluations",
        sa.Column("id", sa.Integer(), nullable=True),
        sa.Column("model_name", sa.Text(), nullable=True),
        sa.Column("model_version", sa.Text(), nullable=True),
        sa.Column("dataset_id", sa.Text(), nullable=True),
        sa.Column("score_name", sa.Text(), nullable=True),
        sa.Column("score", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("metrics_json", sa.Text(), nullable=True),
        sa.Column("evaluated_at", sa.Text(), nullable=True),
        sa.Column("evaluated_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "idx_model_evaluations_model_name_model_version_id",
        "model_evaluations",
        ["model_name", "model_version", "id"],
        unique=False,
    )

    op.create_table(
        "model_history",
        sa.Column("id", sa.Integer(), nullable=True),
        sa.Column("at", sa.Text(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("model_name", sa.Text(), nullable=True),
        sa.Column("device_type", sa.Text(), nullable=True),
        sa.Column("from_version", sa.Text(), nullable=True),
        sa.Column("to_version", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("override", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "idx_model_history_model_name_device_type_id",
        "model_history",
        ["model_name", "device_type", "id"],
        unique=False,
    )

    op.create_table(
        "model_references",
        sa.Column("model_name", sa.Text(), nullable=True),
        sa.Column("model_version", sa.Text(), nullable=True),
        sa.Column("reference_json", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("model_name", "model_version"),
    )
    op.create_table(
        "models",
        sa.Column("model_name", sa.Text(), nullable=True),
        sa.Column("model_version", sa.Text(), nullable=True),
        sa.Column("prediction_type", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Text(), nullable=True),
        sa.Column("feature_set_version", sa.Text(), nullable=True),
        sa.Column("device_types_json", sa.Text(), nullable=True),
        sa.Column("metrics_json", sa.Text(), nullable=True),
        sa.Column("lineage_json", sa.Text(), nullable=True),
        sa.Column("release_target", sa.Text(), nullable=True),
        sa.Column("model_target", sa.Text(), nullable=True),
        sa.Column("model_sha256", sa.Text(), nullable=True),
        sa.Column("production_device_type", sa.Text(), nullable=True),
        sa.Column("evaluation_passed", sa.Integer(), nullable=True),
        sa.Column("evaluation_json", sa.Text(), nullable=True),
        sa.Column("targets_version", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("model_name", "model_version"),
    )
    op.create_index(
        "models_one_production",
        "models",
        ["model_name", "production_device_type"],
        unique=True,
        sqlite_where=sa.text("status = 'production'"),
        postgresql_where=sa.text("status = 'production'"),
    )

    op.create_table(
        "outcomes",
        sa.Column("outcome_id", sa.Text(), nullable=True),
        sa.Column("device_id", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("observed_at", sa.Text(), nullable=True),
        sa.Column("prediction_id", sa.Text(), nullable=True),
        sa.Column("component", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("value", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=True),
        sa.Column("technician", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("gateway_id", sa.Text(), nullable=True),
        sa.Column("received_at", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("outcome_id"),
    )
    op.create_index("idx_outcomes_device_id_observed_at", "outcomes", ["device_id", "observed_at"], unique=False)
    op.create_index("idx_outcomes_prediction_id", "outcomes", ["prediction_id"], unique=False)
    op.create_index("idx_outcomes_received_at", "outcomes", ["received_at"], unique=False)

    op.create_table(
        "predictions",
        sa.Column("prediction_id", sa.Text(), nullable=True),
        sa.Column("arm", sa.Text(), nullable=True),
        sa.Column("device_id", sa.Text(), nullable=True),
        sa.Column("device_type", sa.Text(), nullable=True),
        sa.Column("prediction_type", sa.Text(), nullable=True),
        sa.Column("model_name", sa.Text(), nullable=True),
        sa.Column("model_version", sa.Text(), nullable=True),
        sa.Column("outputs_json", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=True),
        sa.Column("made_at", sa.Text(), nullable=True),
        sa.Column("feature_window_end", sa.Text(), nullable=True),
        sa.Column("gateway_id", sa.Text(), nullable=True),
        sa.Column("msg_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("prediction_id", "arm"),
    )
    op.create_index(
        "idx_predictions_device_id_prediction_type_made_at",
        "predictions",
        ["device_id", "prediction_type", "made_at"],
        unique=False,
    )

    op.create_table(
        "retraining_decisions",
        sa.Column("id", sa.Integer(), nullable=True),
        sa.Column("at", sa.Text(), nullable=True),
        sa.Column("model_name", sa.Text(), nullable=True),
        sa.Column("trigger", sa.Text(), nullable=True),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("evidence_json", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("model_version", sa.Text(), nullable=True),
        sa.Column("experiment_id", sa.Text(), nullable=True),
        sa.Column("rollout_id", sa.Integer(), nullable=True),
        sa.Column("open", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "idx_retraining_decisions_model_name_trigger_id",
        "retraining_decisions",
        ["model_name", "trigger", "id"],
        unique=False,
    )
    op.create_index("idx_retraining_decisions_open", "retraining_decisions", ["open"], unique=False)

    op.create_table(
        "retraining_policies",
        sa.Column("model_name", sa.Text(), nullable=True),
        sa.Column("policy_json", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("model_name"),
    )
    op.create_table(
        "rollout_decisions",
        sa.Column("id", sa.Integer(), nullable=True),
        sa.Column("rollout_id", sa.Integer(), nullable=True),
        sa.Column("stage_index", sa.Integer(), nullable=True),
        sa.Column("at", sa.Text(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("details_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("idx_rollout_decisions_rollout_id_id", "rollout_decisions", ["rollout_id", "id"], unique=False)

    op.create_table(
        "rollout_gateways",
        sa.Column("rollout_id", sa.Integer(), nullable=True),
        sa.Column("gateway_id", sa.Text(), nullable=True),
        sa.Column("stage_index", sa.Integer(), nullable=True),
        sa.Column("previous_version", sa.Text(), nullable=True),
        sa.Column("directed_sequence", sa.Integer(), nullable=True),
        sa.Column("rollback_sequence", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("rollout_id", "gateway_id"),
    )
    op.create_table(
        "rollout_stages",
        sa.Column("rollout_id", sa.Integer(), nullable=True),
        sa.Column("stage_index", sa.Integer(), nullable=True),
        sa.Column("percent", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=True),
        sa.Column("max_failure_share", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=True),
        sa.Column("deadline_s", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("started_at", sa.Text(), nullable=True),
        sa.Column("deadline_at", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("rollout_id", "stage_index"),
    )
    op.create_table(
        "rollouts",
        sa.Column("rollout_id", sa.Integer(), nullable=True),
        sa.Column("model_name", sa.Text(), nullable=True),
        sa.Column("version", sa.Text(), nullable=True),
        sa.Column("device_type", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("plan_json", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.Text(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("rollout_id"),
    )
    op.create_index("idx_rollouts_status_rollout_id", "rollouts", ["status", "rollout_id"], unique=False)
    op.create_index(
        "rollouts_one_live",
        "rollouts",
        ["model_name", "device_type"],
        unique=True,
        sqlite_where=sa.text("status IN ('running', 'halted')"),
        postgresql_where=sa.text("status IN ('running', 'halted')"),
    )

    op.create_table(
        "schema_migrations",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=True),
        sa.Column("applied_at", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "security_events",
        sa.Column("gateway_id", sa.Text(), nullable=False),
        sa.Column("document_digest", sa.Text(), nullable=False),
        sa.Column("issued_to", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("director_sequence", sa.Integer(), nullable=True),
        sa.Column("first_seen_at", sa.Text(), nullable=False),
        sa.Column("last_seen_at", sa.Text(), nullable=False),
        sa.Column("sightings", sa.Integer(), nullable=False),
        sa.Column("first_msg_id", sa.Text(), nullable=False),
        sa.Column("alerted_at", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("gateway_id", "document_digest"),
    )
    op.create_index("security_events_last_seen", "security_events", ["last_seen_at"], unique=False)
    op.create_index(
        "security_events_unalerted",
        "security_events",
        ["first_seen_at"],
        unique=False,
        sqlite_where=sa.text("alerted_at IS NULL"),
        postgresql_where=sa.text("alerted_at IS NULL"),
    )

    op.create_table(
        "training_run_logs",
        sa.Column("id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("at", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("idx_training_run_logs_run_id_id", "training_run_logs", ["run_id", "id"], unique=False)

    op.create_table(
        "training_runs",
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("model_name", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.Text(), nullable=True),
        sa.Column("requested_at", sa.Text(), nullable=True),
        sa.Column("schedule_id", sa.Integer(), nullable=True),
        sa.Column("start_date", sa.Text(), nullable=True),
        sa.Column("end_date", sa.Text(), nullable=True),
        sa.Column("options_json", sa.Text(), nullable=True),
        sa.Column("started_at", sa.Text(), nullable=True),
        sa.Column("worker", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.Text(), nullable=True),
        sa.Column("stage", sa.Text(), nullable=True),
        sa.Column("progress", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=True),
        sa.Column("dataset_id", sa.Text(), nullable=True),
        sa.Column("model_version", sa.Text(), nullable=True),
        sa.Column("result_json", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index(
        "idx_training_runs_model_name_requested_at", "training_runs", ["model_name", "requested_at"], unique=False
    )
    op.create_index("idx_training_runs_status_requested_at", "training_runs", ["status", "requested_at"], unique=False)

    op.create_table(
        "training_schedules",
        sa.Column("schedule_id", sa.Integer(), nullable=True),
        sa.Column("model_name", sa.Text(), nullable=True),
        sa.Column("schedule", sa.Text(), nullable=True),
        sa.Column("cron", sa.Text(), nullable=True),
        sa.Column("window_days", sa.Integer(), nullable=True),
        sa.Column("options_json", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Text(), nullable=True),
        sa.Column("next_run_at", sa.Text(), nullable=True),
        sa.Column("last_run_at", sa.Text(), nullable=True),
        sa.Column("last_run_id", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("schedule_id"),
    )

    op.create_index(
        "models_numeric_version",
        "models",
        ["model_name", sa.cast(sa.column("model_version"), sa.Integer().with_variant(sa.BigInteger(), "postgresql"))],
        sqlite_where=sa.text("model_version != '' AND model_version NOT GLOB '*[^0-9]*'"),
        postgresql_where=sa.text("model_version ~ '^[0-9]{1,18}$'"),
    )
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_triggers()
    else:
        _postgresql_triggers()
    applied_at = iso(datetime.now(UTC))
    op.bulk_insert(
        sa.table("schema_migrations", sa.column("version", sa.Integer), sa.column("applied_at", sa.Text)),
        [{"version": version, "applied_at": applied_at} for version, _ in MIGRATIONS],
    )


def _sqlite_triggers() -> None:
    for table, message in APPEND_ONLY.items():
        for verb in ("UPDATE", "DELETE"):
            op.execute(append_only_trigger(table, verb, message))
    op.execute(UNISSUED_DOCUMENT_TRIGGER)


def _postgresql_triggers() -> None:
    op.execute(
        "CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$"
    )
    for table, message in APPEND_ONLY.items():
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION refuse_change('{message}')"
            )
    for statement in POSTGRESQL_UNISSUED_DOCUMENT:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the baseline is not undone: drop the database (or its schema) instead")
