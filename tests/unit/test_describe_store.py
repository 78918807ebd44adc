"""DescribeStore: the counts of the whole store, the newest events within the look-back."""

from __future__ import annotations

from datetime import timedelta

from dedup.application.describe_store import MAX_LATEST, DescribeStore
from dedup.domain.outcome import DuplicateKind

from tests.builders import NOON, a_copy_of, an_event
from tests.fakes import FakeEventRepository


def test_the_newest_events_come_from_the_look_back_and_the_counts_from_everything(
    deduplicate, repo: FakeEventRepository
) -> None:
    old = an_event(received_at=NOON - timedelta(hours=30))
    recent = an_event(received_at=NOON - timedelta(hours=1))
    deduplicate.execute([old, recent])
    deduplicate.execute([a_copy_of(old)])
    describe = DescribeStore(store=repo, clock=lambda: NOON, look_back=timedelta(days=1))

    found = describe.execute()

    assert [e.event_id for e in found.latest] == [recent.event_id]
    assert found.counts.stored == 2
    assert found.counts.duplicates == {DuplicateKind.CONTENT: 1, DuplicateKind.KEY_CONFLICT: 0}


def test_a_request_for_more_than_the_most_gets_the_most(
    deduplicate, repo: FakeEventRepository
) -> None:
    deduplicate.execute([an_event(received_at=NOON) for _ in range(MAX_LATEST + 1)])
    describe = DescribeStore(store=repo, clock=lambda: NOON)

    assert len(describe.execute(latest=MAX_LATEST + 50).latest) == MAX_LATEST
    assert len(describe.execute(latest=0).latest) == 1


def test_a_payload_is_shown_as_a_preview(deduplicate, repo: FakeEventRepository) -> None:
    event = an_event({"text": "x" * 500}, received_at=NOON)
    deduplicate.execute([event])

    [latest] = DescribeStore(store=repo, clock=lambda: NOON, preview=40).execute().latest

    assert latest.preview == event.payload[:40]
    assert latest.truncated
