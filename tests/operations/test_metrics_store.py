"""The saver's metrics from several processes add up in one aggregate, through the
database or through Redis, and a failed flush loses nothing."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest
from django.conf import settings

from checkpoints import metrics, metrics_store
from checkpoints.saver import DjangoSaver
from tests.checkpoints.graphs import chat_graph

from .conftest import child_env, manage


@pytest.fixture(autouse=True)
def fresh_metrics():
    metrics_store.flush(_Discard())  # nothing measured before the test leaks into it
    yield
    metrics_store.flush(_Discard())


class _Discard:
    def add(self, by_minute):
        pass


class _Broken:
    def add(self, by_minute):
        raise ConnectionError("aggregate down")


def _op_totals(fields, op):
    return metrics_store.by_op(fields).get(op)


def test_percentiles_from_buckets():
    buckets = [0] * metrics_store.N_BUCKETS
    assert metrics_store.percentile_ms(buckets, 0.99) is None
    buckets[metrics.bucket_of(0.8)] = 98  # (0.5, 1]
    buckets[metrics.bucket_of(40)] = 2  # (25, 50]
    assert 0.5 < metrics_store.percentile_ms(buckets, 0.5) <= 1
    assert 25 < metrics_store.percentile_ms(buckets, 0.99) <= 50
    buckets[-1] = 100  # slower than the last bound
    assert metrics_store.percentile_ms(buckets, 0.99) == metrics.BUCKETS_MS[-1]


@pytest.mark.django_db(transaction=True)
def test_database_aggregate_adds_up_saver_operations():
    saver = DjangoSaver(using="default", hot_tier=None, blob_store=None)
    graph = chat_graph(saver)
    for i in range(3):
        graph.invoke({"messages": [{"role": "user", "content": f"m{i}"}]}, {"configurable": {"thread_id": "m"}})
    with pytest.raises(ValueError):
        saver.get_tuple({"configurable": {}})
    backend = metrics_store.DatabaseBackend("default")
    assert metrics_store.flush(backend) > 0
    totals = metrics_store.totals(backend)
    put = _op_totals(totals, "put")
    assert put.count >= 6 and put.errors == 0 and sum(put.buckets) == put.count
    get = _op_totals(totals, "get_tuple")
    assert get.errors == 1
    assert metrics_store.counters(totals)["bytes_written.put"] > 0
    # A second flush adds; nothing measured since, nothing added.
    before = put.count
    saver.put_writes(
        {"configurable": {"thread_id": "m", "checkpoint_ns": "", "checkpoint_id": saver.get_tuple(
            {"configurable": {"thread_id": "m"}}).config["configurable"]["checkpoint_id"]}},
        [("x", 1)], "task")
    metrics_store.flush(backend)
    assert metrics_store.flush(backend) == 0
    totals = metrics_store.totals(backend)
    assert _op_totals(totals, "put").count == before and _op_totals(totals, "put_writes").count >= 1
    now = int(time.time() // 60)
    minute_rows = metrics_store.read(now - 5, now, backend=backend)
    assert sum(f.get("op:put:count", 0) for f in minute_rows.values()) == before


@pytest.mark.django_db(transaction=True)
def test_a_failed_flush_keeps_its_figures_for_the_next():
    metrics.observe("put", 0.002)
    metrics.incr("hot.hit", 3)
    assert metrics_store.flush(_Broken()) == 0
    metrics.observe("put", 0.004)
    backend = metrics_store.DatabaseBackend("default")
    metrics_store.flush(backend)
    totals = metrics_store.totals(backend)
    assert _op_totals(totals, "put").count == 2
    assert metrics_store.counters(totals)["hot.hit"] == 3


def test_redis_aggregate_from_two_processes(settings):
    import redis

    if not _redis():
        pytest.skip("Redis does not answer")
    prefix = f"lgtest-metrics-{uuid.uuid4().hex[:8]}"
    url = settings.TEST_REDIS_URL
    script = (
        "from checkpoints import metrics, metrics_store\n"
        f"b = metrics_store.RedisBackend({url!r}, prefix={prefix!r})\n"
        "for i in range(50):\n"
        "    metrics.observe('put', 0.001 * (i % 7), ok=i % 10 != 0)\n"
        "metrics.incr('hot.miss', 5)\n"
        "metrics_store.flush(b)\n"
    )
    children = [manage("shell", "-c", script, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(2)]
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
    backend = metrics_store.RedisBackend(url, prefix=prefix)
    try:
        totals = backend.totals()
        put = _op_totals(totals, "put")
        assert (put.count, put.errors) == (100, 10)
        assert metrics_store.counters(totals)["hot.miss"] == 10
        now = int(time.time() // 60)
        minutes = backend.read(now - 5, now)
        assert sum(f.get("op:put:count", 0) for f in minutes.values()) == 100
    finally:
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


@pytest.mark.django_db(transaction=True)
def test_database_aggregate_from_two_processes():
    script = (
        "from checkpoints import metrics, metrics_store\n"
        "for i in range(40):\n"
        "    metrics.observe('get_tuple', 0.0005)\n"
        "metrics_store.flush(metrics_store.DatabaseBackend('default'))\n"
    )
    children = [manage("shell", "-c", script, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for child in children:
        _, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
    totals = metrics_store.totals(metrics_store.DatabaseBackend("default"))
    assert _op_totals(totals, "get_tuple").count == 80


def _redis() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(settings.TEST_REDIS_URL, socket_timeout=1).ping())
    except redis.RedisError:
        return False
