"""The Prometheus exposition of the saver's metrics, from the shared aggregate (every
process added up), so any web process answers the same.

Counters and the latency histogram are all-time totals; the histogram's `_sum` is
estimated from the bucket midpoints, since processes keep bucket counts, not sums.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from checkpoints import metrics, metrics_store

from . import selectors


def _sum_estimate(buckets: tuple[int, ...]) -> float:
    bounds = (0.0, *metrics.BUCKETS_MS)
    total = 0.0
    for i, n in enumerate(buckets):
        if not n:
            continue
        mid = (bounds[i] + bounds[i + 1]) / 2 if i < len(metrics.BUCKETS_MS) else metrics.BUCKETS_MS[-1]
        total += n * mid / 1000
    return total


class SaverCollector:
    def __init__(self, *, backend=None) -> None:
        self.backend = backend

    def collect(self):
        totals = metrics_store.totals(self.backend)
        ops = metrics_store.by_op(totals)
        count = CounterMetricFamily("langgraph_saver_operations", "Saver and store operations", labels=["op"])
        errors = CounterMetricFamily("langgraph_saver_operation_errors", "Operations that raised", labels=["op"])
        nbytes = CounterMetricFamily("langgraph_saver_operation_bytes", "Bytes the operations wrote",
                                     labels=["op"])
        latency = HistogramMetricFamily("langgraph_saver_operation_duration_seconds", "Operation latency",
                                        labels=["op"])
        for op, f in ops.items():
            count.add_metric([op], f.count)
            errors.add_metric([op], f.errors)
            nbytes.add_metric([op], f.bytes)
            cumulative, buckets = 0, []
            for bound, n in zip(metrics.BUCKETS_MS, f.buckets):
                cumulative += n
                buckets.append((repr(bound / 1000), cumulative))
            buckets.append(("+Inf", cumulative + f.buckets[-1]))
            latency.add_metric([op], buckets, sum_value=_sum_estimate(f.buckets))
        yield from (count, errors, nbytes, latency)
        events = CounterMetricFamily("langgraph_saver_events", "Tier events (hot.hit, hot.miss, ...)",
                                     labels=["event"])
        for name, value in sorted(metrics_store.counters(totals).items()):
            events.add_metric([name], value)
        yield events
        window = selectors.window_figures(backend=self.backend)
        for name, doc, value in (
            ("langgraph_saver_writes_per_second", "Checkpoint writes per second, last minute",
             window.writes_per_second),
            ("langgraph_saver_error_rate", "Share of operations that failed, last minute", window.error_rate),
        ):
            yield GaugeMetricFamily(name, doc, value=value)
        p99 = GaugeMetricFamily("langgraph_saver_p99_seconds", "P99 latency per operation, last minute",
                                labels=["op"])
        for op, f in window.ops.items():
            q = f.percentile_ms(0.99)
            if q is not None:
                p99.add_metric([op], q / 1000)
        yield p99
        try:
            yield GaugeMetricFamily("langgraph_database_bytes", "Size of the saver's database",
                                    value=selectors.database_bytes())
        except Exception:  # noqa: BLE001 - a size we cannot read is left out
            pass
        active = GaugeMetricFamily("langgraph_alerts_active", "Active threshold alerts", labels=["key"])
        for alert in selectors.alerts_active():
            active.add_metric([alert.key], 1)
        yield active


def exposition(*, backend=None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SaverCollector(backend=backend))
    return generate_latest(registry)
