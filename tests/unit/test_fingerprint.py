"""The canonical form: key order and whitespace never matter, any kept value does."""

from __future__ import annotations

import json
import random

import pytest
from dedup.domain.fingerprint import EventFingerprint, canonical_json
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import json_values, objects

NOTHING: frozenset[str] = frozenset()


def _shuffled(value: object, rng: random.Random) -> object:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


@given(objects, st.randoms())
def test_key_order_never_changes_a_fingerprint(
    payload: dict[str, object], rng: random.Random
) -> None:
    reordered = _shuffled(payload, rng)
    assert isinstance(reordered, dict)
    assert EventFingerprint.of(reordered, ignore=NOTHING) == EventFingerprint.of(
        payload, ignore=NOTHING
    )


@given(objects, st.sampled_from([None, 1, 2, 4, "\t"]))
def test_whitespace_in_the_request_never_changes_a_fingerprint(
    payload: dict[str, object], indent: int | str | None
) -> None:
    as_sent = json.loads(json.dumps(payload, indent=indent, separators=(" , ", " : ")))
    assert EventFingerprint.of(as_sent, ignore=NOTHING) == EventFingerprint.of(
        payload, ignore=NOTHING
    )


@given(objects, st.data())
def test_changing_any_kept_value_changes_the_fingerprint(
    payload: dict[str, object], data: st.DataObject
) -> None:
    key = data.draw(st.sampled_from(sorted(payload)))
    new_value = data.draw(
        json_values.filter(lambda v: canonical_json(v) != canonical_json(payload[key]))
    )
    changed = {**payload, key: new_value}
    assert EventFingerprint.of(changed, ignore=NOTHING) != EventFingerprint.of(
        payload, ignore=NOTHING
    )


@given(objects, json_values)
def test_ignored_top_level_fields_never_change_the_fingerprint(
    payload: dict[str, object], sent_at: object
) -> None:
    ignore = frozenset({"sent_at"})
    assert EventFingerprint.of(
        {**payload, "sent_at": sent_at}, ignore=ignore
    ) == EventFingerprint.of({k: v for k, v in payload.items() if k != "sent_at"}, ignore=ignore)


def test_an_ignored_name_is_only_ignored_at_the_top_level() -> None:
    ignore = frozenset({"sent_at"})
    nested_a = {"meta": {"sent_at": 1}}
    nested_b = {"meta": {"sent_at": 2}}
    assert EventFingerprint.of(nested_a, ignore=ignore) != EventFingerprint.of(
        nested_b, ignore=ignore
    )


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert (
        canonical_json({"b": 1, "a": {"d": [1, 2], "c": "é"}})
        == '{"a":{"c":"é","d":[1,2]},"b":1}'.encode()
    )


def test_a_fingerprint_is_sixteen_bytes_of_blake2b() -> None:
    fp = EventFingerprint.of({"a": 1}, ignore=NOTHING)
    assert len(fp.digest) == 16
    assert EventFingerprint.from_hex(fp.hex) == fp
    with pytest.raises(ValueError, match="16 bytes"):
        EventFingerprint(b"short")


def test_a_key_fingerprint_is_scoped_by_source() -> None:
    assert EventFingerprint.of_key(source="web", key="k1") != EventFingerprint.of_key(
        source="ios", key="k1"
    )
    assert EventFingerprint.of_key(source="web", key="k1") == EventFingerprint.of_key(
        source="web", key="k1"
    )
