"""The browser the browser tests drive: Debian's chromium, never a download of Playwright's.

scripts/ensure-chromium.sh (run by `make test`) installs it; both read CHROMIUM for another one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
)


def chromium_path() -> Path:
    """$CHROMIUM if set, else /usr/bin/chromium: the same browser ensure-chromium.sh installs."""
    return Path(os.environ.get("CHROMIUM") or "/usr/bin/chromium")


def launch_chromium(playwright: Playwright) -> Browser:
    """Headless chromium from chromium_path(); the test fails (never skips) when it is missing."""
    path = chromium_path()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{path} is missing: run scripts/ensure-chromium.sh (make test does)")
    return playwright.chromium.launch(
        executable_path=str(path), headless=True, args=list(CHROMIUM_ARGS)
    )
