"""Collecting blob-storage objects that no row references.

A put uploads its objects before its transaction; a crash in between leaves objects no
row points at. They are removed once older than a grace period (longer than any
transaction), after a re-check against the database, so an object a put is about to
reference (its upload refreshed the object's time) is never removed.
"""

from __future__ import annotations

from itertools import islice

from . import sql as q
from .connection import run
from .tiers.blobs import BlobStore

BATCH = 500


def referenced_keys(using: str, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    statement = q.SELECT_REFERENCED_KEYS_SQL.format(in_=q.placeholders(len(keys)))

    def read(cur):
        cur.execute(statement, keys)
        return {k for (k,) in cur.fetchall()}

    return run(using, read)


def blobs_collect_orphans(*, using: str, store: BlobStore, grace: float) -> int:
    """Delete objects older than `grace` seconds that no blob row references.

    Returns:
        The number of objects deleted.
    """
    deleted = 0
    candidates = iter(store.iter_keys())
    while batch := list(islice(candidates, BATCH)):
        keys = [key for key, _ in batch]
        deleted += store.delete_unreferenced(keys, referenced_keys(using, keys), grace=grace)
    return deleted
