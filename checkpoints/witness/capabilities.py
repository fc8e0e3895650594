"""Check, against a live database, the four things a LangGraph saver exists for.

Each check runs the shipped demo graph (or, for a crash, `crash`'s graph) through
`DjangoSaver` on its own throwaway thread, asserts on concrete values, and returns a
`Finding` whose evidence line an operator can read. The threads are deleted afterwards,
so running `manage.py witness` against production leaves nothing behind.

The demo graph belongs to the console (`timetravel`); the witness uses it anyway,
because what it proves is that the graph people see in the console pauses, forks and
resumes on this database.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from langgraph.types import Command

from checkpoints.saver import DjangoSaver

from . import crash


@dataclass(frozen=True)
class Finding:
    capability: str
    passed: bool
    evidence: str


class WitnessFailure(AssertionError):
    """A capability did not hold; the message is the evidence."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise WitnessFailure(message)


def _config(thread_id: str) -> dict:
    return {"configurable": {"thread_id": thread_id}, "metadata": {"graph_id": "witness"}}


def _short(checkpoint_id: str) -> str:
    return checkpoint_id[-8:]


def _demo(saver: DjangoSaver):
    from timetravel.demo import build_graph

    return build_graph(checkpointer=saver)


def session_memory(*, using: str, threads: list[str]) -> str:
    """A second invocation on a thread continues its conversation."""
    from timetravel.demo import user_message

    thread, stranger = f"witness-memory-{uuid.uuid4()}", f"witness-memory-{uuid.uuid4()}"
    threads += [thread, stranger]
    _demo(DjangoSaver(using=using)).invoke(user_message("Where is my order #1001?"), _config(thread))
    # A new saver and graph: the memory must come from the database, not this object.
    graph = _demo(DjangoSaver(using=using))
    second = graph.invoke(user_message("Has it shipped yet?"), _config(thread))
    contents = [m["content"] for m in second["messages"]]
    _check(len(contents) == 4, f"expected 4 messages after turn 2, got {len(contents)}: {contents}")
    _check(contents[0] == "Where is my order #1001?", f"turn 1 lost: {contents[0]!r}")
    _check("#1001" in contents[3], f"turn 2 did not recall order #1001: {contents[3]!r}")
    cold = graph.invoke(user_message("Has it shipped yet?"), _config(stranger))
    _check(
        "Which order" in cold["messages"][-1]["content"],
        f"a fresh thread knew the order: {cold['messages'][-1]['content']!r}",
    )
    return (
        f"turn 2 on {thread[-8:]} recalled order #1001 from turn 1 (4 messages); "
        "a fresh thread asked which order"
    )


def _lineage(graph, config: dict, *, limit: int = 100) -> list[str]:
    """Checkpoint ids from `config` back to the root. Bounded: a saver that ignores
    `checkpoint_id` would otherwise walk in a circle."""
    ids: list[str] = []
    while config is not None and len(ids) < limit:
        snapshot = graph.get_state(config)
        checkpoint_id = snapshot.config["configurable"]["checkpoint_id"]
        if checkpoint_id in ids:
            break
        ids.append(checkpoint_id)
        config = snapshot.parent_config
    return ids


def time_travel(*, using: str, threads: list[str]) -> str:
    """Replay from an earlier checkpoint, and fork one with `update_state`; neither
    changes the history that was there."""
    from timetravel.demo import user_message

    thread = f"witness-timetravel-{uuid.uuid4()}"
    threads.append(thread)
    graph = _demo(DjangoSaver(using=using))
    config = _config(thread)
    done = graph.invoke(user_message("Where is my order #1001?"), config)
    history = list(graph.get_state_history(config))
    original = {s.config["configurable"]["checkpoint_id"]: s.values for s in history}
    head = history[0].config["configurable"]["checkpoint_id"]
    before_execute = next(s for s in history if s.next == ("execute",))
    before_draft = next(s for s in history if s.next == ("draft",))

    replayed = graph.invoke(None, before_execute.config)
    _check(
        replayed["messages"] == done["messages"],
        f"replay gave {replayed['messages'][-1]} instead of {done['messages'][-1]}",
    )
    replay_head = graph.get_state(config).config["configurable"]["checkpoint_id"]
    replay_from = before_execute.config["configurable"]["checkpoint_id"]
    _check(replay_head != head, "replay wrote no new checkpoint")
    _check(
        replay_from in _lineage(graph, graph.get_state(config).config),
        f"replayed head {_short(replay_head)} does not descend from {_short(replay_from)}",
    )

    fork_from = before_draft.config["configurable"]["checkpoint_id"]
    fork_config = graph.update_state(before_draft.config, {"order_id": "2002"})
    fork = graph.get_state(fork_config)
    fork_parent = fork.parent_config["configurable"]["checkpoint_id"]
    _check(fork_parent == fork_from, f"fork's parent is {fork_parent}, expected {fork_from}")
    _check(fork.values["order_id"] == "2002", f"fork holds order {fork.values['order_id']}")
    branch = graph.invoke(None, fork_config)
    _check(
        "#2002" in branch["messages"][-1]["content"],
        f"the fork's run answered {branch['messages'][-1]['content']!r}",
    )
    for checkpoint_id, values in original.items():
        now = graph.get_state(
            {"configurable": {"thread_id": thread, "checkpoint_id": checkpoint_id}}
        ).values
        _check(now == values, f"checkpoint {_short(checkpoint_id)} changed after fork/replay")
    return (
        f"replay from {_short(replay_from)} made head {_short(replay_head)} with the same answer; "
        f"fork {_short(fork_config['configurable']['checkpoint_id'])} has parent "
        f"{_short(fork_from)} and answered for #2002; {len(original)} original checkpoints unchanged"
    )


def human_in_the_loop(*, using: str, threads: list[str]) -> str:
    """A run pauses at the approval interrupt and `Command(resume=...)` completes it."""
    from checkpoints.models import Thread
    from timetravel.demo import user_message

    thread = f"witness-hitl-{uuid.uuid4()}"
    threads.append(thread)
    config = _config(thread)
    paused = _demo(DjangoSaver(using=using)).invoke(
        user_message("My blender arrived broken, please refund order #4417 ($89.99)"), config
    )
    interrupts = paused.get("__interrupt__") or ()
    _check(len(interrupts) == 1, f"expected one interrupt, got {interrupts!r}")
    request = interrupts[0].value["action_request"]
    expected = {"action": "issue_refund", "args": {"order_id": "4417", "amount": 89.99}}
    _check(request == expected, f"interrupt asked for {request}")
    status = Thread.objects.using(using).get(thread_id=thread).status
    _check(status == "interrupted", f"thread status is {status!r} while paused")

    # Resumed through a new saver: the pause survives the process that made it.
    graph = _demo(DjangoSaver(using=using))
    _check(graph.get_state(config).next == ("approve",), "paused run is not waiting in approve")
    edit = {"action": "issue_refund", "args": {"order_id": "4417", "amount": 50.0}}
    done = graph.invoke(Command(resume=[{"type": "edit", "args": edit}]), config)
    _check(done["outcome"] == "refunded 50.00", f"outcome after resume: {done['outcome']!r}")
    _check(graph.get_state(config).next == (), "run did not finish after resume")
    status = Thread.objects.using(using).get(thread_id=thread).status
    _check(status == "idle", f"thread status is {status!r} after resume")
    return (
        "paused in approve asking issue_refund $89.99 on #4417 (thread interrupted); "
        f"resume with an edit to $50.00 finished it: {done['messages'][-1]['content']!r}"
    )


def fault_tolerance(*, using: str, threads: list[str]) -> str:
    """A run killed mid-step resumes in another process without redoing finished work."""
    thread = f"witness-crash-{uuid.uuid4()}"
    threads.append(thread)
    config = {"configurable": {"thread_id": thread}}
    saver = DjangoSaver(using=using)
    with tempfile.TemporaryDirectory(prefix="witness-") as tally_dir:
        proc = crash.start_doomed_run(crash.database_url(using), thread, tally_dir)
        try:
            crash.wait_until_killable(proc, saver, config, tally_dir)
        finally:
            status = crash.kill(proc)
        _check(status == -9, f"child exited with {status}, not SIGKILL")
        graph = crash.build_crash_graph(DjangoSaver(using=using), tally_dir, block=False)
        result = graph.invoke(None, config)
        counts = crash.tallies(tally_dir)
    _check(sorted(result["done"]) == ["fast", "join", "slow"], f"resumed state: {result['done']}")
    _check(counts == {"fast": 1, "slow": 2, "join": 1}, f"node runs across processes: {counts}")
    return (
        f"child pid {proc.pid} SIGKILLed inside slow after fast's write was saved; "
        "resumed here: fast ran 1x, slow 2x, join 1x"
    )


CHECKS: dict[str, Callable[..., str]] = {
    "session memory": session_memory,
    "time travel": time_travel,
    "human-in-the-loop": human_in_the_loop,
    "fault tolerance": fault_tolerance,
}


def witness_all(*, using: str = "default") -> list[Finding]:
    """Run every check on database `using`; a check that raises is a failure, not a crash.

    Returns:
        One `Finding` per capability, in `CHECKS` order.
    """
    findings, threads = [], []
    saver = DjangoSaver(using=using)
    try:
        for name, check in CHECKS.items():
            try:
                findings.append(Finding(name, True, check(using=using, threads=threads)))
            except Exception as exc:  # noqa: BLE001 - each failure is reported, not raised
                findings.append(Finding(name, False, f"{type(exc).__name__}: {exc}"))
    finally:
        for thread in threads:
            saver.delete_thread(thread)
    return findings
