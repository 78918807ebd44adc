"""The Lock as an fcntl lock on a file: released by the kernel when its process dies."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from dedup.application.ports import Lock


class FileLock(Lock):
    """One holder per lock file across processes on this machine; never waits.

    flock locks belong to the open file, so a crashed run leaves no stale lock behind, and
    the file itself is left in place (deleting it would let two runs lock different files).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        # Who holds it, for an operator who finds the file; not part of the locking.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
