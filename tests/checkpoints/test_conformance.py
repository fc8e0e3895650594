"""The public `langgraph-checkpoint-conformance` suite, on every database, through the
async methods and again through an adapter whose async methods call the sync ones."""

import asyncio

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

from checkpoints import metrics
from checkpoints.saver import DjangoSaver


class SyncPathSaver(DjangoSaver):
    """Every async method is the sync one on a worker thread, so the conformance
    suite (which only awaits) exercises the sync code paths."""

    async def aget_tuple(self, config):
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(self, config, *, filter=None, before=None, limit=None):
        tuples = await asyncio.to_thread(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit))
        )
        for tup in tuples:
            yield tup

    async def aput(self, config, checkpoint, metadata, new_versions):
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config, writes, task_id, task_path=""):
        return await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id):
        return await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids):
        return await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id, target_thread_id):
        return await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids, *, strategy="keep_latest"):
        return await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)


@pytest.mark.parametrize("saver_class", [DjangoSaver, SyncPathSaver], ids=["async", "sync"])
async def test_conformance(saver_spec, saver_class, tmp_path):
    @checkpointer_test(name=f"{saver_class.__name__}[{saver_spec.id}]")
    async def factory():
        yield saver_spec.build(tmp_path, saver_class)

    errors_before = metrics.snapshot().get("hot.error", 0)
    report = await validate(factory)
    # A hot tier that silently fell back to the database would pass too: require none.
    assert metrics.snapshot().get("hot.error", 0) == errors_before
    results = report.results
    assert set(results) == {c.value for c in ALL_CAPABILITIES}
    failures = {
        name: r.failures for name, r in results.items() if not r.passed or r.tests_skipped
    }
    assert not failures, failures
    assert all(r.detected and r.tests_passed > 0 for r in results.values())
