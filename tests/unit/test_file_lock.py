"""FileLock: one holder across processes, freed when the holder exits or dies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dedup.adapters.outbound.file_lock import FileLock

HOLD = """
import sys, time
from pathlib import Path
from dedup.adapters.outbound.file_lock import FileLock
lock = FileLock(Path(sys.argv[1]))
print("held" if lock.acquire() else "busy", flush=True)
sys.stdin.readline()
"""


def test_a_second_process_cannot_take_a_held_lock_and_can_once_the_first_exits(
    tmp_path: Path,
) -> None:
    path = tmp_path / "archive.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert FileLock(path).acquire() is False
    finally:
        holder.kill()  # as a crash would: the kernel frees the lock
        holder.wait()
    assert FileLock(path).acquire() is True


def test_release_lets_another_holder_in(tmp_path: Path) -> None:
    first, second = FileLock(tmp_path / "l"), FileLock(tmp_path / "l")
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()
