"""FeatureStore: one device's feature history, its latest values with their age, and training datasets.

It reads and writes the ``features`` table the ingest worker fills (packed float32 per feature-set version,
``cloud.ingest.feature_codec``). Training datasets are point-in-time correct (docs/architecture.md)
and labelled for one prediction type. ``component_failure``: a row at time t is labelled only from component
failures observed after t within the horizon and known by the dataset's ``as_of``; rows whose horizon had not
passed by then, with no failure seen, are censored and left out. ``anomaly``: every row, with those failure labels
where known and -1 where censored (they only judge the score). ``usage_pattern``: the litres a sensor outcome
measured for the prediction made from the row (its ``prediction_id`` names the device and window), known by
``as_of``; rows without one are left out.
Each dataset is recorded in ``datasets`` with the query that built it and a hash of its content, so a model's
lineage names the exact data and ``load_dataset`` can build it again and prove it unchanged.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

import numpy as np
import sqlite_utils
from sqlalchemy import Connection

from cloud.audit import AuditLog
from cloud.config import configured_actor
from cloud.data import features, fleet, predictions
from cloud.data.connections import connection_of, write_transaction
from cloud.errors import Invalid, NotFound, Refused
from cloud.ingest import feature_codec
from cloud.storage import from_iso, iso, utc_time
from cloud.training.labels import CLASSES, FailureTimes, failure_times, label_rows
from shared.features import FEATURE_NAMES, FEATURE_SET_VERSION
from shared.messages import FeedbackSource, OutcomeResult, PredictionType
from shared.topics import validate_id

DEFAULT_HORIZON = timedelta(days=14)
#: outcome results that label a component's failure
_FAILED = (OutcomeResult.FAILED.value, OutcomeResult.REPLACED.value)
#: ids of the outcomes a stored history's failures become: derived from device, component and time (idempotent)
_HISTORY_OUTCOMES = uuid.uuid5(uuid.NAMESPACE_URL, "iotsphere:history-failure")
#: windows visited per step when looking back for each feature's latest value
_LATEST_CHUNK = 1024
#: rows SQLite concatenates into one value per column when building a dataset (32 MB of 32 features)
_CHUNK_ROWS = 262_144
#: characters of a ``cloud.storage.iso`` timestamp
_ISO_WIDTH = len("2026-01-31T06:00:00.000000Z")
#: what the database joins a chunk's device ids with (``shared.topics.validate_id`` allows no space in an id)
_ID_SEPARATOR = ord(" ")


class UnknownDevice(NotFound, LookupError):
    """No feature row has been stored for this device."""


class UnknownDataset(NotFound, LookupError):
    """No dataset was recorded under this id."""


@dataclass(frozen=True)
class DeviceFeatures:
    """One device's feature rows in time order; a feature its row's feature set lacks is NaN."""

    device_id: str
    feature_names: list[str]
    window_ends: list[str]  # cloud.storage.iso text
    values: np.ndarray  # float32 (rows, features)


@dataclass(frozen=True)
class LatestValue:
    value: float
    window_end: str
    age_seconds: float  # how stale: as_of minus the window end the value came from


@dataclass(frozen=True)
class LatestFeatures:
    device_id: str
    as_of: str
    #: every feature the device has reported; None where it never had a value (always null)
    values: dict[str, LatestValue | None]


@dataclass(frozen=True)
class ObservedFailure:
    """A component failure a history observed: it labels the training rows within a horizon before it."""

    device_id: str
    component: str
    failed_at: datetime  # as a technician dates it: the visit that found it
    #: when the cloud learned of it (the work order synced); default: when it failed
    known_at: datetime | None = None
    #: failed, or replaced: found worn before it failed (it labels the rows before it alike)
    result: OutcomeResult = OutcomeResult.FAILED


@dataclass(frozen=True)
class DatasetRecord:
    dataset_id: str
    query: dict
    row_count: int
    content_hash: str
    created_at: str


@dataclass(frozen=True)
class TrainingDataset:
    """Labelled rows in (window_end, device_id) order.

    ``labels``: for component_failure and anomaly, int64 indexes into ``classes`` (0: no failure; -1, anomaly
    only: not yet known); for usage_pattern, float64 litres drawn in the 24 h after the row.
    """

    record: DatasetRecord
    feature_names: list[str]
    device_ids: np.ndarray  # str
    window_ends: np.ndarray  # datetime64[s]
    values: np.ndarray  # float32 (rows, features)
    labels: np.ndarray
    classes: list[str]
    prediction_type: PredictionType = PredictionType.COMPONENT_FAILURE
    #: the failures known by ``as_of`` (``device`` holds device ids), for lead-time metrics
    failures: FailureTimes | None = None


class FeatureRows(NamedTuple):
    """A feature set's stored rows in (window_end, device_id) order, as columns: what a dataset is labelled from."""

    devices: np.ndarray  # str: the distinct device ids, sorted
    row_device: np.ndarray  # int64 per row: index into ``devices``
    window_ends: np.ndarray  # datetime64[s] per row
    values: np.ndarray  # float32 (rows, the feature set's features in stored order)


class _Failure(NamedTuple):
    """The shape ``cloud.training.labels.failure_times`` reads."""

    device_id: str
    component: str
    failed_at: datetime


def _bound(value: str | date | datetime | None, default: str) -> str:
    return iso(utc_time(value)) if value is not None else default


def content_hash(
    feature_names: list[str],
    devices: np.ndarray,
    row_device: np.ndarray,
    window_ends: np.ndarray,
    values: np.ndarray,
    labels: np.ndarray,
    prediction_type: PredictionType = PredictionType.COMPONENT_FAILURE,
) -> str:
    """sha256 of a dataset's content: same rows, values and labels give the same hash, whatever the query.

    Float labels (litres) are hashed as float64, class labels as int64; a component_failure dataset hashes as
    it did before datasets had a prediction type, so datasets recorded then still verify.
    """
    present = np.bincount(row_device, minlength=devices.size) > 0
    used, codes = np.flatnonzero(present), (np.cumsum(present) - 1)[row_device]  # np.unique's, without its sort
    digest = hashlib.sha256()
    header: dict = {"feature_names": feature_names, "classes": CLASSES}
    if prediction_type != PredictionType.COMPONENT_FAILURE:
        header["prediction_type"] = prediction_type.value
    digest.update(json.dumps(header).encode())
    digest.update("\n".join(devices[used].tolist()).encode())
    # arrays hash through their buffers: the bytes ``tobytes`` would copy out first
    digest.update(np.ascontiguousarray(codes, dtype=np.int64))
    digest.update(np.ascontiguousarray(window_ends.astype("datetime64[s]").astype(np.int64)))
    digest.update(np.ascontiguousarray(values, dtype=feature_codec.FLOAT32))
    digest.update(np.ascontiguousarray(labels, dtype=np.float64 if labels.dtype.kind == "f" else np.int64))
    return digest.hexdigest()


def _iso_times(times: Sequence[str | date | datetime] | np.ndarray) -> list[str]:
    """``cloud.storage.iso`` text of each time (numpy datetime64 in UTC converted at once)."""
    if isinstance(times, np.ndarray) and np.issubdtype(times.dtype, np.datetime64):
        return [f"{text}Z" for text in np.datetime_as_string(times.astype("datetime64[us]"), unit="us")]
    return [iso(utc_time(value, "window end")) for value in times]


def _parse_iso(text: np.ndarray) -> np.ndarray:
    """Fixed-width ``cloud.storage.iso`` byte strings → datetime64[us], in C (numpy wants them without the 'Z')."""
    bare = np.ascontiguousarray(text.view(np.uint8).reshape(-1, _ISO_WIDTH)[:, :-1])
    return bare.view(f"S{_ISO_WIDTH - 1}").ravel().astype("datetime64[us]")


def _split_ids(joined: bytes, count: int) -> np.ndarray:
    """``count`` ids joined by spaces → fixed-width byte strings, space-padded to the longest (rounded up to 8 bytes,
    the words ``_factorize`` hashes), cut in C: one pass per character position of the longest id."""
    text = np.frombuffer(joined, dtype=np.uint8)
    ends = np.append(np.flatnonzero(text == _ID_SEPARATOR), text.size)
    if ends.size != count:
        raise ValueError(f"{ends.size} device ids for {count} rows: an id holds a space")
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts
    longest = int(lengths.max())
    padded = np.full((count, max(8, -(-longest // 8) * 8)), _ID_SEPARATOR, dtype=np.uint8)
    for column in range(longest):
        padded[:, column] = np.where(lengths > column, text[np.minimum(starts + column, text.size - 1)], _ID_SEPARATOR)
    return padded.view(f"S{padded.shape[1]}").ravel()


def _factorize(padded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(padded, return_inverse=True)`` for ids padded to a multiple of 8 bytes, several times faster on a
    fleet's rows.

    Sorting a million 64-byte strings dominates; a 64-bit hash of each id's words sorts as integers instead. The
    hash is checked to have kept distinct ids apart (else the plain sort runs), and the few uniques are put in
    name order, so the result is exactly ``np.unique``'s.
    """
    words = padded.view(np.uint64).reshape(padded.size, -1)
    hashed = words[:, 0].copy()
    for column in range(1, words.shape[1]):
        hashed *= np.uint64(0x100000001B3)  # wraps modulo 2**64, as intended
        hashed ^= words[:, column]
    _, first, inverse = np.unique(hashed, return_index=True, return_inverse=True)
    uniques = padded[first]
    if not np.array_equal(uniques[inverse], padded):
        return np.unique(padded, return_inverse=True)
    by_name = np.argsort(uniques)
    rank = np.empty_like(by_name)
    rank[by_name] = np.arange(by_name.size)
    return uniques[by_name], rank[inverse]


class FeatureStore:
    """Feature reads and writes and training datasets over the cloud database; used by API, CLI and workers."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    @property
    def _connection(self) -> Connection:
        return connection_of(self.db)

    # -- writing ---------------------------------------------------------------------------------------

    def store_device_features(
        self,
        device_id: str,
        features: dict[str, float | None],
        timestamp: str | date | datetime,
        feature_set_version: str = FEATURE_SET_VERSION,
    ) -> bool:
        """Store one feature vector (the window ending at ``timestamp``); False if that row was already stored.

        ``features`` must name exactly the feature set's features (the shared definitions for the current
        version; for another version, the names ingest recorded or, for a new version, these names in this
        order). Idempotent like ingest: a row already stored is kept, never overwritten.
        """
        names = list(features)
        values = feature_codec.to_matrix([[features[name] for name in names]])
        when = utc_time(timestamp, "timestamp")
        return self.store_feature_rows([device_id], [when], values, names, feature_set_version) == 1

    def store_feature_rows(
        self,
        device_ids: Sequence[str],
        window_ends: Sequence[str | date | datetime] | np.ndarray,
        values: np.ndarray,
        feature_names: list[str],
        feature_set_version: str = FEATURE_SET_VERSION,
        device_types: Mapping[str, str] | None = None,
    ) -> int:
        """Store many feature vectors at once (a history backfilled at cold start); return how many were new.

        Row i is ``device_ids[i]``'s window ending at ``window_ends[i]`` (times, or numpy datetime64 in UTC), with
        ``values[i]`` in the order of ``feature_names``: the feature set's names, in any order, as for one row.
        ``device_types`` records each device's type where ingest has not (ingest's, from live telemetry, wins).
        Idempotent: rows already stored are kept, never overwritten. One transaction: all rows or none.
        """
        matrix = np.asarray(values, dtype=np.float64)
        if matrix.shape != (len(device_ids), len(feature_names)) or len(window_ends) != len(device_ids):
            raise Invalid(
                f"{len(device_ids)} device ids and {len(window_ends)} window ends need a matrix of as many rows of "
                f"{len(feature_names)} features, got shape {matrix.shape}"
            )
        names = self._feature_set_names(feature_set_version) or list(feature_names)
        if set(feature_names) != set(names) or len(feature_names) != len(names):
            missing, extra = sorted(set(names) - set(feature_names)), sorted(set(feature_names) - set(names))
            raise Invalid(
                f"feature set {feature_set_version!r} needs exactly its features: missing {missing}, unknown {extra}"
            )
        devices = [validate_id(str(device_id), "device id") for device_id in device_ids]
        ends = _iso_times(window_ends)
        blobs = feature_codec.encode(feature_codec.to_matrix(matrix[:, [feature_names.index(n) for n in names]]))
        seen: dict[str, tuple[str, str]] = {}
        for device_id, end in zip(devices, ends, strict=True):
            first, last = seen.get(device_id, (end, end))
            seen[device_id] = (min(first, end), max(last, end))
        types = device_types or {}
        rows = list(zip(devices, ends, itertools.repeat(feature_set_version), blobs, itertools.repeat(None)))
        with write_transaction(self.db) as connection:
            features.add_feature_sets(connection, {feature_set_version: names})
            stored = features.add_feature_rows(connection, rows)
            fleet.record_devices_known(  # the device is known, as ingest records it (its gateway stays unknown)
                connection,
                [(device_id, types.get(device_id), first, last) for device_id, (first, last) in seen.items()],
            )
        return stored

    def store_component_failures(self, failures: Iterable[ObservedFailure]) -> int:
        """Store component failures a history observed, as the technician outcomes that label training rows (the
        labels ``get_training_dataset`` reads); return how many were new. Idempotent: a failure's outcome id is
        derived from its device, component and time."""
        rows = []
        for failure in failures:
            validate_id(failure.device_id, "device id")
            observed = iso(utc_time(failure.failed_at, "failure time"))
            known = iso(utc_time(failure.known_at or failure.failed_at, "failure known time"))
            key = f"{failure.device_id}/{failure.component}/{observed}"
            outcome = {
                "outcome_id": str(uuid.uuid5(_HISTORY_OUTCOMES, key)),
                "device_id": failure.device_id,
                "source": FeedbackSource.TECHNICIAN.value,
                "observed_at": observed,
                "component": str(failure.component),
                "result": OutcomeResult(failure.result).value,
                "technician": "history",
                "received_at": known,
            }
            rows.append(tuple(outcome.get(column) for column in predictions.OUTCOME))
        with write_transaction(self.db) as connection:
            return predictions.add_outcomes(connection, rows)

    # -- reading one device ----------------------------------------------------------------------------

    def get_device_features(
        self,
        device_id: str,
        feature_names: list[str] | None = None,
        time_range: tuple[str | date | datetime | None, str | date | datetime | None] | None = None,
    ) -> DeviceFeatures:
        """The device's rows with window ends in ``[start, end)`` (either bound may be None), oldest first.

        Raises UnknownDevice for a device never seen, Invalid for a feature no stored set has.
        """
        self._known(device_id)
        start, end = time_range or (None, None)
        found = {
            version: rows
            for version in self._versions()
            if (rows := features.device_rows(self._connection, device_id, version, _bound(start, ""), _bound(end, "~")))
        }
        names_of = {version: self._feature_set_names(version) or [] for version in found or self._versions()}
        known = list(dict.fromkeys(name for names in names_of.values() for name in names))
        wanted = list(feature_names) if feature_names else known
        unknown = [name for name in wanted if name not in known]
        if unknown:
            raise Invalid(f"device {device_id!r} has no feature {unknown}; it has {known}")
        window_ends: list[str] = []
        blocks: list[np.ndarray] = []
        for version, rows in found.items():
            names = names_of[version]
            decoded = feature_codec.decode([blob for _, blob in rows], len(names))
            block = np.full((len(rows), len(wanted)), np.nan, dtype=feature_codec.FLOAT32)
            for column, name in enumerate(wanted):
                if name in names:
                    block[:, column] = decoded[:, names.index(name)]
            window_ends += [window_end for window_end, _ in rows]
            blocks.append(block)
        order = np.argsort(np.array(window_ends, dtype=str), kind="stable")
        values = np.concatenate(blocks)[order] if blocks else np.zeros((0, len(wanted)), feature_codec.FLOAT32)
        return DeviceFeatures(device_id, wanted, [window_ends[i] for i in order], values)

    def latest_features(self, device_id: str, as_of: datetime | None = None) -> LatestFeatures:
        """Each feature's newest non-null value at or before ``as_of`` (default now), and how stale it is.

        Walks the device's windows newest first, a chunk of windows at a time, and stops once every feature of
        a feature set has a value, so a long history costs no more than its recent windows.
        """
        self._known(device_id)
        as_of = as_of or datetime.now(UTC)
        cutoff = iso(as_of)
        names_of = {version: self._feature_set_names(version) or [] for version in self._versions()}
        found: dict[str, LatestValue | None] = dict.fromkeys(name for names in names_of.values() for name in names)
        for version, names in names_of.items():
            newest = self._newest_values(device_id, version, names, cutoff)
            for name, (window_end, value) in newest.items():
                if found[name] is None or window_end > found[name].window_end:
                    found[name] = LatestValue(value, window_end, (as_of - from_iso(window_end)).total_seconds())
        return LatestFeatures(device_id, cutoff, found)

    def _known(self, device_id: str) -> None:
        if not fleet.has_device(self._connection, device_id):
            raise UnknownDevice(f"unknown device {device_id!r}: no feature row has been stored for it")

    def _newest_values(self, device_id: str, version: str, names: list[str], cutoff: str) -> dict[str, tuple]:
        """name → (window_end, value) of each feature's newest non-null value at or before ``cutoff``."""
        newest: dict[str, tuple[str, float]] = {}
        before = cutoff + "~"  # the first chunk includes the cutoff itself
        while len(newest) < len(names):
            windows = features.newest_windows(
                self._connection, device_id, version, min(before, cutoff + "~"), _LATEST_CHUNK
            )
            rows = [(window_end, blob) for window_end, blob in windows if blob is not None]
            if rows:
                decoded = feature_codec.decode([blob for _, blob in rows], len(names))
                present = ~np.isnan(decoded)
                first = present.argmax(axis=0)  # newest first: the first present value per feature
                for column in np.flatnonzero(present.any(axis=0)):
                    newest.setdefault(names[column], (rows[first[column]][0], float(decoded[first[column], column])))
            if len(windows) < _LATEST_CHUNK:
                break
            before = windows[-1][0]
        return newest

    # -- training datasets -----------------------------------------------------------------------------

    def get_training_dataset(
        self,
        feature_names: list[str] | None,
        start_date: str | date | datetime,
        end_date: str | date | datetime,
        device_type: str | None = None,
        horizon: timedelta = DEFAULT_HORIZON,
        feature_set_version: str | None = None,
        as_of: str | date | datetime | None = None,
        prediction_type: PredictionType = PredictionType.COMPONENT_FAILURE,
        *,
        actor: str | None = None,
    ) -> TrainingDataset:
        """Build, label for ``prediction_type`` and record the dataset of rows with window ends in
        ``[start_date, end_date)``; the record is audited as ``actor``.

        Failure labels come from ``outcomes`` rows with a component and result failed or replaced, observed and
        received by ``as_of`` (default now); usage labels from sensor outcomes with a value, observed and
        received by ``as_of``, joined to their prediction's device and feature window. Rows are read with one
        range scan over the features key and labelled with sorts and searchsorted, no loop over rows. The record
        holds ``as_of`` and the prediction type, so ``load_dataset`` builds the same rows again. Times may be ISO-8601
        text ("2026-01-01": that day's midnight UTC).
        """
        start_date, end_date = utc_time(start_date, "start_date"), utc_time(end_date, "end_date")
        if start_date >= end_date:
            raise Invalid(f"start_date {start_date.isoformat()} must be before end_date {end_date.isoformat()}")
        as_of = utc_time(as_of, "as_of") if as_of is not None else datetime.now(UTC)
        prediction_type = PredictionType(prediction_type)
        version = feature_set_version or self._version_for(feature_names)
        stored_names = self._feature_set_names(version)
        if stored_names is None:
            raise Invalid(f"no feature set {version!r} has been stored")
        names = list(feature_names) if feature_names else stored_names
        unknown = [name for name in names if name not in stored_names]
        if unknown:
            raise Invalid(f"feature set {version!r} has no feature {unknown}")
        query = {
            "feature_names": names,
            "feature_set_version": version,
            "start_date": iso(start_date),
            "end_date": iso(end_date),
            "device_type": device_type,
            "horizon_seconds": int(horizon.total_seconds()),
            "as_of": iso(as_of),
        }
        if prediction_type != PredictionType.COMPONENT_FAILURE:  # older records have no type: component_failure
            query["prediction_type"] = prediction_type.value
        dataset = self._build(query)
        created_at = iso(datetime.now(UTC))
        record = DatasetRecord(
            uuid.uuid4().hex, query, int(dataset.labels.size), dataset.record.content_hash, created_at
        )
        with write_transaction(self.db) as connection:
            features.add_dataset(
                connection,
                {
                    "dataset_id": record.dataset_id,
                    "query_json": json.dumps(query, sort_keys=True),
                    "row_count": record.row_count,
                    "content_hash": record.content_hash,
                    "created_at": created_at,
                },
            )
            details = {"row_count": record.row_count, "content_hash": record.content_hash}
            AuditLog(self.db).record(actor or configured_actor(), "datasets.build", record.dataset_id, details)
        return replace(dataset, record=record)

    def get_dataset_record(self, dataset_id: str) -> DatasetRecord:
        row = features.find_dataset(self._connection, dataset_id)
        if row is None:
            raise UnknownDataset(f"unknown dataset {dataset_id!r}")
        return DatasetRecord(
            row["dataset_id"], json.loads(row["query_json"]), row["row_count"], row["content_hash"], row["created_at"]
        )

    def load_dataset(self, dataset_id: str) -> TrainingDataset:
        """Build a recorded dataset again from its query; Refused if the data no longer hashes the same."""
        record = self.get_dataset_record(dataset_id)
        dataset = self._build(record.query)
        if dataset.record.content_hash != record.content_hash:
            raise Refused(
                f"dataset {dataset_id} has changed since it was recorded: content hash "
                f"{dataset.record.content_hash} instead of {record.content_hash}"
            )
        return replace(dataset, record=record)

    def _build(self, query: dict) -> TrainingDataset:
        """The rows, values and labels a query names; the record carries only the content hash."""
        stored_names = self._feature_set_names(query["feature_set_version"])
        devices, row_device, window_ends, values = self.read_rows(
            query["feature_set_version"], query["start_date"], query["end_date"], query["device_type"]
        )
        columns = [stored_names.index(name) for name in query["feature_names"]]
        if columns != list(range(len(stored_names))):
            values = values[:, columns]
        prediction_type = PredictionType(query.get("prediction_type", PredictionType.COMPONENT_FAILURE))
        failures = self.known_failures(devices, query["start_date"], query["as_of"])
        if prediction_type == PredictionType.USAGE_PATTERN:
            labels = self._usage_labels(devices, row_device, window_ends, query)
            kept = np.isfinite(labels)
        else:
            labels = np.zeros(0, dtype=np.int64)
            if row_device.size:
                horizon = timedelta(seconds=query["horizon_seconds"])
                observed_until = np.datetime64(query["as_of"][:26], "s")
                labels = label_rows(row_device, window_ends, failures, horizon, observed_until)
            censored_kept = prediction_type == PredictionType.ANOMALY
            kept = np.ones(labels.size, dtype=bool) if censored_kept else labels >= 0
        if not kept.all():  # the copy of every value costs as much as the labelling; most datasets keep every row
            row_device, window_ends, values, labels = row_device[kept], window_ends[kept], values[kept], labels[kept]
        digest = content_hash(query["feature_names"], devices, row_device, window_ends, values, labels, prediction_type)
        record = DatasetRecord("", query, int(labels.size), digest, "")
        return TrainingDataset(
            record,
            query["feature_names"],
            devices[row_device],
            window_ends,
            values,
            labels,
            CLASSES,
            prediction_type,
            replace(failures, device=devices[failures.device]),
        )

    def known_failures(self, devices: np.ndarray, start: str, as_of: str) -> FailureTimes:
        """Component failures observed from ``start`` and known by ``as_of``, on indexes into ``devices``."""
        failures = [
            _Failure(device_id, component, from_iso(observed_at))
            for device_id, component, observed_at in predictions.failures_known(self._connection, _FAILED, start, as_of)
        ]
        return failure_times(failures, devices)

    def _usage_labels(
        self, devices: np.ndarray, row_device: np.ndarray, window_ends: np.ndarray, query: dict
    ) -> np.ndarray:
        """Litres per row (NaN where none is known): sensor outcomes with a value, observed and received by
        ``as_of``, joined through ``prediction_id`` to the prediction's device and feature window end.

        Several predictions of one window (champion and challenger arms) measure the same draw: their values are
        averaged in SQL, so each (device, window) has one label. Rows are matched to labels by a sorted key.
        """
        found = predictions.measured_by_window(
            self._connection, FeedbackSource.SENSOR.value, query["start_date"], query["end_date"], query["as_of"]
        )
        labels = np.full(row_device.size, np.nan, dtype=np.float64)
        if not found or not row_device.size:
            return labels
        label_device, label_end, litres = (np.array(column) for column in zip(*found, strict=True))
        label_index = np.searchsorted(devices, label_device.astype(str))
        known = label_index < devices.size
        known[known] &= devices[label_index[known]] == label_device[known]
        label_time = _parse_iso(np.array(label_end[known], dtype=f"S{_ISO_WIDTH}")).astype("datetime64[s]")
        span = np.int64(1) << 40
        t0 = min(window_ends.min(), label_time.min())
        row_key = row_device.astype(np.int64) * span + (window_ends - t0).astype(np.int64)
        label_key = label_index[known].astype(np.int64) * span + (label_time - t0).astype(np.int64)
        order = np.argsort(row_key, kind="stable")
        at = np.minimum(np.searchsorted(row_key, label_key, sorter=order), order.size - 1)
        matched = row_key[order[at]] == label_key
        labels[order[at[matched]]] = litres[known][matched].astype(np.float64)
        return labels

    def read_rows(
        self, feature_set_version: str, start_date: str, end_date: str, device_type: str | None = None
    ) -> FeatureRows:
        """The feature set's rows with window ends in [start_date, end_date) (``cloud.storage.iso`` text), of
        devices of ``device_type`` if given.

        The database concatenates each chunk's blobs, window ends and device ids into one value apiece, which numpy
        cuts up in C: no Python object per row. Chunks are taken by key (one range scan of the primary key in all)
        and stay far below SQLite's 1 GB limit on one value.
        """
        n_stored = len(self._feature_set_names(feature_set_version) or [])
        chunk_of = functools.partial(
            features.rows_concatenated,
            self._connection,
            feature_set_version,
            start_date,
            end_date,
            device_type,
            limit=_CHUNK_ROWS,
        )
        ids: list[bytes] = []
        ends: list[np.ndarray] = []
        blocks: list[np.ndarray] = []
        after = ("", "")
        while True:
            count, blob, ends_text, ids_text = chunk_of(after=after)
            if not count:
                break
            chunk_ends = np.frombuffer(ends_text, dtype=f"S{_ISO_WIDTH}")
            if chunk_ends.size != count:
                raise ValueError("a stored window end is not cloud.storage.iso text")
            chunk_times = _parse_iso(chunk_ends)
            ids.append(ids_text)
            ends.append(chunk_times)
            blocks.append(feature_codec.decode([blob], n_stored))
            if count < _CHUNK_ROWS:
                break
            last = int(np.argmax(chunk_times))
            at_last = _split_ids(ids_text, count)[chunk_times == chunk_times[last]]
            after = (chunk_ends[last].decode(), max(at_last.tolist()).decode().rstrip())
        if not ids:
            empty = np.zeros(0, dtype=np.int64)
            return FeatureRows(
                np.array([], dtype=str), empty, empty.astype("datetime64[s]"), np.zeros((0, n_stored), np.float32)
            )
        window_ends = np.concatenate(ends)
        padded, row_device = _factorize(_split_ids(b" ".join(ids), window_ends.size))
        devices = np.array([device.decode().rstrip() for device in padded.tolist()], dtype=str)
        values = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
        step = np.diff(window_ends.astype(np.int64))
        if not ((step > 0) | ((step == 0) & (np.diff(row_device) > 0))).all():
            # SQL does not promise the order an aggregate sees its rows in; sort only if it was not key order
            order = np.lexsort((row_device, window_ends))
            row_device, window_ends, values = row_device[order], window_ends[order], values[order]
        return FeatureRows(devices, row_device, window_ends.astype("datetime64[s]"), values)

    # -- feature sets ----------------------------------------------------------------------------------

    def _feature_set_names(self, version: str) -> list[str] | None:
        names = features.feature_set_names(self._connection, version)
        if names is not None:
            return names
        return list(FEATURE_NAMES) if version == FEATURE_SET_VERSION else None

    def _versions(self) -> list[str]:
        return list(features.every_feature_set(self._connection))

    def _version_for(self, feature_names: list[str] | None) -> str:
        """The one stored feature set holding every requested name (the current one when names are not given)."""
        if not feature_names:
            return FEATURE_SET_VERSION
        candidates = [
            version
            for version, names in features.every_feature_set(self._connection).items()
            if set(feature_names) <= set(names)
        ]
        if FEATURE_SET_VERSION in candidates or (not candidates and set(feature_names) <= set(FEATURE_NAMES)):
            return FEATURE_SET_VERSION
        if len(candidates) != 1:
            which = f"several feature sets have them: {sorted(candidates)}" if candidates else "no feature set has them"
            raise Invalid(f"cannot choose a feature set for {list(feature_names)}: {which}; name feature_set_version")
        return candidates[0]
