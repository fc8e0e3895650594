"""Writes of the console: fork, replay, decide an interrupt, run, delete.

Every service is keyword-only, checks permission before it acts, and goes through the
graph API (`update_state`, `Command(resume=...)`, `invoke(None, config)` as a stream) or
the saver's public methods: never a hand-edited checkpoint row. A refused action raises
`ConsoleError` (shown on the form) before anything is written.

Approvals follow Wagtail's check-then-execute shape: the pending interrupt is read and
the decision validated first, then the approval moves pending -> claimed -> decided by
compare-and-set updates, the run is created in the decision's transaction and enqueued
on commit, and the job moves it to resumed or failed. Two people, a double click or a
replayed request: one CAS wins, the others are told who decided.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone
from langgraph.channels.binop import BinaryOperatorAggregate
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.constants import END
from langgraph.types import Command, Overwrite

from checkpoints.models import Thread

from . import events, graphs, selectors
from . import values as vals
from .models import Approval, AuditEntry, Run, ThreadLock

logger = logging.getLogger(__name__)

PERM_FORK = "timetravel.can_fork"
PERM_APPROVE = "timetravel.can_approve"
PERM_DELETE = "timetravel.can_delete_thread"

DECISION_ACTIONS = {
    "accept": AuditEntry.Action.APPROVE,
    "edit": AuditEntry.Action.EDIT,
    "response": AuditEntry.Action.RESPOND,
    "ignore": AuditEntry.Action.IGNORE,
    "resolve": AuditEntry.Action.RESOLVE,
    "json": AuditEntry.Action.RESUME,
}


class ConsoleError(Exception):
    """An action the console refuses; nothing was written."""


class ThreadBusy(ConsoleError):
    pass


class AlreadyDecided(ConsoleError):
    pass


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def _require(user, perm: str) -> None:
    if user is None or not user.is_active or not user.is_staff or not user.has_perm(perm):
        raise PermissionDenied(f"You need the {perm.split('.')[-1]} permission")


def audit_record(*, user, action: str, thread_id: str = "", checkpoint_id: str = "",
                 detail: dict | None = None) -> AuditEntry:
    return AuditEntry.objects.create(
        user=user if user is not None and user.pk else None,
        username=getattr(user, "username", "") or "",
        action=action, thread_id=thread_id, checkpoint_id=checkpoint_id or "",
        detail=vals.to_jsonable(detail or {}),
    )


def _thread_graph(thread: Thread) -> str:
    try:
        return graphs.graph_for_thread(thread.graph_id)
    except graphs.UnknownGraph as exc:
        raise ConsoleError(str(exc)) from None


def _config(thread_id: str, checkpoint_id: str | None = None, graph_id: str = "") -> dict:
    configurable = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    config: dict[str, Any] = {"configurable": configurable}
    if graph_id:
        # The saver copies `graph_id` to the thread row: the thread remembers its graph.
        config["metadata"] = {"graph_id": graph_id}
    return config


# -- fork -------------------------------------------------------------------------


class _PreviewSaver(BaseCheckpointSaver):
    """Reads through to the real saver; writes stay in memory. `update_state` on a graph
    over it computes exactly the checkpoint a fork would write, and writes nothing."""

    def __init__(self, base: BaseCheckpointSaver) -> None:
        super().__init__(serde=base.serde)
        self.base = base
        self.saved: dict[str, CheckpointTuple] = {}

    def get_tuple(self, config):
        checkpoint_id = (config.get("configurable") or {}).get("checkpoint_id")
        if checkpoint_id in self.saved:
            return self.saved[checkpoint_id]
        return self.base.get_tuple(config)

    def list(self, config, *, filter=None, before=None, limit=None):
        return self.base.list(config, filter=filter, before=before, limit=limit)

    def put(self, config, checkpoint, metadata, new_versions):
        conf = dict(config["configurable"])
        parent = {"configurable": dict(conf)} if conf.get("checkpoint_id") else None
        conf["checkpoint_id"] = checkpoint["id"]
        self.saved[checkpoint["id"]] = CheckpointTuple(
            {"configurable": conf}, checkpoint, metadata, parent, []
        )
        return {"configurable": conf}

    def put_writes(self, config, writes, task_id, task_path=""):
        checkpoint_id = config["configurable"].get("checkpoint_id")
        if checkpoint_id in self.saved:
            self.saved[checkpoint_id].pending_writes.extend((task_id, c, v) for c, v in writes)

    def get_next_version(self, current, channel=None):
        return self.base.get_next_version(current, channel)

    def get_delta_channel_history(self, *, config, channels):
        return self.base.get_delta_channel_history(config=config, channels=channels)


@dataclass
class ForkPlan:
    values: dict | None  # what update_state receives
    as_node: str | None
    changed: list[str]


@dataclass
class ForkPreview:
    plan: ForkPlan
    values: Any  # the fork's state, JSON-compatible
    next: tuple[str, ...]
    changes: list[vals.Change]


def _fork_plan(*, graph, current: Any, edited: Any, as_node: str, mode: str) -> ForkPlan:
    """What `update_state` gets for an edit.

    `state` mode takes the whole edited state and writes only the keys that changed; a
    channel with a reducer gets `Overwrite`, so an edited message list replaces the
    old one instead of being appended to it. `update` mode passes the JSON as it is,
    through the reducers, as `update_state` does.
    """
    if not isinstance(edited, dict):
        raise ConsoleError("The values must be a JSON object of state keys")
    unknown = sorted(k for k in edited if k not in graph.channels or k.startswith("__") or k.startswith("branch:"))
    if unknown:
        raise ConsoleError(f"Not a state key of this graph: {', '.join(unknown)}")
    if as_node and as_node not in graph.nodes:
        raise ConsoleError(f"No node named {as_node!r} in this graph")
    if mode == "update":
        return ForkPlan(values=edited, as_node=as_node or None, changed=sorted(edited))
    current = current if isinstance(current, dict) else {}
    changed = [k for k in edited if k not in current or vals.to_jsonable(current[k]) != edited[k]]
    if not changed:
        raise ConsoleError("Change at least one value: this fork would equal its checkpoint")
    update = {
        k: Overwrite(edited[k]) if isinstance(graph.channels[k], BinaryOperatorAggregate) else edited[k]
        for k in changed
    }
    return ForkPlan(values=update, as_node=as_node or None, changed=changed)


def _fork_target(thread_id: str, checkpoint_id: str):
    thread = selectors.thread_get(thread_id)
    graph_id = _thread_graph(thread)
    graph = graphs.graph_get(graph_id)
    base = graph.checkpointer
    if base.get_tuple(_config(thread_id, checkpoint_id)) is None:
        raise Http404("No such checkpoint")
    return thread, graph_id, graph, base


def checkpoint_fork_preview(*, user, thread_id: str, checkpoint_id: str, edited: Any, as_node: str = "",
                            mode: str = "state") -> ForkPreview:
    """The state a fork would have, computed by `update_state` against an in-memory
    copy: the graph's own reducers and validation run, and nothing is written.

    Raises:
        ConsoleError: the edit is not a state, or the graph rejects it.
    """
    _require(user, PERM_FORK)
    thread, graph_id, graph, base = _fork_target(thread_id, checkpoint_id)
    current = graph.get_state(_config(thread_id, checkpoint_id)).values
    plan = _fork_plan(graph=graph, current=current, edited=edited, as_node=as_node, mode=mode)
    preview_saver = _PreviewSaver(base)
    preview_graph = graphs.graph_build(graph_id, checkpointer=preview_saver)
    try:
        new_config = preview_graph.update_state(_config(thread_id, checkpoint_id), plan.values, as_node=plan.as_node)
        snapshot = preview_graph.get_state(new_config)
    except Exception as exc:  # noqa: BLE001 - whatever the graph rejects is shown on the form
        raise ConsoleError(f"The graph rejects this update: {type(exc).__name__}: {exc}") from exc
    after = vals.to_jsonable(snapshot.values)
    return ForkPreview(plan=plan, values=after, next=tuple(snapshot.next),
                       changes=vals.diff(vals.to_jsonable(current), after))


@dataclass
class ForkResult:
    checkpoint_id: str
    run: Run | None


def checkpoint_fork(*, user, thread_id: str, checkpoint_id: str, edited: Any, as_node: str = "",
                    mode: str = "state", continue_run: bool = False) -> ForkResult:
    """Fork a thread at a checkpoint: `update_state` with the edit (a new checkpoint whose
    parent is `checkpoint_id`, source `update`), then optionally continue the run from it.

    The preview runs first, so an edit the graph rejects writes nothing.
    Raises:
        ConsoleError: the edit is invalid or the graph rejects it; or, with
            `continue_run`, a run is already in progress on the thread.
    """
    preview = checkpoint_fork_preview(user=user, thread_id=thread_id, checkpoint_id=checkpoint_id,
                                      edited=edited, as_node=as_node, mode=mode)
    thread, graph_id, graph, _ = _fork_target(thread_id, checkpoint_id)
    if continue_run and selectors.run_active(thread_id):
        raise ThreadBusy("A run is in progress on this thread; fork without continuing, or wait")
    try:
        new_config = graph.update_state(
            _config(thread_id, checkpoint_id, graph_id), preview.plan.values, as_node=preview.plan.as_node
        )
    except Exception as exc:  # noqa: BLE001
        raise ConsoleError(f"The graph rejects this update: {type(exc).__name__}: {exc}") from exc
    new_id = new_config["configurable"]["checkpoint_id"]
    run = None
    with transaction.atomic():
        audit_record(user=user, action=AuditEntry.Action.FORK, thread_id=thread_id, checkpoint_id=checkpoint_id,
                     detail={"new_checkpoint_id": new_id, "as_node": as_node, "mode": mode,
                             "changed": preview.plan.changed,
                             "values": {k: edited[k] for k in preview.plan.changed} if mode == "state" else edited,
                             "continue": continue_run})
        if continue_run:
            run = _run_create(user=user, thread_id=thread_id, graph_id=graph_id, kind=Run.Kind.CONTINUE,
                              checkpoint_id=new_id)
    events.checkpoint_created_event(thread_id=thread_id, checkpoint_id=new_id, parent_checkpoint_id=checkpoint_id,
                                    source="update", step=None, next=list(preview.next))
    return ForkResult(checkpoint_id=new_id, run=run)


def checkpoint_replay(*, user, thread_id: str, checkpoint_id: str) -> Run:
    """Re-run the graph from a checkpoint (`invoke(None, config)`), in the background.

    Raises:
        ThreadBusy: a run is already in progress on the thread.
    """
    _require(user, PERM_FORK)
    thread = selectors.thread_get(thread_id)
    graph_id = _thread_graph(thread)
    if graphs.graph_get(graph_id).checkpointer.get_tuple(_config(thread_id, checkpoint_id)) is None:
        raise Http404("No such checkpoint")
    if selectors.run_active(thread_id):
        raise ThreadBusy("A run is in progress on this thread")
    with transaction.atomic():
        audit_record(user=user, action=AuditEntry.Action.REPLAY, thread_id=thread_id, checkpoint_id=checkpoint_id)
        return _run_create(user=user, thread_id=thread_id, graph_id=graph_id, kind=Run.Kind.REPLAY,
                           checkpoint_id=checkpoint_id)


def thread_delete(*, user, thread_id: str) -> None:
    """Delete a thread with the saver's `delete_thread`.

    Raises:
        ThreadBusy: a run is in progress on it.
    """
    _require(user, PERM_DELETE)
    thread = selectors.thread_get(thread_id)
    if selectors.run_active(thread_id) or ThreadLock.objects.filter(thread_id=thread_id).exists():
        raise ThreadBusy("A run is in progress on this thread")
    graphs.saver().delete_thread(thread_id)
    audit_record(user=user, action=AuditEntry.Action.DELETE, thread_id=thread_id,
                 detail={"checkpoints": thread.checkpoint_count, "bytes": thread.bytes_stored,
                         "metadata": thread.metadata})


# -- interrupts ---------------------------------------------------------------------


def decision_resume(item: selectors.InboxItem, decision: dict) -> Any:
    """The resume value of a decision, checked against what the interrupt allows.

    Agent Inbox answers a `HumanInterrupt` with a list of one `HumanResponse`; any other
    interrupt is resumed with the JSON value given. `resolve` has no resume value.
    Raises:
        ConsoleError: a decision the interrupt does not allow, or malformed arguments.
    """
    kind = decision.get("type")
    allowed = item.allowed
    if kind not in allowed:
        raise ConsoleError(f"Unknown decision {kind!r}")
    if not allowed[kind]:
        raise ConsoleError(f"This interrupt does not allow {kind!r}")
    args = decision.get("args")
    if kind == "resolve":
        return None
    if kind == "json":
        return args
    if kind == "edit":
        if not isinstance(args, dict):
            raise ConsoleError("Edited arguments must be a JSON object")
        action = item.request["action_request"]["action"]
        return [{"type": "edit", "args": {"action": action, "args": args}}]
    if kind == "response":
        if not isinstance(args, str) or not args.strip():
            raise ConsoleError("A response needs some text")
        return [{"type": "response", "args": args}]
    return [{"type": kind, "args": None}]


def _approval_key(item: selectors.InboxItem) -> dict:
    return {"thread_id": item.thread.thread_id, "checkpoint_id": item.checkpoint_id, "interrupt_id": item.interrupt_id}


def _claim_timeout() -> timedelta:
    return timedelta(seconds=_setting("TIMETRAVEL_CLAIM_TIMEOUT_SECONDS", 300))


def interrupt_claim(*, user, thread_id: str, interrupt_id: str) -> Approval:
    """Claim a pending interrupt (pending -> claimed), or take over a stale or failed one.

    Raises:
        AlreadyDecided: someone else holds or decided it.
        Http404: it is not pending on the thread.
    """
    _require(user, PERM_APPROVE)
    item = selectors.inbox_item(thread_id=thread_id, interrupt_id=interrupt_id)
    return _claim(user, item)


def _claim(user, item: selectors.InboxItem) -> Approval:
    key = _approval_key(item)
    now = timezone.now()
    try:
        with transaction.atomic():
            approval = Approval.objects.create(
                **key, state=Approval.State.CLAIMED, value=item.value, claimed_by=user, claimed_at=now
            )
    except IntegrityError:
        claimable = (
            Q(state=Approval.State.PENDING)
            | Q(state=Approval.State.FAILED)
            | Q(state=Approval.State.CLAIMED, claimed_by=user)
            | Q(state=Approval.State.CLAIMED, claimed_at__lt=now - _claim_timeout())
        )
        if not Approval.objects.filter(claimable, **key).update(
            state=Approval.State.CLAIMED, claimed_by=user, claimed_at=now, updated_at=now
        ):
            raise _already(Approval.objects.select_related("claimed_by", "decided_by").get(**key)) from None
        approval = Approval.objects.get(**key)
    else:
        audit_record(user=user, action=AuditEntry.Action.CLAIM, thread_id=item.thread.thread_id,
                     checkpoint_id=item.checkpoint_id, detail={"interrupt_id": item.interrupt_id})
    return approval


def _already(approval: Approval) -> AlreadyDecided:
    if approval.state == Approval.State.CLAIMED:
        who = approval.claimed_by.username if approval.claimed_by else "someone"
        return AlreadyDecided(f"{who} is deciding this interrupt")
    who = approval.decided_by.username if approval.decided_by else "someone"
    return AlreadyDecided(f"Already {approval.state} by {who}")


def interrupt_decide(*, user, thread_id: str, interrupt_id: str, decision: dict) -> Approval:
    """Decide a pending interrupt and resume the run with it, exactly once.

    Args:
        decision: `{"type": accept|edit|response|ignore|json|resolve, "args": ...}`; with
            several interrupts pending on the checkpoint the resume is a map by interrupt id.
    Raises:
        ConsoleError: the decision is not allowed or malformed (nothing written);
            `AlreadyDecided` when another decision won.
    """
    _require(user, PERM_APPROVE)
    try:
        item = selectors.inbox_item(thread_id=thread_id, interrupt_id=interrupt_id)
    except Http404:
        decided = Approval.objects.filter(thread_id=thread_id, interrupt_id=interrupt_id).exclude(
            state=Approval.State.PENDING).select_related("claimed_by", "decided_by").order_by("-id").first()
        if decided is not None:
            raise _already(decided) from None
        raise ConsoleError("This interrupt is no longer pending") from None
    resume = decision_resume(item, decision)
    graph_id = _thread_graph(item.thread)
    if item.siblings > 1 and decision["type"] != "resolve":
        resume = {item.interrupt_id: resume}
    approval = _claim(user, item)
    now = timezone.now()
    with transaction.atomic():
        kind = Run.Kind.RESOLVE if decision["type"] == "resolve" else Run.Kind.RESUME
        run = _run_create(user=user, thread_id=thread_id, graph_id=graph_id, kind=kind,
                          checkpoint_id=item.checkpoint_id, resume=resume)
        won = Approval.objects.filter(pk=approval.pk, state=Approval.State.CLAIMED, claimed_by=user).update(
            state=Approval.State.DECIDED, decided_by=user, decided_at=now, decision=decision, run=run, updated_at=now,
        )
        if not won:
            # Rolls back the run: another request decided first.
            raise _already(Approval.objects.select_related("claimed_by", "decided_by").get(pk=approval.pk))
        audit_record(user=user, action=DECISION_ACTIONS[decision["type"]], thread_id=thread_id,
                     checkpoint_id=item.checkpoint_id,
                     detail={"interrupt_id": interrupt_id, "decision": decision, "resume": resume,
                             "run_id": run.pk, "request": item.value})
        transaction.on_commit(lambda: events.interrupt_resolved_event(
            thread_id=thread_id, interrupt_id=interrupt_id, state=Approval.State.DECIDED))
    approval.refresh_from_db()
    return approval


# -- runs ----------------------------------------------------------------------------


def _run_create(*, user, thread_id: str, graph_id: str, kind: str, checkpoint_id: str = "", resume: Any = None) -> Run:
    """A queued run, enqueued when the surrounding transaction commits."""
    from . import jobs

    run = Run.objects.create(thread_id=thread_id, graph_id=graph_id, kind=kind, checkpoint_id=checkpoint_id,
                             resume=resume, created_by=user if user is not None and user.pk else None)
    transaction.on_commit(lambda: jobs.run_enqueue(run.pk))
    return run


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _lease() -> timedelta:
    return timedelta(seconds=_setting("TIMETRAVEL_RUN_LEASE_SECONDS", 600))


def run_lock_acquire(*, thread_id: str, run: Run) -> bool:
    """Take the thread's run lock for `run`; a lease past its expiry is taken over and
    its run marked failed (its worker died)."""
    now = timezone.now()
    try:
        with transaction.atomic():
            ThreadLock.objects.create(thread_id=thread_id, run=run, owner=_owner(), acquired_at=now,
                                      expires_at=now + _lease())
        return True
    except IntegrityError:
        pass
    stale = ThreadLock.objects.filter(thread_id=thread_id, expires_at__lt=now).values_list("run_id", flat=True).first()
    if stale is None:
        return False
    taken = ThreadLock.objects.filter(thread_id=thread_id, run_id=stale, expires_at__lt=now).update(
        run=run, owner=_owner(), acquired_at=now, expires_at=now + _lease()
    )
    if taken:
        Run.objects.filter(pk=stale, state__in=[Run.State.QUEUED, Run.State.RUNNING]).update(
            state=Run.State.FAILED, finished_at=now, error="The worker running this stopped (lease expired)"
        )
    return bool(taken)


def run_lock_release(*, thread_id: str, run: Run) -> None:
    ThreadLock.objects.filter(thread_id=thread_id, run=run).delete()


def _lock_extend(thread_id: str, run: Run) -> None:
    ThreadLock.objects.filter(thread_id=thread_id, run=run).update(expires_at=timezone.now() + _lease())


def run_execute(*, run_id: int) -> Run:
    """Execute a queued run under the thread's lock; safe to call twice (a run that is
    no longer queued is left alone). A failure marks the run, its approval and the
    thread failed, and never raises."""
    run = Run.objects.get(pk=run_id)
    if run.state != Run.State.QUEUED:
        return run
    wait_until = time.monotonic() + _setting("TIMETRAVEL_LOCK_WAIT_SECONDS", 30)
    while not run_lock_acquire(thread_id=run.thread_id, run=run):
        if time.monotonic() > wait_until:
            _run_failed(run, "Another run held this thread for too long; try again", "", thread_error=False)
            return run
        time.sleep(0.1)
    try:
        now = timezone.now()
        if not Run.objects.filter(pk=run.pk, state=Run.State.QUEUED).update(state=Run.State.RUNNING, started_at=now):
            run.refresh_from_db()
            return run
        run.state, run.started_at = Run.State.RUNNING, now
        events.run_updated_event(thread_id=run.thread_id, run_id=run.pk, kind=run.kind, state=run.state)
        try:
            _run_graph(run)
        except Exception as exc:  # noqa: BLE001 - a failed run is recorded, not raised
            logger.warning("run %s on %s failed", run.pk, run.thread_id, exc_info=True)
            _run_failed(run, f"{type(exc).__name__}: {exc}", traceback.format_exc(),
                        thread_error=not isinstance(exc, ConsoleError))
        else:
            _run_succeeded(run)
    finally:
        run_lock_release(thread_id=run.thread_id, run=run)
    return run


def runs_reap(*, queued_for_seconds: int = 60) -> dict[str, int]:
    """Recover runs that a dead worker or a lost job left behind (an RQ worker killed
    mid-run keeps its job in the started registry until the timeout).

    A running run whose lease expired is marked failed, with its approval; a run queued
    for longer than `queued_for_seconds` is enqueued again: `run_execute` runs a run
    once whatever the number of jobs that carry it.
    """
    now = timezone.now()
    live = ThreadLock.objects.filter(expires_at__gte=now).values("run_id")
    lost = list(Run.objects.filter(state=Run.State.RUNNING, started_at__lt=now - _lease()).exclude(pk__in=live))
    for run in lost:
        _run_failed(run, "The worker running this stopped (lease expired)", "", thread_error=False)
    stale = list(Run.objects.filter(state=Run.State.QUEUED, created_at__lt=now - timedelta(seconds=queued_for_seconds))
                 .values_list("pk", flat=True))
    from . import jobs

    for run_id in stale:
        jobs.run_enqueue(run_id)
    return {"failed": len(lost), "requeued": len(stale)}


def _run_graph(run: Run) -> None:
    graph = graphs.graph_get(run.graph_id)
    thread_id = run.thread_id
    if run.kind in (Run.Kind.RESUME, Run.Kind.RESOLVE):
        thread = selectors.thread_get(thread_id)
        if thread.head_checkpoint_id != run.checkpoint_id:
            raise ConsoleError("The thread moved on since this decision; the interrupt is no longer pending")
    if run.kind == Run.Kind.RESOLVE:
        new_config = graph.update_state(_config(thread_id, run.checkpoint_id, run.graph_id), None, as_node=END)
        run.checkpoints_written = 1
        events.checkpoint_created_event(thread_id=thread_id, checkpoint_id=new_config["configurable"]["checkpoint_id"],
                                        parent_checkpoint_id=run.checkpoint_id, source="update", step=None, next=[])
        return
    if run.kind == Run.Kind.RESUME:
        graph_input: Any = Command(resume=run.resume)
    else:
        graph_input = None
    config = _config(thread_id, run.checkpoint_id or None, run.graph_id)
    # `sync` durability: each checkpoint is committed before its event goes out, so a
    # page that reloads its tree on the event finds it.
    for chunk in graph.stream(graph_input, config, stream_mode="checkpoints", durability="sync"):
        conf = (chunk.get("config") or {}).get("configurable") or {}
        if conf.get("checkpoint_id") == run.checkpoint_id:
            continue  # a resume first reports the checkpoint it starts from
        run.checkpoints_written += 1
        _lock_extend(thread_id, run)
        parent = ((chunk.get("parent_config") or {}).get("configurable") or {}).get("checkpoint_id")
        meta = chunk.get("metadata") or {}
        events.checkpoint_created_event(
            thread_id=thread_id, checkpoint_id=conf.get("checkpoint_id", ""), parent_checkpoint_id=parent,
            source=str(meta.get("source", "")), step=meta.get("step"), next=list(chunk.get("next") or ()),
        )


def _run_succeeded(run: Run) -> None:
    now = timezone.now()
    Run.objects.filter(pk=run.pk).update(state=Run.State.SUCCEEDED, finished_at=now,
                                         checkpoints_written=run.checkpoints_written)
    run.state, run.finished_at = Run.State.SUCCEEDED, now
    Approval.objects.filter(run=run, state=Approval.State.DECIDED).update(state=Approval.State.RESUMED, updated_at=now)
    events.run_updated_event(thread_id=run.thread_id, run_id=run.pk, kind=run.kind, state=run.state)
    thread = Thread.objects.using(graphs.saver_alias()).filter(thread_id=run.thread_id).first()
    if thread is not None and thread.status == "interrupted":
        found = selectors.pending_interrupts([thread])
        events.interrupt_created_event(thread_id=run.thread_id, interrupt_ids=[i.id for _, _, i in found])


def _run_failed(run: Run, error: str, tb: str, *, thread_error: bool) -> None:
    now = timezone.now()
    Run.objects.filter(pk=run.pk).update(state=Run.State.FAILED, finished_at=now, error=error, traceback=tb,
                                         checkpoints_written=run.checkpoints_written)
    run.state, run.finished_at, run.error, run.traceback = Run.State.FAILED, now, error, tb
    Approval.objects.filter(run=run, state=Approval.State.DECIDED).update(
        state=Approval.State.FAILED, error=error, updated_at=now)
    # A node's exception is recorded by LangGraph as an error write, which the saver
    # turns into status `error`; a failure outside any node (the graph rejected the
    # resume, the thread moved on) is marked here, on the thread row's status only.
    if thread_error:
        Thread.objects.using(graphs.saver_alias()).filter(thread_id=run.thread_id).exclude(status="error").update(
            status="error")
    audit_record(user=None, action=AuditEntry.Action.RUN_FAILED, thread_id=run.thread_id,
                 checkpoint_id=run.checkpoint_id, detail={"run_id": run.pk, "kind": run.kind, "error": error})
    events.run_updated_event(thread_id=run.thread_id, run_id=run.pk, kind=run.kind, state=run.state, error=error)
    for approval in Approval.objects.filter(run=run):
        events.interrupt_resolved_event(thread_id=run.thread_id, interrupt_id=approval.interrupt_id,
                                        state=approval.state)
