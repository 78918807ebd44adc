"""The composition root: the one place that knows every concrete class.

Declarations only (what they are wired with lives in wiring.py); it is as long as the list of
providers, which is the point of having one root.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dedup.adapters.outbound.celery_queue import CeleryQueue
from dedup.adapters.outbound.clickhouse import (
    ChdbEventRepository,
    ClickHouseEventRepository,
    ClickHouseInspector,
    ClickHouseStoreOverview,
    ClickHouseStoreQuery,
    MigrationRunner,
    database_from_url,
    executor_from_url,
)
from dedup.adapters.outbound.clickhouse.late_journal import ClickHouseLateJournal
from dedup.adapters.outbound.clickhouse.partition_store import ClickHousePartitionStore
from dedup.adapters.outbound.clickhouse.replicas import EveryReplica
from dedup.adapters.outbound.dead_letters import CeleryDeadLetters
from dedup.adapters.outbound.file_archiver import FileArchiver
from dedup.adapters.outbound.file_lock import FileLock
from dedup.adapters.outbound.http_store_query import HttpStoreQuery
from dedup.adapters.outbound.memory_hash_cache import MemoryHashCache
from dedup.adapters.outbound.memory_queue import MemoryQueue
from dedup.adapters.outbound.no_stored_filter import NoStoredFilter
from dedup.adapters.outbound.redis_hash_cache import RedisHashCache
from dedup.adapters.outbound.redis_outage import RedisOutage
from dedup.adapters.outbound.redis_stored_filter import RedisStoredFilter
from dedup.adapters.outbound.timed_event_repository import TimedEventRepository
from dedup.application.accept_events import AcceptEvents
from dedup.application.archive_events import ArchiveEvents
from dedup.application.deduplicate_event import DeduplicateEvent
from dedup.application.describe_store import DescribeStore
from dedup.application.progress import NoProgress
from dedup.application.purge_fingerprints import PurgeFingerprints
from dedup.application.refill_stored_filter import RefillStoredFilter
from dedup.application.restore_events import RestoreEvents
from dedup.application.run_query import RunQuery
from dedup.application.run_retention import RunRetention
from dedup.infrastructure.beat import crontab_of
from dedup.infrastructure.celery_app import create_celery_app
from dedup.infrastructure.clock import utc_now
from dedup.infrastructure.embedded_scheduler import RetentionScheduler
from dedup.infrastructure.ids import event_id_source
from dedup.infrastructure.settings import Settings
from dedup.infrastructure.wiring import (
    closing,
    distributed_hooks,
    embedded_hooks,
    filter_kind,
    migrations_folder,
    retention_job,
    scheme,
    seconds,
)
from dependency_injector import containers, providers


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clickhouse_url = providers.Callable(lambda s: s.clickhouse, settings)
    clickhouse_cluster = providers.Callable(lambda s: s.clickhouse_cluster, settings)
    clickhouse_executor = providers.Resource(
        closing, providers.Callable(executor_from_url, clickhouse_url, cluster=clickhouse_cluster)
    )
    clickhouse_database = providers.Callable(database_from_url, clickhouse_url)
    # On a cluster, what the lookups that decide exactly-once read: every replica of a shard.
    clickhouse_replicas = providers.Selector(
        providers.Callable(lambda s: "cluster" if s.clickhouse_cluster else "server", settings),
        cluster=providers.Resource(
            closing,
            providers.Callable(EveryReplica.from_url, clickhouse_url, cluster=clickhouse_cluster),
        ),
        server=providers.Object(None),
    )
    window_seconds = providers.Callable(seconds, settings.provided.window)
    event_repository = providers.Selector(
        providers.Callable(scheme, clickhouse_url),
        clickhouse=providers.Singleton(
            ClickHouseEventRepository,
            executor=clickhouse_executor,
            database=clickhouse_database,
            window_seconds=window_seconds,
            cluster=clickhouse_cluster,
            replicas=clickhouse_replicas,
        ),
        chdb=providers.Singleton(
            ChdbEventRepository,
            executor=clickhouse_executor,
            database=clickhouse_database,
            window_seconds=window_seconds,
        ),
    )
    migration_runner = providers.Factory(
        MigrationRunner,
        executor=clickhouse_executor,
        directory=providers.Callable(migrations_folder, settings.provided.migrations_dir),
        database=clickhouse_database,
        cluster=clickhouse_cluster,
    )
    inspector = providers.Factory(
        ClickHouseInspector, executor=clickhouse_executor, database=clickhouse_database
    )
    # Its own connection: a slow query never holds up the writer or a readiness probe.
    query_executor = providers.Resource(
        closing,
        providers.Callable(executor_from_url, clickhouse_url, database=clickhouse_database),
    )
    store_query = providers.Singleton(ClickHouseStoreQuery, executor=query_executor)
    run_query = providers.Factory(RunQuery, store=store_query)
    # The same through a running service (called with store__base_url=...), which holds it.
    served_run_query = providers.Factory(
        RunQuery,
        store=providers.Factory(HttpStoreQuery, admin_key=settings.provided.admin_key),
    )

    store_overview = providers.Singleton(
        ClickHouseStoreOverview, executor=clickhouse_executor, database=clickhouse_database
    )
    describe_store = providers.Factory(
        DescribeStore, store=store_overview, clock=providers.Object(utc_now)
    )

    cache_ttl_seconds = providers.Callable(seconds, settings.provided.cache_ttl)
    # One per process: the claims and the filter find Redis away, and back, together.
    redis_outage = providers.Singleton(RedisOutage)
    hash_cache = providers.Selector(
        providers.Callable(scheme, settings.provided.redis_url),
        redis=providers.Resource(
            closing,
            providers.Callable(
                RedisHashCache.from_url,
                settings.provided.redis_url,
                ttl_seconds=cache_ttl_seconds,
                outage=redis_outage,
            ),
        ),
        memory=providers.Singleton(MemoryHashCache, ttl_seconds=cache_ttl_seconds),
    )

    stored_filter = providers.Selector(
        providers.Callable(filter_kind, settings),
        redis=providers.Resource(
            closing,
            providers.Callable(
                RedisStoredFilter.from_url,
                settings.provided.redis_url,
                window=settings.provided.window,
                size_bytes=providers.Callable(lambda s: s.filter_mib << 20, settings),
                outage=redis_outage,
            ),
        ),
        none=providers.Singleton(NoStoredFilter),
    )
    refill_stored_filter = providers.Factory(
        RefillStoredFilter,
        refill=stored_filter,
        history=event_repository,
        settle=settings.provided.filter_settle,
    )

    timed_event_repository = providers.Singleton(TimedEventRepository, inner=event_repository)
    deduplicate_event = providers.Factory(
        DeduplicateEvent, cache=hash_cache, events=timed_event_repository, seen=stored_filter
    )

    celery_app = providers.Resource(
        closing,
        providers.Callable(
            create_celery_app,
            settings.provided.broker_url,
            queue_name=settings.provided.queue_name,
            dead_letter_queue=providers.Callable("{}.dead".format, settings.provided.queue_name),
            dead_letter_exchange=providers.Callable("{}.dlx".format, settings.provided.queue_name),
            quorum=providers.Callable("quorum".__eq__, settings.provided.queue_type),
        ),
    )
    broker_kind = providers.Callable(scheme, settings.provided.broker_url)
    queue = providers.Selector(
        broker_kind,
        amqp=providers.Resource(closing, providers.Callable(CeleryQueue, celery_app)),
        memory=providers.Singleton(MemoryQueue, handler=deduplicate_event.provided.execute),
    )
    dead_letters = providers.Singleton(CeleryDeadLetters, celery_app)

    accept_events = providers.Singleton(
        AcceptEvents,
        queue=queue,
        clock=providers.Object(utc_now),
        new_id=providers.Callable(event_id_source),
        ignore_fields=settings.provided.ignore_fields,
        id_field=settings.provided.id_field,
    )

    partition_store = providers.Singleton(
        ClickHousePartitionStore,
        executor=clickhouse_executor,
        database=clickhouse_database,
        cluster=clickhouse_cluster,
    )
    late_journal = providers.Singleton(
        ClickHouseLateJournal,
        executor=clickhouse_executor,
        database=clickhouse_database,
        cluster=clickhouse_cluster,
    )
    archiver = providers.Singleton(FileArchiver, settings.provided.backups)
    archive_lock = providers.Factory(
        FileLock, providers.Callable(lambda s: s.data_dir / "archive.lock", settings)
    )
    progress = providers.Object(NoProgress())  # a terminal command overrides it with a bar
    archive_events = providers.Factory(
        ArchiveEvents,
        store=partition_store,
        archiver=archiver,
        late=late_journal,
        clock=providers.Object(utc_now),
        retention=settings.provided.retention,
        progress=progress,
        drop_delay=settings.provided.archive_drop_delay,
    )
    purge_fingerprints = providers.Factory(
        PurgeFingerprints,
        store=partition_store,
        clock=providers.Object(utc_now),
        window=settings.provided.window,
        progress=progress,
    )
    run_retention = providers.Factory(
        RunRetention, archive=archive_events, purge=purge_fingerprints, lock=archive_lock
    )
    restore_events = providers.Factory(
        RestoreEvents,
        archiver=archiver,
        target=partition_store,
        seen=stored_filter,
        progress=progress,
    )

    retention_scheduler = providers.Singleton(
        RetentionScheduler,
        schedule=providers.Callable(crontab_of, settings.provided.archive_schedule),
        job=providers.Callable(retention_job, run_retention.provider),
        state_file=providers.Callable(lambda s: s.data_dir / "retention-schedule", settings),
    )
    api_hooks = providers.Selector(
        broker_kind,
        memory=providers.Callable(
            embedded_hooks,
            queue=queue,
            open_store=event_repository.provided.ping,
            scheduler=retention_scheduler,
        ),
        amqp=providers.Callable(distributed_hooks, queue=queue),
    )


@contextmanager
def opened(settings: Settings) -> Iterator[Container]:
    """The composition root of one command: every client it opened is closed on the way out.

    Clients open lazily, when a command first needs them (a Selector's other branch never
    opens); shutdown_resources() closes exactly those that did.
    """
    container = Container(settings=settings)
    try:
        yield container
    finally:
        close_resources(container)


def close_resources(container: Container) -> None:
    """Close every client the container opened (all synchronous: no event loop needed)."""
    if container.shutdown_resources() is not None:
        raise TypeError("an async Resource was added to the container: close it on its loop")
