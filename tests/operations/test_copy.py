"""Migrating into PostgreSQL: this project's SQLite database and a
langgraph-checkpoint-sqlite file, with forks, interrupts, subgraphs, pending writes and
store items; a run killed halfway (a real child process) and resumed; verification;
idempotence; and every migrated thread going on with DjangoSaver on PostgreSQL."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time

import pytest
from django.conf import settings
from django.db import connections
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from checkpoints.copy import Copier, DjangoSource, SqliteSource, verify
from checkpoints.models import Thread
from checkpoints.saver import DjangoSaver, ThreadDeleted
from operations import services
from operations.models import Migration

from . import graphs
from .conftest import manage, pg_url

pytestmark = [
    pytest.mark.django_db(transaction=True, databases="__all__"),
    pytest.mark.skipif("postgres" not in settings.DATABASES, reason="PostgreSQL does not answer"),
]

TABLES = ("lg_thread", "lg_checkpoint", "lg_checkpoint_blob", "lg_checkpoint_write")


def _store():
    try:
        from store.store import DjangoStore
    except ImportError:
        return None
    return DjangoStore


def _counts(alias: str) -> dict[str, int]:
    tables = [t for t in (*TABLES, "lg_store_item") if t in connections[alias].introspection.table_names()]
    with connections[alias].cursor() as cur:
        out = {}
        for table in tables:
            cur.execute(f"SELECT count(*) FROM {table}")
            out[table] = cur.fetchone()[0]
        return out


def _seed_project() -> list[str]:
    saver = DjangoSaver(using="default", hot_tier=None, blob_store=None)
    ids = graphs.seed(graphs.build(saver), "dj", interrupted=3, finished=3)
    store_cls = _store()
    if store_cls is not None:
        store = store_cls(using="default")
        for i in range(5):
            store.put(("users", f"u{i}", "prefs"), "theme", {"dark": i % 2 == 0, "n": i})
        store.put(("docs",), "readme", {"text": "hello", "tags": ["a", "b"]})
    return ids


def _seed_file(path) -> list[str]:
    from langgraph.store.sqlite import SqliteStore

    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        store = SqliteStore(conn)
        store.setup()
        store.put(("lite", "memories"), "m1", {"fact": "likes tea"})
        store.put(("lite",), "profile", {"name": "Ada", "langs": ["en", "fr"]})
        return graphs.seed(graphs.build(SqliteSaver(conn)), "lite", interrupted=2, finished=2)
    finally:
        conn.close()


def _wait_for(predicate, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _sub_checkpoints(alias: str, thread_id: str) -> int:
    with connections[alias].cursor() as cur:
        cur.execute("SELECT count(*) FROM lg_checkpoint WHERE thread_id = %s AND checkpoint_ns <> ''", [thread_id])
        return cur.fetchone()[0]


def test_migration_killed_halfway_resumes_and_loses_nothing(tmp_path):
    project_ids = _seed_project()
    source_file = str(tmp_path / "langgraph.sqlite")
    file_ids = _seed_file(source_file)

    # 1. This project's SQLite database, in a child process killed after two of six threads.
    child = manage("migrate_checkpoints", "--source-kind", "django", "--source", "default", "--target", pg_url(),
                   "--batch-size", "1", "--throttle", "0.4", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        migration = _wait_for(
            lambda: Migration.objects.filter(source_kind="django", threads_done__gte=2).first(),
            timeout=60, what="two threads copied")
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        out, err = child.communicate(timeout=10)
    migration.refresh_from_db()
    assert child.returncode == -signal.SIGKILL
    assert migration.state == Migration.State.RUNNING  # it never finished
    assert 2 <= migration.threads_done < len(project_ids) == migration.threads_total
    copied = set(Thread.objects.using("postgres").values_list("thread_id", flat=True))
    assert copied and copied < set(project_ids)

    resumed = manage("migrate_checkpoints", "--resume", str(migration.pk), stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, out + err
    assert "verification: zero loss" in out
    migration.refresh_from_db()
    assert (migration.state, migration.verified, migration.attempts) == (Migration.State.SUCCEEDED, True, 2)
    report = migration.report
    assert report["ok"] and report["differences_total"] == 0 and report["blocked"] == 0
    assert report["threads"] == len(project_ids)
    assert report["checkpoints"] > 6 * 3 and report["writes"] > 0 and report["blobs"] > 0
    if _store() is not None:
        assert report["store_items"] == 6 == migration.store_items_copied

    # 2. A langgraph-checkpoint-sqlite file, through the service the console's job runs.
    from_file = services.migration_create(user=None, source_kind="sqlite", source=source_file, target="postgres")
    from_file = services.migration_execute(migration_id=from_file.pk)
    assert from_file.state == Migration.State.SUCCEEDED and from_file.verified, from_file.report
    assert from_file.report["threads"] == len(file_ids)
    assert from_file.report["store_items"] == 2 == from_file.store_items_copied
    with connections["postgres"].cursor() as cur:
        cur.execute("SELECT value FROM lg_store_item WHERE namespace = 'lite.memories' AND key = 'm1'")
        assert json.loads(cur.fetchone()[0]) == {"fact": "likes tea"}
    assert {t for t in file_ids} <= set(Thread.objects.using("postgres").values_list("thread_id", flat=True))

    # 3. Idempotent: both again change no row; a dry run finds nothing left to copy.
    before = _counts("postgres")
    for kind, source in (("django", "default"), ("sqlite", source_file)):
        again = services.migration_create(user=None, source_kind=kind, source=source, target="postgres")
        assert services.migration_execute(migration_id=again.pk).verified
    assert _counts("postgres") == before
    dry = services.migration_create(user=None, source_kind="sqlite", source=source_file, target="postgres",
                                    dry_run=True)
    plan = services.migration_execute(migration_id=dry.pk).report["totals"]
    assert plan["threads"] == len(file_ids) and plan["checkpoints"] > 0 and plan["checkpoints_to_copy"] == 0
    assert _counts("postgres") == before

    # 4. Thread rows came along: status, counts, head.
    for tid in project_ids + file_ids:
        row = Thread.objects.using("postgres").get(thread_id=tid)
        assert row.status == "interrupted"
        assert row.checkpoint_count == Thread.objects.using("postgres").filter(thread_id=tid).values_list(
            "checkpoint_count", flat=True)[0] > 0

    # 5. Every migrated thread goes on with DjangoSaver on PostgreSQL, as it would have at the source.
    pg_graph = graphs.build(DjangoSaver(using="postgres", hot_tier=None))
    conn = sqlite3.connect(source_file, check_same_thread=False)
    file_graph = graphs.build(SqliteSaver(conn))
    src_graph = graphs.build(DjangoSaver(using="default", hot_tier=None, blob_store=None))
    try:
        for tid, source_graph in (("dj-int-1", src_graph), ("lite-int-0", file_graph)):
            subs = _sub_checkpoints("postgres", tid)
            on_pg = pg_graph.invoke(Command(resume="approved"), graphs.config(tid))
            at_source = source_graph.invoke(Command(resume="approved"), graphs.config(tid))
            assert on_pg == at_source
            # The subgraph and `side` finished before the interrupt: their pending writes
            # were migrated, so the resume ran only `ask` and `finish`.
            assert on_pg["log"].count("side") == 1 and on_pg["log"][-3:] == ["ask=approved", "side", "finish"]
            assert _sub_checkpoints("postgres", tid) == subs
            assert Thread.objects.using("postgres").get(thread_id=tid).status == "idle"
        # A fork of a migrated thread, before its interrupt, then resumed.
        tid = "lite-done-1"
        before_ask = next(s for s in pg_graph.get_state_history(graphs.config(tid)) if set(s.next) == {"ask", "side", "sub"})
        fork = pg_graph.update_state(before_ask.config, {"log": ["pg-fork"]}, as_node="prepare")
        assert pg_graph.invoke(None, fork).get("__interrupt__")
        final = pg_graph.invoke(Command(resume="after-fork"), graphs.config(tid))
        assert "pg-fork" in final["log"] and final["log"][-3:] == ["ask=after-fork", "side", "finish"]
        assert final["sub_result"] == "sub-done"
        # The whole history is there: the original run, the source's fork and ours.
        history = list(pg_graph.get_state_history(graphs.config(tid)))
        assert sum(1 for s in history if s.metadata.get("source") == "update") == 2
    finally:
        conn.close()


def test_postgres_saver_database_migrates(scratch_pg):
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.store.postgres import PostgresStore

    with PostgresSaver.from_conn_string(scratch_pg) as saver, PostgresStore.from_conn_string(scratch_pg) as store:
        saver.setup()
        store.setup()
        store.put(("pg", "notes"), "n1", {"text": "hello"})
        ids = graphs.seed(graphs.build(saver), "pgs", interrupted=1, finished=1)
    migration = services.migration_create(user=None, source_kind="postgres", source=scratch_pg, target="postgres")
    migration = services.migration_execute(migration_id=migration.pk)
    assert migration.state == Migration.State.SUCCEEDED and migration.verified, migration.report
    assert migration.report["threads"] == 2 and migration.threads_done == 2
    assert migration.report["store_items"] == 1
    out = graphs.build(DjangoSaver(using="postgres", hot_tier=None)).invoke(Command(resume="ok"), graphs.config(ids[0]))
    assert out["log"][-3:] == ["ask=ok", "side", "finish"]


def test_blocked_values_are_not_copied_and_fail_verification(tmp_path):
    path = str(tmp_path / "opaque.sqlite")
    conn = sqlite3.connect(path, check_same_thread=False)
    graphs.build_opaque(SqliteSaver(conn)).invoke({"x": 1}, graphs.config("opaque"))
    graphs.seed(graphs.build(SqliteSaver(conn)), "fine", interrupted=1, finished=0)
    conn.close()
    strict = JsonPlusSerializer(allowed_msgpack_modules=None)
    target = DjangoSaver(using="postgres", hot_tier=None)
    with SqliteSource(path, serde=strict) as source:
        results = Copier(source, target, batch_size=10).run()
        blocked = [t for r in results for t in r.blocked]
        assert [t.thread_id for t in blocked] == ["opaque"]
        assert blocked[0].blocked == ["tests.operations.graphs.Opaque"]
        report = verify(source, target)
    assert not report["ok"]
    assert report["blocked"] > 0 and report["blocked_types"] == ["tests.operations.graphs.Opaque"]
    problems = {(d["thread_id"], d["problem"]) for d in report["differences"]}
    assert ("opaque", "blocked values") in problems and ("opaque", "missing in target") in problems
    assert not any(t == "fine-int-0" for t, _ in problems)
    assert not Thread.objects.using("postgres").filter(thread_id="opaque").exists()


def test_verification_names_the_thread_and_checkpoint_that_differ():
    graphs.seed(graphs.build(DjangoSaver(using="default", hot_tier=None, blob_store=None)), "v", interrupted=1,
                finished=1)
    target = DjangoSaver(using="postgres", hot_tier=None)
    source = DjangoSource("default")
    Copier(source, target).run()
    assert verify(source, target, copy_store=False)["ok"]
    with connections["postgres"].cursor() as cur:
        cur.execute("SELECT checkpoint_id FROM lg_checkpoint WHERE thread_id = 'v-int-0' AND checkpoint_ns = '' "
                    "ORDER BY checkpoint_id LIMIT 1")
        lost = cur.fetchone()[0]
        cur.execute("DELETE FROM lg_checkpoint WHERE thread_id = 'v-int-0' AND checkpoint_id = %s", [lost])
        cur.execute("SELECT checkpoint_id, task_id, idx FROM lg_checkpoint_write WHERE thread_id = 'v-done-0' "
                    "AND channel = 'log' ORDER BY checkpoint_id DESC LIMIT 1")
        changed = cur.fetchone()
        other = DjangoSaver(using="postgres").serde.dumps_typed(["tampered"])
        cur.execute("UPDATE lg_checkpoint_write SET type = %s, blob = %s WHERE thread_id = 'v-done-0' "
                    "AND checkpoint_id = %s AND task_id = %s AND idx = %s", [*other, *changed])
    report = verify(source, target, copy_store=False)
    assert not report["ok"]
    found = {(d["thread_id"], d["checkpoint_id"], d["problem"]) for d in report["differences"]}
    assert ("v-int-0", lost, "missing in target") in found
    assert ("v-done-0", changed[0], "content differs") in found
    assert any(d["problem"] == "content differs" and d["parts"] == ["pending_writes"] for d in report["differences"])
    # Copying again restores the lost checkpoint (the tampered write is not overwritten:
    # insert-or-ignore never replaces what is there).
    Copier(source, target).run()
    again = {(d["thread_id"], d["checkpoint_id"]) for d in verify(source, target, copy_store=False)["differences"]}
    assert ("v-int-0", lost) not in again and ("v-done-0", changed[0]) in again


def test_values_over_the_targets_threshold_go_to_its_blob_storage(tmp_path):
    from checkpoints.tiers.blobs import FileBlobStore

    graphs.seed(graphs.build(DjangoSaver(using="default", hot_tier=None, blob_store=None)), "big", interrupted=1,
                finished=0)
    target = DjangoSaver(using="postgres", hot_tier=None, blob_store=FileBlobStore(tmp_path / "blobs"),
                         blob_threshold=16)
    source = DjangoSource("default")
    Copier(source, target).run()
    with connections["postgres"].cursor() as cur:
        cur.execute("SELECT count(*) FROM lg_checkpoint_blob WHERE blob_key IS NOT NULL AND blob IS NULL")
        offloaded = cur.fetchone()[0]
    assert offloaded > 0 and any((tmp_path / "blobs").rglob("*"))
    assert verify(source, target, copy_store=False)["ok"]


def test_deleted_threads_stay_deleted_after_a_migration():
    """A run still in flight on SQLite when the thread was deleted must not bring it
    back in PostgreSQL after the copy (the tombstone travels, and verification checks)."""
    sqlite_saver = DjangoSaver(using="default", hot_tier=None, blob_store=None)
    graph = graphs.build(sqlite_saver)
    graphs.seed(graph, "tomb", interrupted=1, finished=1)
    late = sqlite_saver.get_tuple(graphs.config("tomb-int-0"))
    sqlite_saver.delete_thread("tomb-int-0")
    target = DjangoSaver(using="postgres", hot_tier=None)
    source = DjangoSource("default")
    Copier(source, target).run()
    assert verify(source, target, copy_store=False)["ok"]
    with pytest.raises(ThreadDeleted):
        target.put_writes(late.config, [("log", "late")], task_id="late")
    assert target.get_tuple(graphs.config("tomb-int-0")) is None
    with connections["postgres"].cursor() as cur:
        cur.execute("DELETE FROM lg_thread_tombstone")
    report = verify(source, target, copy_store=False)
    assert [d["problem"] for d in report["differences"]] == ["tombstone missing in target"]
