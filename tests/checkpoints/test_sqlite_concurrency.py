"""Many runs writing to the SQLite file at once: no "database is locked", and every
thread ends in its own correct state (DESIGN target: 10+ concurrent async runs).

Each run takes three turns with an approval pause in the middle, so the runs interleave
checkpoint puts, pending writes, interrupt writes and reads of the same file.
"""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.types import Command

from checkpoints.models import Thread
from checkpoints.saver import DjangoSaver
from timetravel.demo import build_graph, user_message

from .threads import in_fresh_thread

pytestmark = pytest.mark.django_db(transaction=True)

ASYNC_RUNS = 12
SYNC_RUNS = 16


class OverlapSaver(DjangoSaver):
    """Counts the most writes in flight at once, to show the runs did contend."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._in_flight = 0
        self.peak = 0

    def _counted(self, write, *args):
        with self._lock:
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)
        try:
            return write(*args)
        finally:
            with self._lock:
                self._in_flight -= 1

    # The async twins call these on worker threads, so both paths are counted.
    def put(self, *args):
        return self._counted(super().put, *args)

    def put_writes(self, *args):
        return self._counted(super().put_writes, *args)


def turns(order: int):
    yield user_message(f"Where is my order #{order}?")
    yield user_message(f"It arrived broken, refund it (${order % 100}.50)")
    yield Command(resume=[{"type": "accept", "args": None}])


def assert_finished(values: dict, order: int) -> None:
    assert [m["content"] for m in values["messages"]] == [
        f"Where is my order #{order}?",
        f"Order #{order} is on its way: tracking number TRK-{order}.",
        f"It arrived broken, refund it (${order % 100}.50)",
        f"I have refunded ${order % 100}.50 for order #{order}.",
    ]
    assert values["outcome"] == f"refunded {order % 100}.50"


def assert_no_errors(results: list) -> None:
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, [f"{type(e).__name__}: {e}" for e in errors]


async def test_concurrent_async_runs():
    assert connections["default"].vendor == "sqlite"
    saver = OverlapSaver(using="default")
    graph = build_graph(saver)

    async def converse(i: int) -> dict:
        config = {"configurable": {"thread_id": f"async-{i}"}}
        for turn in turns(1000 + i):
            await graph.ainvoke(turn, config)
        return (await graph.aget_state(config)).values

    results = await asyncio.gather(*(converse(i) for i in range(ASYNC_RUNS)), return_exceptions=True)

    assert_no_errors(results)
    assert saver.peak > 1
    for i, values in enumerate(results):
        assert_finished(values, 1000 + i)
    # Read back through a new saver: what was committed, not what a run held in memory.
    fresh = build_graph(DjangoSaver(using="default"))
    for i in range(ASYNC_RUNS):
        state = await fresh.aget_state({"configurable": {"thread_id": f"async-{i}"}})
        assert_finished(state.values, 1000 + i)


def test_concurrent_sync_runs():
    saver = OverlapSaver(using="default")
    graph = build_graph(saver)

    def converse(i: int) -> dict:
        config = {"configurable": {"thread_id": f"sync-{i}"}}
        try:
            for turn in turns(2000 + i):
                graph.invoke(turn, config)
            return graph.get_state(config).values
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            return exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=SYNC_RUNS) as pool:
        results = list(pool.map(converse, range(SYNC_RUNS)))

    assert_no_errors(results)
    assert saver.peak > 1
    for i, values in enumerate(results):
        assert_finished(values, 2000 + i)
    statuses = dict(Thread.objects.filter(thread_id__startswith="sync-").values_list("thread_id", "status"))
    assert statuses == {f"sync-{i}": "idle" for i in range(SYNC_RUNS)}


def test_writers_of_one_process_take_turns_without_the_busy_handler():
    """With SQLite's busy timeout at 0, a writer that found the file locked would fail
    at once: concurrent puts and writes pass only because the process's writers queue
    on one lock (SQLite's busy handler sleeps 1-25 ms between looks)."""
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.base.id import uuid6

    saver = DjangoSaver(using="default", hot_tier=None, blob_store=None)
    start = threading.Barrier(8)

    def writer(n: int):
        try:
            conn = connections["default"]
            conn.ensure_connection()
            with conn.cursor() as cur:
                cur.execute("PRAGMA busy_timeout = 0")
            config = {"configurable": {"thread_id": f"turns-{n}", "checkpoint_ns": ""}}
            start.wait()
            version = None
            for i in range(25):
                version = saver.get_next_version(version, None)
                checkpoint = {
                    **empty_checkpoint(), "id": str(uuid6(clock_seq=i)),
                    "channel_values": {"n": i}, "channel_versions": {"n": version},
                }
                config = saver.put(config, checkpoint, {"step": i}, {"n": version})
                saver.put_writes(config, [("n", i + 1)], task_id=f"task-{i}")
            return saver.get_tuple(config)
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            return exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(writer, range(8)))

    assert_no_errors(results)
    assert [r.checkpoint["channel_values"]["n"] for r in results] == [24] * 8
    assert [r.pending_writes for r in results] == [[("task-24", "n", 25)]] * 8


def test_worker_threads_borrow_connections_instead_of_opening_their_own(monkeypatch):
    """LangGraph runs each invoke on new threads; a SQLite connection per thread cost
    0.6-1.2 ms to open (Django registers its SQL functions on each)."""
    from django.db.backends.sqlite3.base import DatabaseWrapper

    from checkpoints.connection import _idle_sqlite

    opened = []
    real = DatabaseWrapper.get_new_connection

    def counting(self, params):
        opened.append(threading.get_ident())
        return real(self, params)

    monkeypatch.setattr(DatabaseWrapper, "get_new_connection", counting)
    for raw in _idle_sqlite.pop("default", []):  # left by earlier tests
        raw.close()
    graph = build_graph(DjangoSaver(using="default", hot_tier=None, blob_store=None))
    for n in range(4):
        config = {"configurable": {"thread_id": f"borrow-{n}"}}
        for turn in turns(1000 + n):
            graph.invoke(turn, config)
        assert_finished(graph.get_state(config).values, 1000 + n)
    # At most one per saver call in flight at once, not one per thread (12 invokes).
    assert len(opened) <= 6, f"{len(opened)} connections opened for 12 invokes"
    assert 1 <= len(_idle_sqlite["default"]) == len(opened)
    # The test thread's own connection is its own again, unconnected if it was.
    assert connections["default"].connection is None or connections["default"].connection not in _idle_sqlite["default"]


def test_worker_threads_take_turns_on_one_connection(monkeypatch):
    """Threads calling at once share one connection, as `SqliteSaver` does: with one
    each, 4 and 16 writer threads made 0.86-1.01x its steps per second, taking turns
    1.18-1.46x."""
    from django.db.backends.sqlite3.base import DatabaseWrapper

    from checkpoints.connection import _idle_sqlite

    opened = []
    real = DatabaseWrapper.get_new_connection
    monkeypatch.setattr(DatabaseWrapper, "get_new_connection", lambda self, params: opened.append(1) or real(self, params))
    for raw in _idle_sqlite.pop("default", []):  # left by earlier tests
        raw.close()
    saver = DjangoSaver(using="default", hot_tier=None, blob_store=None)
    start = threading.Barrier(8)

    def calls(n: int):
        try:
            config = {"configurable": {"thread_id": f"turn-{n}", "checkpoint_ns": ""}}
            start.wait()
            for i in range(20):
                checkpoint = {**empty_checkpoint(), "channel_values": {"n": i}, "channel_versions": {"n": i + 1}}
                config = saver.put(config, checkpoint, {"step": i}, {"n": i + 1})
                saver.put_writes(config, [("n", i)], task_id=f"t{i}")
                assert saver.get_tuple(config).checkpoint["channel_values"] == {"n": i}
            return None
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            return exc

    with ThreadPoolExecutor(max_workers=8) as pool:
        errors = [e for e in pool.map(calls, range(8)) if e is not None]
    assert errors == []
    assert len(opened) == 1, f"{len(opened)} connections for 8 threads calling at once"


def test_a_thread_whose_turn_does_not_come_goes_ahead(monkeypatch):
    """The turn's holder may be waiting for another process's write (up to SQLite's
    busy timeout, 30 s): the next thread waits `TURN_WAIT_S`, then reads on a
    connection of its own."""
    from checkpoints import connection

    monkeypatch.setattr(connection, "TURN_WAIT_S", 0.05)
    turn = connection._lock_for("turn", "default", connection._turn)
    saver = DjangoSaver(using="default", hot_tier=None, blob_store=None)
    assert turn.acquire(timeout=5)
    try:
        started = time.monotonic()
        assert in_fresh_thread(lambda: saver.get_tuple({"configurable": {"thread_id": "waited"}})) is None
        assert connection.TURN_WAIT_S <= time.monotonic() - started < 1
    finally:
        turn.release()


def test_saver_writes_wake_the_background_wal_checkpoint():
    from checkpoints import sqlite_wal

    path = str(connections["default"].settings_dict["NAME"])
    graph = build_graph(DjangoSaver(using="default", hot_tier=None, blob_store=None))
    for n in range(8):
        for turn in turns(1100 + n):
            graph.invoke(turn, {"configurable": {"thread_id": f"wal-{n}"}})
    worker = sqlite_wal.checkpointer(path)
    assert worker is not None and worker.is_alive()
    assert worker.writes >= sqlite_wal.CHECKPOINT_EVERY
    deadline = time.monotonic() + 5
    while worker.checkpoints == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker.checkpoints >= 1
    with connections["default"].cursor() as cur:
        cur.execute("PRAGMA wal_autocheckpoint")
        assert cur.fetchone()[0] == 10000


@pytest.mark.parametrize("prepared_statements", [True, False])
def test_worker_thread_calls_skip_djangos_connection(monkeypatch, prepared_statements):
    """A thread without a Django connection (LangGraph's workers) runs the hot
    statements on an idle raw connection: no connect(), no Django transaction or cursor
    (0.18 ms of a 0.73 ms put), and the thread's wrapper stays unconnected. The
    PostgreSQL-only `prepared_statements` switch does not change that."""
    from django.db.backends.sqlite3.base import DatabaseWrapper

    connects = []
    real = DatabaseWrapper.connect
    monkeypatch.setattr(DatabaseWrapper, "connect", lambda self: connects.append(self.alias) or real(self))
    saver = DjangoSaver(using="default", hot_tier=None, blob_store=None, prepared_statements=prepared_statements)
    graph = build_graph(saver)
    config = {"configurable": {"thread_id": f"raw-calls-{prepared_statements}"}}

    def converse():
        for turn in turns(1200):
            graph.invoke(turn, config)
        return graph.get_state(config).values, connections["default"].connection

    values, left = in_fresh_thread(converse)
    assert_finished(values, 1200)
    assert left is None
    assert connects == []
    assert Thread.objects.get(thread_id=f"raw-calls-{prepared_statements}").status == "idle"


def test_execute_wrappers_still_see_worker_thread_statements():
    """With an execute wrapper installed (an APM agent, a query blocker), calls keep to
    Django's connection, which the wrapper sees."""
    saver = DjangoSaver(using="default", hot_tier=None, blob_store=None)
    seen = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql.split()[0])
        return execute(sql, params, many, context)

    def read():
        with connections["default"].execute_wrapper(wrapper):
            return saver.get_tuple({"configurable": {"thread_id": "wrapped"}})

    assert in_fresh_thread(read) is None
    assert seen == ["WITH"]


def test_a_failed_write_on_a_raw_connection_leaves_nothing_and_the_connection_usable():
    """A write that fails half-way rolls back whole; its errors are Django's; the
    connection goes back to the idle ones out of any transaction."""
    from django.db import OperationalError

    from checkpoints.connection import _idle_sqlite, run

    def half_then_fail(cur):
        cur.execute(
            "INSERT INTO lg_thread (thread_id, status, graph_id, metadata, head_checkpoint_id, "
            "checkpoint_count, bytes_stored, created_at, updated_at) "
            "VALUES (%s, 'idle', '', '{}', '', 0, 0, '2026-01-01', '2026-01-01')",
            ["half-written"],
        )
        raise RuntimeError("crashed mid-write")

    def bad_sql(cur):
        cur.execute("SELECT no_such_column FROM lg_thread WHERE thread_id = %s", ["x"])

    def attempt():
        with pytest.raises(RuntimeError, match="crashed mid-write"):
            run("default", half_then_fail, atomic=True, prepared=True)
        with pytest.raises(OperationalError, match="no_such_column"):
            run("default", bad_sql, atomic=True, prepared=True)
        # A literal percent sign survives the placeholder conversion.
        return run("default", lambda cur: (cur.execute("SELECT %s || '%%'", ["100"]), cur.fetchall())[1], prepared=True)

    assert in_fresh_thread(attempt) == [("100%",)]
    assert not Thread.objects.filter(thread_id="half-written").exists()
    assert _idle_sqlite["default"] and not any(raw.in_transaction for raw in _idle_sqlite["default"])


def test_a_thread_holding_its_connection_runs_bare_outside_atomic_and_joins_atomic_blocks(monkeypatch):
    """Outside an `atomic` block the hot statements skip Django's cursor on the thread's
    own connection too; inside one they are part of the caller's transaction, and roll
    back with it."""
    from django.db import transaction

    saver = DjangoSaver(using="default", hot_tier=None, blob_store=None)
    graph = build_graph(saver)
    conn = connections["default"]
    conn.ensure_connection()
    cursors = []
    real = type(conn).cursor
    monkeypatch.setattr(type(conn), "cursor", lambda self: cursors.append(1) or real(self))

    config = {"configurable": {"thread_id": "held"}}
    for turn in turns(1300):
        graph.invoke(turn, config)
    assert_finished(graph.get_state(config).values, 1300)
    assert saver.get_tuple(config) is not None
    assert cursors == []

    rolled_back = {"configurable": {"thread_id": "rolled-back"}}
    with pytest.raises(RuntimeError), transaction.atomic():
        saver.put(rolled_back, empty_checkpoint(), {"source": "input", "step": -1}, {})
        assert saver.get_tuple(rolled_back) is not None
        raise RuntimeError("the caller gives up")
    assert cursors
    assert saver.get_tuple(rolled_back) is None
    assert not Thread.objects.filter(thread_id="rolled-back").exists()
