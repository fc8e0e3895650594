"""Runs as django-rq jobs on a real Redis, and the reaper of lost runs."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from timetravel import graphs, jobs, services
from timetravel.models import Approval, Run, ThreadLock

from .conftest import graph_config

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def pending_id(thread_id):
    return graphs.graph_get("demo").get_state(graph_config(thread_id)).interrupts[0].id


@pytest.fixture
def redis_queue(settings, monkeypatch):
    redis = pytest.importorskip("redis")
    from rq import Queue

    connection = redis.Redis.from_url(settings.TEST_REDIS_URL)
    try:
        connection.ping()
    except redis.RedisError:
        if settings.CI:
            raise
        pytest.skip("no Redis")
    queue = Queue("timetravel-test", connection=connection)
    queue.empty()
    settings.REDIS_URL = settings.TEST_REDIS_URL
    import django_rq

    monkeypatch.setattr(django_rq, "get_queue", lambda name="default", **kw: queue)
    yield queue
    queue.empty()


def test_with_redis_a_decision_is_run_by_a_worker(sqlite_console, operator_user, refund_thread, redis_queue):
    from rq import SimpleWorker

    approval = services.interrupt_decide(user=operator_user, thread_id=refund_thread,
                                         interrupt_id=pending_id(refund_thread), decision={"type": "accept"})
    assert approval.state == "decided" and redis_queue.count == 1  # waiting for a worker
    assert redis_queue.jobs[0].id == f"timetravel-run-{approval.run_id}"
    SimpleWorker([redis_queue], connection=redis_queue.connection).work(burst=True)
    approval.refresh_from_db()
    assert approval.state == "resumed" and approval.run.state == "succeeded"
    assert graphs.graph_get("demo").get_state(graph_config(refund_thread)).values["outcome"] == "refunded 42.50"


def test_the_reaper_fails_runs_of_dead_workers_and_requeues_lost_jobs(sqlite_console, operator_user, refund_thread):
    long_ago = timezone.now() - timedelta(hours=2)
    dead = Run.objects.create(thread_id="gone", graph_id="demo", kind="replay", state="running", started_at=long_ago)
    alive = Run.objects.create(thread_id="busy", graph_id="demo", kind="replay", state="running", started_at=long_ago)
    ThreadLock.objects.create(thread_id="busy", run=alive, owner="x", acquired_at=long_ago,
                              expires_at=timezone.now() + timedelta(minutes=5))
    # A decision whose job never reached a worker.
    item_id = pending_id(refund_thread)
    lost = Run.objects.create(thread_id=refund_thread, graph_id="demo", kind="resume", resume=[{"type": "accept"}],
                              checkpoint_id=graphs.graph_get("demo").get_state(graph_config(refund_thread))
                              .config["configurable"]["checkpoint_id"])
    Run.objects.filter(pk=lost.pk).update(created_at=long_ago)
    Approval.objects.create(thread_id=refund_thread, checkpoint_id=lost.checkpoint_id, interrupt_id=item_id,
                            state="decided", run=lost)

    assert jobs.runs_reap() == {"failed": 1, "requeued": 1}
    assert Run.objects.get(pk=dead.pk).state == "failed"
    assert Run.objects.get(pk=alive.pk).state == "running"
    assert Run.objects.get(pk=lost.pk).state == "succeeded"
    assert Approval.objects.get(run=lost).state == "resumed"
    assert jobs.runs_reap() == {"failed": 0, "requeued": 0}
