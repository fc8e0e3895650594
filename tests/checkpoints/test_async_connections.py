"""The a-methods on PostgreSQL run on asyncio connections (`checkpoints.aconnection`),
one pool per event loop: no worker thread, no more sessions than the pool holds, short
loops leave nothing open, and a dropped connection is retried like the sync path's."""

import asyncio
import threading
import time

import psycopg
import pytest
from django.conf import settings
from django.db import OperationalError, ProgrammingError

from checkpoints import aconnection
from checkpoints import saver as saver_module
from checkpoints.saver import DjangoSaver

from .graphs import chat_graph

pytestmark = [
    pytest.mark.skipif("postgres" not in settings.DATABASES, reason="needs PostgreSQL"),
    pytest.mark.django_db(transaction=True, databases="__all__"),
]


def cfg(thread_id):
    return {"configurable": {"thread_id": thread_id}}


def say(text):
    return {"messages": [{"role": "user", "content": text}]}


def _admin_url() -> str:
    db = settings.DATABASES["postgres"]
    return f"postgresql://{db['USER'] or 'postgres'}@{db['HOST']}:{db['PORT']}/postgres"


def _sessions() -> set[int]:
    name = settings.DATABASES["postgres"]["NAME"]
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
        ).fetchall()
    return {pid for (pid,) in rows}


def _still_open(pids: set[int]) -> set[int]:
    """Which of `pids` are still sessions, after giving closed ones a moment: a backend
    leaves pg_stat_activity a little after its client has gone."""
    deadline = time.monotonic() + 5
    while (alive := pids & _sessions()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


@pytest.fixture
def no_threads(monkeypatch):
    """Fail any a-method that would hop to the saver's worker threads."""

    def refuse(fn):
        raise AssertionError(f"{fn.__name__} went to a worker thread")

    monkeypatch.setattr(saver_module, "_threaded", refuse)


async def test_graph_runs_on_the_loops_connections(no_threads, monkeypatch):
    saver = DjangoSaver(using="postgres", hot_tier=None, blob_store=None)
    graph = chat_graph(saver)
    callers = set()
    real_fetch = aconnection.fetch

    async def fetch(*args, **kwargs):
        callers.add(threading.get_ident())
        return await real_fetch(*args, **kwargs)

    monkeypatch.setattr(aconnection, "fetch", fetch)

    async def chat(thread):
        for i in range(3):
            await graph.ainvoke(say(f"{thread}-m{i}"), cfg(thread))

    await asyncio.gather(*(chat(f"native-{n}") for n in range(4)))
    history = [t async for t in saver.alist(cfg("native-1"))]
    assert callers == {threading.get_ident()}
    state = await graph.aget_state(cfg("native-1"))
    assert [m["content"] for m in state.values["messages"]][-2:] == ["native-1-m2", "echo: native-1-m2"]
    assert len(state.values["messages"]) == 6
    assert len(history) == 9  # per turn: the input, the loop and the reply checkpoints
    pool = aconnection._pool("postgres")
    assert 1 <= pool.size <= pool.max_size


async def test_values_for_blob_storage_still_go_there(tmp_path):
    from checkpoints.tiers.blobs import FileBlobStore

    saver = DjangoSaver(using="postgres", hot_tier=None, blob_store=FileBlobStore(tmp_path), blob_threshold=32)
    graph = chat_graph(saver)
    await graph.ainvoke(say("x" * 100), cfg("native-blobs"))
    assert any(tmp_path.rglob("*")), "the large value went to the folder"
    state = await graph.aget_state(cfg("native-blobs"))
    assert state.values["messages"][-1]["content"] == "echo: " + "x" * 100


def test_short_lived_loops_leave_no_sessions_open():
    """`asyncio.run` per call (scripts, tests): each loop gets a pool, and a closed
    loop's connections are closed when the next pool opens."""
    aconnection.close_all()
    saver = DjangoSaver(using="postgres", hot_tier=None, blob_store=None)
    ours: set[int] = set()  # every session an async pool opened

    async def one_turn(i):
        await chat_graph(saver).ainvoke(say(f"m{i}"), cfg("short-loops"))
        ours.update(conn.info.backend_pid for conn in aconnection._pool("postgres").idle)
        return len(ours & _sessions())

    during = [asyncio.run(one_turn(i)) for i in range(20)]
    pool_max = settings.DATABASES["postgres"]["OPTIONS"]["pool"]["max_size"]
    assert max(during) <= pool_max + 1, during  # the live loop's pool, and one closing
    aconnection.close_all()
    assert _still_open(ours) == set()
    assert len(saver.get_tuple(cfg("short-loops")).checkpoint["channel_values"]["messages"]) == 40


async def test_calls_recover_when_the_loops_connections_were_dropped():
    saver = DjangoSaver(using="postgres", hot_tier=None, blob_store=None)
    graph = chat_graph(saver)
    await asyncio.gather(*(graph.ainvoke(say("before"), cfg(f"drop-{i}")) for i in range(4)))
    pool = aconnection._pool("postgres")
    assert len(pool.idle) >= 1
    with psycopg.connect(_admin_url(), autocommit=True) as admin:
        for conn in pool.idle:  # the test's own sync connection must live on
            admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
    await graph.ainvoke(say("after"), cfg("drop-0"))
    state = await graph.aget_state(cfg("drop-0"))
    assert [m["content"] for m in state.values["messages"]][-1] == "echo: after"


async def test_errors_are_djangos_and_a_full_pool_says_so(monkeypatch):
    saver = DjangoSaver(using="postgres", hot_tier=None, blob_store=None)
    with pytest.raises(ProgrammingError):  # Django's class, as from the sync path
        await aconnection.fetch("postgres", "SELECT 1 FROM no_such_table", [], prepared=False)
    pool = aconnection._pool("postgres")
    monkeypatch.setattr(pool, "max_size", 1)
    monkeypatch.setattr(aconnection, "ACQUIRE_TIMEOUT_S", 0.2)
    held = await pool.acquire()
    try:
        with pytest.raises(OperationalError, match="stayed busy"):
            await saver.aget_tuple(cfg("busy"))
    finally:
        pool.release(held)
    assert await saver.aget_tuple(cfg("busy")) is None


async def test_leaving_async_with_closes_the_loops_connections():
    async with DjangoSaver(using="postgres", hot_tier=None, blob_store=None) as saver:
        await chat_graph(saver).ainvoke(say("hi"), cfg("async-with"))
        pids = {conn.info.backend_pid for conn in aconnection._pool("postgres").idle}
    assert pids and _still_open(pids) == set()


async def test_a_cancelled_call_does_not_hand_a_busy_connection_to_the_next():
    pool = aconnection._pool("postgres")
    task = asyncio.ensure_future(aconnection.fetch("postgres", "SELECT pg_sleep(5)", [], prepared=False))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert all(conn.info.transaction_status.name == "IDLE" for conn in pool.idle)
    started = asyncio.get_running_loop().time()
    assert await aconnection.fetch("postgres", "SELECT 1", [], prepared=False, one=True) == (1,)
    assert asyncio.get_running_loop().time() - started < 2
    assert pool.size == len(pool.idle)  # nothing lent out, nothing counted twice


async def test_connections_idle_past_the_limit_are_closed_but_one(monkeypatch):
    saver = DjangoSaver(using="postgres", hot_tier=None, blob_store=None)
    graph = chat_graph(saver)
    await asyncio.gather(*(graph.ainvoke(say("x"), cfg(f"idle-{i}")) for i in range(6)))
    pool = aconnection._pool("postgres")
    assert len(pool.idle) >= 2
    monkeypatch.setattr(aconnection, "IDLE_CLOSE_S", 0.0)
    await saver.aget_tuple(cfg("idle-0"))
    assert len(pool.idle) == pool.size == 1


async def test_the_async_pool_size_has_its_own_setting(settings):
    settings.CHECKPOINTS_ASYNC_POOL_SIZE = 3
    aconnection.close_all()
    saver = DjangoSaver(using="postgres", hot_tier=None, blob_store=None)
    graph = chat_graph(saver)
    await asyncio.gather(*(graph.ainvoke(say("x"), cfg(f"sized-{i}")) for i in range(8)))
    pool = aconnection._pool("postgres")
    assert pool.max_size == 3 and pool.size <= 3


def test_the_async_pool_takes_its_size_from_the_django_settings_without_opening_djangos_pool():
    from checkpoints.connection import pool_size

    assert pool_size({"OPTIONS": {"pool": {"min_size": 1, "max_size": 16}}}) == 16
    assert pool_size({"OPTIONS": {"pool": {"min_size": 6}}}) == 6
    assert pool_size({"OPTIONS": {"pool": True}}) == 4
    assert pool_size({"OPTIONS": {}}) is None


async def test_the_native_path_records_every_operation_in_the_metrics():
    from checkpoints import metrics

    metrics.reset()
    saver = DjangoSaver(using="postgres", hot_tier=None, blob_store=None)
    await chat_graph(saver).ainvoke(say("hi"), cfg("metered"))
    [t async for t in saver.alist(cfg("metered"))]
    counted: dict[str, int] = {}
    for (_, op), row in metrics.minutes().items():  # a run may straddle a minute
        counted[op] = counted.get(op, 0) + row[0]
    assert counted.get("put", 0) >= 3 and counted.get("put_writes", 0) >= 1, counted
    assert counted.get("get_tuple", 0) >= 1 and counted.get("list", 0) >= 1, counted
