"""TTL on a real clock, and the three ways the sweep runs: the store's own method and
thread, the django-rq job (and its RQ cron entry), and `manage.py sweep_store`."""

from __future__ import annotations

import asyncio
import importlib
import io
import sys
import time

from django.core.management import call_command
from rq import cron as rq_cron

from store import jobs, services

from .django_only import impl, mode  # noqa: F401 - fixtures


def alias(impl: str) -> str:
    return "default" if impl == "sqlite" else "postgres"


async def test_an_item_expires_on_the_clock(make_store):
    s = make_store()
    await s.put(("t",), "short", {"v": 1}, ttl=0.6 / 60)
    await s.put(("t",), "long", {"v": 1}, ttl=10)
    assert (await s.get(("t",), "short", refresh_ttl=False)).value == {"v": 1}
    await asyncio.sleep(0.7)
    assert await s.get(("t",), "short") is None
    assert keys(await s.search(("t",))) == ["long"]
    assert await s.sweep() == 1


def keys(items):
    return [i.key for i in items]


async def test_the_sweep_deletes_in_chunks(make_store, impl):
    s = make_store()
    for i in range(10):
        await s.put(("t",), f"k{i}", {"v": i}, ttl=1)
        await s.age(("t",), f"k{i}")
    await s.put(("t",), "kept", {"v": 0}, ttl=1)
    deleted = await asyncio.to_thread(services.store_sweep_expired, using=alias(impl), chunk=3)
    assert deleted == 10
    assert await s.row_count() == 1


async def test_the_job_sweeps(make_store, impl):
    s = make_store()
    await s.put(("t",), "k", {"v": 1}, ttl=1)
    await s.age(("t",), "k")
    assert await asyncio.to_thread(jobs.store_sweep_expired, alias(impl)) == 1
    assert await asyncio.to_thread(jobs.store_sweep_expired, alias(impl)) == 0


async def test_the_command_sweeps(make_store, impl):
    s = make_store()
    await s.put(("t",), "k", {"v": 1}, ttl=1)
    await s.age(("t",), "k")
    out = io.StringIO()
    await asyncio.to_thread(call_command, "sweep_store", database=[alias(impl)], stdout=out)
    assert out.getvalue().strip() == f"{alias(impl)}: 1 expired item(s) deleted"
    assert await s.row_count() == 0


async def test_the_sweeper_thread_sweeps_on_its_interval(make_store):
    s = make_store(ttl={"sweep_interval_minutes": 0.1 / 60})
    await s.put(("t",), "k", {"v": 1}, ttl=1)
    await s.age(("t",), "k")
    future = s.store.start_ttl_sweeper()
    try:
        deadline = time.monotonic() + 5
        while await s.row_count() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert await s.row_count() == 0
    finally:
        assert await asyncio.to_thread(s.store.stop_ttl_sweeper, 5)
    assert future.done()


def test_the_cron_module_schedules_the_job_on_each_database(settings):
    settings.STORE_TTL_SWEEP_INTERVAL_MINUTES = 2
    settings.STORE_TTL_SWEEP_DATABASES = ["default", "other"]
    before = len(rq_cron._job_data_registry)
    sys.modules.pop("store.cron", None)
    importlib.import_module("store.cron")
    sys.modules.pop("store.cron", None)
    added = rq_cron._job_data_registry[before:]
    del rq_cron._job_data_registry[before:]
    assert [(j["func"], j["interval"], j["kwargs"]) for j in added] == [
        (jobs.store_sweep_expired, 120, {"using": "default"}),
        (jobs.store_sweep_expired, 120, {"using": "other"}),
    ]
