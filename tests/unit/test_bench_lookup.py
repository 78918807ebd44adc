"""bench.lookup's helpers: sizes, batches of hits and misses, and the check of a lookup result.

The last test runs the benchmark's INSERT ... SELECT in chDB and looks the rows up with the
repository the worker uses: ClickHouse must compute the same fingerprints, ids and contested
pairs as the Python side, or the benchmark would check its results against the wrong answer.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from attrs import evolve
from bench.lookup.data import (
    CONTESTED_EVERY,
    MISS_BASE,
    Batch,
    event_id_of,
    fingerprint_of,
    insert_sql,
    parse_count,
    parse_sizes,
    rows_for,
    verify,
)
from bench.lookup.figures import percentile
from dedup.adapters.outbound.clickhouse.chdb_executor import ChdbExecutor
from dedup.adapters.outbound.clickhouse.event_repository import ChdbEventRepository
from dedup.adapters.outbound.clickhouse.miniorm import Statement
from dedup.adapters.outbound.clickhouse.tables import EVENT_FINGERPRINTS
from dedup.domain.event import Holder, precedence


def test_counts_take_k_and_m_suffixes() -> None:
    assert [parse_count(t) for t in ("0", "2500", "100k", "1M", "2.5m")] == [
        0,
        2500,
        100_000,
        1_000_000,
        2_500_000,
    ]
    for bad in ("", "-1", "1G", "1.5", "ten"):
        with pytest.raises(ValueError):
            parse_count(bad)


def test_sizes_must_grow() -> None:
    assert parse_sizes("0,100k,1M") == [0, 100_000, 1_000_000]
    for bad in ("1M,100k", "100k,100k", ""):
        with pytest.raises(ValueError):
            parse_sizes(bad)


def test_contested_fingerprints_add_one_row_each() -> None:
    assert [rows_for(n) for n in (0, 1, CONTESTED_EVERY, CONTESTED_EVERY + 1)] == [
        0,
        2,
        CONTESTED_EVERY + 1,
        CONTESTED_EVERY + 3,
    ]


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(10, 0, -1)]
    assert (percentile(values, 0.5), percentile(values, 0.9), percentile(values, 1.0)) == (
        5.0,
        9.0,
        10.0,
    )


def test_a_batch_is_half_stored_half_never_stored() -> None:
    batch = Batch.draw(random.Random(3), stored=50_000, size=2000)
    assert len(batch.hits) == len(set(batch.hits)) == 1000
    assert all(0 <= n < 50_000 for n in batch.hits)
    assert len(set(batch.misses)) == 1000 and all(n >= MISS_BASE for n in batch.misses)
    assert len(set(batch.fingerprints(random.Random(4)))) == 2000


def test_a_small_table_gives_all_it_has_and_misses_for_the_rest() -> None:
    batch = Batch.draw(random.Random(3), stored=10, size=100)
    assert sorted(batch.hits) == list(range(10)) and len(batch.misses) == 90


def test_a_contested_fingerprint_is_owned_by_the_id_of_highest_precedence() -> None:
    batch = Batch(hits=(CONTESTED_EVERY, 7), misses=())
    owners = batch.expected_owners()
    two = [event_id_of(CONTESTED_EVERY, 1), event_id_of(CONTESTED_EVERY, 2)]
    two.sort(key=precedence, reverse=True)
    assert owners[fingerprint_of(CONTESTED_EVERY)][0] == two[0]
    assert owners[fingerprint_of(7)][0] == event_id_of(7)
    assert batch.expected_contested() == {fingerprint_of(CONTESTED_EVERY): two}


def test_the_check_fails_on_a_missing_a_wrong_or_an_extra_owner() -> None:
    batch = Batch(hits=(1, 2), misses=(MISS_BASE,))
    right = {fp: Holder(event_id=i, content=c) for fp, (i, c) in batch.expected_owners().items()}
    assert verify(batch, right, {})["owners_exact"]
    fp1, fp2 = fingerprint_of(1), fingerprint_of(2)
    missing = {fp1: right[fp1]}
    wrong = {**right, fp2: evolve(right[fp2], event_id=event_id_of(3))}
    extra = {**right, fingerprint_of(MISS_BASE): right[fp1]}
    for result in (missing, wrong, extra, {}):
        assert not verify(batch, result, {})["owners_exact"]
    assert not verify(batch, right, {fp1: []})["contested_exact"]


@pytest.fixture
def chdb(tmp_path: Path) -> Iterator[ChdbExecutor]:
    executor = ChdbExecutor(path=str(tmp_path / "chdb"))
    yield executor
    executor.close()


def test_clickhouse_stores_what_the_batches_expect(chdb: ChdbExecutor) -> None:
    stored = 3 * CONTESTED_EVERY
    chdb.execute(Statement.text("CREATE DATABASE IF NOT EXISTS bench"))
    chdb.execute(Statement.text(EVENT_FINGERPRINTS.create_sql("bench")))
    now, window = int(time.time()), 30 * 86_400
    chdb.execute(Statement.text(insert_sql("bench", 0, stored, anchor=now, spread=window - 60)))
    repository = ChdbEventRepository(executor=chdb, database="bench", window_seconds=window)
    batch = Batch(hits=(0, 1, CONTESTED_EVERY, stored - 1), misses=(stored, MISS_BASE))
    fingerprints = batch.fingerprints(random.Random(1))
    result = verify(batch, repository.owners(fingerprints), repository.contested(fingerprints))
    assert result["owners_found"] == 4 and result["owners_exact"]
    assert result["contested_found"] == 2 and result["contested_exact"]
