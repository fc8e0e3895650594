"""Console services: fork, replay, approvals (state machine, exactly-once resume),
runs under the per-thread lock, failures, permissions. All through the graph API."""

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from checkpoints.models import Checkpoint, Thread
from timetravel import graphs, selectors, services
from timetravel.models import Approval, AuditEntry, Run, ThreadLock

from .conftest import graph_config


def head_state(thread_id, graph_id="demo"):
    return graphs.graph_get(graph_id).get_state(graph_config(thread_id, graph_id))


def checkpoint_count(alias, thread_id):
    return Checkpoint.objects.using(alias).filter(thread_id=thread_id).count()


def before_draft(thread_id):
    return next(s for s in graphs.graph_get("demo").get_state_history(graph_config(thread_id)) if s.next == ("draft",))


def pending_id(thread_id):
    (interrupt,) = head_state(thread_id).interrupts
    return interrupt.id


# -- fork -------------------------------------------------------------------------


def test_fork_writes_only_the_changed_keys_as_a_branch(console, operator_user, refund_thread):
    origin = before_draft(refund_thread)
    edited = {**origin.values, "amount": 10.0}
    result = services.checkpoint_fork(user=operator_user, thread_id=refund_thread,
                                      checkpoint_id=origin.config["configurable"]["checkpoint_id"], edited=edited)
    forked = graphs.graph_get("demo").get_state(graph_config(refund_thread) | {
        "configurable": {"thread_id": refund_thread, "checkpoint_id": result.checkpoint_id}})
    assert forked.values["amount"] == 10.0
    assert forked.values["messages"] == origin.values["messages"]  # untouched, not appended twice
    assert forked.parent_config["configurable"]["checkpoint_id"] == origin.config["configurable"]["checkpoint_id"]
    assert forked.metadata["source"] == "update"
    assert forked.next == ("draft",)
    entry = AuditEntry.objects.get(action="fork")
    assert entry.username == "olivia" and entry.detail["changed"] == ["amount"]
    assert result.run is None


def test_fork_edit_of_a_reduced_list_replaces_it(console, operator_user, refund_thread):
    origin = before_draft(refund_thread)
    edited = {**origin.values, "messages": [{"role": "user", "content": "Where is order #1234?"}],
              "intent": "order_status"}
    result = services.checkpoint_fork(user=operator_user, thread_id=refund_thread,
                                      checkpoint_id=origin.config["configurable"]["checkpoint_id"], edited=edited,
                                      as_node="classify", continue_run=True)
    assert result.run.state == "queued" or Run.objects.get(pk=result.run.pk).state == "succeeded"
    state = head_state(refund_thread)
    assert state.values["messages"][0] == {"role": "user", "content": "Where is order #1234?"}
    # The edited message alone (not appended), then the reply of the continued run.
    assert [m["role"] for m in state.values["messages"]] == ["user", "assistant"]
    assert state.values["outcome"] == "tracking sent"
    assert Run.objects.get(pk=result.run.pk).state == "succeeded"
    assert Thread.objects.using(console).get(thread_id=refund_thread).status == "idle"


@pytest.mark.parametrize(
    ("edited", "as_node", "mode", "message"),
    [
        ([1, 2], "", "state", "JSON object"),
        ({"no_such_key": 1}, "", "state", "Not a state key"),
        ({"amount": 42.5}, "", "state", "Change at least one value"),
        ({"amount": 1.0}, "nope", "state", "No node named"),
        ({"messages": "not a list"}, "draft", "update", "rejects"),
    ],
)
def test_a_fork_the_graph_rejects_writes_nothing(console, operator_user, refund_thread, edited, as_node, mode, message):
    origin = before_draft(refund_thread)
    before = checkpoint_count(console, refund_thread)
    with pytest.raises(services.ConsoleError, match=message):
        services.checkpoint_fork(user=operator_user, thread_id=refund_thread,
                                 checkpoint_id=origin.config["configurable"]["checkpoint_id"],
                                 edited=edited, as_node=as_node, mode=mode)
    assert checkpoint_count(console, refund_thread) == before
    assert not AuditEntry.objects.exists()


def test_preview_shows_the_fork_and_writes_nothing(console, operator_user, refund_thread):
    origin = before_draft(refund_thread)
    before = checkpoint_count(console, refund_thread)
    preview = services.checkpoint_fork_preview(
        user=operator_user, thread_id=refund_thread, checkpoint_id=origin.config["configurable"]["checkpoint_id"],
        edited={"order_id": "9999"}, mode="update", as_node="classify")
    assert preview.values["order_id"] == "9999"
    assert preview.next == ("draft",)
    assert [(c.path, c.kind, c.old, c.new) for c in preview.changes] == [("order_id", "changed", "1234", "9999")]
    assert checkpoint_count(console, refund_thread) == before


def test_fork_needs_the_permission(console, viewer, refund_thread):
    origin = before_draft(refund_thread)
    with pytest.raises(PermissionDenied):
        services.checkpoint_fork(user=viewer, thread_id=refund_thread,
                                 checkpoint_id=origin.config["configurable"]["checkpoint_id"], edited={"amount": 1})


def test_replay_reruns_from_a_checkpoint(sqlite_console, operator_user, run_graph):
    from timetravel.demo import user_message

    run_graph("demo", "status-1", user_message("Where is my order #1001?"))
    origin = before_draft("status-1")
    before = checkpoint_count("default", "status-1")
    run = services.checkpoint_replay(user=operator_user, thread_id="status-1",
                                     checkpoint_id=origin.config["configurable"]["checkpoint_id"])
    run.refresh_from_db()
    assert run.state == "succeeded" and run.checkpoints_written >= 2
    assert checkpoint_count("default", "status-1") == before + run.checkpoints_written
    assert AuditEntry.objects.filter(action="replay", username="olivia").count() == 1


pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


# -- approvals --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decision", "outcome", "action"),
    [
        ({"type": "accept", "args": None}, "refunded 42.50", "approve"),
        ({"type": "edit", "args": {"order_id": "1234", "amount": 20}}, "refunded 20.00", "edit"),
        ({"type": "response", "args": "Send us a photo first"}, "replied", "respond"),
        ({"type": "ignore", "args": None}, "ignored", "ignore"),
    ],
)
def test_a_decision_resumes_the_run(console, operator_user, refund_thread, decision, outcome, action):
    interrupt_id = pending_id(refund_thread)
    approval = services.interrupt_decide(user=operator_user, thread_id=refund_thread, interrupt_id=interrupt_id,
                                         decision=decision)
    assert approval.state == "resumed"
    assert approval.run.state == "succeeded"
    state = head_state(refund_thread)
    assert state.values["outcome"] == outcome and state.next == ()
    assert Thread.objects.using(console).get(thread_id=refund_thread).status == "idle"
    entry = AuditEntry.objects.get(action=action)
    assert entry.username == "olivia" and entry.detail["decision"] == decision
    assert selectors.inbox().items == []


def test_mark_resolved_ends_the_run_without_resuming(sqlite_console, operator_user, refund_thread):
    approval = services.interrupt_decide(user=operator_user, thread_id=refund_thread,
                                         interrupt_id=pending_id(refund_thread), decision={"type": "resolve"})
    assert approval.state == "resumed"
    state = head_state(refund_thread)
    assert state.next == () and state.values["outcome"] is None
    assert state.metadata["source"] == "update"


def test_a_decision_the_interrupt_does_not_allow_is_refused(sqlite_console, operator_user, refund_thread):
    with pytest.raises(services.ConsoleError, match="does not allow"):
        services.interrupt_decide(user=operator_user, thread_id=refund_thread,
                                  interrupt_id=pending_id(refund_thread), decision={"type": "json", "args": 1})
    assert not Approval.objects.exists() and not Run.objects.exists()


def test_several_pending_interrupts_resume_by_id(sqlite_console, operator_user, run_graph):
    run_graph("pair", "pair-1", {"log": []})
    found = {i.value["question"]: i.id for i in head_state("pair-1", "pair").interrupts}
    assert set(found) == {"a?", "b?"}
    page = selectors.inbox()
    assert {i.interrupt_id for i in page.items} == set(found.values())
    assert all(i.siblings == 2 and i.kind == "json" for i in page.items)

    first = services.interrupt_decide(user=operator_user, thread_id="pair-1", interrupt_id=found["a?"],
                                      decision={"type": "json", "args": "yes"})
    assert first.run.resume == {found["a?"]: "yes"}
    state = head_state("pair-1", "pair")
    assert [i.value["question"] for i in state.interrupts] == ["b?"]  # the other one still waits

    services.interrupt_decide(user=operator_user, thread_id="pair-1", interrupt_id=state.interrupts[0].id,
                              decision={"type": "json", "args": "no"})
    state = head_state("pair-1", "pair")
    assert state.next == () and sorted(state.values["log"]) == ["a=yes", "b=no"]


def test_two_concurrent_approvals_resume_once(console, operator_user, second_operator, refund_thread):
    interrupt_id = pending_id(refund_thread)
    barrier = threading.Barrier(2)
    outcomes = []

    def decide(user):
        from django.db import connections

        try:
            barrier.wait()
            approval = services.interrupt_decide(user=user, thread_id=refund_thread, interrupt_id=interrupt_id,
                                                 decision={"type": "accept", "args": None})
            outcomes.append(("ok", approval.state))
        except services.ConsoleError as exc:
            outcomes.append(("refused", str(exc)))
        finally:
            connections.close_all()

    workers = [threading.Thread(target=decide, args=(u,)) for u in (operator_user, second_operator)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(o[0] for o in outcomes) == ["ok", "refused"], outcomes
    assert Run.objects.count() == 1
    assert Approval.objects.get().state == "resumed"
    replies = [m for m in head_state(refund_thread).values["messages"] if m["role"] == "assistant"]
    assert replies == [{"role": "assistant", "content": "I have refunded $42.50 for order #1234."}]


def test_a_replayed_decision_is_refused(sqlite_console, operator_user, refund_thread):
    interrupt_id = pending_id(refund_thread)
    decision = {"type": "accept", "args": None}
    services.interrupt_decide(user=operator_user, thread_id=refund_thread, interrupt_id=interrupt_id, decision=decision)
    with pytest.raises(services.AlreadyDecided, match="resumed by olivia"):
        services.interrupt_decide(user=operator_user, thread_id=refund_thread, interrupt_id=interrupt_id,
                                  decision=decision)
    assert Run.objects.count() == 1


def test_a_claim_blocks_others_until_it_goes_stale(sqlite_console, operator_user, second_operator, refund_thread):
    interrupt_id = pending_id(refund_thread)
    services.interrupt_claim(user=operator_user, thread_id=refund_thread, interrupt_id=interrupt_id)
    with pytest.raises(services.AlreadyDecided, match="olivia is deciding"):
        services.interrupt_decide(user=second_operator, thread_id=refund_thread, interrupt_id=interrupt_id,
                                  decision={"type": "accept"})
    Approval.objects.update(claimed_at=timezone.now() - timedelta(hours=1))
    approval = services.interrupt_decide(user=second_operator, thread_id=refund_thread, interrupt_id=interrupt_id,
                                         decision={"type": "accept"})
    assert approval.state == "resumed" and approval.decided_by == second_operator


def test_approving_needs_the_permission(sqlite_console, viewer, refund_thread):
    with pytest.raises(PermissionDenied):
        services.interrupt_decide(user=viewer, thread_id=refund_thread, interrupt_id=pending_id(refund_thread),
                                  decision={"type": "accept"})


# -- runs ---------------------------------------------------------------------------


def test_a_failed_run_marks_the_thread_and_keeps_the_exception(sqlite_console, operator_user, run_graph):
    run_graph("single", "single-1", {"log": []})
    (interrupt,) = head_state("single-1", "single").interrupts
    approval = services.interrupt_decide(user=operator_user, thread_id="single-1", interrupt_id=interrupt.id,
                                         decision={"type": "json", "args": "boom"})
    assert approval.state == "failed"
    run = approval.run
    assert run.state == "failed" and "the node exploded" in run.error
    assert "RuntimeError" in run.traceback
    assert Thread.objects.get(thread_id="single-1").status == "error"
    assert AuditEntry.objects.filter(action="run_failed", thread_id="single-1").exists()
    # The failed task keeps the error write the thread page shows.
    (task,) = head_state("single-1", "single").tasks
    assert "the node exploded" in task.error
    assert selectors.inbox().items == []  # an error is not waiting for a decision


def test_one_run_per_thread_at_a_time(sqlite_console, operator_user):
    first = Run.objects.create(thread_id="t", graph_id="demo", kind="replay")
    second = Run.objects.create(thread_id="t", graph_id="demo", kind="replay")
    assert services.run_lock_acquire(thread_id="t", run=first)
    assert not services.run_lock_acquire(thread_id="t", run=second)
    # A worker that died leaves its lease to expire; the next run takes over.
    ThreadLock.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.run_lock_acquire(thread_id="t", run=second)
    assert Run.objects.get(pk=first.pk).state == "failed"
    services.run_lock_release(thread_id="t", run=second)
    assert not ThreadLock.objects.exists()


def test_a_run_waiting_for_a_held_thread_gives_up(sqlite_console, operator_user, refund_thread):
    holder = Run.objects.create(thread_id=refund_thread, graph_id="demo", kind="replay")
    services.run_lock_acquire(thread_id=refund_thread, run=holder)
    approval = services.interrupt_decide(user=operator_user, thread_id=refund_thread,
                                         interrupt_id=pending_id(refund_thread), decision={"type": "accept"})
    assert approval.state == "failed" and "held this thread" in approval.error
    assert head_state(refund_thread).next == ("approve",)  # nothing ran
    assert Thread.objects.get(thread_id=refund_thread).status == "interrupted"
    # Once the thread is free, the same interrupt can be decided again.
    services.run_lock_release(thread_id=refund_thread, run=holder)
    retry = services.interrupt_decide(user=operator_user, thread_id=refund_thread,
                                      interrupt_id=pending_id(refund_thread), decision={"type": "accept"})
    assert retry.state == "resumed" and retry.pk == approval.pk


def test_running_a_job_twice_runs_it_once(sqlite_console, operator_user, refund_thread):
    approval = services.interrupt_decide(user=operator_user, thread_id=refund_thread,
                                         interrupt_id=pending_id(refund_thread), decision={"type": "accept"})
    checkpoints = checkpoint_count("default", refund_thread)
    assert services.run_execute(run_id=approval.run_id).state == "succeeded"
    assert checkpoint_count("default", refund_thread) == checkpoints


def test_replay_is_refused_while_a_run_is_active(sqlite_console, operator_user, refund_thread):
    Run.objects.create(thread_id=refund_thread, graph_id="demo", kind="replay", state="running")
    origin = before_draft(refund_thread)
    with pytest.raises(services.ThreadBusy):
        services.checkpoint_replay(user=operator_user, thread_id=refund_thread,
                                   checkpoint_id=origin.config["configurable"]["checkpoint_id"])


def test_delete_goes_through_the_saver_and_is_audited(sqlite_console, operator_user, second_operator, refund_thread):
    with pytest.raises(PermissionDenied):
        services.thread_delete(user=second_operator, thread_id=refund_thread)
    services.thread_delete(user=operator_user, thread_id=refund_thread)
    assert not Thread.objects.filter(thread_id=refund_thread).exists()
    assert not Checkpoint.objects.filter(thread_id=refund_thread).exists()
    assert AuditEntry.objects.get(action="delete").detail["checkpoints"] == 4
