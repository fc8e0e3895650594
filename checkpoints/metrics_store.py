"""The saver's measurements from every process, added up in one place.

Each process records into `checkpoints.metrics` (per-minute rows of counts, errors,
bytes and a fixed-bucket latency histogram, plus event counters). A flusher hands
those figures over to a shared aggregate, where they add up exactly, whatever the
number of web processes and workers:

- through Redis when `CHECKPOINTS_METRICS_REDIS_URL` (by default `REDIS_URL`) is set:
  one hash per minute, `HINCRBY` per field in one `MULTI`/`EXEC`, kept for
  `CHECKPOINTS_METRICS_RETENTION_MINUTES`, plus a hash of all-time totals for the
  Prometheus counters;
- through the database otherwise: one `MetricSample` row per (minute, field), written
  by additive upserts (`value = value + excluded.value`) in one transaction, the
  all-time totals under minute 0.

A field is `op:{operation}:{count|errors|bytes|b0..b15}` or `ctr:{counter}`.

The flusher is a daemon thread started on the process's first measurement
(`CHECKPOINTS_METRICS_FLUSH_SECONDS`, 0 to turn it off), re-started in a forked
child; requests flush at most once per interval too (`MetricsFlushMiddleware`), the
scheduled evaluation flushes its own process, and `flush()` is there for tests and
for a worker about to exit. A flush that fails keeps its figures for the next one.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from . import metrics
from .tiers import setting

logger = logging.getLogger("checkpoints.metrics")

TOTAL_MINUTE = 0
DEFAULT_FLUSH_SECONDS = 10.0
DEFAULT_RETENTION_MINUTES = 2 * 24 * 60
FIELDS = ("count", "errors", "bytes")
N_BUCKETS = len(metrics.BUCKETS_MS) + 1
TABLE = "lg_metric_sample"

UPSERT_SQL = (
    f"INSERT INTO {TABLE} (minute, name, value) VALUES {{rows}} "
    f"ON CONFLICT (minute, name) DO UPDATE SET value = {TABLE}.value + excluded.value"
)


def op_field(op: str, part: str) -> str:
    return f"op:{op}:{part}"


def bucket_field(op: str, i: int) -> str:
    return f"op:{op}:b{i}"


# -- what one flush hands over (no I/O) ------------------------------------------


def cells(
    counter_deltas: Mapping[str, int], minute_rows: Mapping[tuple[int, str], list[int]], *, now_minute: int
) -> dict[int, dict[str, int]]:
    """Per-minute fields to add: the drained histogram rows, and the counter deltas
    under the current minute. Every field is also added to the totals (minute 0)."""
    out: dict[int, Counter[str]] = {}
    for (minute, op), row in minute_rows.items():
        target = out.setdefault(minute, Counter())
        for part, value in zip(FIELDS, row[:3]):
            if value:
                target[op_field(op, part)] += value
        for i, value in enumerate(row[3:]):
            if value:
                target[bucket_field(op, i)] += value
    for name, value in counter_deltas.items():
        if value:
            out.setdefault(now_minute, Counter())[f"ctr:{name}"] += value
    totals: Counter[str] = Counter()
    for fields in out.values():
        totals.update(fields)
    if totals:
        out[TOTAL_MINUTE] = totals
    return {m: dict(f) for m, f in out.items() if f}


# -- backends ---------------------------------------------------------------------


class DatabaseBackend:
    """Additive upserts into `lg_metric_sample` on a Django database alias."""

    def __init__(self, using: str = "default") -> None:
        self.using = using

    def add(self, by_minute: Mapping[int, Mapping[str, int]]) -> None:
        # In key order, so two processes flushing at once lock rows in the same order
        # (PostgreSQL) and cannot deadlock.
        rows = sorted((m, name, v) for m, fields in by_minute.items() for name, v in fields.items())
        if not rows:
            return
        from .connection import run

        def write(cur):
            for start in range(0, len(rows), 300):
                chunk = rows[start : start + 300]
                params = [x for row in chunk for x in row]
                cur.execute(UPSERT_SQL.format(rows=", ".join(["(%s, %s, %s)"] * len(chunk))), params)

        run(self.using, write, atomic=True, retry=False)

    def read(self, first_minute: int, last_minute: int) -> dict[int, dict[str, int]]:
        from .connection import run

        def read(cur):
            cur.execute(
                f"SELECT minute, name, value FROM {TABLE} WHERE minute >= %s AND minute <= %s",
                [max(first_minute, TOTAL_MINUTE + 1), last_minute],
            )
            return cur.fetchall()

        out: dict[int, dict[str, int]] = {}
        for minute, name, value in run(self.using, read):
            out.setdefault(int(minute), {})[name] = int(value)
        return out

    def totals(self) -> dict[str, int]:
        from .connection import run

        def read(cur):
            cur.execute(f"SELECT name, value FROM {TABLE} WHERE minute = %s", [TOTAL_MINUTE])
            return cur.fetchall()

        return {name: int(value) for name, value in run(self.using, read)}

    def prune(self, before_minute: int) -> None:
        from .connection import run

        def delete(cur):
            cur.execute(f"DELETE FROM {TABLE} WHERE minute > %s AND minute < %s", [TOTAL_MINUTE, before_minute])

        run(self.using, delete)


class RedisBackend:
    """`HINCRBY` into one hash per minute (`{prefix}:m:{minute}`) and the totals hash."""

    def __init__(self, url: str, *, prefix: str = "lgmetrics", retention_minutes: int = DEFAULT_RETENTION_MINUTES,
                 timeout: float = 2.0) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self.prefix = prefix
        self.ttl = int(retention_minutes * 60) + 120

    def key(self, minute: int) -> str:
        return f"{self.prefix}:m:{minute}" if minute != TOTAL_MINUTE else f"{self.prefix}:totals"

    def add(self, by_minute: Mapping[int, Mapping[str, int]]) -> None:
        if not by_minute:
            return
        with self.client.pipeline(transaction=True) as pipe:
            for minute, fields in by_minute.items():
                key = self.key(minute)
                for name, value in fields.items():
                    pipe.hincrby(key, name, value)
                if minute != TOTAL_MINUTE:
                    pipe.expire(key, self.ttl)
            pipe.execute()

    def read(self, first_minute: int, last_minute: int) -> dict[int, dict[str, int]]:
        minutes = list(range(max(first_minute, TOTAL_MINUTE + 1), last_minute + 1))
        with self.client.pipeline(transaction=False) as pipe:
            for minute in minutes:
                pipe.hgetall(self.key(minute))
            results = pipe.execute()
        out = {}
        for minute, fields in zip(minutes, results):
            if fields:
                out[minute] = {k.decode(): int(v) for k, v in fields.items()}
        return out

    def totals(self) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.client.hgetall(self.key(TOTAL_MINUTE)).items()}

    def prune(self, before_minute: int) -> None:
        """Redis expires old minutes by itself."""


def configured_backend():
    url = setting("CHECKPOINTS_METRICS_REDIS_URL", None)
    if url is None:
        url = setting("REDIS_URL", "")
    if url:
        return _redis_backend(url, int(setting("CHECKPOINTS_METRICS_RETENTION_MINUTES", DEFAULT_RETENTION_MINUTES)))
    return DatabaseBackend(setting("CHECKPOINTS_METRICS_DATABASE", "default"))


_backends: dict[tuple[str, int], RedisBackend] = {}


def _redis_backend(url: str, retention: int) -> RedisBackend:
    key = (url, retention)
    if key not in _backends:
        _backends[key] = RedisBackend(url, retention_minutes=retention)
    return _backends[key]


# -- flushing ---------------------------------------------------------------------

_flush_lock = threading.Lock()
# Counters in `checkpoints.metrics` are cumulative for the process; what was handed
# over so far is remembered here so each flush adds only the difference.
_flushed_counters: dict[str, int] = {}
# Figures drained but not yet stored (the last flush failed).
_pending: dict[int, Counter[str]] = {}
_last_flush = 0.0
_thread: threading.Thread | None = None


def _counter_deltas(current: Mapping[str, int]) -> dict[str, int]:
    deltas = {}
    for name, value in current.items():
        before = _flushed_counters.get(name, 0)
        # A counter below what was handed over was reset (tests do): count it afresh.
        deltas[name] = value - before if value >= before else value
    return deltas


def flush(backend=None) -> int:
    """Hand what this process measured over to the aggregate.

    Returns:
        The number of fields written (0 when there was nothing to write).
    Raises:
        Nothing: a failure is logged and the figures are kept for the next flush.
    """
    global _last_flush
    backend = backend or configured_backend()
    with _flush_lock:
        counters, minute_rows = metrics.drain()
        deltas = _counter_deltas(counters)
        _flushed_counters.clear()
        _flushed_counters.update(counters)
        for minute, fields in cells(deltas, minute_rows, now_minute=int(time.time() // 60)).items():
            _pending.setdefault(minute, Counter()).update(fields)
        _last_flush = time.monotonic()
        if not _pending:
            return 0
        payload = {m: dict(f) for m, f in _pending.items()}
        try:
            backend.add(payload)
        except Exception as exc:  # noqa: BLE001 - the figures wait for the next flush
            logger.warning("could not flush metrics to %s: %s", type(backend).__name__, exc)
            return 0
        _pending.clear()
        return sum(len(f) for f in payload.values())


def flush_interval() -> float:
    return float(setting("CHECKPOINTS_METRICS_FLUSH_SECONDS", DEFAULT_FLUSH_SECONDS))


def maybe_flush() -> None:
    """Flush if the last flush of this process is older than the interval."""
    interval = flush_interval()
    if interval > 0 and time.monotonic() - _last_flush >= interval:
        flush()


def _loop(interval: float) -> None:
    # A pooled PostgreSQL connection goes back after each flush (`connection.run`
    # releases it); a SQLite one stays with this thread.
    while True:
        time.sleep(interval)
        flush()


def start_flusher() -> None:
    """Start this process's flusher thread once (a no-op when the interval is 0)."""
    global _thread
    interval = flush_interval()
    if interval <= 0 or (_thread is not None and _thread.is_alive()):
        return
    with _flush_lock:
        if _thread is not None and _thread.is_alive():
            return
        _thread = threading.Thread(target=_loop, args=(interval,), name="metrics-flusher", daemon=True)
        _thread.start()
        # A short-lived process (a command, a script) hands over its last figures too.
        atexit.register(_flush_at_exit)


def _flush_at_exit() -> None:
    try:
        flush()
    except Exception:  # noqa: BLE001 - the interpreter is going away; never fail its exit
        pass


def _after_fork_in_child() -> None:
    # The parent hands over what it measured before the fork; the child counts from here.
    global _thread, _flush_lock
    _thread = None
    _flush_lock = threading.Lock()
    _pending.clear()
    _flushed_counters.clear()
    _flushed_counters.update(metrics.snapshot())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# -- reading the aggregate (no I/O below `read`) ----------------------------------


@dataclass(frozen=True)
class OpFigures:
    op: str
    count: int
    errors: int
    bytes: int
    buckets: tuple[int, ...]

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0

    def percentile_ms(self, q: float) -> float | None:
        return percentile_ms(self.buckets, q)


def percentile_ms(buckets: Iterable[int], q: float) -> float | None:
    """The `q` quantile (0-1) of a fixed-bucket histogram, interpolated inside its
    bucket; the open last bucket reports its lower bound. `None` when empty."""
    buckets = list(buckets)
    total = sum(buckets)
    if not total:
        return None
    rank = q * total
    seen = 0
    bounds = (0.0, *metrics.BUCKETS_MS)
    for i, n in enumerate(buckets):
        if n and seen + n >= rank:
            if i >= len(metrics.BUCKETS_MS):
                return float(metrics.BUCKETS_MS[-1])
            lower, upper = bounds[i], bounds[i + 1]
            return lower + (upper - lower) * max(0.0, rank - seen) / n
        seen += n
    return float(metrics.BUCKETS_MS[-1])


def by_op(fields: Mapping[str, int]) -> dict[str, OpFigures]:
    """Group `op:*` fields (summed over any number of minutes) per operation."""
    parts: dict[str, dict[str, int]] = {}
    for name, value in fields.items():
        if not name.startswith("op:") or ":" not in name[3:]:
            continue
        op, part = name[3:].rsplit(":", 1)
        slot = parts.setdefault(op, {})
        slot[part] = slot.get(part, 0) + value
    out = {}
    for op, p in sorted(parts.items()):
        out[op] = OpFigures(
            op=op, count=p.get("count", 0), errors=p.get("errors", 0), bytes=p.get("bytes", 0),
            buckets=tuple(p.get(f"b{i}", 0) for i in range(N_BUCKETS)),
        )
    return out


def counters(fields: Mapping[str, int]) -> dict[str, int]:
    return {name[4:]: value for name, value in fields.items() if name.startswith("ctr:")}


def merge(minutes: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for fields in minutes:
        total.update(fields)
    return dict(total)


def read(first_minute: int, last_minute: int, backend=None) -> dict[int, dict[str, int]]:
    return (backend or configured_backend()).read(first_minute, last_minute)


def totals(backend=None) -> dict[str, int]:
    return (backend or configured_backend()).totals()
