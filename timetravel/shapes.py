"""The JSON the console serves, in the shapes and field names of the LangGraph Server
API (`Thread`, `ThreadState`, `Interrupt`), so scripts written against the server read
the console too. No I/O."""

from __future__ import annotations

from typing import Any

from checkpoints.models import Thread

from .selectors import InboxItem, State


def _ts(value) -> str | None:
    return value.isoformat() if value is not None else None


def thread_json(thread: Thread, state: State | None = None) -> dict[str, Any]:
    """`Thread{thread_id, created_at, updated_at, state_updated_at, metadata, status,
    values, interrupts}`; `values` and `interrupts` only when the state was read (the
    list pages leave them out rather than read every thread's state)."""
    out: dict[str, Any] = {
        "thread_id": thread.thread_id,
        "created_at": _ts(thread.created_at),
        "updated_at": _ts(thread.updated_at),
        "state_updated_at": _ts(thread.updated_at),
        "metadata": thread.metadata,
        "status": thread.status,
        # Beyond the server's fields: what the saver keeps about the thread.
        "graph_id": thread.graph_id,
        "head_checkpoint_id": thread.head_checkpoint_id,
        "storage": {"checkpoints": thread.checkpoint_count, "total_bytes": thread.bytes_stored},
    }
    if state is not None:
        out["values"] = state.values
        out["interrupts"] = {t.id: t.interrupts for t in state.tasks if t.interrupts}
    return out


def checkpoint_json(thread_id: str, ns: str, checkpoint_id: str | None) -> dict[str, Any] | None:
    if not checkpoint_id:
        return None
    return {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}


def thread_state_json(state: State) -> dict[str, Any]:
    """`ThreadState{values, next, tasks, checkpoint, metadata, created_at,
    parent_checkpoint, interrupts}`, plus the checkpoint's pending writes."""
    return {
        "values": state.values,
        "next": list(state.next),
        "tasks": [
            {
                "id": t.id, "name": t.name, "path": list(t.path), "error": t.error, "interrupts": t.interrupts,
                "checkpoint": checkpoint_json(state.thread_id, t.state_ns, None) if not t.state_ns
                else {"thread_id": state.thread_id, "checkpoint_ns": t.state_ns},
                "state": None,
            }
            for t in state.tasks
        ],
        "checkpoint": checkpoint_json(state.thread_id, state.checkpoint_ns, state.checkpoint_id),
        "metadata": state.metadata,
        "created_at": state.created_at,
        "parent_checkpoint": checkpoint_json(state.thread_id, state.checkpoint_ns, state.parent_checkpoint_id),
        "interrupts": state.interrupts,
        "pending_writes": state.pending_writes,
    }


def inbox_item_json(item: InboxItem) -> dict[str, Any]:
    """An `Interrupt{value, id}` with the thread and checkpoint it waits on."""
    approval = item.approval
    return {
        "thread_id": item.thread.thread_id,
        "checkpoint": checkpoint_json(item.thread.thread_id, "", item.checkpoint_id),
        "interrupt": {"value": item.value, "id": item.interrupt_id},
        "kind": item.kind,
        "allowed": item.allowed,
        "approval": {
            "state": item.state,
            "claimed_by": approval.claimed_by.username if approval and approval.claimed_by else None,
            "error": approval.error if approval else "",
        },
        "thread": thread_json(item.thread),
    }


def store_item_json(item) -> dict[str, Any]:
    """LangGraph's `Item{namespace, key, value, created_at, updated_at}` (a
    `SearchItem` adds `score`); a `StoreItem` row is read the same way."""
    namespace = item.namespace_tuple if hasattr(item, "namespace_tuple") else tuple(item.namespace)
    out = {
        "namespace": list(namespace), "key": item.key, "value": item.value,
        "created_at": _ts(item.created_at), "updated_at": _ts(item.updated_at),
    }
    if getattr(item, "score", None) is not None:
        out["score"] = item.score
    return out
