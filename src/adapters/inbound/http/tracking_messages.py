"""Segment's Tracking API messages: the spec's checks and the batch merge, before any is queued.

What a message must carry follows the Segment spec (which RudderStack speaks too): every type
but alias names its user by `userId` or `anonymousId`; alias names both `userId` and
`previousId`; track names its `event`, group its `groupId`. Each rejection is a 400 that says
which field is wrong and, in a batch, which item.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from attrs import frozen
from dedup.adapters.inbound.http.errors import RequestRejectedError

Payload = dict[str, Any]

TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias"})
# The one-letter paths analytics.js posts to (`/v1/t` ...), and `/v1/b` its batching mode.
SHORT_PATHS = {kind[0]: kind for kind in TYPES}
MESSAGE_BYTES = 32 * 1024  # Segment's limit per message, and per single-message request
BATCH_BYTES = 500 * 1024  # and per batch request
# Stamped anew on every attempt by the SDKs: a resent message differs in them and nothing else.
# `_metadata` is analytics.js's delivery bookkeeping; its retry adds `retryCount` there.
RESENT_FIELDS = frozenset({"sentAt", "_metadata"})
# Objects of the spec: a message with one of these as anything but an object is malformed.
_OBJECTS = ("properties", "traits", "context", "integrations")
# What each type must carry beside its user (alias names its users itself).
_REQUIRED = {"track": ("event",), "group": ("groupId",), "alias": ("userId", "previousId")}
_MERGED = ("context", "integrations")


@frozen
class TrackedMessage:
    """One message as it will be stored, its own identity (messageId) and its type."""

    payload: Payload
    key: str | None
    type: str


def _bad(code: str, detail: str, index: int | None) -> RequestRejectedError:
    return RequestRejectedError(400, code, detail, index=index)


def _present(value: object) -> bool:
    # analytics.js sends `"userId": null` for a visitor it has not identified yet.
    return value is not None and value != ""


def _is_id(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _message_id(message: Payload, index: int | None) -> str | None:
    value = message.get("messageId")
    if not _present(value):
        return None
    if not _is_id(value):
        raise _bad("invalid_message_id", "messageId must be a string", index)
    return str(value)


def _check(message: Payload, kind: str, index: int | None) -> None:
    for name in _OBJECTS:
        value = message.get(name)
        if value is not None and not isinstance(value, dict):
            raise _bad("invalid_field", f"{name} must be a JSON object", index)
    for name in ("userId", "anonymousId", "groupId", "previousId"):
        value = message.get(name)
        if _present(value) and not _is_id(value):
            raise _bad("invalid_field", f"{name} must be a string", index)
    if kind != "alias" and not (
        _present(message.get("userId")) or _present(message.get("anonymousId"))
    ):
        raise _bad("missing_user", f"a {kind} message needs a userId or an anonymousId", index)
    for name in _REQUIRED.get(kind, ()):
        if not _present(message.get(name)):
            raise _bad("missing_field", f"a {kind} message needs {name}", index)
    if kind == "track" and not isinstance(message["event"], str):
        raise _bad("invalid_field", "event must be a string", index)
    timestamp = message.get("timestamp")
    if timestamp is not None and not _is_iso_8601(timestamp):
        raise _bad("invalid_field", "timestamp must be an ISO-8601 date and time", index)


def _is_iso_8601(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _tracked(
    message: Payload, kind: str, index: int | None, shared: dict[str, Payload] | None = None
) -> TrackedMessage:
    _check(message, kind, index)
    key = _message_id(message, index)
    # The write key is a credential: it authenticates the request and is never stored.
    stored = {name: value for name, value in message.items() if name != "writeKey"}
    for name, values in (shared or {}).items():
        # The batch's context and integrations under the item's own, which win key by key.
        own = message.get(name)
        stored[name] = {**values, **own} if isinstance(own, dict) else values
    stored["type"] = kind
    return TrackedMessage(payload=stored, key=key, type=kind)


def write_key_in(body: Payload) -> str | None:
    """The write key a body carries (`writeKey`), or None."""
    value = body.get("writeKey")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad("invalid_write_key", "writeKey must be a string", None)
    return value


def one_message(body: Payload, *, path_type: str) -> TrackedMessage:
    """The message of POST /v1/<type>: the path names its type unless the body agrees."""
    kind = body.get("type")
    if kind is not None and kind != path_type:
        raise _bad(
            "type_mismatch", f"the body's type {kind!r} is not the path's {path_type!r}", None
        )
    return _tracked(body, path_type, None)


def batch_messages(body: Payload, *, max_batch: int, whole_bytes: int) -> list[TrackedMessage]:
    """The messages of POST /v1/batch: each a known type, 32 KB at most; all valid or none."""
    items = body.get("batch")
    if not isinstance(items, list) or not items:
        raise _bad("invalid_batch", "batch must be a non-empty array of messages", None)
    if len(items) > max_batch:
        raise _bad("batch_too_large", f"a batch holds at most {max_batch} messages", None)
    shared: dict[str, Payload] = {}
    for name in _MERGED:
        value = body.get(name)
        if value is not None and not isinstance(value, dict):
            raise _bad("invalid_field", f"the batch's {name} must be a JSON object", None)
        if value:
            shared[name] = value
    messages = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise _bad("not_an_object", "every batch item must be a JSON object", index)
        kind = item.get("type")
        if not isinstance(kind, str) or kind not in TYPES:
            raise _bad("invalid_type", f"type must be one of {', '.join(sorted(TYPES))}", index)
        # No item of a body this small can pass the limit: skip encoding each one again.
        if whole_bytes > MESSAGE_BYTES and len(msgspec.json.encode(item)) > MESSAGE_BYTES:
            raise _bad("message_too_large", f"a message is at most {MESSAGE_BYTES} bytes", index)
        messages.append(_tracked(item, kind, index, shared))
    return messages
