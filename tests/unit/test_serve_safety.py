"""`dedup serve` refuses an address others can reach unless write keys or the user allow it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dedup.infrastructure.cli import main
from dedup.infrastructure.serve import anonymous_refusal, is_loopback
from dedup.infrastructure.settings import Settings


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"])
def test_loopback_addresses_are_served_without_keys(host: str) -> None:
    assert is_loopback(host)
    assert anonymous_refusal(Settings(), host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "dedup.example.com"])
def test_an_address_others_reach_needs_keys_or_an_explicit_allowance(host: str) -> None:
    assert not is_loopback(host)
    refusal = anonymous_refusal(Settings(), host)
    assert refusal is not None
    assert "DEDUP_API_KEYS" in refusal and "DEDUP_ALLOW_ANONYMOUS=true" in refusal
    assert anonymous_refusal(Settings(api_keys={"web": "secret"}), host) is None
    assert anonymous_refusal(Settings(allow_anonymous=True), host) is None


def test_the_command_exits_with_the_reason_before_opening_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in [n for n in os.environ if n.startswith("DEDUP_")]:
        monkeypatch.delenv(name)
    assert main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    assert "refusing to serve 0.0.0.0" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no store, no schema: nothing was opened


@pytest.mark.parametrize(("text", "value"), [("true", True), ("Yes", True), ("0", False)])
def test_allow_anonymous_reads_the_usual_spellings(text: str, value: bool) -> None:
    assert Settings.load({"DEDUP_ALLOW_ANONYMOUS": text}, dotenv=None).allow_anonymous is value


def test_a_misspelt_allowance_fails_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="DEDUP_ALLOW_ANONYMOUS"):
        Settings.load({"DEDUP_ALLOW_ANONYMOUS": "sure"}, dotenv=None)
