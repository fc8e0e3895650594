"""Retention: old threads shrink on their own.

A thread idle (or failed) for `CHECKPOINTS_RETENTION_PRUNE_DAYS` keeps only its latest
state (`prune(keep_latest)`, which keeps what a DeltaChannel needs to rebuild); one
idle for `CHECKPOINTS_RETENTION_DELETE_DAYS` is deleted. Interrupted and busy threads
are never touched: a person may still answer, or a run is still going. Tombstones of
deleted threads go after `CHECKPOINTS_TOMBSTONE_DAYS`, long after any run that was in
flight at the delete has ended.
"""

from __future__ import annotations

from datetime import timedelta

from .codec import now
from .models import Thread, ThreadTombstone
from .saver import DjangoSaver

BATCH = 200


def _stale(using: str, days: float, *, more_than_one: bool):
    cutoff = now() - timedelta(days=days)
    rows = Thread.objects.using(using).filter(status__in=("idle", "error"), updated_at__lt=cutoff)
    if more_than_one:
        rows = rows.filter(checkpoint_count__gt=1)
    return rows.order_by("updated_at").values_list("thread_id", flat=True)


def retention_apply(
    *, using: str, prune_days: float | None, delete_days: float | None, tombstone_days: float = 7
) -> dict:
    """Prune, then delete, stale threads in batches, and drop old tombstones.

    Returns:
        `{"pruned": n, "deleted": m, "tombstones": k}`.
    """
    saver = DjangoSaver(using=using)
    pruned = deleted = 0
    if delete_days is not None:
        while ids := list(_stale(using, delete_days, more_than_one=False)[:BATCH]):
            saver.prune(ids, strategy="delete")
            deleted += len(ids)
    if prune_days is not None:
        # One read of the candidates: a DeltaChannel thread may keep several checkpoints
        # after its prune, so re-querying could pick it again forever.
        stale = list(_stale(using, prune_days, more_than_one=True))
        for start in range(0, len(stale), BATCH):
            saver.prune(stale[start : start + BATCH], strategy="keep_latest")
        pruned = len(stale)
    expired = ThreadTombstone.objects.using(using).filter(deleted_at__lt=now() - timedelta(days=tombstone_days))
    tombstones, _ = expired.delete()
    return {"pruned": pruned, "deleted": deleted, "tombstones": tombstones}
