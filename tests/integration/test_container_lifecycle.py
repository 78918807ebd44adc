"""Every command's clients open on first use and close on its way out, through the root."""

from __future__ import annotations

from pathlib import Path

import pytest
from dedup.infrastructure.container import Container, opened
from dedup.infrastructure.settings import Settings

from tests.servers import BROKER_URL, REDIS_URL, clickhouse_url

pytestmark = pytest.mark.integration


def _open(container: Container) -> dict[str, bool]:
    """Which of the container's closable clients are open now."""
    return {
        "clickhouse": container.clickhouse_executor.initialized,
        "redis cache": container.hash_cache.providers["redis"].initialized,
        "redis filter": container.stored_filter.providers["redis"].initialized,
        "broker": container.celery_app.initialized,
    }


def test_an_embedded_command_opens_the_store_alone_and_releases_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with opened(settings) as container:
        container.migration_runner().up()
        assert _open(container) == {
            "clickhouse": True,
            "redis cache": False,
            "redis filter": False,
            "broker": False,
        }
    assert not any(_open(container).values())
    # Released: the next command in this process opens the store again (one engine at a time).
    with opened(settings) as again:
        assert again.migration_runner().up() == []


def test_a_distributed_command_closes_every_client_it_used(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        redis_url=REDIS_URL,
        broker_url=BROKER_URL,
        clickhouse_url=clickhouse_url("default"),
    )
    with opened(settings) as container:
        container.hash_cache().ping()
        container.stored_filter()
        container.dead_letters()
        container.event_repository().ping()
        assert all(_open(container).values())
    assert not any(_open(container).values())
