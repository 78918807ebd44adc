"""The API's use case: turn request bodies into events and queue them durably."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from attrs import frozen
from dedup.application.ports import Queue
from dedup.domain.errors import InvalidEventError
from dedup.domain.event import Event, EventId

Payload = Mapping[str, object]


@frozen
class AcceptEvents:
    """Give each payload an id, a time and a fingerprint; answer once all are queued."""

    queue: Queue
    clock: Callable[[], datetime]
    new_id: Callable[[], EventId]
    ignore_fields: frozenset[str] = frozenset()
    id_field: str | None = None

    async def execute(
        self,
        payloads: Sequence[Payload],
        *,
        source: str,
        key: str | None = None,
        batch: bool = False,
        keys: Sequence[str | None] | None = None,
        resent_fields: frozenset[str] = frozenset(),
    ) -> list[EventId]:
        """Queue the payloads; a request key names item i of a batch as `key/i`.

        `keys`, when given, are the items' own identities (None: the item's content), as a
        protocol with a message id names them; `resent_fields` are the fields its clients
        restamp on a retry, left out of the content like the ignored fields.
        """
        if keys is not None and len(keys) != len(payloads):
            raise ValueError("one key per payload: keys and payloads differ in length")
        received_at = self.clock().replace(microsecond=0)  # ClickHouse DateTime is whole seconds
        ignore = self.ignore_fields | resent_fields if resent_fields else self.ignore_fields
        events = [
            Event.accept(
                payload,
                event_id=self.new_id(),
                received_at=received_at,
                source=source,
                ignore=ignore,
                key=(
                    keys[index]
                    if keys is not None
                    else self._key(payload, request_key=key, index=index, batch=batch)
                ),
            )
            for index, payload in enumerate(payloads)
        ]
        await self.queue.put(events)
        return [event.event_id for event in events]

    def _key(
        self, payload: Payload, *, request_key: str | None, index: int, batch: bool
    ) -> str | None:
        if request_key is not None:
            return f"{request_key}/{index}" if batch else request_key
        if self.id_field is None or self.id_field not in payload:
            return None
        value = payload[self.id_field]
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            raise InvalidEventError(
                f"field {self.id_field!r} must be a non-empty string or an integer",
                index=index if batch else None,
            )
        return str(value)
