"""Migration throughput: checkpoints per second copied into PostgreSQL, and verified.

    .venv/bin/python -m bench.migration_bench                  # 100,000 checkpoints per source
    .venv/bin/python -m bench.migration_bench --quick          # 5,000
    .venv/bin/python -m bench.migration_bench --checkpoints 20000 --batch-size 100 --source sqlite

Seeds a source with chat-like threads through its own saver (each step: two pending
writes with a task path against the current checkpoint, then the next checkpoint, a
`messages` list that grows by one short message and a trigger channel), then times
`checkpoints.copy.Copier.run` into a fresh PostgreSQL database (`bench_migration`,
dropped and recreated) and `checkpoints.copy.verify` over the result.

Sources: `sqlite` (a `langgraph-checkpoint-sqlite` file) and `django` (this project's
SQLite database through `DjangoSaver`). Needs PostgreSQL at `BENCH_PG_URL` (default
`postgresql://postgres@127.0.0.1:5432`). Not a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timezone

import psycopg

PG_BASE_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
TARGET_DB = "bench_migration"
STEPS_PER_THREAD = 20


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fresh_database(name: str) -> str:
    with psycopg.connect(f"{PG_BASE_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{PG_BASE_URL}/{name}"


def configure(sqlite_path: str, target_url: str) -> None:
    import django
    from django.conf import settings

    from checkpoints.dbconfig import database_settings

    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "checkpoints"],
        DATABASES={"default": database_settings(f"sqlite:///{sqlite_path}"),
                   "target": database_settings(target_url)},
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        CHECKPOINTS_BLOB_STORE_URL="",
        CHECKPOINTS_HOT_TIER_URL="",
    )
    django.setup()
    from django.core.management import call_command

    for alias in ("default", "target"):
        call_command("migrate", "checkpoints", database=alias, verbosity=0)


def seed(saver, n_checkpoints: int, prefix: str) -> int:
    """Chat-like threads of STEPS_PER_THREAD checkpoints through `saver.put`/`put_writes`."""
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.base.id import uuid6

    done = 0
    thread = 0
    start = time.perf_counter()
    while done < n_checkpoints:
        thread_id = f"{prefix}-{thread:06d}"
        thread += 1
        checkpoint = empty_checkpoint()
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        messages: list[dict] = []
        for n in range(min(STEPS_PER_THREAD, n_checkpoints - done)):
            task_id = str(uuid6(clock_seq=n))
            trigger = "branch:to:agent" if n % 2 == 0 else "branch:to:tools"
            message = {"role": "user" if n % 2 == 0 else "ai", "content": f"message {n} of {thread_id}: " + "x" * 60}
            if n:
                saver.put_writes(config, [("messages", [message]), (trigger, None)], task_id,
                                 f"~__pregel_pull, {'agent' if n % 2 == 0 else 'tools'}")
            messages = [*messages, message]
            versions = dict(checkpoint["channel_versions"])
            new_versions = {}
            consumed = "branch:to:tools" if n % 2 == 0 else "branch:to:agent"
            # As LangGraph does: the trigger consumed this step leaves `channel_values`
            # with a new version, so no version names a value the checkpoint lacks.
            for channel in ("messages", trigger, "step", *([consumed] if consumed in versions else [])):
                versions[channel] = new_versions[channel] = saver.get_next_version(versions.get(channel), None)
            checkpoint = {
                **checkpoint, "id": str(uuid6(clock_seq=n)), "ts": datetime.now(timezone.utc).isoformat(),
                "channel_values": {"messages": messages, trigger: None, "step": n},
                "channel_versions": versions,
                "versions_seen": {"agent": {"messages": versions["messages"]}},
                "updated_channels": list(new_versions),
            }
            metadata = {"source": "loop", "step": n, "parents": {}, "run_id": f"run-{thread_id}"}
            config = saver.put(config, checkpoint, metadata, new_versions)
            done += 1
        if thread % 500 == 0:
            log(f"  seeded {done:,} checkpoints ({done / (time.perf_counter() - start):,.0f}/s)")
    return thread


def run(source_kind: str, n_checkpoints: int, batch_size: int, tmp: str) -> dict:
    from django.db import connections

    from checkpoints.copy import Copier, DjangoSource, SqliteSource, verify
    from checkpoints.saver import DjangoSaver

    with connections["target"].cursor() as cur:
        cur.execute("TRUNCATE lg_thread, lg_checkpoint, lg_checkpoint_blob, lg_checkpoint_write")
    log(f"seeding {n_checkpoints:,} checkpoints into the {source_kind} source")
    t0 = time.perf_counter()
    if source_kind == "sqlite":
        path = os.path.join(tmp, "langgraph.sqlite")
        conn = sqlite3.connect(path, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        from langgraph.checkpoint.sqlite import SqliteSaver

        threads = seed(SqliteSaver(conn), n_checkpoints, "lite")
        conn.close()
        source = SqliteSource(path)
    else:
        saver = DjangoSaver(using="default", hot_tier=None, blob_store=None)
        threads = seed(saver, n_checkpoints, "dj")
        source = DjangoSource("default")
    seeded = time.perf_counter() - t0
    target = DjangoSaver(using="target", hot_tier=None, blob_store=None)
    log(f"copying {threads:,} threads, {batch_size} per transaction")
    t0 = time.perf_counter()
    copied = {"n": 0}

    def progress(result):
        copied["n"] += result.checkpoints
        if copied["n"] and copied["n"] % (batch_size * STEPS_PER_THREAD * 20) < batch_size * STEPS_PER_THREAD:
            log(f"  {copied['n']:,} checkpoints ({copied['n'] / (time.perf_counter() - t0):,.0f}/s)")

    results = Copier(source, target, batch_size=batch_size).run(on_batch=progress)
    copy_s = time.perf_counter() - t0
    checkpoints = sum(r.checkpoints for r in results)
    writes = sum(r.writes for r in results)
    log("verifying")
    t0 = time.perf_counter()
    report = verify(source, target, copy_store=False)
    verify_s = time.perf_counter() - t0
    source.close()
    with connections["target"].cursor() as cur:
        cur.execute("SELECT pg_database_size(current_database())")
        size = cur.fetchone()[0]
    return {
        "source": source_kind, "threads": threads, "checkpoints": checkpoints, "writes": writes,
        "seed_s": seeded, "copy_s": copy_s, "copy_cps": checkpoints / copy_s, "verify_s": verify_s,
        "verify_cps": checkpoints / verify_s, "ok": report["ok"], "differences": report["differences_total"],
        "target_bytes": size,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="5,000 checkpoints")
    parser.add_argument("--batch-size", type=int, default=50, help="threads per target transaction")
    parser.add_argument("--source", choices=["sqlite", "django", "both"], default="both")
    args = parser.parse_args(argv)
    n = 5_000 if args.quick else args.checkpoints
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with tempfile.TemporaryDirectory() as tmp:
        configure(os.path.join(tmp, "project.sqlite3"), fresh_database(TARGET_DB))
        kinds = ["sqlite", "django"] if args.source == "both" else [args.source]
        rows = [run(kind, n, args.batch_size, tmp) for kind in kinds]
    print(f"\nMigration into PostgreSQL, {n:,} checkpoints per source, {STEPS_PER_THREAD} per thread, "
          f"{args.batch_size} threads per transaction")
    print(f"{'source':<22}{'threads':>9}{'checkpoints':>13}{'writes':>10}{'copy s':>9}{'ckpt/s':>9}"
          f"{'verify s':>10}{'ckpt/s':>9}  verdict")
    labels = {"sqlite": "langgraph sqlite file", "django": "DjangoSaver(sqlite)"}
    for r in rows:
        verdict = "zero loss" if r["ok"] else f"{r['differences']} differences"
        print(f"{labels[r['source']]:<22}{r['threads']:>9,}{r['checkpoints']:>13,}{r['writes']:>10,}"
              f"{r['copy_s']:>9.1f}{r['copy_cps']:>9,.0f}{r['verify_s']:>10.1f}{r['verify_cps']:>9,.0f}  {verdict}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
