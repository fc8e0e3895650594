"""Bad input gets a clear error (or `None` where the base class says so) and nothing is
half-written."""

import asyncio
import threading

import pytest
from langgraph.checkpoint.base import empty_checkpoint

from checkpoints.models import Checkpoint, CheckpointBlob, CheckpointWrite, Thread

from .graphs import chat_graph


def row_counts(alias):
    return tuple(
        model.objects.using(alias).count()
        for model in (Thread, Checkpoint, CheckpointBlob, CheckpointWrite)
    )


def checkpoint_with(values):
    versions = {k: "00000000000000000000000000000001.0.5" for k in values}
    return {**empty_checkpoint(), "channel_values": values, "channel_versions": versions}


@pytest.fixture
def seeded(saver):
    chat_graph(saver).invoke(
        {"messages": [{"role": "user", "content": "hi"}]},
        {"configurable": {"thread_id": "t-ok"}},
    )
    return saver.get_tuple({"configurable": {"thread_id": "t-ok"}})


@pytest.mark.parametrize(
    "config",
    [{}, {"configurable": {}}, {"configurable": {"thread_id": ""}}, {"configurable": {"thread_id": None}}],
    ids=["no-configurable", "no-thread", "empty", "none"],
)
def test_config_without_thread_id_is_a_clear_error(saver, db_alias, seeded, config):
    before = row_counts(db_alias)
    cp = checkpoint_with({"a": [1]})
    with pytest.raises(ValueError, match="thread_id"):
        saver.put(config, cp, {}, dict(cp["channel_versions"]))
    with pytest.raises(ValueError, match="thread_id"):
        saver.get_tuple(config)
    with pytest.raises(ValueError, match="thread_id"):
        saver.put_writes({"configurable": {**config.get("configurable", {}), "checkpoint_id": "x"}}, [("a", 1)], "task")
    with pytest.raises(ValueError, match="thread_id"):
        asyncio.run(saver.aput(config, cp, {}, dict(cp["channel_versions"])))
    with pytest.raises(ValueError, match="thread_id"):
        asyncio.run(saver.aget_tuple(config))
    assert row_counts(db_alias) == before


@pytest.mark.parametrize(
    "thread_id", ["nul\x00byte", b"bytes", 3.5, "x" * 2000], ids=["nul", "bytes", "float", "long"]
)
def test_malformed_ids_are_refused(saver, db_alias, seeded, thread_id):
    before = row_counts(db_alias)
    cp = checkpoint_with({"a": [1]})
    with pytest.raises(ValueError, match="thread_id"):
        saver.put({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}, cp, {}, {})
    assert row_counts(db_alias) == before


@pytest.mark.parametrize(
    "value", [object(), lambda x: x, threading.Lock()], ids=["object", "lambda", "lock"]
)
def test_unserialisable_value_writes_nothing(saver, db_alias, seeded, value):
    before = row_counts(db_alias)
    cp = checkpoint_with({"fine": [1, 2], "bad": value})
    with pytest.raises(ValueError, match="cannot be serialised"):
        saver.put(seeded.config, cp, {"source": "loop", "step": 1}, dict(cp["channel_versions"]))
    with pytest.raises(ValueError, match="cannot be serialised"):
        saver.put_writes(seeded.config, [("ok", 1), ("bad", value)], "task-1")
    with pytest.raises(ValueError, match="cannot be serialised"):
        asyncio.run(saver.aput(seeded.config, cp, {"source": "loop", "step": 1}, dict(cp["channel_versions"])))
    with pytest.raises(ValueError, match="cannot be serialised"):
        asyncio.run(saver.aput_writes(seeded.config, [("ok", 1), ("bad", value)], "task-1"))
    assert row_counts(db_alias) == before
    assert saver.get_tuple({"configurable": {"thread_id": "t-ok"}}).checkpoint["id"] == seeded.checkpoint["id"]


def test_unserialisable_metadata_writes_nothing(saver, db_alias, seeded):
    before = row_counts(db_alias)
    cp = checkpoint_with({"a": [1]})
    with pytest.raises(ValueError, match="metadata"):
        saver.put(seeded.config, cp, {"source": "loop", "step": 1, "when": object()}, {})
    assert row_counts(db_alias) == before


def test_metadata_json_keeps_what_json_keeps(saver, seeded):
    """orjson writes metadata; what it refuses (integers past 64 bits) falls back to
    `json`, and NUL, which jsonb refuses, is dropped rather than failing the put."""
    cp = checkpoint_with({"a": [1]})
    meta = {"source": "loop", "step": 1, "big": 2**70, "naïve": "é\x00x", "by_n": {1: "one"}}
    config = saver.put(seeded.config, cp, meta, {})
    stored = saver.get_tuple(config).metadata
    assert stored["big"] == 2**70
    assert stored["naïve"] == "éx"
    assert stored["by_n"] == {"1": "one"}


@pytest.mark.parametrize(
    "key", ["a') OR 1=1 --", "x__regex", "metadata__contains", "a b", "", "$.x"],
)
def test_malicious_filter_keys_never_reach_a_query(saver, seeded, key):
    with pytest.raises(ValueError, match="filter key"):
        list(saver.list({"configurable": {"thread_id": "t-ok"}}, filter={key: "x"}))
    with pytest.raises(ValueError, match="filter key"):
        list(saver.list(None, filter={key: 1}))

    async def alist():
        return [t async for t in saver.alist(None, filter={key: 1})]

    with pytest.raises(ValueError, match="filter key"):
        asyncio.run(alist())


def test_filter_values_are_parameters(saver, seeded):
    hits = list(saver.list(None, filter={"source": "loop' OR '1'='1"}))
    assert hits == []
    assert len(list(saver.list(None, filter={"source": "loop"}))) == 2
    assert len(list(saver.list(None, filter={"source": "loop", "step": 1}))) == 1
    assert len(list(saver.list(None, filter={"source": "input", "step": -1}))) == 1


def test_missing_checkpoint_is_none(saver, seeded):
    missing = {"configurable": {"thread_id": "t-ok", "checkpoint_ns": "", "checkpoint_id": "1ef00000-0000-6000-8000-000000000000"}}
    assert saver.get_tuple(missing) is None
    assert asyncio.run(saver.aget_tuple(missing)) is None
    assert saver.get_tuple({"configurable": {"thread_id": "nobody"}}) is None
    assert list(saver.list(missing)) == []


def test_put_writes_needs_a_checkpoint_id(saver, db_alias, seeded):
    before = row_counts(db_alias)
    with pytest.raises(ValueError, match="checkpoint_id"):
        saver.put_writes({"configurable": {"thread_id": "t-ok", "checkpoint_ns": ""}}, [("a", 1)], "task")
    assert row_counts(db_alias) == before


def test_prune_refuses_a_string_and_unknown_strategy(saver, seeded):
    with pytest.raises(TypeError):
        saver.prune("t-ok")
    with pytest.raises(ValueError, match="strategy"):
        saver.prune(["t-ok"], strategy="everything")
    with pytest.raises(TypeError):
        saver.delete_for_runs("run")
