"""Counters of the saver's tiers, in this process.

Kept deliberately small: a tier records what happened (`incr("hot.error")`) and the
operations dashboard reads `snapshot()`.
"""

from __future__ import annotations

import threading
from collections import Counter

_lock = threading.Lock()
_counters: Counter[str] = Counter()


def incr(name: str, value: int = 1) -> None:
    with _lock:
        _counters[name] += value


def snapshot() -> dict[str, int]:
    with _lock:
        return dict(_counters)


def reset() -> None:
    with _lock:
        _counters.clear()
