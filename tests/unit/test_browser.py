"""tests/browser.py finds the browser where scripts/ensure-chromium.sh put it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser import chromium_path

SCRIPT = Path(__file__).parents[2] / "scripts" / "ensure-chromium.sh"


def test_chromium_is_where_the_chromium_variable_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHROMIUM", "/opt/chromium/chrome")
    assert chromium_path() == Path("/opt/chromium/chrome")


@pytest.mark.parametrize("unset", [True, False], ids=["unset", "empty"])
def test_without_the_variable_it_is_the_one_the_install_script_installs(
    monkeypatch: pytest.MonkeyPatch, unset: bool
) -> None:
    if unset:
        monkeypatch.delenv("CHROMIUM", raising=False)
    else:
        monkeypatch.setenv("CHROMIUM", "")
    default = re.search(r"\$\{CHROMIUM:-([^}]+)\}", SCRIPT.read_text())

    assert default is not None, "ensure-chromium.sh no longer reads ${CHROMIUM:-default}"
    assert chromium_path() == Path(default.group(1))
