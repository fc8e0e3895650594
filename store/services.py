"""Writes on the store that are not LangGraph ops: the TTL sweep."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import connections

from checkpoints.connection import run

from . import codec
from . import sql as q

logger = logging.getLogger(__name__)

SWEEP_CHUNK = 1000


def store_sweep_expired(*, using: str = "default", now: datetime | None = None, chunk: int = SWEEP_CHUNK) -> int:
    """Delete the items whose TTL ran out, a chunk per transaction.

    Expired items are already invisible to reads (`TTLConfig.omit_expired`, on by
    default in `DjangoStore`); the sweep only reclaims their rows. Safe to run twice
    and from several processes at once: a row is deleted once, whoever gets it.

    Returns:
        The number of items deleted.
    """
    dialect = q.DIALECTS[connections[using].vendor]
    cutoff = dialect.ts(now or codec.now())

    def sweep(cur) -> int:
        cur.execute(dialect.sweep_sql, [cutoff, chunk])
        return cur.rowcount

    total = 0
    while True:
        deleted = run(using, sweep, atomic=True)
        total += deleted
        if deleted < chunk:
            break
    if total:
        logger.info("store: swept %d expired items from %s", total, using)
    return total
