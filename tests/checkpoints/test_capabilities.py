"""What a saver is for, on each database: session memory, time travel (replay and
fork), human-in-the-loop, and recovery from a process killed mid-step. Each test asserts
on concrete values, so it fails when the capability breaks, not only when it raises.
Then the `witness` command, which checks the same four things for an operator."""

import io
import signal

import pytest
from django.core.management import CommandError, call_command
from langgraph.types import Command

from checkpoints.models import Thread
from checkpoints.saver import DjangoSaver
from checkpoints.witness import capabilities, crash
from timetravel.demo import build_graph, user_message


def cfg(thread_id, **configurable):
    return {"configurable": {"thread_id": thread_id, **configurable}}


def checkpoint_id(config):
    return config["configurable"]["checkpoint_id"]


def test_session_memory(db_alias):
    build_graph(DjangoSaver(using=db_alias)).invoke(user_message("Where is my order #1001?"), cfg("mem"))
    # Another saver and graph: what the second turn knows came from the database.
    graph = build_graph(DjangoSaver(using=db_alias))
    second = graph.invoke(user_message("Has it shipped yet?"), cfg("mem"))
    assert [m["content"] for m in second["messages"]] == [
        "Where is my order #1001?",
        "Order #1001 is on its way: tracking number TRK-1001.",
        "Has it shipped yet?",
        "Order #1001 is on its way: tracking number TRK-1001.",
    ]
    stranger = graph.invoke(user_message("Has it shipped yet?"), cfg("other"))
    assert stranger["messages"][-1]["content"].startswith("Which order is this about?")


def test_time_travel_replay(db_alias):
    graph = build_graph(DjangoSaver(using=db_alias))
    done = graph.invoke(user_message("Where is my order #1001?"), cfg("replay"))
    history = list(graph.get_state_history(cfg("replay")))
    before_execute = next(s for s in history if s.next == ("execute",))

    replayed = graph.invoke(None, before_execute.config)

    assert replayed == done
    after = list(graph.get_state_history(cfg("replay")))
    head = after[0]
    assert checkpoint_id(head.config) not in {checkpoint_id(s.config) for s in history}
    parent = graph.get_state(head.parent_config)
    assert parent.metadata["source"] == "fork"  # LangGraph copies the replayed checkpoint
    assert checkpoint_id(parent.parent_config) == checkpoint_id(before_execute.config)
    # The old branch is still there, as it was.
    old = {checkpoint_id(s.config): s.values for s in history}
    assert {checkpoint_id(s.config): s.values for s in after if checkpoint_id(s.config) in old} == old


def test_time_travel_fork(db_alias):
    graph = build_graph(DjangoSaver(using=db_alias))
    graph.invoke(user_message("Where is my order #1001?"), cfg("fork"))
    history = list(graph.get_state_history(cfg("fork")))
    before_draft = next(s for s in history if s.next == ("draft",))

    fork_config = graph.update_state(before_draft.config, {"order_id": "2002"})

    fork = graph.get_state(fork_config)
    assert checkpoint_id(fork.parent_config) == checkpoint_id(before_draft.config)
    assert fork.values["order_id"] == "2002" and fork.next == ("draft",)
    branch = graph.invoke(None, fork_config)
    assert branch["messages"][-1]["content"] == "Order #2002 is on its way: tracking number TRK-2002."
    for old in history:
        assert graph.get_state(old.config).values == old.values
    assert graph.get_state(history[0].config).values["messages"][-1]["content"].startswith("Order #1001")
    assert graph.get_state(cfg("fork")).values["order_id"] == "2002"


def test_human_in_the_loop(db_alias):
    paused = build_graph(DjangoSaver(using=db_alias)).invoke(
        user_message("Refund order #4417 please, it arrived broken ($89.99)"), cfg("hitl")
    )
    (pending,) = paused["__interrupt__"]
    assert pending.value["action_request"] == {
        "action": "issue_refund", "args": {"order_id": "4417", "amount": 89.99}
    }
    assert paused["outcome"] is None
    assert Thread.objects.using(db_alias).get(thread_id="hitl").status == "interrupted"

    graph = build_graph(DjangoSaver(using=db_alias))
    assert graph.get_state(cfg("hitl")).next == ("approve",)
    edit = {"action": "issue_refund", "args": {"order_id": "4417", "amount": 50.0}}
    done = graph.invoke(Command(resume=[{"type": "edit", "args": edit}]), cfg("hitl"))

    assert done["outcome"] == "refunded 50.00"
    assert done["messages"][-1]["content"] == "I have refunded $50.00 for order #4417."
    assert graph.get_state(cfg("hitl")).next == ()
    assert Thread.objects.using(db_alias).get(thread_id="hitl").status == "idle"


def test_fault_tolerance_after_sigkill(db_alias, tmp_path):
    config = cfg("crash")
    proc = crash.start_doomed_run(crash.database_url(db_alias), "crash", tmp_path)
    try:
        crash.wait_until_killable(proc, DjangoSaver(using=db_alias), config, tmp_path)
    finally:
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    assert crash.tallies(tmp_path) == {"fast": 1, "slow": 1, "join": 0}
    assert Thread.objects.using(db_alias).get(thread_id="crash").status == "busy"

    graph = crash.build_crash_graph(DjangoSaver(using=db_alias), tmp_path, block=False)
    result = graph.invoke(None, config)

    assert sorted(result["done"]) == ["fast", "join", "slow"]
    # `fast` finished before the kill: its saved write is reused, never re-run.
    assert crash.tallies(tmp_path) == {"fast": 1, "slow": 2, "join": 1}
    assert Thread.objects.using(db_alias).get(thread_id="crash").status == "idle"


def test_witness_command_passes(db_alias):
    out = io.StringIO()
    call_command("witness", database=db_alias, stdout=out, no_color=True)
    lines = out.getvalue().splitlines()
    assert [line.split("  ")[0].strip() for line in lines] == list(capabilities.CHECKS)
    assert all("  PASS  " in line for line in lines), lines
    assert not Thread.objects.using(db_alias).filter(thread_id__startswith="witness-").exists()


def test_witness_command_fails_when_a_capability_fails(monkeypatch):
    def broken(*, using, threads):
        raise capabilities.WitnessFailure("turn 2 forgot turn 1")

    monkeypatch.setattr(capabilities, "CHECKS", {"session memory": broken})
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 1 capabilities failed: session memory"):
        call_command("witness", stdout=out, no_color=True)
    assert "session memory  FAIL  WitnessFailure: turn 2 forgot turn 1" in out.getvalue()
