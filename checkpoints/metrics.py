"""Measurements of every saver and store operation, in this process.

`observe(op, seconds, ok=..., nbytes=...)` records one operation; `incr(name)` counts
events of the tiers (`hot.hit`, `hot.miss`, `hot.error`, `blobs.offloaded_bytes`).
Operations are kept per minute as counts, errors, bytes and a latency histogram with
fixed bucket bounds, so figures from several processes add up exactly (aggregation
across processes is in `checkpoints.metrics_store`, when present).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# Upper bounds in milliseconds; the last bucket is everything slower.
BUCKETS_MS = (0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)

_lock = threading.Lock()
_counters: Counter[str] = Counter()
# (minute, op) -> [count, errors, bytes, *bucket counts]
_minutes: dict[tuple[int, str], list[int]] = {}
# Called once per process on the first measurement (an aggregator starts its flusher
# there, so a process that never touches the saver runs no thread); again in a forked
# child, whose parent's threads did not survive the fork.
_first_record_hooks: list[Callable[[], None]] = []
_recorded = False


def on_first_record(hook: Callable[[], None]) -> None:
    """Call `hook()` on this process's first `observe`/`incr` (at once if already past it)."""
    _first_record_hooks.append(hook)
    if _recorded:
        hook()


def _first_record() -> None:
    global _recorded
    _recorded = True
    for hook in list(_first_record_hooks):
        try:
            hook()
        except Exception:  # noqa: BLE001 - measuring never fails the operation measured
            pass


def _after_fork() -> None:
    # The parent still holds (and will hand over) what it measured before the fork;
    # the child starts empty, with a lock no thread of the parent may be holding.
    global _recorded, _lock
    _recorded = False
    _lock = threading.Lock()
    _minutes.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def incr(name: str, value: int = 1) -> None:
    with _lock:
        _counters[name] += value
    if not _recorded:
        _first_record()


def bucket_of(ms: float) -> int:
    for i, bound in enumerate(BUCKETS_MS):
        if ms <= bound:
            return i
    return len(BUCKETS_MS)


def observe(op: str, seconds: float, *, ok: bool = True, nbytes: int = 0) -> None:
    minute = int(time.time() // 60)
    with _lock:
        row = _minutes.get((minute, op))
        if row is None:
            row = _minutes[(minute, op)] = [0, 0, 0] + [0] * (len(BUCKETS_MS) + 1)
        row[0] += 1
        row[1] += 0 if ok else 1
        row[2] += nbytes
        row[3 + bucket_of(seconds * 1000)] += 1
    if not _recorded:
        _first_record()


class timing:  # noqa: N801 - used as a function: `with metrics.timing(op):`
    """Record the latency and outcome of the block (the a-methods time their own).
    A class rather than a generator: it wraps every saver call, and costs a third."""

    __slots__ = ("op", "start")

    def __init__(self, op: str) -> None:
        self.op = op

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, exc_type, exc, tb) -> None:
        observe(self.op, time.perf_counter() - self.start, ok=exc_type is None)


def timed(op: str) -> Callable[[F], F]:
    """Record the latency and outcome of every call of the decorated method."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with timing(op):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def snapshot() -> dict[str, int]:
    with _lock:
        return dict(_counters)


def drain() -> tuple[dict[str, int], dict[tuple[int, str], list[int]]]:
    """Take (and clear) what this process measured, for an aggregator to store."""
    with _lock:
        counters, minutes = dict(_counters), dict(_minutes)
        _minutes.clear()
        return counters, minutes


def minutes() -> dict[tuple[int, str], list[int]]:
    with _lock:
        return {k: list(v) for k, v in _minutes.items()}


def reset() -> None:
    with _lock:
        _counters.clear()
        _minutes.clear()
