from datetime import UTC, datetime, timedelta

import pytest

from shared.director import (
    DesiredModel,
    DirectorRejected,
    DirectorSigned,
    RejectRule,
    format_time,
    sign_director,
    verify_director,
)
from shared.signing import generate_private_key, key_id

KEY = generate_private_key()
TRUSTED = {key_id(KEY): KEY.public_key()}
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _signed(sequence=5, gateway="gw1", expires=NOW + timedelta(days=1)) -> DirectorSigned:
    model = DesiredModel(
        version="3",
        release_target="models/component_failure/3/release.json",
        release_sha256="a" * 64,
        release_length=100,
        model_target="models/component_failure/3/model.onnx",
        model_sha256="b" * 64,
        model_length=2000,
    )
    return DirectorSigned(
        gateway_id=gateway,
        sequence=sequence,
        issued_at=format_time(NOW),
        expires_at=format_time(expires),
        models={"component_failure": model},
    )


def _verify(payload, last=4):
    return verify_director(payload, TRUSTED, "gw1", last, now=NOW)


def test_a_valid_document_verifies_after_a_json_round_trip():
    document = sign_director(_signed(), [KEY])
    assert _verify(document.to_json()).signed.models["component_failure"].version == "3"


def _rule(payload, last=4) -> RejectRule:
    with pytest.raises(DirectorRejected) as caught:
        _verify(payload, last)
    return caught.value.rule


def test_each_rule_in_order():
    other = generate_private_key()
    assert _rule(b"{") is RejectRule.DIRECTOR_FORMAT
    assert _rule(sign_director(_signed(), [other]).to_json()) is RejectRule.DIRECTOR_SIGNATURE
    # expired AND replayed AND another gateway's: the signature passes, expiry is reported first
    stale = sign_director(_signed(sequence=1, gateway="gw2", expires=NOW - timedelta(seconds=1)), [KEY])
    assert _rule(stale.to_json()) is RejectRule.DIRECTOR_EXPIRED
    assert _rule(sign_director(_signed(sequence=4, gateway="gw2"), [KEY]).to_json()) is RejectRule.DIRECTOR_SEQUENCE
    assert _rule(sign_director(_signed(gateway="gw2"), [KEY]).to_json()) is RejectRule.DIRECTOR_GATEWAY


def test_tampering_with_the_signed_part_breaks_the_signature():
    body = sign_director(_signed(), [KEY]).model_dump(mode="json", exclude_none=True)
    body["signed"]["models"]["component_failure"]["version"] = "2"
    assert _rule(body) is RejectRule.DIRECTOR_SIGNATURE


def test_first_document_is_accepted_without_a_previous_sequence():
    assert _verify(sign_director(_signed(sequence=1), [KEY]).to_json(), last=None).signed.sequence == 1
