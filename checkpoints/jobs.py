"""Background jobs of the saver (django-rq); each takes plain arguments and is safe to
run twice."""

from __future__ import annotations

from django.conf import settings

from .blobgc import blobs_collect_orphans
from .tiers import configured_blob_store


def collect_orphan_blobs(using: str = "default", grace: float | None = None) -> int:
    store = configured_blob_store()
    if store is None:
        return 0
    grace = settings.CHECKPOINTS_BLOB_ORPHAN_GRACE if grace is None else grace
    return blobs_collect_orphans(using=using, store=store, grace=grace)


def apply_retention(using: str = "default") -> dict:
    from .retention import retention_apply

    return retention_apply(
        using=using,
        prune_days=getattr(settings, "CHECKPOINTS_RETENTION_PRUNE_DAYS", None),
        delete_days=getattr(settings, "CHECKPOINTS_RETENTION_DELETE_DAYS", None),
        tombstone_days=getattr(settings, "CHECKPOINTS_TOMBSTONE_DAYS", 7),
    )
