"""MLModelRegistry over a real SQLite file: production per device type, the invariants, history and lineage."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from cloud.registry import GENERAL, MLModelRegistry, RegistryRefused, UnknownModel, version_lineage
from cloud.releases.director import DirectorError
from tests.registry.conftest import RecordingRollout, add_version
from tests.rows import execute

NAME = "component_failure"


def promote(registry: MLModelRegistry, rollout: RecordingRollout, version: str, device_type: str | None = None, **kw):
    return registry.promote_model_to_production(
        NAME, version, device_type, actor="alice", reason=f"promote {version}", rollout=rollout, **kw
    )


def test_promotion_makes_the_version_active_and_publishes_it(registry, rollout):
    add_version(registry, "1")

    change = promote(registry, rollout, "1")

    assert registry.get_active_model(NAME)["model_version"] == "1"
    assert rollout.published == [(NAME, "1", GENERAL)]
    assert change.history["from_version"] is None
    assert (change.history["actor"], change.history["reason"]) == ("alice", "promote 1")


def test_promoting_a_second_version_demotes_the_first(registry, rollout):
    add_version(registry, "1")
    add_version(registry, "2")
    promote(registry, rollout, "1")

    promote(registry, rollout, "2")

    statuses = {row["model_version"]: row["status"] for row in registry.list_versions(NAME)}
    assert statuses == {"1": "released", "2": "production"}


def test_the_database_refuses_a_second_production_version_for_one_device_type(registry, rollout, db):
    add_version(registry, "1")
    add_version(registry, "2")
    promote(registry, rollout, "1")

    with pytest.raises(IntegrityError, match="UNIQUE|unique"):
        execute(
            db,
            "UPDATE models SET status = 'production', production_device_type = '' "
            "WHERE model_name = :name AND model_version = '2'",
            name=NAME,
        )
    assert registry.get_active_model(NAME)["model_version"] == "1"


def test_a_version_that_failed_evaluation_needs_an_override(registry, rollout):
    add_version(registry, "1")
    registry.record_evaluation(NAME, "1", passed=False, details={"mean_roc_auc": 0.52})

    with pytest.raises(RegistryRefused, match="failed evaluation"):
        promote(registry, rollout, "1")
    assert registry.get_active_model(NAME) is None
    assert rollout.published == []

    change = promote(registry, rollout, "1", override=True)
    assert change.history["override"] == 1
    assert registry.get_active_model(NAME)["model_version"] == "1"


def test_an_override_still_needs_a_reason(registry, rollout):
    add_version(registry, "1")
    registry.record_evaluation(NAME, "1", passed=False, details={})

    with pytest.raises(RegistryRefused, match="needs a reason"):
        registry.promote_model_to_production(NAME, "1", actor="root", reason=" ", rollout=rollout, override=True)


def test_only_released_versions_are_promoted(registry, rollout):
    add_version(registry, "1", released=False)

    with pytest.raises(RegistryRefused, match="not released"):
        promote(registry, rollout, "1")
    assert registry.history(NAME) == []


def test_nothing_changes_when_the_director_cannot_publish(registry):
    add_version(registry, "1")
    refusing = RecordingRollout(refuse=DirectorError("component_failure version 1 is not published in TUF"))

    with pytest.raises(DirectorError):
        promote(registry, refusing, "1")
    assert registry.get_active_model(NAME) is None
    assert registry.history(NAME) == []


def test_a_device_type_version_wins_and_others_fall_back_to_the_general_one(registry, rollout):
    add_version(registry, "1")
    add_version(registry, "2", device_types=["tank-80gal-gas"])
    promote(registry, rollout, "1")
    promote(registry, rollout, "2", "tank-80gal-gas")

    assert registry.get_active_model(NAME, "tank-80gal-gas")["model_version"] == "2"
    assert registry.get_active_model(NAME, "tank-50gal-electric")["model_version"] == "1"
    assert registry.get_active_model(NAME)["model_version"] == "1"
    assert registry.get_active_model("usage_pattern") is None


def test_a_version_is_not_promoted_for_a_device_type_it_does_not_target(registry, rollout):
    add_version(registry, "1", device_types=["tank-80gal-gas"])

    with pytest.raises(RegistryRefused, match="targets"):
        promote(registry, rollout, "1", "tank-50gal-electric")


def test_rollback_returns_to_the_previous_production_version_and_is_kept_in_history(registry, rollout):
    for version in ("1", "2", "3"):
        add_version(registry, version)
        promote(registry, rollout, version)

    change = registry.rollback_model(NAME, actor="bob", reason="false alarms", rollout=rollout)

    assert (change.history["from_version"], change.history["to_version"]) == ("3", "2")
    assert registry.get_active_model(NAME)["model_version"] == "2"
    assert rollout.published[-1] == (NAME, "2", GENERAL)
    history = registry.history(NAME)
    assert [(h["action"], h["from_version"], h["to_version"]) for h in history] == [
        ("rollback", "3", "2"),
        ("promote", "2", "3"),
        ("promote", "1", "2"),
        ("promote", None, "1"),
    ]
    assert history[0]["actor"] == "bob" and history[0]["reason"] == "false alarms" and history[0]["at"]


def test_rollback_to_a_named_version_and_per_device_type(registry, rollout):
    for version in ("1", "2", "3"):
        add_version(registry, version)
    promote(registry, rollout, "1")
    promote(registry, rollout, "3", "tank-80gal-gas")

    registry.rollback_model(NAME, "2", "tank-80gal-gas", actor="bob", reason="gas tanks regress", rollout=rollout)

    assert registry.get_active_model(NAME, "tank-80gal-gas")["model_version"] == "2"
    assert registry.get_active_model(NAME)["model_version"] == "1"
    assert [h["to_version"] for h in registry.history(NAME, "tank-80gal-gas")] == ["2", "3"]


def test_rollback_without_an_earlier_version_or_production_is_refused(registry, rollout):
    add_version(registry, "1")
    with pytest.raises(RegistryRefused, match="no production version"):
        registry.rollback_model(NAME, actor="bob", reason="r", rollout=rollout)
    promote(registry, rollout, "1")
    first = "nothing to roll back to: component_failure version 1 is the first production version"
    with pytest.raises(RegistryRefused, match=first):
        registry.rollback_model(NAME, actor="bob", reason="r", rollout=rollout)
    with pytest.raises(UnknownModel):
        registry.rollback_model(NAME, "9", actor="bob", reason="r", rollout=rollout)


def test_every_version_exposes_its_full_lineage(registry):
    add_version(registry, "1")

    lineage = version_lineage(registry.get_version(NAME, "1"))

    assert lineage["dataset_id"] == "ds-1"
    assert lineage["feature_set_version"] == "fs1"
    assert lineage["training_parameters"] == {"max_depth": 3}
    assert lineage["code_version"] == "0.1"
    assert lineage["metrics"] == {"mean_roc_auc": 0.9}
    assert lineage["artifact_sha256"] == "1".zfill(64)
    assert lineage["tuf_target"] == "models/component_failure/1/model.onnx"
    assert lineage["targets_version"] == 2


def test_next_version_counts_only_numbered_versions(registry):
    assert registry.next_version(NAME) == "1"
    for version in ("1", "2", "10", "exp-3"):
        add_version(registry, version, released=False)

    assert registry.next_version(NAME) == "11"
    assert registry.next_version("usage_pattern") == "1"
