"""The rules every StoreOverview follows, whatever stores the events."""

from __future__ import annotations

from datetime import timedelta

from dedup.application.ports import EventRepository, StoreOverview
from dedup.domain.outcome import DuplicateKind
from dedup.domain.overview import StoreCounts

from tests.builders import NOON
from tests.contracts.event_repository_contract import HOSTILE, a_duplicate_of, an_event

NOW = NOON  # the look-back is the caller's: any fixed moment will do
NO_DUPLICATES = dict.fromkeys(DuplicateKind, 0)


class StoreOverviewContract:
    """Concrete modules supply `repo` (an EventRepository) and `overview`, on one store."""

    def test_an_empty_store_counts_nothing_and_lists_nothing(self, overview: StoreOverview) -> None:
        assert overview.counts() == StoreCounts(stored=0, duplicates=NO_DUPLICATES)
        assert overview.latest(since=NOW - timedelta(days=1), limit=20, preview=100) == []

    def test_stored_events_and_duplicates_are_counted_by_kind(
        self, repo: EventRepository, overview: StoreOverview
    ) -> None:
        first, second = an_event(received_at=NOW), an_event(received_at=NOW)
        copies = [
            a_duplicate_of(first),
            a_duplicate_of(first),
            a_duplicate_of(second, kind=DuplicateKind.KEY_CONFLICT),
        ]
        repo.save(events=[first, second], duplicates=copies)

        assert overview.counts() == StoreCounts(
            stored=2, duplicates={DuplicateKind.CONTENT: 2, DuplicateKind.KEY_CONFLICT: 1}
        )

    def test_the_latest_are_the_newest_first_each_with_its_recorded_copies(
        self, repo: EventRepository, overview: StoreOverview
    ) -> None:
        events = [an_event(received_at=NOW - timedelta(minutes=n)) for n in range(5)]
        repeated = a_duplicate_of(events[1])
        repo.save(events=events, duplicates=[a_duplicate_of(events[1]), repeated])
        repo.save(events=[], duplicates=[repeated])  # a redelivery records one copy twice

        latest = overview.latest(since=NOW - timedelta(days=1), limit=3, preview=100)

        assert [e.event_id for e in latest] == [e.event_id for e in events[:3]]
        assert [e.copies for e in latest] == [0, 2, 0]
        assert latest[0].received_at == NOW
        assert latest[0].source == events[0].source
        assert latest[0].preview == events[0].payload
        assert not latest[0].truncated

    def test_events_received_before_the_look_back_are_left_out(
        self, repo: EventRepository, overview: StoreOverview
    ) -> None:
        old, recent = an_event(received_at=NOW - timedelta(days=2)), an_event(received_at=NOW)
        repo.save(events=[old, recent], duplicates=[])

        latest = overview.latest(since=NOW - timedelta(days=1), limit=20, preview=100)

        assert [e.event_id for e in latest] == [recent.event_id]
        assert overview.counts().stored == 2

    def test_a_long_payload_is_cut_to_the_preview_whole_characters_only(
        self, repo: EventRepository, overview: StoreOverview
    ) -> None:
        event = an_event(received_at=NOW, payload={"text": "é😀" * 50, "hostile": HOSTILE})
        repo.save(events=[event], duplicates=[])

        [latest] = overview.latest(since=NOW - timedelta(days=1), limit=20, preview=21)

        assert latest.preview == event.payload[:21]
        assert latest.truncated
