"""Asyncio connections for the saver's a-methods on PostgreSQL.

Run on worker threads, every a-method call hopped to a thread and back, and sixteen
concurrent tasks fought the event loop for the GIL: a 3-node graph under `ainvoke`
took 1.16x `AsyncPostgresSaver`'s time. On psycopg's own async connections the
statements are the same and the event loop waits on the socket instead.

One pool per alias and event loop (an async connection waits through the loop it is
used from), as large as the alias's Django pool unless `CHECKPOINTS_ASYNC_POOL_SIZE`
says otherwise, opened lazily with the alias's connection settings; a connection idle
for `IDLE_CLOSE_S` is closed (all but one). Connections run in autocommit: every hot
statement of the saver is a single statement, atomic on its own. A loop that has closed (`asyncio.run()`
returned, a test's loop ended) can no longer run its pool's close; the idle
connections of such pools are closed directly whenever another pool opens, and
`close_all()` closes every pool (tests call it before the test database is dropped).
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from django.db import connections
from psycopg import sql as pgsql

from .connection import NEVER_BY_COUNT, RETRY_DEADLINE_S, pool_size
from .sql import numbered
from .tiers import setting

R = TypeVar("R")

ACQUIRE_TIMEOUT_S = 10.0
IDLE_CLOSE_S = 600.0
DEFAULT_SIZE = 16  # for an alias without a Django pool


class PoolTimeout(psycopg.OperationalError):
    """Every connection of the pool stayed busy for `ACQUIRE_TIMEOUT_S`."""


class LoopPool:
    """The async connections of one alias on one event loop."""

    def __init__(self, alias: str, loop: asyncio.AbstractEventLoop) -> None:
        conn = connections[alias]
        params = conn.get_connection_params()
        params.pop("cursor_factory", None)  # Django's sync cursor class
        self.role = conn.settings_dict["OPTIONS"].get("assume_role")
        self.kwargs = {**params, "autocommit": True, "prepare_threshold": NEVER_BY_COUNT}
        self.alias = alias
        self.max_size = int(setting("CHECKPOINTS_ASYNC_POOL_SIZE", 0)) or pool_size(conn.settings_dict) or DEFAULT_SIZE
        self.loop_ref = weakref.ref(loop)
        self.idle: list[psycopg.AsyncConnection] = []  # most recently used last
        self.idle_since: dict[int, float] = {}
        self.size = 0  # connections open: idle and lent
        self.waiters: collections.deque[asyncio.Future] = collections.deque()
        self.closed = False

    @property
    def dead(self) -> bool:
        loop = self.loop_ref()
        return loop is None or loop.is_closed()

    async def acquire(self) -> psycopg.AsyncConnection:
        deadline = time.monotonic() + ACQUIRE_TIMEOUT_S
        while True:
            while self.idle:
                conn = self.idle.pop()
                self.idle_since.pop(id(conn), None)
                if not conn.closed:
                    return conn
                self.size -= 1
            if self.size < self.max_size:
                self.size += 1
                try:
                    return await self._connect()
                except BaseException:
                    self.size -= 1
                    self._wake()
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, max(0.0, deadline - time.monotonic()))
            except BaseException as exc:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken just as it gave up: pass the turn on
                if isinstance(exc, TimeoutError):
                    raise PoolTimeout(
                        f"all {self.max_size} async connections of database {self.alias!r} stayed busy "
                        f"for {ACQUIRE_TIMEOUT_S:.0f} s"
                    ) from None
                raise
            finally:
                if waiter in self.waiters:
                    self.waiters.remove(waiter)

    async def _connect(self) -> psycopg.AsyncConnection:
        conn = await psycopg.AsyncConnection.connect(**self.kwargs)
        if self.role:
            await conn.execute(pgsql.SQL("SET ROLE {}").format(pgsql.Identifier(self.role)))
        return conn

    def release(self, conn: psycopg.AsyncConnection, *, discard: bool = False) -> None:
        idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        if discard or self.closed or conn.closed or not idle:
            conn.pgconn.finish()
            self.size -= 1
        else:
            self.idle.append(conn)
            self.idle_since[id(conn)] = time.monotonic()
            self._close_long_idle()
        self._wake()

    def _close_long_idle(self) -> None:
        cutoff = time.monotonic() - IDLE_CLOSE_S
        while len(self.idle) > 1 and self.idle_since.get(id(self.idle[0]), cutoff) <= cutoff:
            stale = self.idle.pop(0)
            self.idle_since.pop(id(stale), None)
            stale.pgconn.finish()
            self.size -= 1

    def _wake(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        """Close the idle connections (a call still running keeps its own until it ends)."""
        self.closed = True
        idle, self.idle = self.idle, []
        self.idle_since.clear()
        for conn in idle:
            conn.pgconn.finish()
            self.size -= 1


_pools: dict[tuple[str, int], LoopPool] = {}
# A forked child must not close its parent's sessions (libpq would say goodbye on the
# shared socket): it forgets the pools but keeps the objects alive.
_inherited: list[dict] = []


def _after_fork() -> None:
    global _pools
    _inherited.append(_pools)
    _pools = {}


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _pool(alias: str) -> LoopPool:
    loop = asyncio.get_running_loop()
    key = (alias, id(loop))
    pool = _pools.get(key)
    if pool is not None and pool.loop_ref() is loop:
        return pool
    for other_key, other in list(_pools.items()):
        if other.dead or other_key == key:
            other.close()
            del _pools[other_key]
    pool = _pools[key] = LoopPool(alias, loop)
    return pool


def close_loop_pool(alias: str) -> None:
    """Close `alias`'s pool of the running loop (`async with saver:` on exit)."""
    pool = _pools.pop((alias, id(asyncio.get_running_loop())), None)
    if pool is not None:
        pool.close()


def close_all(alias: str | None = None) -> None:
    """Close the idle connections of every loop's pool (of `alias`, or all)."""
    for key, pool in list(_pools.items()):
        if alias is None or key[0] == alias:
            pool.close()
            del _pools[key]


async def arun(alias: str, fn: Callable[[psycopg.AsyncConnection], Awaitable[R]], *, retry: bool = True) -> R:
    """`await fn(connection)` on a connection of `alias`'s pool for the running loop,
    with errors as Django's (`django.db.OperationalError`, ...), as `run` gives them.

    An idempotent call that fails on a dropped connection is retried on another, as
    `checkpoints.connection.run` does, within `RETRY_DEADLINE_S`.
    """
    pool = _pool(alias)
    deadline = time.monotonic() + RETRY_DEADLINE_S
    attempts = pool.max_size + 1 if retry else 0
    while True:
        with connections[alias].wrap_database_errors:
            conn = await pool.acquire()
        try:
            with connections[alias].wrap_database_errors:
                result = await fn(conn)
        except BaseException as exc:
            broken = conn.closed or conn.broken
            pool.release(conn, discard=broken)
            disconnect = broken and isinstance(exc.__cause__ or exc, psycopg.OperationalError)
            if not disconnect or attempts <= 0 or time.monotonic() > deadline:
                raise
            attempts -= 1
            continue
        pool.release(conn)
        return result


async def fetch(alias: str, sql: str, params: list[Any], *, prepared: bool, one: bool = False) -> Any:
    """Rows of one statement (the first row with `one`)."""

    query = numbered(sql)

    async def go(conn: psycopg.AsyncConnection) -> Any:
        async with psycopg.AsyncRawCursor(conn) as cur:
            await cur.execute(query, params, prepare=prepared, binary=True)
            return await (cur.fetchone() if one else cur.fetchall())

    return await arun(alias, go)
