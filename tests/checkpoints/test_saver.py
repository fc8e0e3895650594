"""The saver's own contract, beyond the conformance suite: the thread row, DeltaChannel
support, copies and prunes of real graphs, versions, and the serializer."""

import dataclasses

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from checkpoints.models import Checkpoint, CheckpointBlob, CheckpointWrite, Thread, ThreadTombstone
from checkpoints.saver import DjangoSaver, ThreadDeleted

from .graphs import ChatState, chat_graph, delta_graph


def cfg(thread_id, **extra):
    return {"configurable": {"thread_id": thread_id, **extra}}


def say(text):
    return {"messages": [{"role": "user", "content": text}]}


def test_thread_row_follows_puts(saver, db_alias):
    graph = chat_graph(saver)
    config = {**cfg("t-row"), "metadata": {"graph_id": "chat", "customer": "acme"}}
    graph.invoke(say("hi"), config)
    thread = Thread.objects.using(db_alias).get(thread_id="t-row")
    history = list(saver.list(cfg("t-row")))
    assert thread.checkpoint_count == len(history) == 3
    assert thread.head_checkpoint_id == history[0].config["configurable"]["checkpoint_id"]
    assert thread.status == "idle"
    assert thread.graph_id == "chat"
    assert thread.metadata["customer"] == "acme"
    stored = sum(c.size for c in Checkpoint.objects.using(db_alias).filter(thread_id="t-row"))
    assert thread.bytes_stored >= stored > 0


def test_status_follows_interrupts_and_errors(saver, db_alias):
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Command, interrupt

    def ask(state):
        return {"messages": [{"role": "ai", "content": interrupt("approve?")}]}

    def boom(state):
        if state["messages"][-1]["content"] == "explode":
            raise RuntimeError("node failed")
        return {}

    builder = StateGraph(ChatState)
    builder.add_node("ask", ask)
    builder.add_node("boom", boom)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", "boom")
    builder.add_edge("boom", END)
    graph = builder.compile(checkpointer=saver)

    def status():
        return Thread.objects.using(db_alias).get(thread_id="t-status").status

    graph.invoke(say("hi"), cfg("t-status"))
    assert status() == "interrupted"
    graph.invoke(Command(resume="fine"), cfg("t-status"))
    assert status() == "idle"
    graph.invoke(say("again"), cfg("t-status"))
    assert status() == "interrupted"
    with pytest.raises(RuntimeError, match="node failed"):
        graph.invoke(Command(resume="explode"), cfg("t-status"))
    assert status() == "error"


def test_put_stores_only_changed_channels(saver, db_alias):
    graph = chat_graph(saver)
    blobs = CheckpointBlob.objects.using(db_alias).filter(thread_id="t-delta")
    graph.invoke(say("one"), cfg("t-delta"))
    before = blobs.filter(channel="messages").count()
    graph.invoke(say("two"), cfg("t-delta"))
    # `messages` changes twice per invoke (the input, the reply): two new blobs, not one
    # per checkpoint or per channel.
    assert blobs.filter(channel="messages").count() - before == 2
    assert Checkpoint.objects.using(db_alias).filter(thread_id="t-delta").count() == 6
    # Small scalars (the `turns` counter, trigger channels) stay in the checkpoint row.
    assert not blobs.filter(channel="turns").exists()
    assert graph.get_state(cfg("t-delta")).values["turns"] == 2


def test_delta_channel_history_matches_in_memory_saver(saver, db_alias):
    memory = InMemorySaver()
    for s in (saver, memory):
        graph = delta_graph(s)
        for _ in range(4):
            graph.invoke({"log": ["input"]}, cfg("t-dc"))
    final = delta_graph(saver).get_state(cfg("t-dc")).values
    assert final == delta_graph(memory).get_state(cfg("t-dc")).values
    assert final["log"].count("input") == 4 and len(final["log"]) == 12

    ours = [t.config for t in saver.list(cfg("t-dc"))]
    theirs = [t.config for t in memory.list(cfg("t-dc"))]
    assert len(ours) == len(theirs) > 8
    for mine, other in zip(ours, theirs):
        got = saver.get_delta_channel_history(config=mine, channels=["log", "step"])
        want = memory.get_delta_channel_history(config=other, channels=["log", "step"])
        strip = lambda h: {  # noqa: E731 - task ids differ between the two runs
            ch: ([w[1:] for w in e["writes"]], e.get("seed")) for ch, e in h.items()
        }
        assert strip(got) == strip(want)


def test_delta_channel_history_query_count_is_constant(saver, db_alias):
    graph = delta_graph(saver)
    counts = []
    for _ in range(3):
        graph.invoke({"log": ["x"]}, cfg("t-dq"))
        with CaptureQueriesContext(connections[db_alias]) as ctx:
            saver.get_delta_channel_history(config=cfg("t-dq", checkpoint_ns=""), channels=["log"])
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[-1] <= 4


async def test_async_delta_history_and_state(saver):
    graph = delta_graph(saver)
    for _ in range(3):
        await graph.ainvoke({"log": ["a"]}, cfg("t-adc"))
    state = await graph.aget_state(cfg("t-adc"))
    assert state.values["log"].count("a") == 3 and len(state.values["log"]) == 9


def test_prune_keep_latest_keeps_delta_channel_rebuildable(saver, db_alias):
    graph = delta_graph(saver)
    for _ in range(5):
        graph.invoke({"log": ["in"]}, cfg("t-prune"))
    before = graph.get_state(cfg("t-prune")).values
    total = Checkpoint.objects.using(db_alias).filter(thread_id="t-prune").count()
    saver.prune(["t-prune"], strategy="keep_latest")
    kept = Checkpoint.objects.using(db_alias).filter(thread_id="t-prune").count()
    assert 1 <= kept < total
    assert graph.get_state(cfg("t-prune")).values == before
    thread = Thread.objects.using(db_alias).get(thread_id="t-prune")
    assert thread.checkpoint_count == kept
    graph.invoke({"log": ["after"]}, cfg("t-prune"))
    assert graph.get_state(cfg("t-prune")).values["log"][-3:] == ["after", "first-10", "second-11"]


def test_prune_keep_latest_drops_unused_blobs(saver, db_alias):
    graph = chat_graph(saver)
    for text in ("a", "b", "c"):
        graph.invoke(say(text), cfg("t-gc"))
    before = graph.get_state(cfg("t-gc")).values
    saver.prune(["t-gc"], strategy="keep_latest")
    assert graph.get_state(cfg("t-gc")).values == before
    head = saver.get_tuple(cfg("t-gc"))
    versions = {(ch, str(v)) for ch, v in head.checkpoint["channel_versions"].items()}
    blobs = set(
        CheckpointBlob.objects.using(db_alias)
        .filter(thread_id="t-gc")
        .values_list("channel", "version")
    )
    assert blobs <= versions
    assert head.parent_config is None


def test_copy_thread_copies_the_whole_chain_and_continues(saver, db_alias):
    graph = chat_graph(saver)
    graph.invoke(say("one"), cfg("t-src"))
    graph.invoke(say("two"), cfg("t-src"))
    saver.copy_thread("t-src", "t-dst")
    src = list(graph.get_state_history(cfg("t-src")))
    dst = list(graph.get_state_history(cfg("t-dst")))
    assert [s.values for s in src] == [s.values for s in dst]
    graph.invoke(say("three"), cfg("t-dst"))
    assert len(graph.get_state(cfg("t-dst")).values["messages"]) == 6
    assert len(graph.get_state(cfg("t-src")).values["messages"]) == 4
    target = Thread.objects.using(db_alias).get(thread_id="t-dst")
    assert target.checkpoint_count == len(dst) + 3


def test_copy_into_a_deleted_thread_id_lifts_its_tombstone(saver, db_alias):
    graph = chat_graph(saver)
    graph.invoke(say("gone"), cfg("t-reused"))
    graph.invoke(say("one"), cfg("t-orig"))
    saver.delete_thread("t-reused")
    saver.copy_thread("t-orig", "t-reused")
    copied = saver.get_tuple(cfg("t-reused"))  # older than the delete, yet writable
    saver.put_writes(copied.config, [("messages", ["resumed"])], task_id="task-r")
    assert saver.get_tuple(copied.config).pending_writes == [("task-r", "messages", ["resumed"])]
    assert not ThreadTombstone.objects.using(db_alias).filter(thread_id="t-reused").exists()


def test_delete_for_runs_reparents_survivors(saver, db_alias):
    import uuid

    graph = chat_graph(saver)
    first_run, second_run = str(uuid.uuid4()), str(uuid.uuid4())
    graph.invoke(say("one"), {**cfg("t-runs"), "metadata": {"run_id": first_run}})
    assert saver.get_tuple(cfg("t-runs")).metadata["run_id"] == first_run
    graph.invoke(say("two"), {**cfg("t-runs"), "metadata": {"run_id": second_run}})
    saver.delete_for_runs([first_run])
    remaining = list(saver.list(cfg("t-runs")))
    assert len(remaining) == 3 and {t.metadata["run_id"] for t in remaining} == {second_run}
    assert remaining[-1].parent_config is None
    thread = Thread.objects.using(db_alias).get(thread_id="t-runs")
    assert thread.checkpoint_count == len(remaining)


def test_versions_are_those_of_postgres_saver(saver):
    anchor = PostgresSaver.__new__(PostgresSaver)
    ours = saver.get_next_version(None, None)
    theirs = anchor.get_next_version(None, None)
    assert ours.split(".")[0] == theirs.split(".")[0] == f"{1:032}"
    assert saver.get_next_version(ours, None).split(".")[0] == anchor.get_next_version(ours, None).split(".")[0]
    assert saver.get_next_version(7, None).startswith(f"{8:032}.")


@dataclasses.dataclass
class Secret:
    code: str


def test_strict_serde_blocks_unlisted_types_and_with_allowlist_admits_them(db_alias, saver, saver_spec, tmp_path):
    config = saver.put(
        cfg("t-allow", checkpoint_ns=""),
        {**empty_checkpoint(), "channel_values": {"secret": Secret("x")}, "channel_versions": {"secret": "1"}},
        {"source": "input", "step": -1},
        {"secret": "1"},
    )
    strict = saver_spec.build(tmp_path, serde=JsonPlusSerializer(allowed_msgpack_modules=None))
    blocked = strict.get_tuple(config).checkpoint["channel_values"]["secret"]
    assert not isinstance(blocked, Secret)
    clone = strict.with_allowlist([Secret])
    assert isinstance(clone, DjangoSaver) and clone.using == db_alias
    assert clone.get_tuple(config).checkpoint["channel_values"]["secret"] == Secret("x")
    # The original keeps its own, stricter serializer.
    assert not isinstance(strict.get_tuple(config).checkpoint["channel_values"]["secret"], Secret)


def test_default_serializer_never_pickles(saver):
    assert isinstance(saver.serde, JsonPlusSerializer)
    assert saver.serde.pickle_fallback is False


def test_pending_writes_are_returned_in_sort_key_order(saver, db_alias):
    stored = chat_graph(saver).invoke(say("x"), cfg("t-order"))
    assert stored
    head = saver.get_tuple(cfg("t-order"))
    saver.put_writes(head.config, [("b", 2), ("a", 1)], task_id="task-b", task_path="~1")
    saver.put_writes(head.config, [("c", 3)], task_id="task-a", task_path="~0")
    saver.put_writes(head.config, [("c", 3)], task_id="task-a", task_path="~0")
    writes = saver.get_tuple(head.config).pending_writes
    assert writes == [("task-a", "c", 3), ("task-b", "b", 2), ("task-b", "a", 1)]
    head_id = head.config["configurable"]["checkpoint_id"]
    assert CheckpointWrite.objects.using(db_alias).filter(thread_id="t-order", checkpoint_id=head_id).count() == 3


@pytest.mark.parametrize("special, status", [("__interrupt__", "interrupted"), ("__error__", "error")])
def test_status_of_writes_committed_before_their_checkpoint(saver, db_alias, special, status):
    """Durability "async": a step's interrupt or error may reach the database before the
    checkpoint it belongs to; the checkpoint's own status must not overwrite it."""
    from langgraph.checkpoint.base.id import uuid6

    thread = f"t-early-{status}"
    first = saver.put(cfg(thread, checkpoint_ns=""), empty_checkpoint(), {"step": -1}, {})
    checkpoint = {**empty_checkpoint(), "id": str(uuid6(clock_seq=1))}
    early = cfg(thread, checkpoint_ns="", checkpoint_id=checkpoint["id"])
    saver.put_writes(early, [(special, "stop")], task_id="task-1")
    saver.put(first, checkpoint, {"step": 0}, {})
    row = Thread.objects.using(db_alias).get(thread_id=thread)
    assert (row.status, row.head_checkpoint_id, row.checkpoint_count) == (status, checkpoint["id"], 2)
    # A resume written afterwards makes the thread runnable again.
    saver.put_writes(early, [("__resume__", "go")], task_id="task-2")
    assert Thread.objects.using(db_alias).get(thread_id=thread).status == "busy"


@pytest.mark.parametrize("how", ["delete_thread", "prune"])
def test_late_writes_after_a_delete_do_not_bring_the_thread_back(saver, db_alias, how):
    """langgraph#7206: a run still in flight when its thread is deleted keeps writing;
    its writes are refused, and a new run on the same thread_id starts afresh."""
    from langgraph.checkpoint.base.id import uuid6

    graph = chat_graph(saver)
    graph.invoke(say("hi"), cfg("t-late"))
    head = saver.get_tuple(cfg("t-late"))
    in_flight = {**empty_checkpoint(), "id": str(uuid6(clock_seq=7))}  # created before the delete
    if how == "delete_thread":
        saver.delete_thread("t-late")
    else:
        saver.prune(["t-late"], strategy="delete")
    with pytest.raises(ThreadDeleted, match="t-late"):
        saver.put_writes(head.config, [("messages", ["late"])], task_id="late-task")
    with pytest.raises(ThreadDeleted):
        saver.put_writes(head.config, [("__interrupt__", "late")], task_id="late-task")
    with pytest.raises(ThreadDeleted):
        saver.put(head.config, in_flight, {"step": 9}, {})
    for model in (Thread, Checkpoint, CheckpointBlob, CheckpointWrite):
        assert not model.objects.using(db_alias).filter(thread_id="t-late").exists(), model
    assert saver.get_tuple(cfg("t-late")) is None
    assert ThreadTombstone.objects.using(db_alias).get(thread_id="t-late").deleted_before >= in_flight["id"]

    graph.invoke(say("again"), cfg("t-late"))
    assert [m["content"] for m in graph.get_state(cfg("t-late")).values["messages"]][0] == "again"
    assert Thread.objects.using(db_alias).get(thread_id="t-late").checkpoint_count == 3


async def test_late_async_writes_after_a_delete_are_refused(saver):
    await chat_graph(saver).ainvoke(say("hi"), cfg("t-alate"))
    head = await saver.aget_tuple(cfg("t-alate"))
    await saver.adelete_thread("t-alate")
    with pytest.raises(ThreadDeleted):
        await saver.aput_writes(head.config, [("messages", ["late"])], task_id="late-task")
    assert await saver.aget_tuple(cfg("t-alate")) is None
