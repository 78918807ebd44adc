"""Tracking API messages: what the spec requires of each type, and how a batch shares context."""

from __future__ import annotations

import pytest
from dedup.adapters.inbound.http.errors import RequestRejectedError
from dedup.adapters.inbound.http.tracking_messages import (
    MESSAGE_BYTES,
    batch_messages,
    one_message,
    write_key_in,
)


def rejection(call, *args, **kwargs) -> RequestRejectedError:  # type: ignore[no-untyped-def]
    with pytest.raises(RequestRejectedError) as caught:
        call(*args, **kwargs)
    assert caught.value.status == 400
    return caught.value


def batch(*items, **top):  # type: ignore[no-untyped-def]
    return batch_messages({"batch": list(items), **top}, max_batch=1000, whole_bytes=100)


def test_the_path_gives_the_type_when_the_body_has_none():
    message = one_message({"event": "Signed Up", "userId": "u1"}, path_type="track")

    assert message.type == "track"
    assert message.payload == {"event": "Signed Up", "userId": "u1", "type": "track"}
    assert message.key is None


def test_a_body_type_that_contradicts_the_path_is_refused():
    refused = rejection(one_message, {"type": "page", "userId": "u"}, path_type="track")
    assert refused.code == "type_mismatch"


def test_the_message_id_is_the_key_and_the_write_key_is_never_stored():
    message = one_message(
        {"userId": "u", "messageId": "ajs-1", "writeKey": "secret"}, path_type="identify"
    )

    assert message.key == "ajs-1"
    assert "writeKey" not in message.payload


@pytest.mark.parametrize("kind", ["track", "identify", "page", "screen", "group"])
def test_every_type_but_alias_needs_a_user_id_or_an_anonymous_id(kind):
    body = {"event": "e", "groupId": "g", "userId": None, "anonymousId": ""}
    assert rejection(one_message, body, path_type=kind).code == "missing_user"
    assert one_message({**body, "anonymousId": "a"}, path_type=kind).type == kind
    assert one_message({**body, "userId": 42}, path_type=kind).type == kind


@pytest.mark.parametrize(
    "kind, body, missing",
    [
        ("alias", {"userId": "new"}, "previousId"),
        ("alias", {"previousId": "old", "anonymousId": "a"}, "userId"),
        ("track", {"userId": "u"}, "event"),
        ("group", {"userId": "u"}, "groupId"),
    ],
)
def test_each_type_needs_the_fields_the_spec_requires(kind, body, missing):
    refused = rejection(one_message, body, path_type=kind)
    assert refused.code == "missing_field"
    assert missing in refused.detail


@pytest.mark.parametrize(
    "timestamp", ["2026-01-01T00:00:00.000Z", "2026-01-01T01:00:00+01:00", "2026-01-01"]
)
def test_timestamps_as_the_sdks_write_them_are_accepted(timestamp):
    message = one_message({"userId": "u", "timestamp": timestamp}, path_type="identify")
    assert message.payload["timestamp"] == timestamp


def test_an_alias_names_both_users_and_needs_no_anonymous_id():
    message = one_message({"userId": "new", "previousId": "old"}, path_type="alias")
    assert message.type == "alias"


@pytest.mark.parametrize("field", ["properties", "traits", "context", "integrations"])
@pytest.mark.parametrize("value", [[1], "text", 3, True])
def test_a_non_object_properties_traits_or_context_is_refused(field, value):
    body = {"userId": "u", "event": "e", field: value}
    refused = rejection(one_message, body, path_type="track")
    assert refused.code == "invalid_field"
    assert field in refused.detail


@pytest.mark.parametrize(
    "field, value",
    [
        ("messageId", {"a": 1}),
        ("messageId", True),
        ("userId", [1]),
        ("event", 5),
        ("timestamp", 1767225600),
        ("timestamp", "yesterday"),
    ],
)
def test_ids_and_names_of_the_wrong_kind_are_refused(field, value):
    body = {"userId": "u", "event": "e", field: value}
    assert rejection(one_message, body, path_type="track").code in {
        "invalid_message_id",
        "invalid_field",
    }


@pytest.mark.parametrize("kind", [None, "Track", "purchase", 7])
def test_a_batch_item_without_a_valid_type_is_refused_naming_its_index(kind):
    good = {"type": "identify", "userId": "u"}
    bad = {"userId": "u"} if kind is None else {"type": kind, "userId": "u"}
    refused = rejection(batch, good, good, bad)
    assert refused.code == "invalid_type"
    assert refused.index == 2


def test_a_batch_item_that_breaks_the_spec_names_its_index():
    refused = rejection(
        batch, {"type": "identify", "userId": "u"}, {"type": "track", "userId": "u"}
    )
    assert (refused.code, refused.index) == ("missing_field", 1)


@pytest.mark.parametrize("body", [{}, {"batch": []}, {"batch": {"type": "track"}}])
def test_a_batch_must_be_a_non_empty_array(body):
    refused = rejection(batch_messages, body, max_batch=10, whole_bytes=10)
    assert refused.code == "invalid_batch"


def test_a_batch_over_the_message_count_is_refused():
    items = [{"type": "identify", "userId": "u"}] * 3
    refused = rejection(batch_messages, {"batch": items}, max_batch=2, whole_bytes=10)
    assert refused.code == "batch_too_large"


def test_a_batch_item_over_32_kb_is_refused_naming_its_index():
    big = {"type": "track", "userId": "u", "event": "e", "properties": {"x": "y" * MESSAGE_BYTES}}
    items = [{"type": "identify", "userId": "u"}, big]
    refused = rejection(
        batch_messages, {"batch": items}, max_batch=10, whole_bytes=MESSAGE_BYTES * 2
    )
    assert (refused.code, refused.index) == ("message_too_large", 1)


def test_the_batch_context_and_integrations_merge_under_each_items_own():
    [first, second] = batch(
        {"type": "identify", "userId": "u", "context": {"ip": "1.2.3.4", "locale": "fr"}},
        {"type": "track", "userId": "u", "event": "e", "integrations": {"All": True}},
        context={"ip": "9.9.9.9", "library": {"name": "sdk"}},
        integrations={"All": False, "Mixpanel": True},
    )

    assert first.payload["context"] == {
        "ip": "1.2.3.4",
        "locale": "fr",
        "library": {"name": "sdk"},
    }
    assert first.payload["integrations"] == {"All": False, "Mixpanel": True}
    assert second.payload["context"] == {"ip": "9.9.9.9", "library": {"name": "sdk"}}
    assert second.payload["integrations"] == {"All": True, "Mixpanel": True}


def test_a_batch_items_invalid_context_is_refused_before_any_merge():
    refused = rejection(batch, {"type": "identify", "userId": "u", "context": []}, context={"a": 1})
    assert (refused.code, refused.index) == ("invalid_field", 0)


def test_each_batch_item_keeps_its_own_message_id_as_its_key():
    messages = batch(
        {"type": "identify", "userId": "u", "messageId": "m-1"},
        {"type": "identify", "userId": "u", "messageId": "m-2"},
        {"type": "identify", "userId": "u"},
    )
    assert [message.key for message in messages] == ["m-1", "m-2", None]


def test_the_write_key_is_read_from_the_body_when_it_is_a_string():
    assert write_key_in({"writeKey": "k"}) == "k"
    assert write_key_in({}) is None
    assert rejection(write_key_in, {"writeKey": 5}).code == "invalid_write_key"
