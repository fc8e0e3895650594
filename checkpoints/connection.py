"""Database connections for saver calls.

LangGraph calls the saver from a fresh worker thread pool on every invoke, and Django
connections belong to threads. With a pool configured, a connection a saver call took
is given back at the end of that call; otherwise each dead worker thread would keep
one (REFERENCE: 603 sessions for 100 invokes without this, a wedged pool with the pool
but no release, 4-6 sessions with it). The release is guarded: only a connection this
call opened, never inside a caller's `atomic` block. SQLite keeps per-thread
connections, which are cheap and hold no server slot.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from django.db import DatabaseError, InterfaceError, OperationalError, connections, transaction

R = TypeVar("R")

# A dropped connection is retried once within this deadline for idempotent operations.
RETRY_DEADLINE_S = 5.0


def _pooled(conn) -> bool:
    return conn.vendor == "postgresql" and bool(conn.settings_dict["OPTIONS"].get("pool"))


@contextmanager
def use_connection(alias: str) -> Iterator:
    """Yield Django's connection for `alias`, released afterwards if this call took it."""
    conn = connections[alias]
    took = conn.connection is None
    try:
        yield conn
    finally:
        if took and not conn.in_atomic_block and _pooled(conn):
            conn.close()


def run(alias: str, fn: Callable[..., R], *, atomic: bool = False, retry: bool = True) -> R:
    """Run `fn(cursor)` on `alias`, inside one transaction when `atomic`
    (IMMEDIATE on SQLite, so a writer waits for the lock instead of failing).

    An idempotent call that fails on a dropped connection is retried once on a fresh one.
    """
    deadline = time.monotonic() + RETRY_DEADLINE_S
    while True:
        with use_connection(alias) as conn:
            try:
                if atomic:
                    with transaction.atomic(using=alias), conn.cursor() as cur:
                        return fn(cur)
                with conn.cursor() as cur:
                    return fn(cur)
            except (OperationalError, InterfaceError) as exc:
                if not (retry and _is_disconnect(conn, exc)) or conn.in_atomic_block:
                    raise
                if time.monotonic() > deadline:
                    raise
                conn.close()
                retry = False


def _is_disconnect(conn, exc: DatabaseError) -> bool:
    if conn.vendor != "postgresql":
        return False
    raw = conn.connection
    return raw is None or getattr(raw, "closed", False) or getattr(raw, "broken", False)
