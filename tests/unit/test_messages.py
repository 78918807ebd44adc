"""The wire format: what the API writes, the worker reads back exactly; anything else is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from dedup.application.messages import events_from_message, events_to_message

from tests.builders import an_event


def a_row() -> list[str]:
    return events_to_message([an_event()])[0]


def test_events_survive_a_round_trip_through_json() -> None:
    events = [
        an_event({"action": "click", "text": "naïve ✓", "n": [1, 2.5, None]}),
        an_event(key="order-7", source="shop"),
        an_event(received_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))),
    ]

    wire = json.loads(json.dumps(events_to_message(events)))

    assert events_from_message(wire) == events


def test_a_message_is_a_list_of_rows_of_eleven_strings() -> None:
    message = events_to_message([an_event(), an_event()])

    assert all(len(row) == 11 and all(isinstance(v, str) for v in row) for row in message)


def test_the_standard_fields_travel_read_so_the_worker_parses_no_payload() -> None:
    track = {"type": "track", "event": "Signed Up", "userId": 7, "timestamp": "2026-11-29T11:00Z"}
    (row,) = events_to_message([an_event(track)])

    assert row[6:] == ["track", "Signed Up", "7", "", "2026-11-29T11:00:00+00:00"]
    row[7] = "not what the payload says"  # what the row carries is what the worker stores
    (decoded,) = events_from_message([row])
    assert decoded.standard.event == "not what the payload says"
    assert decoded.standard.timestamp == datetime(2026, 11, 29, 11, 0, tzinfo=UTC)


def test_a_row_from_an_api_older_than_the_standard_fields_takes_them_from_its_payload() -> None:
    event = an_event({"type": "page", "name": "Home", "anonymousId": "a-1"})
    legacy = events_to_message([event])[0][:6]

    (decoded,) = events_from_message([legacy])

    assert decoded == event
    assert decoded.standard.event == "Home"


def test_an_empty_message_holds_no_events() -> None:
    assert events_from_message([]) == []


@pytest.mark.parametrize("obj", [None, "[]", {"events": []}, 7])
def test_a_message_that_is_not_a_list_is_refused(obj: object) -> None:
    with pytest.raises(ValueError, match="list of events"):
        events_from_message(obj)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda row: row[:5],
        lambda row: row[:7],
        lambda row: [*row, "extra"],
        tuple,
        lambda row: [None, *row[1:]],
        lambda row: [row[0], row[1], 7, *row[3:]],
    ],
    ids=["too-short", "neither-shape", "too-long", "not-a-list", "null-field", "number-field"],
)
def test_a_row_of_the_wrong_shape_is_refused(mangle) -> None:
    with pytest.raises(ValueError, match="event 1"):
        events_from_message([a_row(), mangle(a_row())])


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (0, "not-a-uuid"),
        (0, "{12345678-1234-5678-1234-567812345678}"),
        (0, "ABCDEF12-1234-5678-9ABC-567812345678"),
        (1, "ab" * 15),
        (1, "AB" * 16),
        (1, " " + "ab" * 16),
        (2, "zz" * 16),
        (3, "yesterday"),
        (3, "2026-11-29 12:00:00+00:00"),
        (3, "2026-11-29T12:00:00Z"),
        (10, "yesterday"),
        (10, "2026-11-29T12:00:00Z"),
    ],
)
def test_a_field_not_in_its_exact_written_form_is_refused(index: int, value: str) -> None:
    row = a_row()
    row[index] = value

    with pytest.raises(ValueError, match="event 0"):
        events_from_message([row])


def test_the_time_keeps_its_zone() -> None:
    event = an_event(received_at=datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC))

    (decoded,) = events_from_message(events_to_message([event]))

    assert decoded.received_at.utcoffset() == timedelta(0)
