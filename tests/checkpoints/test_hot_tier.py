"""The Redis hot tier: reads served from Redis, nothing stale after writes, deletes and
forks, and a Redis that fails (stopped, flushed, tampered with) never fails or loses a
write."""

import shutil
import subprocess
import time
import uuid

import pytest
import redis
from django.conf import settings
from django.db import connections
from django.test.utils import CaptureQueriesContext

from checkpoints import metrics
from checkpoints.models import Checkpoint
from checkpoints.saver import DjangoSaver
from checkpoints.tiers.hot import HotTier
from tests.conftest import REDIS

from .graphs import chat_graph
from tests.ports import free_port

pytestmark = [
    pytest.mark.skipif("postgres" not in settings.DATABASES, reason="needs PostgreSQL"),
    pytest.mark.skipif(not REDIS, reason="needs Redis"),
    pytest.mark.django_db(transaction=True, databases="__all__"),
]
ALIAS = "postgres"


def cfg(thread_id, **extra):
    return {"configurable": {"thread_id": thread_id, **extra}}


def say(text):
    return {"messages": [{"role": "user", "content": text}]}


def make_saver(url=None, **kwargs):
    hot = HotTier(url or settings.TEST_REDIS_URL, prefix=f"lgtest-{uuid.uuid4().hex[:8]}", secret="k", **kwargs)
    return DjangoSaver(using=ALIAS, hot_tier=hot, blob_store=None)


def queries_during(fn):
    with CaptureQueriesContext(connections[ALIAS]) as ctx:
        result = fn()
    return result, len(ctx.captured_queries)


def test_latest_and_by_id_are_served_from_redis():
    saver = make_saver()
    graph = chat_graph(saver)
    graph.invoke(say("one"), cfg("h1"))
    history = list(saver.list(cfg("h1")))
    latest, n = queries_during(lambda: saver.get_tuple(cfg("h1")))
    assert n == 0 and latest.config == history[0].config
    assert latest.checkpoint["channel_values"]["turns"] == 1
    older, n = queries_during(lambda: saver.get_tuple(history[1].config))
    assert n == 0 and older.checkpoint["id"] == history[1].checkpoint["id"]
    assert latest.pending_writes == history[0].pending_writes


def test_pending_writes_update_the_cached_entry():
    saver = make_saver()
    graph = chat_graph(saver)
    graph.invoke(say("one"), cfg("h2"))
    head = saver.get_tuple(cfg("h2"))
    saver.put_writes(head.config, [("extra", 1)], "task-x")
    saver.put_writes(head.config, [("extra", 2)], "task-x")  # ordinary writes never replace
    saver.put_writes(head.config, [("__error__", "first")], "task-y")
    saver.put_writes(head.config, [("__error__", "second")], "task-y")  # special ones do
    got, n = queries_during(lambda: saver.get_tuple(cfg("h2")))
    assert n == 0
    assert ("task-x", "extra", 1) in got.pending_writes
    assert ("task-y", "__error__", "second") in got.pending_writes
    assert got.pending_writes == DjangoSaver(using=ALIAS, hot_tier=None, blob_store=None).get_tuple(cfg("h2")).pending_writes


def test_after_a_fork_the_latest_read_is_the_fork():
    saver = make_saver()
    graph = chat_graph(saver)
    graph.invoke(say("one"), cfg("h3"))
    graph.invoke(say("two"), cfg("h3"))
    old = list(graph.get_state_history(cfg("h3")))[3]
    forked = graph.update_state(old.config, {"turns": 99})
    latest = saver.get_tuple(cfg("h3"))
    assert latest.config["configurable"]["checkpoint_id"] == forked["configurable"]["checkpoint_id"]
    assert graph.get_state(cfg("h3")).values["turns"] == 99


@pytest.mark.parametrize("operation", ["delete_thread", "prune_delete", "prune_keep", "delete_for_runs", "copy"])
def test_deletes_and_copies_leave_no_stale_entry(operation):
    saver = make_saver()
    graph = chat_graph(saver)
    run_id = str(uuid.uuid4())
    graph.invoke(say("one"), {**cfg("h4"), "metadata": {"run_id": run_id}})
    first = list(saver.list(cfg("h4")))
    assert saver.get_tuple(first[-1].config) is not None  # cached by id
    if operation == "copy":
        # The target had a cached history of its own; after the copy it is the source's.
        chat_graph(saver).invoke(say("mine"), cfg("h4-copy"))
        saver.delete_thread("h4-copy")
        saver.get_tuple(cfg("h4-copy"))
        saver.copy_thread("h4", "h4-copy")
        assert saver.get_tuple(cfg("h4-copy")).checkpoint["id"] == first[0].checkpoint["id"]
        return
    {
        "delete_thread": lambda: saver.delete_thread("h4"),
        "prune_delete": lambda: saver.prune(["h4"], strategy="delete"),
        "prune_keep": lambda: saver.prune(["h4"], strategy="keep_latest"),
        "delete_for_runs": lambda: saver.delete_for_runs([run_id]),
    }[operation]()
    assert saver.get_tuple(first[-1].config) is None
    if operation == "prune_keep":
        assert saver.get_tuple(cfg("h4")).checkpoint["id"] == first[0].checkpoint["id"]
    else:
        assert saver.get_tuple(cfg("h4")) is None


def test_flushall_leaves_reads_right():
    saver = make_saver()
    graph = chat_graph(saver)
    graph.invoke(say("one"), cfg("h5"))
    saver.hot_tier.client.flushdb()
    assert graph.get_state(cfg("h5")).values["turns"] == 1
    graph.invoke(say("two"), cfg("h5"))
    assert graph.get_state(cfg("h5")).values["turns"] == 2


def test_a_tampered_entry_is_never_deserialised():
    saver = make_saver()
    graph = chat_graph(saver)
    graph.invoke(say("one"), cfg("h6"))
    client = saver.hot_tier.client
    for key in client.scan_iter(f"{saver.hot_tier.prefix}/h6//cp/*"):
        value = client.hget(key, "c")
        client.hset(key, "c", value[:-1] + bytes([value[-1] ^ 1]))
    before = metrics.snapshot().get("hot.tampered", 0)
    assert graph.get_state(cfg("h6")).values["turns"] == 1
    assert metrics.snapshot().get("hot.tampered", 0) > before


def test_a_failed_write_through_is_repaired_before_redis_is_used_again(monkeypatch):
    saver = make_saver(cooldown=0.2)
    graph = chat_graph(saver)
    graph.invoke(say("one"), cfg("h7"))
    assert saver.get_tuple(cfg("h7")).checkpoint["channel_values"]["turns"] == 1
    def failing(*args, **kwargs):
        raise redis.ConnectionError("injected")

    monkeypatch.setitem(saver.hot_tier._scripts, "write", failing)
    graph.invoke(say("two"), cfg("h7"))  # the database has it; Redis missed it
    monkeypatch.undo()
    time.sleep(0.3)
    # Redis still holds the first invoke's head; it must not be served.
    assert saver.get_tuple(cfg("h7")).checkpoint["channel_values"]["turns"] == 2
    assert graph.get_state(cfg("h7")).values["turns"] == 2




@pytest.fixture
def own_redis(tmp_path):
    """A Redis server of this test's own, on its own port, that the test can stop."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()

    def start():
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                return proc
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    state = {"proc": start()}

    class Control:
        url = f"redis://127.0.0.1:{port}/0"

        def stop(self):
            state["proc"].kill()
            state["proc"].wait()

        def restart(self):
            state["proc"] = start()

    yield Control()
    state["proc"].kill()
    state["proc"].wait()


def test_redis_stopped_mid_run_loses_nothing_and_recovers(own_redis):
    # A stopped Redis refuses at once; the timeout only guards against a loaded machine.
    saver = make_saver(url=own_redis.url, timeout=0.5, cooldown=0.1)
    graph = chat_graph(saver)
    for i in range(3):
        graph.invoke(say(f"before-{i}"), cfg("h8"))
    errors_before = metrics.snapshot().get("hot.error", 0)
    own_redis.stop()
    for i in range(3):
        graph.invoke(say(f"during-{i}"), cfg("h8"))
    assert graph.get_state(cfg("h8")).values["turns"] == 6
    assert metrics.snapshot().get("hot.error", 0) > errors_before
    own_redis.restart()
    time.sleep(0.15)
    graph.invoke(say("after"), cfg("h8"))
    assert Checkpoint.objects.using(ALIAS).filter(thread_id="h8").count() == 21
    hits_before = metrics.snapshot().get("hot.hit", 0)
    latest, n = queries_during(lambda: saver.get_tuple(cfg("h8")))
    assert n == 0 and latest.checkpoint["channel_values"]["turns"] == 7
    assert metrics.snapshot().get("hot.hit", 0) == hits_before + 1


async def test_async_reads_and_writes_use_redis_from_the_event_loop(monkeypatch):
    """With the hot tier, the a-methods stay on the event loop (asyncio connections and
    the tier's asyncio Redis client): no worker thread, and the latest checkpoint is
    served from Redis without a database statement."""
    import asyncio
    import threading

    from checkpoints import aconnection
    from checkpoints import saver as saver_module

    def refuse(fn):
        raise AssertionError(f"{fn.__name__} went to a worker thread")

    monkeypatch.setattr(saver_module, "_threaded", refuse)
    saver = make_saver(timeout=1.0)  # a loaded machine must not trip the breaker here
    graph = chat_graph(saver)
    statements = []
    real_fetch = aconnection.fetch

    async def fetch(*args, **kwargs):
        statements.append(threading.get_ident())
        return await real_fetch(*args, **kwargs)

    monkeypatch.setattr(aconnection, "fetch", fetch)
    await asyncio.gather(*(graph.ainvoke(say(f"m{n}"), cfg(f"ah{n}")) for n in range(4)))
    assert set(statements) == {threading.get_ident()}
    hits = metrics.snapshot().get("hot.hit", 0)
    statements.clear()
    latest = await saver.aget_tuple(cfg("ah2"))
    assert statements == [] and metrics.snapshot().get("hot.hit", 0) == hits + 1
    assert latest.checkpoint["channel_values"]["messages"][0]["content"] == "m2"
    assert latest.config == (await saver.aget_tuple(latest.config)).config
    monkeypatch.undo()
    async with saver:  # closes this loop's Redis client (and Django's connection, on a thread)
        pass
    assert not saver.hot_tier._aclients


def test_async_writes_survive_a_stopped_redis_and_stale_entries_are_dropped(own_redis):
    """The same guarantees on the asyncio client, each call on a loop of its own (as
    `asyncio.run` in a script would): a stopped Redis fails no write, and a thread
    written while it was away is not served stale once it is back."""
    import asyncio

    saver = make_saver(url=own_redis.url, timeout=0.5, cooldown=0.1)
    graph = chat_graph(saver)
    asyncio.run(graph.ainvoke(say("before"), cfg("ah9")))
    assert asyncio.run(saver.aget_tuple(cfg("ah9"))).checkpoint["channel_values"]["turns"] == 1
    own_redis.stop()
    errors = metrics.snapshot().get("hot.error", 0)
    asyncio.run(graph.ainvoke(say("during"), cfg("ah9")))
    assert metrics.snapshot().get("hot.error", 0) > errors
    own_redis.restart()  # empty: the entries written before the stop are gone...
    time.sleep(0.15)
    assert asyncio.run(saver.aget_tuple(cfg("ah9"))).checkpoint["channel_values"]["turns"] == 2
    asyncio.run(graph.ainvoke(say("after"), cfg("ah9")))
    hits = metrics.snapshot().get("hot.hit", 0)
    latest, n = queries_during(lambda: asyncio.run(saver.aget_tuple(cfg("ah9"))))
    assert latest.checkpoint["channel_values"]["turns"] == 3
    assert metrics.snapshot().get("hot.hit", 0) == hits + 1


async def test_a_failed_async_write_through_is_repaired_before_redis_is_used_again(monkeypatch):
    import asyncio

    saver = make_saver(cooldown=0.2, timeout=1.0)
    graph = chat_graph(saver)
    await graph.ainvoke(say("one"), cfg("ah7"))
    assert (await saver.aget_tuple(cfg("ah7"))).checkpoint["channel_values"]["turns"] == 1
    real = HotTier._call

    def failing_writes(client, scripts, call):
        if call[0] == "write":
            raise redis.ConnectionError("injected")
        return real(client, scripts, call)

    monkeypatch.setattr(HotTier, "_call", staticmethod(failing_writes))
    await graph.ainvoke(say("two"), cfg("ah7"))  # the database has it; Redis missed it
    monkeypatch.undo()
    await asyncio.sleep(0.3)
    # Redis still holds the first invoke's head; it must not be served.
    assert (await saver.aget_tuple(cfg("ah7"))).checkpoint["channel_values"]["turns"] == 2
