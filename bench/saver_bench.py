"""Benchmark `DjangoSaver` against `PostgresSaver`, `AsyncPostgresSaver` and `SqliteSaver`.

    .venv/bin/python -m bench.saver_bench [--iterations N] [--rounds R] [--quick] [--json PATH]

Every saver runs the same workload (`bench.workload`) in its own fresh database, in
one process, phases interleaved saver by saver so drift hits all of them alike. What
each figure means is in `bench/README.md`. Nothing here is a pass/fail test: the
speed and size targets are printed, not enforced. The one exception is the session
count: a saver that opens sessions beyond its pool leaks connections, so the exit
status is 1 when that check fails (after the whole report is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version as pkg_version
from typing import Any

import psycopg
from psycopg.rows import dict_row

from .workload import ChatThread, build_graph, graph_input

PG_BASE_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
POOL_SIZE = 16  # DjangoSaver's default pool (checkpoints.dbconfig), and the anchors' pools
DATABASES = {
    "django": "bench_django",
    "django_async": "bench_django_async",
    "postgres": "bench_postgres",
    "async_postgres": "bench_async_postgres",
}
OPS = ("put", "put_writes", "get_tuple latest", "get_tuple by id", "list(limit=10)")
WRITERS = (1, 4, 16)
THREAD_STEPS = 20  # a throughput writer starts a new thread every 20 steps
GRAPH_TURNS = 10  # graph invokes per thread
SESSION_INVOKES = 200
P99_BUDGET_MS = 5.0
ASYNC_SPEEDUP_TARGET = 1.5

# Table names per saver family, for bytes per checkpoint.
DJANGO_TABLES = ("lg_thread", "lg_checkpoint", "lg_checkpoint_blob", "lg_checkpoint_write")
POSTGRES_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")


@dataclass
class Settings:
    iterations: int = 300  # timed calls per operation per saver per round
    rounds: int = 3
    window_s: float = 1.5  # length of one throughput run
    graph_invokes: int = 200
    storage_threads: int = 20
    storage_steps: int = 25

    @classmethod
    def quick(cls) -> Settings:
        return cls(iterations=100, rounds=1, window_s=0.5, graph_invokes=60, storage_threads=10, storage_steps=20)


@dataclass
class Results:
    latency: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    throughput: dict[str, dict[int, float]] = field(default_factory=dict)
    graph: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    storage: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, Any] = field(default_factory=dict)


# -- statistics -------------------------------------------------------------------------


def percentile(samples: list[int], p: float) -> float:
    """Nearest-rank percentile of nanosecond samples, in ms."""
    ordered = sorted(samples)
    k = max(0, math.ceil(p / 100 * len(ordered)) - 1)
    return ordered[k] / 1e6


def p50_p99(samples: list[int]) -> tuple[float, float]:
    return percentile(samples, 50), percentile(samples, 99)


def median_pairs(pairs: list[tuple[float, ...]]) -> tuple[float, ...]:
    return tuple(statistics.median(column) for column in zip(*pairs))


# -- databases --------------------------------------------------------------------------


def admin_conn() -> psycopg.Connection:
    return psycopg.connect(f"{PG_BASE_URL}/postgres", autocommit=True)


def fresh_database(name: str) -> str:
    with admin_conn() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{PG_BASE_URL}/{name}"


def analyze(s: Savers) -> None:
    """Fresh planner statistics in every PostgreSQL database, as autovacuum takes them on
    a production server once enough rows changed; figures 2 and 3 start with it, after
    the thousands of rows the figure before wrote. Some servers run without autovacuum
    (this machine's does): the statistics of figure 4's 20-thread workload then lasted
    the whole run, and `DjangoSaver`'s graph figure was 1.06-1.12x the anchor's against
    0.94-0.98x with fresh ones. Not before figure 1: the async databases are still empty
    then, and statistics of empty tables (which autovacuum never takes) made the
    a-methods' reads 2.4-3.8x slower (`aget_tuple` 0.78 against 0.33 ms, `alist` 4.9
    against 1.3)."""
    for url in s.urls.values():
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")


def table_bytes(url: str, tables: tuple[str, ...], count_table: str) -> dict[str, Any]:
    """`pg_total_relation_size` (heap, TOAST, indexes) per table after VACUUM ANALYZE."""
    with psycopg.connect(url, autocommit=True) as conn:
        for table in tables:
            conn.execute(f"VACUUM ANALYZE {table}")
        sizes = {
            t: conn.execute("SELECT pg_total_relation_size(%s)", [t]).fetchone()[0] for t in tables
        }
        count = conn.execute(f"SELECT count(*) FROM {count_table}").fetchone()[0]
    total = sum(sizes.values())
    return {"tables": sizes, "checkpoints": count, "total": total, "per_checkpoint": total / count}


# -- savers -----------------------------------------------------------------------------


def configure_django(urls: dict[str, str]) -> None:
    import django
    from django.conf import settings

    from checkpoints.dbconfig import database_settings

    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "checkpoints"],
        DATABASES={alias: database_settings(url, pool_size=POOL_SIZE) for alias, url in urls.items()},
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        # The database path, as PostgresSaver has it: no Redis hot tier, no blob storage.
        CHECKPOINTS_HOT_TIER_URL="",
        CHECKPOINTS_BLOB_STORE_URL="",
        # The size guard's default (10,000 B, policy "warn") logs a warning on every put
        # once a chat passes ~18 turns of this workload; 750 warnings a quick run would
        # time logging, not the saver.
        CHECKPOINTS_MAX_CHECKPOINT_BYTES=16 * 1024 * 1024,
    )
    django.setup()


class Savers:
    """Every saver under test, each on its own fresh database, built as its docs show."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tmpdir: str) -> None:
        from langgraph.checkpoint.postgres import PostgresSaver
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from langgraph.checkpoint.sqlite import SqliteSaver
        from psycopg_pool import AsyncConnectionPool, ConnectionPool

        from checkpoints.saver import DjangoSaver

        self.loop = loop
        self.urls = {key: fresh_database(name) for key, name in DATABASES.items()}
        pool_kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}

        # The Django set-up a project would have: one alias per database, each with the settings
        # `DjangoSaver.from_conn_string` would give it (Django's native psycopg pool of
        # POOL_SIZE connections on PostgreSQL; WAL and IMMEDIATE on SQLite), declared
        # up front so that the pool size is the anchors'.
        configure_django({
            "default": self.urls["django"],
            "django_async": self.urls["django_async"],
            "sqlite": f"sqlite:///{tmpdir}/django.sqlite3",
        })
        self.django = DjangoSaver("default")
        self.django_async = DjangoSaver("django_async")
        self.django_sqlite = DjangoSaver("sqlite")
        for saver in (self.django, self.django_async, self.django_sqlite):
            saver.setup()

        self.pool = ConnectionPool(
            self.urls["postgres"], min_size=1, max_size=POOL_SIZE, kwargs=pool_kwargs, open=True
        )
        self.postgres = PostgresSaver(self.pool)
        self.postgres.setup()

        async def open_async():
            pool = AsyncConnectionPool(
                self.urls["async_postgres"], min_size=1, max_size=POOL_SIZE, kwargs=pool_kwargs, open=False
            )
            await pool.open()
            saver = AsyncPostgresSaver(pool)
            await saver.setup()
            return pool, saver

        self.apool, self.async_postgres = loop.run_until_complete(open_async())

        sqlite_conn = sqlite3.connect(f"{tmpdir}/sqlitesaver.sqlite3", check_same_thread=False)
        self.sqlite = SqliteSaver(sqlite_conn)
        self.sqlite.setup()

    def close(self) -> None:
        from django.db import connections

        self.pool.close()
        self.loop.run_until_complete(self.apool.close())
        for saver in (self.django, self.django_async, self.django_sqlite):
            conn = connections[saver.using]
            conn.close()
            if conn.vendor == "postgresql":
                conn.close_pool()
        self.sqlite.conn.close()


# Each comparison: our saver and its anchor (label, attribute of `Savers`), sync or async.
PAIRS = (
    ("DjangoSaver(pg)", "django", "PostgresSaver", "postgres", False),
    ("DjangoSaver(sqlite)", "django_sqlite", "SqliteSaver", "sqlite", False),
    ("DjangoSaver(pg) a*", "django_async", "AsyncPostgresSaver", "async_postgres", True),
)
ANCHOR = {ours: anchor for ours, _, anchor, _, _ in PAIRS}
ASYNC_LABELS = {label for ours, _, anchor, _, is_async in PAIRS if is_async for label in (ours, anchor)}


def contenders(s: Savers, round_: int = 0) -> list[tuple[str, Any, bool]]:
    """(label, saver, async?) for every saver, ours before its anchor in even rounds and
    after it in odd ones: whatever the saver before leaves behind (a WAL checkpoint
    thread, warm or cold caches) falls on each side of a pair alike."""
    out = []
    for ours, ours_attr, anchor, anchor_attr, is_async in PAIRS:
        pair = [(ours, getattr(s, ours_attr), is_async), (anchor, getattr(s, anchor_attr), is_async)]
        out += pair[::-1] if round_ % 2 else pair
    return out


# -- one step ---------------------------------------------------------------------------


def sync_step(saver, chat: ChatThread) -> None:
    """What a LangGraph step asks of a saver: the task's writes, the next checkpoint,
    and (here) a read of the head."""
    put_writes_args, put_args = chat.step()
    if chat.n:
        saver.put_writes(*put_writes_args)
    chat.advance(saver.put(*put_args))
    saver.get_tuple(chat.latest)


async def async_step(saver, chat: ChatThread) -> None:
    put_writes_args, put_args = chat.step()
    if chat.n:
        await saver.aput_writes(*put_writes_args)
    chat.advance(await saver.aput(*put_args))
    await saver.aget_tuple(chat.latest)


# -- 1. per-operation latency -------------------------------------------------------------


class OpsRunner:
    """Times every operation on ten threads grown side by side, one step at a time, so
    each saver's calls are interleaved with the others' (a burst of load on the machine
    then hits every saver alike) and every operation is timed across thread lengths
    from 1 to `iterations / 10` checkpoints."""

    THREADS = 10

    def __init__(self, saver, is_async: bool, prefix: str, loop: asyncio.AbstractEventLoop) -> None:
        self.saver, self.is_async, self.loop = saver, is_async, loop
        self.chats = [ChatThread(saver, f"{prefix}-{i}") for i in range(self.THREADS)]
        self.samples: dict[str, list[int]] = defaultdict(list)

    def step(self) -> None:
        if self.is_async:
            self.loop.run_until_complete(self._astep())
        else:
            self._step()

    def _step(self) -> None:
        clock, saver, samples = time.perf_counter_ns, self.saver, self.samples
        for chat in self.chats:
            put_writes_args, put_args = chat.step()
            if chat.n:
                t0 = clock()
                saver.put_writes(*put_writes_args)
                samples["put_writes"].append(clock() - t0)
            t0 = clock()
            config = saver.put(*put_args)
            samples["put"].append(clock() - t0)
            chat.advance(config)
            t0 = clock()
            saver.get_tuple(chat.latest)
            samples["get_tuple latest"].append(clock() - t0)
            by_id = chat.by_id()
            t0 = clock()
            saver.get_tuple(by_id)
            samples["get_tuple by id"].append(clock() - t0)
            t0 = clock()
            list(saver.list(chat.latest, limit=10))
            samples["list(limit=10)"].append(clock() - t0)

    async def _astep(self) -> None:
        clock, saver, samples = time.perf_counter_ns, self.saver, self.samples
        for chat in self.chats:
            put_writes_args, put_args = chat.step()
            if chat.n:
                t0 = clock()
                await saver.aput_writes(*put_writes_args)
                samples["put_writes"].append(clock() - t0)
            t0 = clock()
            config = await saver.aput(*put_args)
            samples["put"].append(clock() - t0)
            chat.advance(config)
            t0 = clock()
            await saver.aget_tuple(chat.latest)
            samples["get_tuple latest"].append(clock() - t0)
            by_id = chat.by_id()
            t0 = clock()
            await saver.aget_tuple(by_id)
            samples["get_tuple by id"].append(clock() - t0)
            t0 = clock()
            [t async for t in saver.alist(chat.latest, limit=10)]
            samples["list(limit=10)"].append(clock() - t0)


def phase_latency(s: Savers, cfg: Settings, res: Results) -> None:
    savers = contenders(s)
    steps = max(2, math.ceil(cfg.iterations / OpsRunner.THREADS))
    warm = [OpsRunner(saver, is_async, f"warm-{label}", s.loop) for label, saver, is_async in savers]
    for _ in range(6):  # connections, prepared plans, imports
        for runner in warm:
            runner.step()
    # Every round's samples pooled: a P99 of one round's 300 calls is its third slowest,
    # which a single scheduler stall on this 2-core machine decides; pooled, it is the
    # 15th slowest of 1,500 at five rounds.
    pooled: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r in range(cfg.rounds):
        gc.collect()
        runners = {label: OpsRunner(saver, is_async, f"lat{r}-{label}", s.loop) for label, saver, is_async in savers}
        for step in range(steps):
            for label, _, _ in contenders(s, step):
                gc.collect(1)  # one saver's young garbage is not collected on another's clock
                runners[label].step()
        for label, runner in runners.items():
            for op in OPS:
                pooled[label][op] += runner.samples[op]
    for label, ops in pooled.items():
        res.latency[label] = {op: p50_p99(samples) for op, samples in ops.items()}


# -- 2. throughput ----------------------------------------------------------------------


def throughput_sync(saver, prefix: str, writers: int, window_s: float) -> float:
    barrier = threading.Barrier(writers + 1)
    counts = [0] * writers
    ends = [0] * writers
    window_ns = int(window_s * 1e9)
    start_box: list[int] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        k = 0
        chat = ChatThread(saver, f"{prefix}-w{i}-{k}")
        barrier.wait()
        deadline = start_box[0] + window_ns
        try:
            while time.perf_counter_ns() < deadline:
                sync_step(saver, chat)
                counts[i] += 1
                if chat.n >= THREAD_STEPS:
                    k += 1
                    chat = ChatThread(saver, f"{prefix}-w{i}-{k}")
        except BaseException as exc:  # surfaced below: a failing saver must not look fast
            errors.append(exc)
        ends[i] = time.perf_counter_ns()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    start_box.append(time.perf_counter_ns())
    barrier.wait()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return sum(counts) / ((max(ends) - start_box[0]) / 1e9)


async def throughput_async(saver, prefix: str, writers: int, window_s: float) -> float:
    counts = [0] * writers
    ends = [0] * writers
    start = time.perf_counter_ns()
    deadline = start + int(window_s * 1e9)

    async def worker(i: int) -> None:
        k = 0
        chat = ChatThread(saver, f"{prefix}-w{i}-{k}")
        while time.perf_counter_ns() < deadline:
            await async_step(saver, chat)
            counts[i] += 1
            if chat.n >= THREAD_STEPS:
                k += 1
                chat = ChatThread(saver, f"{prefix}-w{i}-{k}")
        ends[i] = time.perf_counter_ns()

    await asyncio.gather(*(worker(i) for i in range(writers)))
    return sum(counts) / ((max(ends) - start) / 1e9)


def phase_throughput(s: Savers, cfg: Settings, res: Results) -> None:
    analyze(s)
    savers = contenders(s)

    def run(saver, is_async, prefix, writers, window):
        if is_async:
            return s.loop.run_until_complete(throughput_async(saver, prefix, writers, window))
        return throughput_sync(saver, prefix, writers, window)

    for label, saver, is_async in savers:  # warm-up: grow every pool to 16
        run(saver, is_async, f"tpwarm-{label}", 16, min(0.3, cfg.window_s))
    runs: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in range(cfg.rounds):
        for writers in WRITERS:
            for label, saver, is_async in contenders(s, r):
                runs[label][writers].append(run(saver, is_async, f"tp{r}-{writers}-{label}", writers, cfg.window_s))
    for label, by_writers in runs.items():
        res.throughput[label] = {w: statistics.median(v) for w, v in by_writers.items()}


# -- 3. graph end to end ------------------------------------------------------------------


def graph_thread(graph, thread: str, is_async: bool, loop: asyncio.AbstractEventLoop) -> list[int]:
    """GRAPH_TURNS invokes on one thread; the time of each, in ns."""

    async def arun() -> list[int]:
        times = []
        for turn in range(GRAPH_TURNS):
            t0 = time.perf_counter_ns()
            await graph.ainvoke(graph_input(thread, turn), {"configurable": {"thread_id": thread}})
            times.append(time.perf_counter_ns() - t0)
        return times

    if is_async:
        return loop.run_until_complete(arun())
    times = []
    for turn in range(GRAPH_TURNS):
        t0 = time.perf_counter_ns()
        graph.invoke(graph_input(thread, turn), {"configurable": {"thread_id": thread}})
        times.append(time.perf_counter_ns() - t0)
    return times


def phase_graph(s: Savers, cfg: Settings, res: Results) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    analyze(s)
    memory = [("InMemorySaver", InMemorySaver(), False), ("InMemorySaver (ainvoke)", InMemorySaver(), True)]
    graphs = {
        label: (build_graph().compile(checkpointer=saver), is_async) for label, saver, is_async in memory + contenders(s)
    }
    for label, (graph, is_async) in graphs.items():
        graph_thread(graph, f"gwarm-{label}", is_async, s.loop)
    threads = max(1, cfg.graph_invokes // GRAPH_TURNS)
    runs: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for r in range(cfg.rounds):
        gc.collect()
        times: dict[str, list[int]] = defaultdict(list)
        for t in range(threads):  # one thread per saver in turn: interleaved
            for label, _, _ in memory + contenders(s, t):
                graph, is_async = graphs[label]
                gc.collect(1)
                times[label] += graph_thread(graph, f"g{r}-{label}-t{t}", is_async, s.loop)
        for label, ts in times.items():
            runs[label].append((sum(ts) / len(ts) / 1e6, *p50_p99(ts)))
    for label, triples in runs.items():
        res.graph[label] = median_pairs(triples)


# -- 4. bytes per checkpoint --------------------------------------------------------------


def phase_storage(s: Savers, cfg: Settings, res: Results) -> None:
    """The same fixed workload into each saver's still-empty database, then sizes."""
    for label, saver, url, tables, count_table in (
        ("DjangoSaver(pg)", s.django, s.urls["django"], DJANGO_TABLES, "lg_checkpoint"),
        ("PostgresSaver", s.postgres, s.urls["postgres"], POSTGRES_TABLES, "checkpoints"),
    ):
        chats = [ChatThread(saver, f"store-{i}") for i in range(cfg.storage_threads)]
        for _ in range(cfg.storage_steps):
            for chat in chats:
                sync_step(saver, chat)
        res.storage[label] = table_bytes(url, tables, count_table)


# -- 5. sessions during graph invokes ----------------------------------------------------


class SessionWatcher:
    """Samples `pg_stat_activity` for one database from a connection to another one."""

    def __init__(self, dbname: str) -> None:
        self.dbname = dbname
        self.seen: set[tuple[int, Any]] = set()
        self.max_concurrent = 0
        self._stop = threading.Event()
        self._conn = admin_conn()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def sessions_counter(self) -> int:
        row = self._conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", [self.dbname]).fetchone()
        return row[0]

    def _sample(self) -> None:
        while not self._stop.is_set():
            rows = self._conn.execute(
                "SELECT pid, backend_start FROM pg_stat_activity WHERE datname = %s", [self.dbname]
            ).fetchall()
            self.seen.update(rows)
            self.max_concurrent = max(self.max_concurrent, len(rows))
            time.sleep(0.002)

    def __enter__(self) -> SessionWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def close(self) -> None:
        self._conn.close()


def phase_sessions(s: Savers, cfg: Settings, res: Results) -> None:
    """200 invokes with DjangoSaver from a cold pool: every session it opens counts."""
    from django.db import connections

    conn = connections[s.django.using]
    conn.close()
    conn.close_pool()
    watcher = SessionWatcher(DATABASES["django"])
    try:
        before = watcher.sessions_counter()
        with watcher:
            t0 = time.perf_counter_ns()
            graph = build_graph().compile(checkpointer=s.django)
            for t in range(SESSION_INVOKES // GRAPH_TURNS):
                graph_thread(graph, f"sessions-{t}", False, s.loop)
            elapsed_ms = (time.perf_counter_ns() - t0) / 1e6
            time.sleep(0.05)
        # Backends report their connect on their first transaction's end; give the
        # counter a moment, then read it from a fresh snapshot.
        time.sleep(1.2)
        opened = watcher.sessions_counter() - before
    finally:
        watcher.close()
    res.sessions = {
        "invokes": SESSION_INVOKES,
        "pool_size": POOL_SIZE,
        "sessions_opened": opened,
        "distinct_backends_seen": len(watcher.seen),
        "max_concurrent": watcher.max_concurrent,
        "ms_per_invoke": elapsed_ms / SESSION_INVOKES,
    }


# -- report -----------------------------------------------------------------------------


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def report(cfg: Settings, res: Results, env: dict[str, str]) -> str:
    out: list[str] = []
    p = out.append
    p("DjangoSaver benchmark")
    p("  " + ", ".join(f"{k} {v}" for k, v in env.items()))
    p(
        f"  iterations={cfg.iterations} rounds={cfg.rounds} throughput window={cfg.window_s}s "
        f"graph invokes={cfg.graph_invokes} pool size={POOL_SIZE}"
    )

    p("")
    p(f"1. Latency per operation, ms: P50 / P99 of {cfg.iterations} calls x {cfg.rounds} round(s), pooled. ratio = ours/anchor, lower is better")
    for ours, _, anchor, _, _ in PAIRS:
        rows = []
        for op in OPS:
            o50, o99 = res.latency[ours][op]
            a50, a99 = res.latency[anchor][op]
            rows.append([op, f"{o50:.3f} / {o99:.3f}", f"{a50:.3f} / {a99:.3f}", _ratio(o50, a50), _ratio(o99, a99),
                         "yes" if o99 < P99_BUDGET_MS and o99 <= a99 else "NO"])
        p(_table(rows, ["", ours, anchor, "P50 ratio", "P99 ratio", f"P99<{P99_BUDGET_MS:g}ms & <=anchor"]))
        p("")

    p(f"2. Throughput, steps/s (step = put_writes + put + get_tuple), median of {cfg.rounds} run(s) of {cfg.window_s}s. ratio = ours/anchor, higher is better")
    for ours, _, anchor, _, is_async in PAIRS:
        kind = "asyncio tasks" if is_async else "threads"
        rows = []
        for w in WRITERS:
            o, a = res.throughput[ours][w], res.throughput[anchor][w]
            rows.append([f"{w} {kind}", f"{o:,.0f}", f"{a:,.0f}", _ratio(o, a)])
        p(_table(rows, ["writers", ours, anchor, "ratio"]))
        p("")

    p(f"3. Graph end to end: 3-node StateGraph, {cfg.graph_invokes} invokes ({GRAPH_TURNS} turns per thread), ms per invoke, median of {cfg.rounds} round(s)")
    rows = []
    for label, (mean, p50, p99) in res.graph.items():
        anchor = ANCHOR.get(label)
        baseline = "InMemorySaver (ainvoke)" if label in ASYNC_LABELS or "ainvoke" in label else "InMemorySaver"
        rows.append([
            label, f"{mean:.2f}", f"{p50:.2f}", f"{p99:.2f}",
            _ratio(mean, res.graph[anchor][0]) if anchor else "",
            _ratio(mean, res.graph[baseline][0]) if label != baseline else "",
        ])
    p(_table(rows, ["saver", "mean", "P50", "P99", "mean ratio to anchor", "vs in-memory"]))
    p("")

    p("4. Bytes per checkpoint on PostgreSQL: pg_total_relation_size (heap + TOAST + indexes) of the saver's tables after VACUUM ANALYZE / checkpoints")
    rows = []
    for label, st in res.storage.items():
        tables = ", ".join(f"{t} {b / 1024:.0f}k" for t, b in st["tables"].items())
        rows.append([label, f"{st['checkpoints']}", f"{st['total'] / 1024:,.0f} kB", f"{st['per_checkpoint']:,.0f}", tables])
    p(_table(rows, ["saver", "checkpoints", "total", "bytes/checkpoint", "by table"]))
    d, a = res.storage["DjangoSaver(pg)"]["per_checkpoint"], res.storage["PostgresSaver"]["per_checkpoint"]
    p(f"ratio DjangoSaver/PostgresSaver: {_ratio(d, a)}")
    p("")

    ss = res.sessions
    p(f"5. PostgreSQL sessions during {ss['invokes']} graph invokes with DjangoSaver, from a cold pool (max {ss['pool_size']})")
    p(f"   sessions opened (pg_stat_database.sessions delta): {ss['sessions_opened']}; distinct backends seen: "
      f"{ss['distinct_backends_seen']}; max concurrent: {ss['max_concurrent']}; {ss['ms_per_invoke']:.2f} ms per invoke")
    p("")

    lat = res.latency
    worst = [(op, lat["DjangoSaver(pg)"][op][1], lat["PostgresSaver"][op][1]) for op in OPS]
    ok_lat = all(o < P99_BUDGET_MS and o <= a for _, o, a in worst)
    misses = ", ".join(f"{op} {o:.3f} vs {a:.3f}" for op, o, a in worst if not (o < P99_BUDGET_MS and o <= a))
    ours_async = next(ours for ours, _, _, _, is_async in PAIRS if is_async)
    anchor_async = ANCHOR[ours_async]
    speedup = res.throughput[ours_async][16] / res.throughput[anchor_async][16]
    g_ours, g_anchor = res.graph["DjangoSaver(pg)"][0], res.graph["PostgresSaver"][0]
    flat = sessions_flat(ss)
    targets = [
        (ok_lat, "every op P99 < 5 ms and <= PostgresSaver's", misses or "all ops"),
        (speedup >= ASYNC_SPEEDUP_TARGET, f"16-task async throughput >= {ASYNC_SPEEDUP_TARGET}x AsyncPostgresSaver", f"{speedup:.2f}x"),
        (g_ours < g_anchor, "graph e2e lower than PostgresSaver's", f"{g_ours:.2f} vs {g_anchor:.2f} ms/invoke"),
        (d <= a, "bytes/checkpoint <= PostgresSaver's", f"{d:,.0f} vs {a:,.0f}"),
        (flat, f"sessions flat during {ss['invokes']} invokes (<= pool size {ss['pool_size']})",
         f"{ss['sessions_opened']} opened, {ss['max_concurrent']} at most"),
    ]
    p("Targets (DjangoSaver on PostgreSQL)")
    for ok, what, detail in targets:
        p(f"  [{'PASS' if ok else 'MISS'}] {what}: {detail}")
    return "\n".join(out)


def sessions_flat(sessions: dict[str, Any]) -> bool:
    seen = max(sessions["sessions_opened"], sessions["distinct_backends_seen"], sessions["max_concurrent"])
    return seen <= sessions["pool_size"]


# -- main -------------------------------------------------------------------------------


def code_revision() -> str:
    """The commit the saver code comes from, `+dirty` if `checkpoints/` has local edits
    (`BENCH_CODE_REVISION` names it when running from an exported tree)."""
    if os.environ.get("BENCH_CODE_REVISION"):
        return os.environ["BENCH_CODE_REVISION"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "checkpoints"], cwd=root, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def environment() -> dict[str, str]:
    with admin_conn() as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
    return {
        "checkpoints@": code_revision(),
        "CPUs": str(os.cpu_count()),
        "Python": platform.python_version(),
        "PostgreSQL": server,
        "SQLite": sqlite3.sqlite_version,
        "langgraph": pkg_version("langgraph"),
        "checkpoint-postgres": pkg_version("langgraph-checkpoint-postgres"),
        "Django": pkg_version("Django"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.saver_bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--iterations", type=int, help="timed calls per operation, and graph invokes, per round (default 300 and 200)"
    )
    parser.add_argument("--rounds", type=int, help="repeated runs whose median is reported (default 3)")
    parser.add_argument("--quick", action="store_true", help="fewer, shorter runs (under a minute)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    cfg = Settings.quick() if args.quick else Settings()
    if args.iterations:
        cfg.iterations = cfg.graph_invokes = args.iterations
    if args.rounds:
        cfg.rounds = args.rounds

    phases: list[tuple[str, Callable[[Savers, Settings, Results], None]]] = [
        ("bytes per checkpoint", phase_storage),  # first: the databases are still empty
        ("latency", phase_latency),
        ("throughput", phase_throughput),
        ("graph end to end", phase_graph),
        ("sessions", phase_sessions),
    ]
    env = environment()
    load_start = os.getloadavg()[0]
    res = Results()
    loop = asyncio.new_event_loop()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="saver-bench-") as tmpdir:
        savers = Savers(loop, tmpdir)
        try:
            for name, phase in phases:
                t0 = time.perf_counter()
                phase(savers, cfg, res)
                print(f"# {name}: {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
        finally:
            savers.close()
            loop.close()
    # Other work on the machine shows up as noise, above all in P99s: say how busy it was.
    env["load avg (1 min) at start/end"] = f"{load_start:.2f}/{os.getloadavg()[0]:.2f}"
    print(report(cfg, res, env))
    print(f"\n(total {time.perf_counter() - started:.0f}s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"settings": cfg.__dict__, "environment": env, **res.__dict__}, fh, indent=2, default=str)
    return 0 if sessions_flat(res.sessions) else 1


if __name__ == "__main__":
    sys.exit(main())
