"""Polling for end-to-end tests; the processes themselves start through bench/processes.py."""

from __future__ import annotations

from tests.waiting import wait_until

__all__ = ["wait_until"]
