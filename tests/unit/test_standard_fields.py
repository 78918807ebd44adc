"""The standard fields come from an event's top level; whatever is missing or odd is unknown."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from dedup.domain.event import Event
from dedup.domain.standard_fields import StandardFields
from hypothesis import given
from hypothesis import strategies as st

from tests.builders import NOON, a_copy_of, an_event, an_event_id
from tests.strategies import json_values, objects

UNKNOWN = StandardFields()


def test_a_segment_track_message_gives_its_name_ids_and_time_in_utc() -> None:
    message = {
        "type": "track",
        "event": "Signed Up",
        "userId": "u-1",
        "anonymousId": "a-1",
        "timestamp": "2026-11-29T13:14:15.987+01:00",
        "properties": {"event": "nested, not read", "type": "nested"},
    }
    assert StandardFields.of(message) == StandardFields(
        type="track",
        event="Signed Up",
        user_id="u-1",
        anonymous_id="a-1",
        timestamp=datetime(2026, 11, 29, 12, 14, 15, tzinfo=UTC),  # whole seconds, floored
    )


@pytest.mark.parametrize("kind", ["page", "screen"])
def test_a_page_or_screen_is_named_by_its_name(kind: str) -> None:
    assert StandardFields.of({"type": kind, "name": "Pricing", "event": "x"}).event == "Pricing"
    assert StandardFields.of({"type": kind, "event": "x"}).event == "x"


def test_only_pages_and_screens_are_named_by_name() -> None:
    assert StandardFields.of({"type": "identify", "name": "Ada"}).event == ""
    assert StandardFields.of({"type": "track", "name": "Ada", "event": "Paid"}).event == "Paid"


def test_a_native_event_without_these_fields_has_them_all_unknown() -> None:
    assert StandardFields.of({"action": "click", "user": "u-1"}) == UNKNOWN


def test_a_native_event_with_an_event_field_is_queryable_by_it() -> None:
    assert StandardFields.of({"event": "page_view", "seq": 1}) == StandardFields(event="page_view")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (42, "42"),
        (-7, "-7"),
        (12345678901234567890, "12345678901234567890"),
        (42.0, "42"),  # JSON has one kind of number: the 42 a JavaScript client sent
        (4.5, "4.5"),
        (1e300, "1e+300"),
        (True, "true"),
        (False, "false"),
        ("", ""),
        (None, ""),
        ({"id": 1}, ""),
        ([1], ""),
    ],
)
def test_an_id_that_is_not_a_string_is_stored_as_its_json_text_or_unknown(
    value: object, text: str
) -> None:
    fields = StandardFields.of({"userId": value, "anonymousId": value, "type": value})
    assert (fields.user_id, fields.anonymous_id, fields.type) == (text, text, text)


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-11-29T12:00:00Z", datetime(2026, 11, 29, 12, tzinfo=UTC)),
        ("2026-11-29T12:00:00.999999Z", datetime(2026, 11, 29, 12, tzinfo=UTC)),
        ("2026-11-29T07:00:00-05:00", datetime(2026, 11, 29, 12, tzinfo=UTC)),
        ("2026-11-29 12:00:00", datetime(2026, 11, 29, 12, tzinfo=UTC)),  # no offset: UTC
        ("20261129T120000Z", datetime(2026, 11, 29, 12, tzinfo=UTC)),
        ("2026-11-29", datetime(2026, 11, 29, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_an_iso_8601_timestamp_is_read_as_a_utc_moment(text: str, moment: datetime) -> None:
    assert StandardFields.of({"timestamp": text}).timestamp == moment


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "",
        "2026-13-01T00:00:00Z",
        " 2026-11-29T12:00:00Z",
        "1969-12-31T23:59:59Z",  # before what whole seconds since 1970 can hold
        "2106-02-07T06:28:16Z",  # after what 32 bits of them can hold
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC: Python overflows
        1764417600,  # a Unix time is not the ISO 8601 the spec names
        None,
        ["2026-11-29T12:00:00Z"],
    ],
)
def test_a_missing_or_unreadable_timestamp_is_unknown_never_an_error(value: object) -> None:
    assert StandardFields.of({"type": "track", "timestamp": value}).timestamp is None


@pytest.mark.parametrize("text", ["[1, 2]", '"track"', "not json", "null"])
def test_a_stored_payload_that_is_not_an_object_has_no_standard_fields(text: str) -> None:
    assert StandardFields.of_json(text) == UNKNOWN


def test_an_event_accepted_carries_the_fields_of_its_payload() -> None:
    event = an_event({"type": "screen", "name": "Home", "userId": 9})
    assert event.standard == StandardFields(type="screen", event="Home", user_id="9")


@given(
    st.one_of(
        objects,
        st.fixed_dictionaries(
            {},
            optional={
                key: json_values
                for key in ("type", "event", "name", "userId", "anonymousId", "timestamp")
            },
        ),
    )
)
def test_the_fields_read_when_accepted_are_those_read_back_from_the_stored_payload(
    payload: dict[str, object],
) -> None:
    event = Event.accept(
        payload, event_id=an_event_id(), received_at=NOON, source="s", ignore=frozenset()
    )
    rebuilt = a_copy_of(event)  # built from the stored fields only, as Event(...) is
    assert rebuilt.standard == event.standard == StandardFields.of_json(event.payload)
