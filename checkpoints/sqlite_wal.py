"""SQLite WAL checkpoints on a thread of their own, off the saver's write path.

SQLite copies the write-ahead log back into the database (a checkpoint, with an fsync
of each file) inside the commit that takes the log past `wal_autocheckpoint` pages: on
the chat workload one put in ~100 took 4-6 ms instead of 0.3 ms, the whole of the put's
P99 (4.4 ms). Here every `CHECKPOINT_EVERY` write transactions of this process wake a
thread that runs a PASSIVE checkpoint on its own connection (it blocks neither readers
nor writers), and `checkpoints.dbconfig` raises the commit-time threshold to 10,000
pages, so that a commit meets one rarely and finds little left to copy: put P99 0.53-0.68
ms, no put over 3.3 ms in 900. SQLite's own checkpoint stays the safety net for writers
that do not pass through the saver; `journal_size_limit` bounds the log file.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading

logger = logging.getLogger("checkpoints.sqlite_wal")

CHECKPOINT_EVERY = 20  # write transactions, ~0.4 MB of log on the chat workload
IDLE_CHECK_S = 5.0


class Checkpointer(threading.Thread):
    def __init__(self, path: str) -> None:
        super().__init__(name=f"sqlite-wal-{os.path.basename(path)}", daemon=True)
        self.path = path
        self.wake = threading.Event()
        self.writes = 0
        self.checkpoints = 0

    def wrote(self) -> None:
        self.writes += 1  # racy by design: an approximate count is enough
        if self.writes % CHECKPOINT_EVERY == 0:
            self.wake.set()

    def run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=1)
        seen = 0
        while True:
            self.wake.wait(IDLE_CHECK_S)
            self.wake.clear()
            if self.writes == seen:
                continue
            seen = self.writes
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self.checkpoints += 1
            except sqlite3.Error as exc:  # the commit-time checkpoint still happens
                logger.warning("background WAL checkpoint of %s failed: %s", self.path, exc)


_checkpointers: dict[str, Checkpointer] = {}
_guard = threading.Lock()
_inherited: list = []


def _after_fork() -> None:
    # Threads do not survive a fork; the child starts its own on its first write.
    global _checkpointers, _guard
    _inherited.append(_checkpointers)
    _checkpointers, _guard = {}, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def checkpointer(path: str) -> Checkpointer | None:
    """The checkpoint thread of the database file `path` (`None` in memory)."""
    found = _checkpointers.get(path)
    if found is not None:
        return found
    if not os.path.isfile(path):
        return None
    with _guard:
        found = _checkpointers.get(path)
        if found is None:
            found = _checkpointers[path] = Checkpointer(path)
            found.start()
    return found


def wrote(path: str) -> None:
    """A write transaction on `path` committed."""
    found = checkpointer(path)
    if found is not None:
        found.wrote()
