"""Retention prunes and deletes idle threads on its own, and never touches a thread a
person still has to answer."""

from datetime import timedelta

import pytest

from checkpoints.codec import now
from checkpoints.models import Checkpoint, Thread, ThreadTombstone
from checkpoints.retention import retention_apply

from .graphs import chat_graph


def age(alias, thread_id, days):
    Thread.objects.using(alias).filter(thread_id=thread_id).update(updated_at=now() - timedelta(days=days))


@pytest.fixture
def threads(saver, db_alias):
    graph = chat_graph(saver)
    for thread_id in ("old", "older", "fresh", "waiting"):
        for text in ("a", "b"):
            graph.invoke({"messages": [{"role": "user", "content": text}]}, {"configurable": {"thread_id": thread_id}})
    Thread.objects.using(db_alias).filter(thread_id="waiting").update(status="interrupted")
    age(db_alias, "old", 40)
    age(db_alias, "older", 400)
    age(db_alias, "waiting", 400)
    return graph


def test_retention_prunes_then_deletes_only_idle_threads(saver, db_alias, threads):
    result = retention_apply(using=db_alias, prune_days=30, delete_days=365)
    assert result == {"pruned": 1, "deleted": 1, "tombstones": 0}
    count = lambda t: Checkpoint.objects.using(db_alias).filter(thread_id=t).count()  # noqa: E731
    assert count("old") == 1 and count("older") == 0
    assert count("fresh") == 6 and count("waiting") == 6
    assert threads.get_state({"configurable": {"thread_id": "old"}}).values["turns"] == 2
    assert retention_apply(using=db_alias, prune_days=30, delete_days=365) == {"pruned": 0, "deleted": 0, "tombstones": 0}
    # The deleted thread's tombstone outlives any run in flight, then goes.
    tombstone = ThreadTombstone.objects.using(db_alias).filter(thread_id="older")
    tombstone.update(deleted_at=now() - timedelta(days=8))
    assert retention_apply(using=db_alias, prune_days=None, delete_days=None)["tombstones"] == 1
    assert not tombstone.exists()
