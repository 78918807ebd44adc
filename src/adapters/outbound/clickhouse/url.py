"""Connection URLs: clickhouse://user:password@host:port/database and chdb://path[?database=]."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from attrs import frozen
from dedup.adapters.outbound.clickhouse.chdb_executor import ChdbExecutor
from dedup.adapters.outbound.clickhouse.executor import Executor
from dedup.adapters.outbound.clickhouse.server_executor import ServerExecutor

DEFAULT_DATABASE = "dedup"


@frozen
class ServerUrl:
    host: str
    port: int
    user: str
    password: str
    database: str


@frozen
class ChdbUrl:
    path: str
    database: str


def parse_server_url(url: str) -> ServerUrl:
    parts = urlsplit(url)
    if parts.scheme != "clickhouse":
        raise ValueError(f"not a clickhouse:// URL: {url!r}")
    return ServerUrl(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 9000,
        user=unquote(parts.username or "default"),
        password=unquote(parts.password or ""),
        database=unquote(parts.path.lstrip("/")) or DEFAULT_DATABASE,
    )


def parse_chdb_url(url: str) -> ChdbUrl:
    """`chdb:///abs/path` is absolute, `chdb://rel/path` relative to the working directory."""
    if not url.startswith("chdb://"):
        raise ValueError(f"not a chdb:// URL: {url!r}")
    path, _, query = url.removeprefix("chdb://").partition("?")
    if not path:
        raise ValueError(f"a chdb URL needs a path: {url!r}")
    database = parse_qs(query).get("database", [DEFAULT_DATABASE])[0]
    return ChdbUrl(path=unquote(path), database=database)


def server_executor_from_url(url: str, *, database: str = "default") -> ServerExecutor:
    parsed = parse_server_url(url)
    return ServerExecutor(
        host=parsed.host,
        port=parsed.port,
        user=parsed.user,
        password=parsed.password,
        database=database,
    )


def chdb_executor_from_url(url: str, *, database: str = "default") -> ChdbExecutor:
    return ChdbExecutor(path=parse_chdb_url(url).path, database=database)


def executor_from_url(url: str, *, database: str = "default") -> Executor:
    """The executor the URL's scheme names; a name a statement leaves unqualified is `database`'s.

    The writer stays in "default", which exists before any migration made the URL's database.
    """
    if url.startswith("chdb://"):
        return chdb_executor_from_url(url, database=database)
    return server_executor_from_url(url, database=database)


def database_from_url(url: str) -> str:
    if url.startswith("chdb://"):
        return parse_chdb_url(url).database
    return parse_server_url(url).database
