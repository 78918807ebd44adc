"""Where the suites find the servers: on this machine by default, elsewhere by environment.

compose.yaml's `test` service points these at its own containers; `make test` leaves them
unset and the suites use the servers scripts/ensure-services.sh starts on loopback.
"""

from __future__ import annotations

import os

CLICKHOUSE_URL = os.environ.get("TEST_CLICKHOUSE_URL", "clickhouse://default:@127.0.0.1:9000/")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BROKER_URL = os.environ.get("TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
# RabbitMQ's management API, for a broker rabbitmqctl cannot reach (another container).
RABBITMQ_API_URL = os.environ.get("TEST_RABBITMQ_API_URL") or None


def clickhouse_url(database: str, *, server: str = CLICKHOUSE_URL) -> str:
    """The URL naming `database` on `server` (the tests' ClickHouse unless told another)."""
    return f"{server.rstrip('/')}/{database}"
