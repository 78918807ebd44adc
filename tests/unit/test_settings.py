"""Settings: typed, read once, and a bad value fails naming its variable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from dedup.infrastructure.settings import Settings, SettingsError


def test_with_nothing_set_the_service_runs_embedded_under_var() -> None:
    settings = Settings.load({}, dotenv=None)
    assert settings.clickhouse.startswith("chdb://")
    assert settings.clickhouse.endswith("/var/chdb")
    assert settings.redis_url == "memory://"
    assert settings.broker_url == "memory://"
    assert settings.window == timedelta(days=30)
    assert settings.cache_ttl == timedelta(hours=24)
    assert settings.retention == timedelta(days=7)
    assert settings.max_body_bytes == 1_048_576
    assert settings.max_batch == 1000


def test_values_are_parsed_into_business_types() -> None:
    settings = Settings.load(
        {
            "DEDUP_WINDOW": "2w",
            "DEDUP_CACHE_TTL": "90m",
            "DEDUP_IGNORE_FIELDS": "sent_at, retry_count,",
            "DEDUP_ID_FIELD": "message_id",
            "DEDUP_API_KEYS": "web=s1,ios=s2",
            "DEDUP_CLICKHOUSE_URL": "clickhouse://default:@127.0.0.1:9000/dedup",
        },
        dotenv=None,
    )
    assert settings.window == timedelta(weeks=2)
    assert settings.cache_ttl == timedelta(minutes=90)
    assert settings.ignore_fields == frozenset({"sent_at", "retry_count"})
    assert settings.id_field == "message_id"
    assert settings.api_keys == {"web": "s1", "ios": "s2"}
    assert settings.clickhouse == "clickhouse://default:@127.0.0.1:9000/dedup"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEDUP_WINDOW", "thirty days"),
        ("DEDUP_CACHE_TTL", "0s"),
        ("DEDUP_MAX_BATCH", "-1"),
        ("DEDUP_MAX_BODY_BYTES", "lots"),
        ("DEDUP_REDIS_URL", "http://127.0.0.1:6379"),
        ("DEDUP_BROKER_URL", "kafka://x"),
        ("DEDUP_CLICKHOUSE_URL", "postgres://x"),
        ("DEDUP_ARCHIVE_SCHEDULE", "weekly"),
        ("DEDUP_ARCHIVE_SCHEDULE", "99 * * * *"),
        ("DEDUP_API_KEYS", "web"),
        ("DEDUP_QUEUE_TYPE", "stream"),
        ("DEDUP_WINDWO", "30d"),
        ("DEDUP_CORS_ORIGINS", "app.example.com"),
        ("DEDUP_CORS_ORIGINS", "https://app.example.com/page"),
        ("DEDUP_CORS_ORIGINS", "ftp://app.example.com"),
        ("DEDUP_CORS_ORIGINS", "https://ok.example,https://"),
    ],
)
def test_a_bad_value_fails_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name}: "):
        Settings.load({name: value}, dotenv=None)


def test_a_secret_never_appears_in_an_error_or_a_repr() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.load({"DEDUP_API_KEYS": "web=topsecret,broken"}, dotenv=None)
    assert "topsecret" not in str(caught.value)
    assert "topsecret" not in repr(Settings.load({"DEDUP_API_KEYS": "web=topsecret"}, dotenv=None))


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("DEDUP_WINDOW=7d\nDEDUP_MAX_BATCH=10\nDEDUP_ID_FIELD=\n")
    settings = Settings.load({"DEDUP_MAX_BATCH": "20"}, dotenv=dotenv)
    assert settings.window == timedelta(days=7)
    assert settings.max_batch == 20
    assert settings.id_field is None


def test_the_admin_key_is_read_and_kept_out_of_the_repr() -> None:
    settings = Settings.load({"DEDUP_ADMIN_KEY": "admin-s3cret"}, dotenv=None)

    assert settings.admin_key == "admin-s3cret"
    assert "admin-s3cret" not in repr(settings)


def test_an_admin_key_that_is_also_a_write_key_fails_at_start_up() -> None:
    environ = {"DEDUP_API_KEYS": "web=shared-s3cret", "DEDUP_ADMIN_KEY": "shared-s3cret"}
    with pytest.raises(SettingsError, match="DEDUP_ADMIN_KEY") as refused:
        Settings.load(environ, dotenv=None)

    assert "shared-s3cret" not in str(refused.value)


def test_cors_origins_are_read_as_origins_and_default_to_none() -> None:
    assert Settings.load({}, dotenv=None).cors_origins == ()
    settings = Settings.load(
        {"DEDUP_CORS_ORIGINS": "https://App.Example.com, http://localhost:3000/,"}, dotenv=None
    )
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:3000")
    assert Settings.load({"DEDUP_CORS_ORIGINS": "*"}, dotenv=None).cors_origins == ("*",)
