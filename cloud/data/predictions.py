"""Predictions from the gateways, what actually happened (outcomes) and users' ratings (feedback).

On PostgreSQL ``predictions`` is partitioned by day of ``made_at`` (revision 0006, ``cloud.data.partitions``); its
primary key there is (prediction_id, arm, made_at), as a partitioned table's key must hold the partition key: a
prediction sent again carries its own ``made_at``, so it is still ignored as a duplicate.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Index,
    Integer,
    Row,
    RowMapping,
    Table,
    Text,
    and_,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.sql.expression import TableClause

from cloud.data import partitions
from cloud.data.bulk import BulkInsert
from cloud.data.fleet import before_cursor
from cloud.data.metadata import FLOAT, epoch_ms, json_number, metadata, upsert

predictions = Table(
    "predictions",
    metadata,
    Column("prediction_id", Text, primary_key=True, nullable=True),
    Column("arm", Text, primary_key=True, nullable=True),
    Column("device_id", Text),
    Column("device_type", Text),
    Column("prediction_type", Text),
    Column("model_name", Text),
    Column("model_version", Text),
    Column("outputs_json", Text),
    Column("latency_ms", FLOAT),
    Column("made_at", Text),
    Column("feature_window_end", Text),
    Column("gateway_id", Text),
    Column("msg_id", Text),
    Index("idx_predictions_device_id_prediction_type_made_at", "device_id", "prediction_type", "made_at"),
)


outcomes = Table(
    "outcomes",
    metadata,
    Column("outcome_id", Text, primary_key=True, nullable=True),
    Column("device_id", Text),
    Column("source", Text),
    Column("observed_at", Text),
    Column("prediction_id", Text),
    Column("component", Text),
    Column("result", Text),
    Column("value", FLOAT),
    Column("technician", Text),
    Column("notes", Text),
    Column("gateway_id", Text),
    Column("received_at", Text),
    Index("idx_outcomes_device_id_observed_at", "device_id", "observed_at"),
    Index("idx_outcomes_prediction_id", "prediction_id"),
    Index("idx_outcomes_received_at", "received_at"),
    Index("idx_outcomes_gateway_id_observed_at", "gateway_id", "observed_at"),
)


feedback = Table(
    "feedback",
    metadata,
    Column("feedback_id", Text, primary_key=True, nullable=True),
    Column("prediction_id", Text),
    Column("rating", Integer),
    Column("comments", Text),
    Column("submitted_by", Text),
    Column("submitted_at", Text),
    Index("idx_feedback_prediction_id_submitted_at", "prediction_id", "submitted_at"),
    Index("idx_feedback_submitted_at", "submitted_at"),
)


# ---- predictions ---------------------------------------------------------------------------------------------


def find_predictions(
    connection: Connection,
    *,
    prediction_id: str | None = None,
    device_id: str | None = None,
    model_name: str | None = None,
    prediction_type: str | None = None,
    arms: Sequence[str] | None = None,
    since: str | None = None,
    before: tuple[str, str] | None = None,
    limit: int | None = 20,
) -> list[RowMapping]:
    """Rows matching every filter given (None: any; ``since``: made at or after), newest first, at most ``limit``;
    ``before`` (made at, prediction id) of the last row of a page gives the next page."""
    query = select(predictions).order_by(predictions.c.made_at.desc(), predictions.c.prediction_id, predictions.c.arm)
    for column, value in (
        (predictions.c.prediction_id, prediction_id),
        (predictions.c.device_id, device_id),
        (predictions.c.model_name, model_name),
        (predictions.c.prediction_type, prediction_type),
    ):
        if value is not None:
            query = query.where(column == value)
    if arms:
        query = query.where(predictions.c.arm.in_(arms))
    if since is not None:
        query = query.where(predictions.c.made_at >= since)
    if before is not None:
        made_at, prediction_id = before
        p = predictions.c
        query = query.where(or_(p.made_at < made_at, and_(p.made_at == made_at, p.prediction_id > prediction_id)))
    return list(connection.execute(query.limit(limit)).mappings())


def first_arm(connection: Connection, prediction_id: str) -> RowMapping | None:
    """The prediction's row of its first arm by name (one id has a row per arm that made it); None if unknown."""
    query = select(predictions).where(predictions.c.prediction_id == prediction_id).order_by(predictions.c.arm)
    return connection.execute(query.limit(1)).mappings().first()


def prediction_type_of_model(connection: Connection, model_name: str) -> str | None:
    """The prediction type of any stored prediction of the model; None if it has none."""
    query = select(predictions.c.prediction_type).where(predictions.c.model_name == model_name).limit(1)
    return connection.execute(query).scalar()


def models_made_in(connection: Connection, start: str, end: str) -> list[str]:
    """Names of the models with a prediction made in [start, end), by name."""
    query = (
        select(predictions.c.model_name)
        .distinct()
        .where(predictions.c.made_at >= start, predictions.c.made_at < end)
        .order_by(predictions.c.model_name)
    )
    return list(connection.execute(query).scalars())


def _made_by(model_name: str, since: str, until: str | None) -> ColumnElement:
    """The model's predictions made in [since, until] (no end without ``until``)."""
    made = and_(predictions.c.model_name == model_name, predictions.c.made_at >= since)
    return made if until is None else and_(made, predictions.c.made_at <= until)


def _arm(labels: Sequence[str], version: str) -> ColumnElement:
    return and_(predictions.c.arm.in_(labels), predictions.c.model_version == version)


def batches(
    connection: Connection, model_name: str, version: str, arms: Sequence[str], since: str, until: str | None
) -> list[Row]:
    """(latency in ms, predictions) of each run of the version on a gateway (its predictions sharing gateway and
    ``made_at``) on ``arms``, made in [since, until] (no end without ``until``)."""
    query = (
        select(func.max(predictions.c.latency_ms), func.count())
        .where(_made_by(model_name, since, until), _arm(arms, version))
        .group_by(predictions.c.gateway_id, predictions.c.made_at)
    )
    return list(connection.execute(query))


def experiment_outcomes(
    connection: Connection,
    model_name: str,
    arms: Iterable[tuple[Sequence[str], str]],
    since: str,
    until: str | None,
) -> list[Row]:
    """(prediction_id, arm, outputs_json, component, result, value) of each outcome of a prediction made in
    [since, until] on one of ``arms`` (each: its arm labels and version), in the order observed."""
    query = (
        select(
            predictions.c.prediction_id,
            predictions.c.arm,
            predictions.c.outputs_json,
            outcomes.c.component,
            outcomes.c.result,
            outcomes.c.value,
        )
        .join(outcomes, outcomes.c.prediction_id == predictions.c.prediction_id)
        .where(_made_by(model_name, since, until), or_(*(_arm(labels, version) for labels, version in arms)))
        .order_by(outcomes.c.observed_at, outcomes.c.outcome_id)
    )
    return list(connection.execute(query))


def version_outcomes(
    connection: Connection, model_name: str, model_version: str, start: str, end: str, device_type: str | None
) -> list[Row]:
    """(prediction_id, outputs_json, component, result, value) of the outcomes observed in [start, end) on the
    version's predictions (of one device type, if given)."""
    query = (
        select(
            outcomes.c.prediction_id,
            predictions.c.outputs_json,
            outcomes.c.component,
            outcomes.c.result,
            outcomes.c.value,
        )
        .join(predictions, predictions.c.prediction_id == outcomes.c.prediction_id)
        .where(
            outcomes.c.observed_at >= start,
            outcomes.c.observed_at < end,
            predictions.c.model_name == model_name,
            predictions.c.model_version == model_version,
        )
    )
    if device_type is not None:
        query = query.where(predictions.c.device_type == device_type)
    return list(connection.execute(query))


# ---- the performance monitor's pulls: one set-based query each, times as epoch milliseconds -------------------

#: what each pull starts with, so the monitor groups every pull's rows the same way
_CELL = (predictions.c.model_version, predictions.c.device_type, predictions.c.arm, epoch_ms(predictions.c.made_at))


def _made_in(model_name: str, start: str, end: str) -> ColumnElement:
    return and_(predictions.c.model_name == model_name, predictions.c.made_at >= start, predictions.c.made_at < end)


def made_in_period(
    connection: Connection, model_name: str, start: str, end: str, outputs: Sequence[str] = ()
) -> list[Row]:
    """(model_version, device_type, arm, made_at ms, device_id, latency_ms, then each of ``outputs`` read from
    ``outputs_json``) of the model's predictions made in [start, end)."""
    columns = [json_number(predictions.c.outputs_json, name) for name in outputs]
    query = select(*_CELL, predictions.c.device_id, predictions.c.latency_ms, *columns)
    return connection.execute(query.where(_made_in(model_name, start, end))).all()


def findings_observed(connection: Connection, after: str, until: str) -> list[Row]:
    """(device_id, observed_at ms, component, result) of every outcome naming a component and its result,
    observed in (after, until]."""
    query = select(outcomes.c.device_id, epoch_ms(outcomes.c.observed_at), outcomes.c.component, outcomes.c.result)
    query = query.where(
        outcomes.c.component.is_not(None),
        outcomes.c.result.is_not(None),
        outcomes.c.observed_at > after,
        outcomes.c.observed_at <= until,
    )
    return connection.execute(query).all()


def measured_usage(
    connection: Connection, model_name: str, start: str, end: str, predicted: Sequence[str]
) -> list[Row]:
    """(model_version, device_type, arm, made_at ms, predicted, measured) of each sensor outcome with a value on
    the model's predictions made in [start, end); predicted is the first of the ``predicted`` output keys present."""
    query = (
        select(
            *_CELL,
            func.coalesce(*(json_number(predictions.c.outputs_json, key) for key in predicted)),
            outcomes.c.value,
        )
        .select_from(outcomes)
        .join(predictions, predictions.c.prediction_id == outcomes.c.prediction_id)
        .where(outcomes.c.source == "sensor", outcomes.c.value.is_not(None), _made_in(model_name, start, end))
    )
    return connection.execute(query).all()


def served_ratings(connection: Connection, model_name: str, start: str, end: str) -> list[Row]:
    """(model_version, device_type, arm, made_at ms, rating) of each 1–5 rating of the model's served (not shadow)
    predictions made in [start, end)."""
    query = (
        select(*_CELL, feedback.c.rating)
        .select_from(feedback)
        .join(predictions, predictions.c.prediction_id == feedback.c.prediction_id)
        .where(feedback.c.rating.between(1, 5), predictions.c.arm != "shadow", _made_in(model_name, start, end))
    )
    return connection.execute(query).all()


# ---- outcomes and feedback -----------------------------------------------------------------------------------


def add_outcome_once(connection: Connection, row: Mapping[str, Any]) -> bool:
    """Store the outcome unless its id is stored already; whether this call stored it."""
    query = upsert(connection, outcomes).values(dict(row)).on_conflict_do_nothing()
    return connection.execute(query.returning(outcomes.c.outcome_id)).first() is not None


def prediction_of_outcome(connection: Connection, outcome_id: str) -> str | None:
    """The prediction an outcome is about; None for an unknown outcome id."""
    query = select(outcomes.c.prediction_id).where(outcomes.c.outcome_id == outcome_id)
    return connection.execute(query).scalar()


def outcomes_of(connection: Connection, prediction_id: str) -> list[RowMapping]:
    """The prediction's outcomes, oldest observation first."""
    query = select(outcomes).where(outcomes.c.prediction_id == prediction_id)
    return list(connection.execute(query.order_by(outcomes.c.observed_at, outcomes.c.outcome_id)).mappings())


def add_feedback_once(connection: Connection, row: Mapping[str, Any]) -> bool:
    """Store the rating unless its id is stored already; whether this call stored it."""
    query = upsert(connection, feedback).values(dict(row)).on_conflict_do_nothing()
    return connection.execute(query.returning(feedback.c.feedback_id)).first() is not None


def feedback_of(connection: Connection, prediction_id: str) -> list[RowMapping]:
    """The prediction's ratings, oldest first."""
    query = select(feedback).where(feedback.c.prediction_id == prediction_id)
    return list(connection.execute(query.order_by(feedback.c.submitted_at, feedback.c.feedback_id)).mappings())


# ---- ingest's and the feature store's writes, the feature store's labels -----------------------------------------

#: a prediction as ``add_predictions`` takes it
PREDICTION = (
    "prediction_id",
    "arm",
    "device_id",
    "device_type",
    "prediction_type",
    "model_name",
    "model_version",
    "outputs_json",
    "latency_ms",
    "made_at",
    "feature_window_end",
    "gateway_id",
    "msg_id",
)
_NEW_PREDICTIONS = BulkInsert(lambda insert, _: insert(predictions).on_conflict_do_nothing(), PREDICTION)
#: an outcome as ``add_outcomes`` takes it
OUTCOME = (
    "outcome_id",
    "device_id",
    "source",
    "observed_at",
    "prediction_id",
    "component",
    "result",
    "value",
    "technician",
    "notes",
    "gateway_id",
    "received_at",
)
_NEW_OUTCOMES = BulkInsert(lambda insert, _: insert(outcomes).on_conflict_do_nothing(), OUTCOME)


def add_predictions(connection: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Store predictions (rows in ``PREDICTION`` order), keeping any whose (prediction id, arm) is stored."""
    _NEW_PREDICTIONS.write(connection, rows)


def add_outcomes(connection: Connection, rows: Sequence[Sequence[Any]]) -> int:
    """Store outcomes (rows in ``OUTCOME`` order), keeping any whose id is stored; how many were new."""
    return _NEW_OUTCOMES.write(connection, rows)


def failures_known(connection: Connection, results: Collection[str], start: str, as_of: str) -> list[Row]:
    """(device_id, component, observed_at) of outcomes naming a component with one of ``results``, observed in
    [start, as_of] and received by ``as_of`` (an outcome without a receive time: when it was observed). Ordered by
    device, time and component, so two failures of a heater at one time label the same way on either database."""
    query = (
        select(outcomes.c.device_id, outcomes.c.component, outcomes.c.observed_at)
        .where(
            outcomes.c.component.is_not(None),
            outcomes.c.result.in_(sorted(results)),
            outcomes.c.observed_at >= start,
            outcomes.c.observed_at <= as_of,
            func.coalesce(outcomes.c.received_at, outcomes.c.observed_at) <= as_of,
        )
        .order_by(outcomes.c.device_id, outcomes.c.observed_at, outcomes.c.component)
    )
    return connection.execute(query).all()


def measured_by_window(connection: Connection, source: str, start: str, end: str, as_of: str) -> list[Row]:
    """(device_id, feature_window_end, mean value) of outcomes from ``source`` with a value, observed and received
    by ``as_of``, on predictions made from feature windows ending in [start, end): one row per device and window
    (its predictions' arms measure the same thing, so their values are averaged)."""
    made = (
        select(predictions.c.prediction_id, predictions.c.device_id, predictions.c.feature_window_end)
        .where(predictions.c.feature_window_end >= start, predictions.c.feature_window_end < end)
        .distinct()
        .subquery()
    )
    query = (
        select(made.c.device_id, made.c.feature_window_end, func.avg(outcomes.c.value))
        .select_from(outcomes)
        .join(made, made.c.prediction_id == outcomes.c.prediction_id)
        .where(
            outcomes.c.source == source,
            outcomes.c.value.is_not(None),
            outcomes.c.observed_at <= as_of,
            func.coalesce(outcomes.c.received_at, outcomes.c.observed_at) <= as_of,
        )
        .group_by(made.c.device_id, made.c.feature_window_end)
    )
    return connection.execute(query).all()


def made_span(connection: Connection, model_name: str | None = None) -> tuple[str | None, str | None]:
    """The first and last time a prediction was made (of ``model_name`` alone if given)."""
    query = select(func.min(predictions.c.made_at), func.max(predictions.c.made_at))
    if model_name:
        query = query.where(predictions.c.model_name == model_name)
    first, last = connection.execute(query).one()
    return first, last


def counts_by_version(connection: Connection) -> list[Row]:
    """(model name, model version, predictions stored) for every version that has any."""
    p = predictions.c
    return list(
        connection.execute(select(p.model_name, p.model_version, func.count()).group_by(p.model_name, p.model_version))
    )


def counts_by_gateway(connection: Connection) -> dict[str, int]:
    """gateway id → predictions stored from it."""
    p = predictions.c
    return dict(connection.execute(select(p.gateway_id, func.count()).group_by(p.gateway_id)).all())


def newest_device_predicted(connection: Connection, prediction_type: str) -> str | None:
    """The device with the newest prediction of this type."""
    p = predictions.c
    query = select(p.device_id).where(p.prediction_type == prediction_type).order_by(p.made_at.desc()).limit(1)
    return connection.execute(query).scalar()


# ---- automated retraining's evidence ----------------------------------------------------------------------------


def labels_received(connection: Connection, after: str, until: str, *, sensor_values: bool) -> int:
    """Outcomes received in (after, until] that label a row: a sensor's value (``sensor_values``), else a component
    with its result."""
    o = outcomes.c
    label = (
        and_(o.source == "sensor", o.value.is_not(None))
        if sensor_values
        else and_(o.component.is_not(None), o.result.is_not(None))
    )
    query = select(func.count()).select_from(outcomes).where(o.received_at > after, o.received_at <= until, label)
    return connection.execute(query).scalar_one()


def rating_counts(connection: Connection, model_name: str, start: str, end: str, low: int) -> tuple[int, int]:
    """(ratings of at most ``low``, all ratings) submitted in [start, end) about the model's predictions."""
    f = feedback.c
    of_model = select(predictions.c.prediction_id).where(predictions.c.model_name == model_name)
    query = select(func.count().filter(f.rating <= low), func.count()).where(
        f.submitted_at >= start, f.submitted_at < end, f.prediction_id.in_(of_model)
    )
    lows, total = connection.execute(query).one()
    return int(lows), int(total)


def technician_findings(connection: Connection, model_name: str, start: str, end: str) -> list[Row]:
    """(component, result, outputs_json, model_version) of each technician's finding received in [start, end) about
    one of the model's champion predictions (the one the finding is linked to)."""
    o, p = outcomes.c, predictions.c
    query = (
        select(o.component, o.result, p.outputs_json, p.model_version)
        .select_from(outcomes)
        .join(predictions, and_(p.prediction_id == o.prediction_id, p.arm == "champion"))
        .where(
            o.source == "technician",
            o.component.is_not(None),
            o.result.is_not(None),
            p.model_name == model_name,
            o.received_at >= start,
            o.received_at < end,
        )
    )
    return connection.execute(query).all()


# ---- a gateway's timeline (the Gateway page) --------------------------------------------------------------------


def outcomes_before(
    connection: Connection, gateway_id: str, cursor: tuple[str, str | None] | None, limit: int
) -> list[RowMapping]:
    """Outcomes of the gateway's devices observed before ``cursor`` (``observed_at``, ``outcome_id``), newest first,
    at most ``limit``: one range of the (gateway_id, observed_at) index."""
    o = outcomes.c
    query = (
        select(outcomes)
        .where(o.gateway_id == gateway_id, before_cursor(o.observed_at, o.outcome_id, cursor))
        .order_by(o.observed_at.desc(), o.outcome_id.desc())
        .limit(limit)
    )
    return list(connection.execute(query).mappings())


def label_coverage(connection: Connection, model_name: str, start: str, end: str) -> list[Row]:
    """(model_version, device_type, arm, predictions, labelled, mean and max label delay in ms) of the model's
    predictions made in [start, end): labelled ones have an outcome linked to them, and a label's delay is its
    prediction's first linked outcome's ``received_at`` less the prediction's ``made_at`` (one index lookup each)."""
    first = (
        select(func.min(outcomes.c.received_at))
        .where(outcomes.c.prediction_id == predictions.c.prediction_id)
        .scalar_subquery()
    )
    p = predictions.c
    made = select(p.model_version, p.device_type, p.arm, p.made_at, first.label("first_at"))
    made = made.where(_made_in(model_name, start, end)).subquery()
    delay = epoch_ms(made.c.first_at) - epoch_ms(made.c.made_at)
    cell = (made.c.model_version, made.c.device_type, made.c.arm)
    query = select(*cell, func.count(), func.count(made.c.first_at), func.avg(delay), func.max(delay))
    return connection.execute(query.group_by(*cell).order_by(*cell)).all()


# ---- day partitions and retention ------------------------------------------------------------------------------


def ensure_partitions(connection: Connection, days: Iterable[date]) -> list[str]:
    """Make the day partitions of ``days`` (of ``made_at``) that are missing, on PostgreSQL; the names made."""
    return partitions.ensure_days(connection, predictions.name, "made_at", days)


def partitions_before(connection: Connection, cutoff: date) -> list[date]:
    """The days of the day partitions wholly before ``cutoff``, oldest first (none on SQLite)."""
    return sorted(day for day in partitions.day_partitions(connection, predictions.name) if day < cutoff)


def _referenced(rows: Table | TableClause) -> ColumnElement:
    """Whether an outcome or a rating names the prediction: such rows are kept, so what was observed about a
    prediction keeps its outputs (monitoring, experiments and training labels join them)."""
    return or_(
        exists().where(outcomes.c.prediction_id == rows.c.prediction_id),
        exists().where(feedback.c.prediction_id == rows.c.prediction_id),
    )


def drop_partition(connection: Connection, day: date) -> tuple[int, int]:
    """Detach and drop the day's partition, its predictions that outcomes or ratings name moved to the default
    partition first; (rows it held, rows kept)."""
    return partitions.drop_day(connection, predictions, day, _referenced)


_KEY = (predictions.c.prediction_id, predictions.c.arm)


def _older(cutoff: date) -> ColumnElement:
    return and_(predictions.c.made_at < cutoff.isoformat(), ~_referenced(predictions))


def count_older(connection: Connection, cutoff: date) -> tuple[int, int]:
    """(predictions made before ``cutoff`` that nothing names, those an outcome or a rating names)."""
    made = predictions.c.made_at < cutoff.isoformat()
    query = select(func.count().filter(~_referenced(predictions)), func.count()).where(made)
    unnamed, every = connection.execute(query).one()
    return unnamed, every - unnamed


def older_keys(
    connection: Connection, cutoff: date, after: tuple[Any, ...] | None, limit: int
) -> list[tuple[Any, ...]]:
    """The keys of the next ``limit`` predictions made before ``cutoff`` that no outcome or rating names, in key
    order after ``after`` (``cloud.data.partitions.keys_after``)."""
    return partitions.keys_after(connection, _KEY, _older(cutoff), after, limit)


def delete_older(connection: Connection, cutoff: date, keys: Sequence[tuple[Any, ...]]) -> int:
    """Delete the rows of ``keys`` (from ``older_keys``) that are still to go; how many."""
    return partitions.delete_keys(connection, predictions, _KEY, _older(cutoff), keys)
