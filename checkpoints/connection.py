"""Database connections for saver calls.

LangGraph calls the saver from a fresh worker thread pool on every invoke, and Django
connections belong to threads. With a pool configured, a connection a saver call took
is given back at the end of that call; otherwise each dead worker thread would keep
one (REFERENCE: 603 sessions for 100 invokes without this, a wedged pool with the pool
but no release, 4-6 sessions with it). The release is guarded: only a connection this
call opened, never inside a caller's `atomic` block. The hot statements of such a
thread skip Django's connection object and run on one borrowed from the same pool, as
`PostgresSaver` borrows from its own: 0.35 ms less per 3-node invoke. On SQLite a
thread without a connection of its own borrows one of the process's idle ones for the
call: opening one (Django registers ~40 SQL functions on it) took 0.6-1.2 ms, once or
twice per invoke. Its hot statements run on that connection directly, without Django's
connect(), transaction and cursor, and so do those of a thread that holds a connection,
outside an `atomic` block (inside one they are part of the caller's transaction): on a
worker thread a put took 0.73 ms through them and takes 0.56 (`SqliteSaver`'s 0.43), a
put_writes 0.51 and 0.37, a get_tuple 0.68 and 0.61 (medians of six interleaved rounds).

SQLite lets one transaction write at a time, and a writer that finds the database
locked sleeps in SQLite's busy handler (1, 2, 5, 10 ms...) before it looks again: a
graph's put and its writes from LangGraph's background thread waited 1-3 ms for each
other that way. Writers of one process queue on a lock per database file instead, so
the next one starts the moment the last commits; other processes still meet the busy
timeout.

The saver's hot statements run as server-side prepared statements on PostgreSQL
(`prepared=True`): Django binds parameters on the client, so the server would plan a
put's upsert afresh on every call, which costs more than executing it (0.25 ms of
0.4 ms). Prepared statements live on the pooled connection and survive its return to
the pool. A PgBouncer in transaction mode older than 1.21 cannot keep them: set
`CHECKPOINTS_PREPARED_STATEMENTS = False` there.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import Any, TypeVar

from django.db import InterfaceError, OperationalError, connections, transaction
from django.db.backends.signals import connection_created

from . import sqlite_wal

R = TypeVar("R")
D = TypeVar("D")

# Calls that failed on a dropped connection are retried within this deadline (idempotent operations).
RETRY_DEADLINE_S = 5.0


def _pooled(conn) -> bool:
    return conn.vendor == "postgresql" and bool(conn.settings_dict["OPTIONS"].get("pool"))


@contextmanager
def use_connection(alias: str) -> Iterator:
    """Yield Django's connection for `alias`, released afterwards if this call took it."""
    conn = connections[alias]
    took = conn.connection is None
    if took and conn.vendor == "sqlite" and not conn.in_atomic_block:
        with _borrowed_sqlite(alias, conn):
            yield conn
        return
    if took and _pooled(conn):
        _most_recent_first(conn.pool)  # Django's connect() takes one from it next
    try:
        yield conn
    finally:
        if took and not conn.in_atomic_block and _pooled(conn):
            conn.close()


_idle_sqlite: dict[str, list] = {}
_idle_sqlite_guard = threading.Lock()
IDLE_SQLITE_PER_ALIAS = 16
# How long a worker thread waits for its SQLite turn (`_run_on_idle_sqlite`) before it
# goes ahead on a connection of its own. At 50 ms, 8 threads calling at once escaped it
# in 2 runs of 21; at 0.5 s in none of 25.
TURN_WAIT_S = 0.5


def _take_idle_sqlite(alias: str):
    """One of the process's idle SQLite connections of `alias`, or `None`."""
    with _idle_sqlite_guard:
        idle = _idle_sqlite.setdefault(alias, [])
        return idle.pop() if idle else None


def _park_idle_sqlite(alias: str, raw, reusable: bool) -> None:
    """Give `raw` back to the idle ones (closed when not `reusable` or past the limit)."""
    reusable = reusable and not raw.in_transaction
    with _idle_sqlite_guard:
        idle = _idle_sqlite.setdefault(alias, [])
        if reusable and len(idle) < IDLE_SQLITE_PER_ALIAS:
            idle.append(raw)
            return
    raw.close()


def _run_on_idle_sqlite(alias: str, conn, fn: Callable[..., R], atomic: bool) -> R:
    """Run `fn(cursor)` on one of the process's idle SQLite connections of `alias`
    (opened as Django opens one when there is none), and park the connection again.

    Threads take turns, so they share one connection, as `SqliteSaver` shares its own.
    With a connection each, 4 and 16 writer threads made 1,441-1,534 and 1,168-1,348
    steps/s against `SqliteSaver`'s 1,510-1,598 and 1,358-1,500; taking turns, they
    make 1,909-2,119 and 1,823-2,054. Readers alone taking turns gained nothing. A turn
    lasts well under a millisecond, unless its holder is waiting for another process's
    write (up to the busy timeout, 30 s): a thread that waited `TURN_WAIT_S` goes ahead
    on a connection of its own, as every thread did before."""
    with _held(_lock_for("turn", alias, _turn), TURN_WAIT_S):
        raw = _take_idle_sqlite(alias)
        if raw is None:
            raw = conn.get_new_connection(conn.get_connection_params())
            raw.isolation_level = None  # autocommit, as Django's connect() leaves it
        try:
            return _run_on_raw_sqlite(conn, raw, fn, atomic)
        finally:
            _park_idle_sqlite(alias, raw, reusable=True)


def _turn() -> threading.Semaphore:
    # A semaphore, not a lock: with 4 and 16 threads a `threading.Lock` or `RLock` as
    # the turn gained nothing (1,579 and 1,369 steps/s), a semaphore 1,999-2,044 and
    # 1,823-1,937. (Its waiters each sleep on a lock of their own and are woken one by
    # one; why that matters this much here was not pinned down.) Not reentrant: the
    # four hot calls that take it run statements on their cursor and nothing else.
    return threading.Semaphore(1)


def _run_on_raw_sqlite(conn, raw, fn: Callable[..., R], atomic: bool) -> R:
    """`fn(cursor)` on the sqlite3 connection `raw` (in autocommit), in a transaction
    of `conn`'s mode when `atomic`."""
    cur = raw.cursor(_qmark_cursor_class())
    try:
        if not atomic:
            return fn(cur)
        mode = conn.settings_dict["OPTIONS"].get("transaction_mode") or ""
        with _sqlite_writer(conn):
            cur.execute(f"BEGIN {mode}")
            try:
                result = fn(cur)
                cur.execute("COMMIT")
            except BaseException:
                if raw.in_transaction:
                    raw.rollback()
                raise
        return result
    finally:
        cur.close()


@cache
def _qmark_cursor_class():
    from django.db.backends.sqlite3.base import SQLiteCursorWrapper

    from .sql import qmarked

    class QmarkCursor(SQLiteCursorWrapper):
        # Django converts each statement's placeholders with a regular expression on
        # every execute; the saver's hot statements are few and long.
        def convert_query(self, query, *, param_names=None):
            if param_names is None:
                return qmarked(query)
            return super().convert_query(query, param_names=param_names)

    return QmarkCursor


@contextmanager
def _borrowed_sqlite(alias: str, conn) -> Iterator[None]:
    """Give this thread's unconnected `conn` one of the process's idle SQLite
    connections of `alias` for the call, and take it back afterwards. Django's own
    `connect()` runs (state, `connection_created`), only without opening a file;
    `conn` stays the thread's, with its execute wrappers and query log."""
    raw = _take_idle_sqlite(alias)
    if raw is not None:
        conn.get_new_connection = lambda params: raw
    try:
        conn.connect()
    finally:
        conn.__dict__.pop("get_new_connection", None)
    try:
        yield
    finally:
        raw, conn.connection = conn.connection, None
        if raw is not None:
            _park_idle_sqlite(alias, raw, reusable=not conn.in_atomic_block)


# Django turns psycopg's preparing off (threshold None), which refuses even an explicit
# `prepare=True`. A threshold no query reaches prepares only what asks to be.
NEVER_BY_COUNT = 2**31


@cache
def _prepared_cursor_class():
    import psycopg

    from .sql import numbered

    class PreparedCursor(psycopg.RawCursor):
        # Results in binary: a page of blobs arrives as bytes rather than as hex text
        # twice the size (list(limit=10) -14%, get_tuple -10%), as PostgresSaver reads.
        def execute(self, query, params=None, *, prepare=True, binary=True):
            if params is not None:
                query = numbered(query)
            return super().execute(query, params, prepare=prepare, binary=binary)

    return PreparedCursor


def _cursor(conn, prepared: bool):
    if not (prepared and conn.vendor == "postgresql"):
        return conn.cursor()
    conn.ensure_connection()
    conn.validate_thread_sharing()
    if conn.connection.prepare_threshold is None:
        conn.connection.prepare_threshold = NEVER_BY_COUNT
    raw = _prepared_cursor_class()(conn.connection)
    if conn.queries_logged or conn.execute_wrappers or conn.in_atomic_block:
        # Django's own wrapping: execute wrappers, debug query log, broken transactions.
        return conn.make_debug_cursor(raw) if conn.queries_logged else conn.make_cursor(raw)
    return raw  # `run` translates its errors into Django's


def run(
    alias: str, fn: Callable[..., R], *, atomic: bool = False, retry: bool = True, prepared: bool = False
) -> R:
    """Run `fn(cursor)` on `alias`, inside one transaction when `atomic`
    (IMMEDIATE on SQLite, so a writer waits for the lock instead of failing).
    With `prepared`, each statement on PostgreSQL is bound and prepared on the server:
    one statement per `execute`, placeholders only where a value may stand. On SQLite
    such a call from a thread without a connection of its own runs on an idle raw one.

    An idempotent call that fails on a dropped connection is retried on a fresh one,
    within `RETRY_DEADLINE_S`. After a server restart every idle pooled connection is
    dead, and each attempt discards one, so a call may need as many attempts as the pool
    has connections (plus one).
    """
    deadline = time.monotonic() + RETRY_DEADLINE_S
    attempts: int | None = None if retry else 0
    while True:
        conn = connections[alias]
        if prepared and conn.vendor == "sqlite" and not conn.in_atomic_block and _unobserved(conn):
            with conn.wrap_database_errors:
                if conn.connection is None:
                    return _run_on_idle_sqlite(alias, conn, fn, atomic)
                if conn.get_autocommit() and not conn.connection.in_transaction:  # no BEGIN of someone else's
                    conn.validate_thread_sharing()
                    return _run_on_raw_sqlite(conn, conn.connection, fn, atomic)
        borrow = prepared and not atomic and conn.connection is None and _pooled(conn) and _unobserved(conn)
        with _pool_connection(conn) if borrow else use_connection(alias) as held:
            try:
                with conn.wrap_database_errors:
                    if borrow:
                        with _prepared_cursor_class()(held) as cur:
                            return fn(cur)
                    if atomic:
                        with _sqlite_writer(conn), transaction.atomic(using=alias), _cursor(conn, prepared) as cur:
                            return fn(cur)
                    with _cursor(conn, prepared) as cur:
                        return fn(cur)
            except (OperationalError, InterfaceError) as exc:
                if attempts is None:
                    attempts = (pool_size(conn.settings_dict) or 1) + 1
                if attempts <= 0 or not _is_disconnect(conn, held if borrow else conn.connection):
                    raise
                if conn.in_atomic_block or time.monotonic() > deadline:
                    raise
                if not borrow:
                    conn.close()  # a borrowed one goes back broken, and the pool drops it
                attempts -= 1


def _unobserved(conn) -> bool:
    """Whether a call may skip Django's connection object or its cursor and
    transaction: on PostgreSQL a thread without a connection (LangGraph's workers)
    borrows one from the alias's pool (Django's connect() and close() around each call
    cost 24 us, the pool's own 10); on SQLite it runs on an idle raw connection, or on
    the thread's own outside any `atomic` block (Django's transaction and cursor cost
    0.18 ms of a 0.73 ms put). Not when Django has to see the statement (debug log,
    execute wrappers) or a `connection_created` receiver expects to see the connection."""
    return (
        not conn.execute_wrappers
        and not conn.queries_logged
        # `receivers` first: has_listeners() resolves them, 5 us on every call.
        and not (connection_created.receivers and connection_created.has_listeners(type(conn)))
    )


class _MostRecentFirst(collections.deque):
    """psycopg_pool's idle connections, handing out the one given back last.

    psycopg_pool takes the longest idle connection (`popleft` of what `append` gave
    back), so once a burst grew the pool to 16, one LangGraph worker at a time went
    round all 16 backends, each gone cold since its last turn: a step (put_writes, put,
    get_tuple) on a worker thread took 1.58-1.65 ms against 1.15-1.28 on a thread
    holding one connection. Taking the most recent keeps a quiet process on one warm
    backend (1.01-1.33 ms), and a busy one still uses them all. The pool's shrink also
    takes `popleft`, so it now closes the most recent idle connection rather than the
    oldest: one connection fewer either way.
    """

    def popleft(self):
        return self.pop()


def _most_recent_first(pool) -> None:
    # psycopg_pool's private deque (psycopg-pool 3.3): a release that keeps its idle
    # connections some other way is left alone, and the pool test fails.
    if type(getattr(pool, "_pool", None)) is collections.deque:
        with pool._lock:
            if type(pool._pool) is collections.deque:
                pool._pool = _MostRecentFirst(pool._pool)


@contextmanager
def _pool_connection(conn) -> Iterator:
    """A connection of `conn`'s pool (opened as Django opens it), in autocommit."""
    with conn.wrap_database_errors:
        pool = conn.pool
        _most_recent_first(pool)
        pool.open()
        with pool.connection() as raw:
            if not raw.autocommit:  # never run a write in a transaction no one commits
                raw.autocommit = True
            if raw.prepare_threshold is None:
                raw.prepare_threshold = NEVER_BY_COUNT
            yield raw


# This process's SQLite locks: ("writer", file) and ("turn", alias).
_locks: dict[tuple[str, str], Any] = {}
_locks_guard = threading.Lock()


def _lock_for(kind: str, name: str, factory: Callable[[], Any] = threading.Lock):
    with _locks_guard:
        lock = _locks.get((kind, name))
        if lock is None:
            lock = _locks[(kind, name)] = factory()
        return lock


def _busy_timeout(conn) -> float:
    return float(conn.settings_dict["OPTIONS"].get("timeout", 5))


@contextmanager
def _held(lock, timeout: float) -> Iterator[bool]:
    """`lock` for the block, or the block without it once `timeout` passed."""
    got = lock.acquire(timeout=timeout)
    try:
        yield got
    finally:
        if got:
            lock.release()


_inherited: list = []


def _after_fork() -> None:
    # A forked child (an RQ work horse) may inherit a lock another thread held, and must
    # not use its parent's SQLite connections, nor close them (closing would drop the
    # parent's file locks): it keeps them, unused.
    global _locks, _locks_guard, _idle_sqlite, _idle_sqlite_guard
    _locks, _locks_guard = {}, threading.Lock()
    _inherited.append(_idle_sqlite)
    _idle_sqlite, _idle_sqlite_guard = {}, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


@contextmanager
def _sqlite_writer(conn) -> Iterator[None]:
    """This process's turn to write to `conn`'s SQLite file; nothing elsewhere. Not
    inside a caller's transaction, which may hold SQLite's lock while another thread
    holds this one."""
    if conn.vendor != "sqlite" or conn.in_atomic_block:
        yield
        return
    name = str(conn.settings_dict["NAME"])
    # Past SQLite's own busy timeout, let SQLite decide (and say "database is locked").
    with _held(_lock_for("writer", name), _busy_timeout(conn)):
        yield
    sqlite_wal.wrote(name)


def dialect_for(alias: str, dialects: Mapping[str, D], owner: str) -> D:
    """The SQL dialect of `alias`'s database among `dialects` (keyed by Django vendor)."""
    vendor = connections[alias].vendor
    if vendor not in dialects:
        raise ValueError(f"{owner} supports SQLite and PostgreSQL, not {vendor}")
    return dialects[vendor]


def pool_size(settings_dict: dict) -> int | None:
    """How many connections an alias's Django pool holds, `None` without a pool. Read
    from its settings: asking Django's pool would open it (and a session with it)."""
    options = settings_dict["OPTIONS"].get("pool")
    if isinstance(options, dict):
        return int(options.get("max_size") or options.get("min_size") or PSYCOPG_POOL_MIN)
    return PSYCOPG_POOL_MIN if options else None


PSYCOPG_POOL_MIN = 4  # psycopg_pool's default min_size, also its max when none is given


def _is_disconnect(conn, raw) -> bool:
    """Whether the psycopg connection `raw` of `conn`'s alias died under the call."""
    if conn.vendor != "postgresql":
        return False
    return raw is None or getattr(raw, "closed", False) or getattr(raw, "broken", False)
