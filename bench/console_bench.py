"""Benchmark the console's pages on PostgreSQL: the thread list at 100,000 threads and the
thread detail of a thread with 1,000 checkpoints. Target: P95 under 200 ms.

    .venv/bin/python -m bench.console_bench [--threads N] [--turns T] [--iterations I] [--keep]

Each request goes through Django's whole stack in-process (middleware, session, the
selectors, the graph's `get_state`, template rendering) with the test client, as a
logged-in superuser. It **drops and recreates** the database `bench_console` at
`BENCH_PG_URL` (default `postgresql://postgres@127.0.0.1:5432`) unless `--keep` finds it
filled. Not a pass/fail test: it prints the figures and the target.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from datetime import timedelta

import psycopg

PG_BASE_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
DB_NAME = "bench_console"
TARGET_P95_MS = 200.0


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare_database(keep: bool) -> bool:
    """Returns True when an existing, filled database is kept."""
    with psycopg.connect(f"{PG_BASE_URL}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if keep and exists:
            return True
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    return False


def configure() -> None:
    os.environ["DATABASE_URL"] = f"{PG_BASE_URL}/{DB_NAME}"
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "console-bench")
    os.environ["ALLOWED_HOSTS"] = "testserver,localhost"
    for name in ("REDIS_URL", "BLOB_STORE_URL", "TIMETRAVEL_DATABASE"):
        os.environ.pop(name, None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()


def fill(n_threads: int, turns: int) -> dict:
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from checkpoints.models import Thread
    from timetravel import graphs
    from timetravel.demo import user_message
    from timetravel.seed import seed_demo

    call_command("migrate", verbosity=0)
    User.objects.create_superuser("bench", "bench@example.com", "bench")
    t0 = time.perf_counter()
    now = timezone.now()
    statuses = ["idle"] * 96 + ["interrupted"] * 2 + ["error", "busy"]
    batch = []
    for i in range(n_threads):
        batch.append(Thread(
            thread_id=f"t-{i:07d}", status=statuses[i % len(statuses)], graph_id=("demo", "support", "triage")[i % 3],
            metadata={"customer": f"customer-{i % 5000}", "tenant": f"tenant-{i % 40}", "graph_id": "demo"},
            head_checkpoint_id="", checkpoint_count=1 + i % 50, bytes_stored=500 + (i * 37) % 90_000,
            created_at=now - timedelta(seconds=2 * i), updated_at=now - timedelta(seconds=i),
        ))
        if len(batch) == 10_000:
            Thread.objects.bulk_create(batch)
            batch = []
            log(f"  threads: {i + 1:,}")
    if batch:
        Thread.objects.bulk_create(batch)
    log(f"{n_threads:,} thread rows in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    seed_demo(graphs.saver())
    graph = graphs.graph_get("demo")
    config = {"configurable": {"thread_id": "long"}, "metadata": {"graph_id": "demo", "customer": "long-runner"}}
    for turn in range(turns):
        graph.invoke(user_message(f"Where is my order #{1000 + turn}?"), config)
        if turn % 50 == 49:
            log(f"  long thread: {turn + 1} turns")
    # A few forks, so the tree has branches.
    history = list(graph.get_state_history(config, limit=400))
    for state in history[100::100]:
        if state.next:
            graph.update_state(state.config, {"order_id": "9999"})
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    log(f"demo threads and a {turns}-turn thread in {time.perf_counter() - t0:.1f} s")
    return {}


def scenarios() -> list[tuple[str, str]]:
    from checkpoints.models import Checkpoint, Thread
    from timetravel import selectors

    middle = Thread.objects.order_by("-updated_at", "-thread_id")[50_000 if Thread.objects.count() > 60_000 else 10]
    deep = selectors.cursor_encode(middle.updated_at, middle.thread_id)
    long_ids = list(Checkpoint.objects.filter(thread_id="long", checkpoint_ns="").order_by("checkpoint_id")
                    .values_list("checkpoint_id", flat=True))
    early, late = long_ids[10], long_ids[len(long_ids) // 2]
    return [
        ("list: first page", "/threads/"),
        ("list: page 1,000 (keyset cursor)", f"/threads/?after={deep}"),
        ("list: status=interrupted", "/threads/?status=interrupted"),
        ("list: graph=triage", "/threads/?graph=triage"),
        ("list: metadata customer=customer-42", "/threads/?meta_key=customer&meta_value=customer-42"),
        ("list: metadata tenant=tenant-7 (many)", "/threads/?meta_key=tenant&meta_value=tenant-7"),
        ("list: id prefix t-00420", "/threads/?q=t-00420"),
        ("list: sort by size (no index)", "/threads/?sort=-bytes_stored"),
        ("list: sort oldest first", "/threads/?sort=updated_at"),
        ("list: JSON", "/threads/?format=json"),
        ("detail: 1,000-checkpoint thread, head", "/threads/long/"),
        ("detail: an early checkpoint", f"/threads/long/?checkpoint={early}"),
        ("detail: older tree page", f"/threads/long/?before={late}"),
        ("detail: diff against a far checkpoint", f"/threads/long/?checkpoint={late}&against={early}"),
        ("detail: raw JSON view", "/threads/long/?view=raw"),
        ("detail: JSON (ThreadState)", "/threads/long/?format=json"),
        ("detail: live fragment", "/threads/long/?fragment=live"),
        ("detail: demo thread with an interrupt", "/threads/demo-02-awaiting-approval/"),
        ("inbox", "/inbox/"),
        ("audit log", "/audit/"),
    ]


def measure(iterations: int) -> list[tuple[str, int, float, float, float, int]]:
    from django.db import connection
    from django.test import Client

    client = Client()
    client.login(username="bench", password="bench")
    rows = []
    for label, url in scenarios():
        for _ in range(3):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code, response.content[:300])
        # An execute wrapper counts every statement, whatever the pool does with the
        # connection between requests (the query log is reset per request).
        executed = []
        with connection.execute_wrapper(lambda execute, sql, *a: executed.append(sql) or execute(sql, *a)):
            client.get(url)
        samples = []
        for _ in range(iterations):
            t0 = time.perf_counter()
            client.get(url)
            samples.append((time.perf_counter() - t0) * 1000)
        rows.append((label, len(executed), percentile(samples, 50), percentile(samples, 95),
                     max(samples), len(response.content)))
        log(f"  {label}: P95 {rows[-1][3]:.1f} ms")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--turns", type=int, default=200, help="demo turns of the long thread (5 checkpoints each)")
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--keep", action="store_true", help="reuse a filled bench_console database")
    args = parser.parse_args()

    kept = prepare_database(args.keep)
    configure()
    if not kept:
        fill(args.threads, args.turns)
    from checkpoints.models import Checkpoint, Thread

    n_threads = Thread.objects.count()
    n_long = Checkpoint.objects.filter(thread_id="long").count()
    rows = measure(args.iterations)
    print(f"\nConsole pages on PostgreSQL: {n_threads:,} threads; long thread {n_long:,} checkpoints; "
          f"{args.iterations} requests each, in-process test client\n")
    print(f"| page | queries | P50 ms | P95 ms | max ms | bytes |")
    print(f"|---|---:|---:|---:|---:|---:|")
    for label, queries, p50, p95, worst, size in rows:
        print(f"| {label} | {queries} | {p50:.1f} | {p95:.1f} | {worst:.1f} | {size:,} |")
    over = [r[0] for r in rows if r[3] >= TARGET_P95_MS]
    print(f"\nTarget P95 < {TARGET_P95_MS:.0f} ms: " + ("met by every page" if not over else f"missed by {', '.join(over)}"))


if __name__ == "__main__":
    main()
