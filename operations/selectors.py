"""Reads of the operations pages: the saver's figures over a window, the series the
charts draw, the database's size, alerts and migrations."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connections
from django.utils import timezone

from checkpoints import metrics, metrics_store
from checkpoints.connection import run

from .models import Alert, DatabaseSize, Migration

# Operations that write checkpoints: the "writes per second" of the thresholds.
WRITE_OPS = ("put", "put_writes")
CHART_OPS = ("put", "put_writes", "get_tuple", "list")


def thresholds() -> dict[str, float]:
    defaults = {"error_rate": 0.01, "writes_per_second": 100.0, "p99_ms": 50.0, "database_bytes": 1024**3}
    return {**defaults, **getattr(settings, "OPERATIONS_THRESHOLDS", {})}


def _setting(name: str, default):
    return getattr(settings, name, default)


@dataclass
class Figures:
    """The saver's figures over a window (every process added up)."""

    seconds: float
    ops: dict[str, metrics_store.OpFigures] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)

    @property
    def operations(self) -> float:
        return sum(o.count for o in self.ops.values())

    @property
    def errors(self) -> float:
        return sum(o.errors for o in self.ops.values())

    @property
    def error_rate(self) -> float:
        return self.errors / self.operations if self.operations else 0.0

    @property
    def writes(self) -> float:
        return sum(self.ops[o].count for o in WRITE_OPS if o in self.ops)

    @property
    def writes_per_second(self) -> float:
        return self.writes / self.seconds if self.seconds else 0.0

    @property
    def hot_hit_rate(self) -> float | None:
        hits, misses = self.counters.get("hot.hit", 0), self.counters.get("hot.miss", 0)
        return hits / (hits + misses) if hits + misses else None

    def p(self, q: float) -> float | None:
        buckets = [sum(o.buckets[i] for o in self.ops.values()) for i in range(metrics_store.N_BUCKETS)]
        return metrics_store.percentile_ms(buckets, q)


def _scaled(fields: dict[str, int], weight: float) -> dict[str, float]:
    return {k: v * weight for k, v in fields.items()}


def figures_from(rows: dict[int, dict[str, int]], seconds: float, weights: dict[int, float] | None = None) -> Figures:
    merged: dict[str, float] = {}
    for minute, fields in rows.items():
        w = (weights or {}).get(minute, 1.0)
        for k, v in fields.items():
            merged[k] = merged.get(k, 0) + v * w
    return Figures(seconds=seconds, ops=metrics_store.by_op(merged), counters=metrics_store.counters(merged))


def window_figures(*, now: float | None = None, backend=None) -> Figures:
    """The last `OPERATIONS_WINDOW_SECONDS` (60 s): the current minute so far and the
    part of the previous minute still inside the window (a sliding-window estimate
    from per-minute buckets)."""
    now = time.time() if now is None else now
    window = float(_setting("OPERATIONS_WINDOW_SECONDS", 60))
    minute = int(now // 60)
    into = now - minute * 60
    span = max(1, int((window - into) // 60) + 1)
    rows = metrics_store.read(minute - span, minute, backend=backend)
    weights = {minute: 1.0}
    remaining = window - into
    for m in range(minute - 1, minute - span - 1, -1):
        weights[m] = max(0.0, min(1.0, remaining / 60))
        remaining -= 60
    return figures_from(rows, window, weights)


def last_hour(*, now: float | None = None, backend=None) -> Figures:
    now = time.time() if now is None else now
    minute = int(now // 60)
    return figures_from(metrics_store.read(minute - 59, minute, backend=backend), 3600)


@dataclass
class Point:
    at: float  # epoch seconds at the bucket's start
    figures: Figures


def series(*, minutes: int, step: int, now: float | None = None, backend=None) -> list[Point]:
    """`minutes` of history in buckets of `step` minutes, oldest first."""
    now = time.time() if now is None else now
    last = int(now // 60)
    first = last - minutes + 1
    rows = metrics_store.read(first, last, backend=backend)
    points = []
    for start in range(first, last + 1, step):
        chunk = {m: rows[m] for m in range(start, start + step) if m in rows}
        # The current bucket is divided by its full length too: a rate over its first
        # seconds would spike; the "last minute" figures use a sliding window instead.
        points.append(Point(at=start * 60, figures=figures_from(chunk, step * 60)))
    return points


def database_bytes(alias: str | None = None) -> int:
    """The saver database's size: the SQLite file with its WAL, or `pg_database_size`."""
    alias = alias or _setting("OPERATIONS_DATABASE", "default")
    conn = connections[alias]
    if conn.vendor == "sqlite":
        name = str(conn.settings_dict["NAME"])
        return sum(os.path.getsize(p) for p in (name, name + "-wal") if os.path.exists(p))

    def size(cur):
        cur.execute("SELECT pg_database_size(current_database())")
        return int(cur.fetchone()[0])

    return run(alias, size)


def database_growth(*, alias: str | None = None, hours: int = 24) -> list[DatabaseSize]:
    alias = alias or _setting("OPERATIONS_DATABASE", "default")
    since = timezone.now() - timedelta(hours=hours)
    return list(DatabaseSize.objects.filter(alias=alias, taken_at__gte=since).order_by("taken_at"))


def growth_per_day(samples: list[DatabaseSize]) -> float | None:
    if len(samples) < 2:
        return None
    first, last = samples[0], samples[-1]
    seconds = (last.taken_at - first.taken_at).total_seconds()
    return (last.bytes - first.bytes) * 86400 / seconds if seconds > 0 else None


def alerts_active() -> list[Alert]:
    return list(Alert.objects.filter(state=Alert.State.ACTIVE).order_by("-raised_at"))


def alert_history(*, limit: int = 100) -> list[Alert]:
    return list(Alert.objects.order_by("-raised_at", "-id")[:limit])


def migration_list(*, limit: int = 50) -> list[Migration]:
    return list(Migration.objects.select_related("created_by").order_by("-id")[:limit])


def migration_stale(migration: Migration) -> bool:
    if migration.state != Migration.State.RUNNING or migration.heartbeat_at is None:
        return False
    limit = _setting("OPERATIONS_MIGRATION_STALE_SECONDS", 120)
    return timezone.now() - migration.heartbeat_at > timedelta(seconds=limit)


def migration_json(m: Migration) -> dict:
    return {
        "id": m.pk, "state": m.state, "source_kind": m.source_kind, "source": m.source_label,
        "target": m.target_label, "dry_run": m.dry_run,
        "threads_total": m.threads_total, "threads_done": m.threads_done, "percent": m.percent,
        "checkpoints_copied": m.checkpoints_copied, "writes_copied": m.writes_copied,
        "blobs_copied": m.blobs_copied, "store_items_copied": m.store_items_copied,
        "cursor": m.cursor, "blocked": m.blocked, "verified": m.verified, "report": m.report, "error": m.error,
        "attempts": m.attempts, "stale": migration_stale(m),
        "started_at": m.started_at.isoformat() if m.started_at else None,
        "finished_at": m.finished_at.isoformat() if m.finished_at else None,
    }


def buckets_ms() -> tuple[float, ...]:
    return metrics.BUCKETS_MS
