"""One frozen, typed settings object, read once per process from DEDUP_* and .env."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from attrs import Attribute, field, fields, frozen
from dotenv import dotenv_values

PREFIX = "DEDUP_"
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


class SettingsError(ValueError):
    """A DEDUP_* value is wrong; the message names the variable."""


def duration(text: str) -> timedelta:
    """`30d`, `24h`, `15m`, `90s`, `2w` or plain seconds."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"expected a positive duration like 30d, 24h, 15m or 90s, got {text!r}")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"expected a positive integer, got {text!r}")
    return value


def size_mib(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 512:
        raise ValueError(f"expected MiB from 0 (off) to 512 (Redis's largest string), got {text!r}")
    return value


_BOOLEANS = {"true": True, "1": True, "yes": True, "on": True}
_BOOLEANS |= {"false": False, "0": False, "no": False, "off": False}


def boolean(text: str) -> bool:
    """`true`/`false` (also 1/0, yes/no, on/off), in any case."""
    try:
        return _BOOLEANS[text.strip().lower()]
    except KeyError:
        raise ValueError(f"expected true or false, got {text!r}") from None


def names(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in text.split(",") if part.strip())


def key_pairs(text: str) -> dict[str, str]:
    """`name=secret,name2=secret2`; the value never appears in an error message."""
    pairs: dict[str, str] = {}
    for index, part in enumerate(p.strip() for p in text.split(",") if p.strip()):
        name, sep, secret = part.partition("=")
        if not sep or not name.strip() or not secret.strip():
            raise ValueError(f"entry {index + 1} is not name=secret")
        pairs[name.strip()] = secret.strip()
    return pairs


def origins(text: str) -> tuple[str, ...]:
    """`https://app.example.com,http://localhost:3000`, or `*` for any origin."""
    found: list[str] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part == "*":
            found.append(part)
            continue
        parts = urlsplit(part)
        if (
            parts.scheme not in {"http", "https"}
            or not parts.hostname
            or parts.path not in {"", "/"}
            or parts.query
            or parts.fragment
            or parts.username is not None
        ):
            raise ValueError(
                f"expected origins like https://app.example.com (scheme, host, optional port,"
                f" no path) separated by commas, or *, got {part!r}"
            )
        found.append(f"{parts.scheme}://{parts.netloc.lower()}")
    return tuple(found)


def url(*schemes: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        scheme = urlsplit(text).scheme
        if scheme not in schemes:
            raise ValueError(f"expected a URL with scheme {' or '.join(schemes)}, got {text!r}")
        return text

    return parse


def crontab(text: str) -> str:
    """Five crontab fields, checked by the parser that will run them."""
    from dedup.infrastructure.beat import crontab_of

    crontab_of(text)
    return text


def optional_port(text: str) -> int | None:
    value = int(text)
    if not 0 < value < 65536:
        raise ValueError(f"expected a TCP port 1-65535, got {text!r}")
    return value


def optional_name(text: str) -> str | None:
    return text.strip() or None


def choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {text!r}")
        return text

    return parse


def _env(parse: Callable[[str], Any], default: Any, *, secret: bool = False) -> Any:
    return field(default=default, metadata={"parse": parse}, repr=not secret)


@frozen
class Settings:
    """Everything configurable; field `x` is read from DEDUP_X."""

    data_dir: Path = _env(Path, Path("var"))
    clickhouse_url: str = _env(url("clickhouse", "chdb"), "")
    redis_url: str = _env(url("redis", "rediss", "memory"), "memory://")
    broker_url: str = _env(url("amqp", "amqps", "memory"), "memory://")
    backup_dir: Path | None = _env(Path, None)
    window: timedelta = _env(duration, timedelta(days=30))
    cache_ttl: timedelta = _env(duration, timedelta(hours=24))
    # The stored-fingerprint filter in Redis: MiB per generation (two live at once), 0 = off.
    filter_mib: int = _env(size_mib, 32)
    # How long a refill waits before reading ClickHouse: longer than an insert can take
    # (clickhouse-driver gives up on a reply after 300 s).
    filter_settle: timedelta = _env(duration, timedelta(seconds=330))
    retention: timedelta = _env(duration, timedelta(days=7))
    # How long a batch is retried while a backend is away before it is dead-lettered.
    retry_for: timedelta = _env(duration, timedelta(hours=24))
    # How long a worker holds one message while it waits: under RabbitMQ's consumer_timeout
    # (30 min), past which the broker would close the channel; then it is given back.
    retry_hold: timedelta = _env(duration, timedelta(minutes=5))
    ignore_fields: frozenset[str] = _env(names, frozenset())
    id_field: str | None = _env(optional_name, None)
    max_body_bytes: int = _env(positive_int, 1_048_576)
    max_batch: int = _env(positive_int, 1000)
    api_keys: dict[str, str] = _env(key_pairs, {}, secret=True)
    # Origins whose pages may post events from a browser (CORS on the ingest paths only).
    cors_origins: tuple[str, ...] = _env(origins, ())
    # Opens the admin paths (POST /admin/query, GET /) to other machines; never a write key.
    admin_key: str | None = _env(optional_name, None, secret=True)
    # Without keys, anyone who reaches the API writes events: loopback only, unless said so.
    allow_anonymous: bool = _env(boolean, False)
    archive_schedule: str = _env(crontab, "0 0 * * 1")
    queue_type: str = _env(choice("classic", "quorum"), "classic")
    clickhouse_cluster: str | None = _env(optional_name, None)
    log_level: str = _env(choice("DEBUG", "INFO", "WARNING", "ERROR"), "INFO")
    log_format: str = _env(choice("text", "json"), "text")
    migrations_dir: Path | None = _env(Path, None)  # None: the migrations the package ships
    queue_name: str = _env(str, "dedup.events")
    metrics_port: int | None = _env(optional_port, None)

    def __attrs_post_init__(self) -> None:
        if self.admin_key is not None and self.admin_key in self.api_keys.values():
            raise SettingsError(
                "DEDUP_ADMIN_KEY: it is also one of DEDUP_API_KEYS; a write key must not open"
                " the admin paths, so give the admin key a value of its own"
            )

    @property
    def clickhouse(self) -> str:
        """The repository URL; embedded under the data directory unless set."""
        return self.clickhouse_url or f"chdb://{(self.data_dir / 'chdb').resolve()}"

    @property
    def backups(self) -> Path:
        return self.backup_dir or self.data_dir / "archive"

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, *, dotenv: Path | None = Path(".env")
    ) -> Settings:
        """Read DEDUP_* from .env, then the environment (which wins); fail naming the variable."""
        source: dict[str, str] = {}
        if dotenv is not None and dotenv.is_file():
            source.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
        source.update(os.environ if environ is None else environ)
        known = {PREFIX + a.name.upper() for a in fields(cls)}
        unknown = sorted(k for k in source if k.startswith(PREFIX) and k not in known)
        if unknown:
            raise SettingsError(
                f"{unknown[0]}: unknown setting (known: {', '.join(sorted(known))})"
            )
        # An empty value means "not set", as in a .env copied from .env.example.
        values = {
            a.name: _parse(a, source[PREFIX + a.name.upper()])
            for a in fields(cls)
            if source.get(PREFIX + a.name.upper(), "").strip()
        }
        return cls(**values)


def _parse(attribute: Attribute[Any], text: str) -> Any:
    name = PREFIX + attribute.name.upper()
    try:
        return attribute.metadata["parse"](text)
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None
