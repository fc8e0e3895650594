"""Typed events pushed to the console's pages over Channels.

Jobs and services call `*_event` functions after their writes commit; consumers relay
the events to the browser unchanged. A failure to publish is logged and never fails the
write that caused it: the page catches up on its next load.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

INBOX_GROUP = "timetravel.inbox"


def thread_group(thread_id: str) -> str:
    # Group names allow ASCII letters, digits, '-', '_' and '.', under 100 characters;
    # a thread id may hold anything.
    return "timetravel.thread." + hashlib.sha1(thread_id.encode()).hexdigest()


def _send(group: str, type_: str, data: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": "relay", "event": type_, "data": data})
    except Exception:  # noqa: BLE001 - live updates are best effort
        logger.warning("could not publish %s to %s", type_, group, exc_info=True)


def checkpoint_created_event(*, thread_id: str, checkpoint_id: str, parent_checkpoint_id: str | None,
                             source: str, step: Any, next: list[str]) -> None:
    _send(thread_group(thread_id), "checkpoint.created", {
        "thread_id": thread_id, "checkpoint_id": checkpoint_id, "parent_checkpoint_id": parent_checkpoint_id,
        "source": source, "step": step, "next": next,
    })


def run_updated_event(*, thread_id: str, run_id: int, kind: str, state: str, error: str = "") -> None:
    _send(thread_group(thread_id), "run.updated", {
        "thread_id": thread_id, "run_id": run_id, "kind": kind, "state": state, "error": error,
    })


def interrupt_created_event(*, thread_id: str, interrupt_ids: list[str]) -> None:
    _send(INBOX_GROUP, "interrupt.created", {"thread_id": thread_id, "interrupt_ids": interrupt_ids})


def interrupt_resolved_event(*, thread_id: str, interrupt_id: str, state: str) -> None:
    _send(INBOX_GROUP, "interrupt.resolved", {"thread_id": thread_id, "interrupt_id": interrupt_id, "state": state})
