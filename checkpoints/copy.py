"""Copying every thread from any LangGraph saver into a `DjangoSaver` database, and
checking that nothing was lost.

Sources
-------
A `Source` is a `BaseCheckpointSaver` to read checkpoints through (`list`, so every
saver's own decoding applies), plus what that API leaves out: the list of threads and
the raw pending-write rows, whose `task_path` and `idx` order the writes and which
`CheckpointTuple.pending_writes` drops. Three are provided: this project's database
(`DjangoSource`, a Django alias), a `langgraph-checkpoint-sqlite` file (`SqliteSource`)
and a `langgraph-checkpoint-postgres` database (`PostgresSource`). Store items come
along: this project's `lg_store_item`, or the `store` table of a LangGraph
`SqliteStore`/`PostgresStore` in the same file or database (without their vectors).

Copying
-------
Threads go in `thread_id` order, `batch_size` threads per target transaction (rows
through `COPY` on PostgreSQL). For each
thread, every checkpoint in every namespace (subgraphs included) is read through the
source saver; the checkpoint body, its metadata, parent link and channel versions are
written as the target's rows, each channel value once per `(namespace, channel,
version)`, values above the target's blob threshold to its blob storage first, and
the write rows byte for byte. Every insert is insert-or-ignore, so a batch that was
cut off by a crash, or a whole second run, changes nothing that is already there: a
run resumes after the last thread whose batch committed (`Copier.run(after=...)`).
Then the source's tombstones (threads deleted there) are copied, so a run still in
flight cannot bring a deleted thread back in the target.

A value the source's serializer refuses (a type outside its allow-list, which LangGraph
then returns as raw data) would be written back degraded; a thread where that happens
is not copied and is reported as blocked.

Verification
------------
`verify` re-reads both sides through their savers and compares, per thread, the
checkpoint, write and blob counts and a SHA-256 of each deserialised checkpoint (values,
versions, metadata, parent, and its pending writes with task ids, paths and indexes),
the store items and the tombstones. The report says zero loss, or which thread and checkpoint differ
and how. Blocked values on either side fail it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.checkpoint.serde.event_hooks import register_serde_event_listener

from . import codec, metrics
from . import sql as q
from .connection import run

logger = logging.getLogger("checkpoints.copy")

ROWS_PER_STATEMENT = 400
MAX_DIFFERENCES = 200
STORE_TABLE = "lg_store_item"
STORE_COLS = "namespace, key, value, created_at, updated_at, expires_at, ttl_minutes, embedding"

# (checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, blob)
WriteRow = tuple[str, str, str, int, str, str, str, bytes]


# -- blocked values -------------------------------------------------------------

_blocked = threading.local()
BLOCKED_KINDS = frozenset({"msgpack_blocked", "msgpack_method_blocked"})


def _on_serde_event(event) -> None:
    counter = getattr(_blocked, "counter", None)
    if counter is not None and event.get("kind") in BLOCKED_KINDS:
        counter.append(f"{event.get('module')}.{event.get('name')}")


register_serde_event_listener(_on_serde_event)


@contextmanager
def blocked_values() -> Iterator[list[str]]:
    """Collect the types LangGraph's serializer refused to load in this thread meanwhile."""
    outer = getattr(_blocked, "counter", None)
    _blocked.counter = found = []
    try:
        yield found
    finally:
        _blocked.counter = outer
        if outer is not None:
            outer.extend(found)


# -- sources ----------------------------------------------------------------------


class Source:
    """What the copier reads: a saver, its threads and its raw write rows."""

    saver: BaseCheckpointSaver
    kind = "saver"

    def thread_ids(self, *, after: str = "", limit: int = 1000) -> list[str]:
        raise NotImplementedError

    def count_threads(self, *, after: str = "") -> int:
        raise NotImplementedError

    def write_rows(self, thread_id: str) -> list[WriteRow]:
        raise NotImplementedError

    def thread_row(self, thread_id: str) -> dict | None:
        """The source's own thread record (status, graph, metadata), when it has one."""
        return None

    def store_rows(self, *, after: tuple[str, str] = ("", ""), limit: int = 500) -> list[tuple]:
        """Store items as `lg_store_item` rows, when the source has a store."""
        return []

    def tombstones(self) -> list[tuple[str, str, Any]]:
        """Deleted threads as `(thread_id, deleted_before, deleted_at)`, when the source
        keeps them: a run still in flight must not bring one back after a migration."""
        return []

    def tuples(self, thread_id: str) -> list[CheckpointTuple]:
        return list(self.saver.list({"configurable": {"thread_id": thread_id}}))

    def iter_threads(self, *, after: str = "", page: int = 1000) -> Iterator[str]:
        while True:
            ids = self.thread_ids(after=after, limit=page)
            yield from ids
            if len(ids) < page:
                return
            after = ids[-1]

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class DjangoSource(Source):
    """This project's database: a Django alias holding `DjangoSaver`'s tables."""

    kind = "django"

    def __init__(self, using: str = "default", *, saver: BaseCheckpointSaver | None = None) -> None:
        from .saver import DjangoSaver

        self.using = using
        # The database is the source of truth: no hot tier in front of a copy.
        self.saver = saver or DjangoSaver(using=using, hot_tier=None)

    def _all(self, sql: str, params: Sequence[Any]) -> list:
        def read(cur):
            cur.execute(sql, params)
            return cur.fetchall()

        return run(self.using, read)

    def thread_ids(self, *, after: str = "", limit: int = 1000) -> list[str]:
        return [t for (t,) in self._all(
            f"SELECT DISTINCT thread_id FROM {q.C} WHERE thread_id > %s ORDER BY thread_id LIMIT %s", [after, limit]
        )]

    def count_threads(self, *, after: str = "") -> int:
        return self._all(f"SELECT count(DISTINCT thread_id) FROM {q.C} WHERE thread_id > %s", [after])[0][0]

    def write_rows(self, thread_id: str) -> list[WriteRow]:
        rows = self._all(
            f"SELECT checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, blob FROM {q.W} "
            "WHERE thread_id = %s", [thread_id],
        )
        return [(*r[:7], bytes(r[7])) for r in rows]

    def thread_row(self, thread_id: str) -> dict | None:
        rows = self._all(
            f"SELECT status, graph_id, {self.saver.dialect.text('metadata')}, created_at, updated_at "
            f"FROM {q.T} WHERE thread_id = %s", [thread_id],
        )
        if not rows:
            return None
        status, graph_id, metadata, created_at, updated_at = rows[0]
        return {"status": status, "graph_id": graph_id, "metadata": codec.load_json(metadata) or {},
                "created_at": _dt(created_at), "updated_at": _dt(updated_at)}

    def tombstones(self) -> list[tuple[str, str, Any]]:
        return [(t, before, _dt(at)) for t, before, at in self._all(
            f"SELECT thread_id, deleted_before, deleted_at FROM {q.TB} ORDER BY thread_id", []
        )]

    def store_rows(self, *, after: tuple[str, str] = ("", ""), limit: int = 500) -> list[tuple]:
        from django.db import connections

        if STORE_TABLE not in connections[self.using].introspection.table_names():
            return []
        text = self.saver.dialect.text("value")
        rows = self._all(
            f"SELECT namespace, key, {text}, created_at, updated_at, expires_at, ttl_minutes, embedding "
            f"FROM {STORE_TABLE} WHERE (namespace > %s) OR (namespace = %s AND key > %s) "
            "ORDER BY namespace, key LIMIT %s",
            [after[0], after[0], after[1], limit],
        )
        return [(ns, key, value, _dt(c), _dt(u), _dt(e), ttl, bytes(emb) if emb is not None else None)
                for ns, key, value, c, u, e, ttl, emb in rows]


class SqliteSource(Source):
    """A `langgraph-checkpoint-sqlite` file, read through `SqliteSaver`."""

    kind = "sqlite"

    def __init__(self, path: str, *, serde=None) -> None:
        from langgraph.checkpoint.sqlite import SqliteSaver

        self.path = path
        self.conn = sqlite3.connect(path, check_same_thread=False)
        self.saver = SqliteSaver(self.conn, serde=serde)
        self.saver.setup()
        self.lock = self.saver.lock

    def _all(self, sql: str, params: Sequence[Any]) -> list:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def thread_ids(self, *, after: str = "", limit: int = 1000) -> list[str]:
        return [t for (t,) in self._all(
            "SELECT DISTINCT thread_id FROM checkpoints WHERE thread_id > ? ORDER BY thread_id LIMIT ?", [after, limit]
        )]

    def count_threads(self, *, after: str = "") -> int:
        return self._all("SELECT count(DISTINCT thread_id) FROM checkpoints WHERE thread_id > ?", [after])[0][0]

    def write_rows(self, thread_id: str) -> list[WriteRow]:
        path = "task_path" if self.saver._has_task_path else "''"
        rows = self._all(
            f"SELECT checkpoint_ns, checkpoint_id, task_id, idx, {path}, channel, type, value FROM writes "
            "WHERE thread_id = ?", [thread_id],
        )
        return [(*r[:7], bytes(r[7])) for r in rows]

    def store_rows(self, *, after: tuple[str, str] = ("", ""), limit: int = 500) -> list[tuple]:
        """Items of a `SqliteStore` in the same file (its `store` table), when there is one."""
        if not self._all("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'store'", []):
            return []
        return _langgraph_store_rows(self._all(
            f"SELECT prefix, key, value, created_at, updated_at, {_optional(self, 'expires_at')}, "
            f"{_optional(self, 'ttl_minutes')} FROM store WHERE (prefix > ?) OR (prefix = ? AND key > ?) "
            "ORDER BY prefix, key LIMIT ?", [after[0], after[0], after[1], limit]))

    def close(self) -> None:
        self.conn.close()


def _optional(source: SqliteSource, column: str) -> str:
    """A column older `SqliteStore` tables lack, or NULL."""
    columns = {row[1] for row in source._all("PRAGMA table_info(store)", [])}
    return column if column in columns else "NULL"


def _langgraph_store_rows(rows: list) -> list[tuple]:
    """LangGraph stores' rows as `lg_store_item` rows: the same namespace text (labels
    joined by '.'); vectors are not carried (they belong to the source's embedding
    configuration: re-index after the move)."""
    return [(prefix, key, bytes(value).decode() if isinstance(value, (bytes, memoryview)) else value,
             _dt(c) or codec.now(), _dt(u) or codec.now(), _dt(e),
             float(ttl) if ttl is not None else None, None)
            for prefix, key, value, c, u, e, ttl in rows]


class PostgresSource(Source):
    """A `langgraph-checkpoint-postgres` database, read through `PostgresSaver`."""

    kind = "postgres"

    def __init__(self, url: str, *, serde=None) -> None:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row

        self.conn = psycopg.connect(url, autocommit=True, prepare_threshold=None, row_factory=dict_row)
        self.saver = PostgresSaver(self.conn, serde=serde)

    def _all(self, sql: str, params: Sequence[Any]) -> list:
        with self.saver.lock, self.conn.cursor() as cur:
            cur.execute(sql, params)
            return [tuple(r.values()) for r in cur.fetchall()]

    def thread_ids(self, *, after: str = "", limit: int = 1000) -> list[str]:
        return [t for (t,) in self._all(
            "SELECT DISTINCT thread_id FROM checkpoints WHERE thread_id > %s ORDER BY thread_id LIMIT %s",
            [after, limit],
        )]

    def count_threads(self, *, after: str = "") -> int:
        return self._all("SELECT count(DISTINCT thread_id) FROM checkpoints WHERE thread_id > %s", [after])[0][0]

    def write_rows(self, thread_id: str) -> list[WriteRow]:
        rows = self._all(
            "SELECT checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, blob "
            "FROM checkpoint_writes WHERE thread_id = %s", [thread_id],
        )
        return [(*r[:7], bytes(r[7])) for r in rows]

    def store_rows(self, *, after: tuple[str, str] = ("", ""), limit: int = 500) -> list[tuple]:
        """Items of a `PostgresStore` in the same database (its `store` table), when there is one."""
        if not self._all("SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'store'", []):
            return []
        return _langgraph_store_rows(self._all(
            "SELECT prefix, key, value::text, created_at, updated_at, expires_at, ttl_minutes FROM store "
            "WHERE (prefix > %s) OR (prefix = %s AND key > %s) ORDER BY prefix, key LIMIT %s",
            [after[0], after[0], after[1], limit]))

    def close(self) -> None:
        self.conn.close()


def source_open(kind: str, location: str) -> Source:
    """A source by kind (`django`, `sqlite`, `postgres`) and alias, path or URL."""
    if kind == "django":
        return DjangoSource(location)
    if kind == "sqlite":
        return SqliteSource(location)
    if kind == "postgres":
        return PostgresSource(location)
    raise ValueError(f"Unknown source kind {kind!r}: use django, sqlite or postgres")


def _dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


# -- copying ----------------------------------------------------------------------


@dataclass
class ThreadResult:
    thread_id: str
    checkpoints: int = 0
    writes: int = 0
    blobs: int = 0
    blocked: list[str] = field(default_factory=list)


@dataclass
class BatchResult:
    threads: list[ThreadResult]
    cursor: str
    seconds: float

    @property
    def checkpoints(self) -> int:
        return sum(t.checkpoints for t in self.threads if not t.blocked)

    @property
    def writes(self) -> int:
        return sum(t.writes for t in self.threads if not t.blocked)

    @property
    def blobs(self) -> int:
        return sum(t.blobs for t in self.threads if not t.blocked)

    @property
    def blocked(self) -> list[ThreadResult]:
        return [t for t in self.threads if t.blocked]


@dataclass
class _Rows:
    """A thread's target rows, ready for insert-or-ignore."""

    checkpoints: list[list[Any]] = field(default_factory=list)
    blobs: list[list[Any]] = field(default_factory=list)
    writes: list[list[Any]] = field(default_factory=list)
    thread: list[Any] | None = None


def _meta_json(metadata: Mapping[str, Any]) -> str:
    return codec.json_text(dict(metadata or {}))


def _status(head: CheckpointTuple | None, write_channels: set[str]) -> str:
    from langgraph.checkpoint.serde.types import ERROR, INTERRUPT, RESUME

    if ERROR in write_channels:
        return "error"
    if INTERRUPT in write_channels and RESUME not in write_channels:
        return "interrupted"
    return codec.checkpoint_status(head.checkpoint) if head is not None else "idle"


class Copier:
    """Copy threads from a `Source` into a `DjangoSaver`'s database.

    Args:
        source: where to read.
        target: the `DjangoSaver` to write into (its alias, serializer, blob storage
            and threshold are used; its hot tier is invalidated for copied threads).
        batch_size: threads per target transaction.
    """

    def __init__(self, source: Source, target, *, batch_size: int = 50) -> None:
        self.source = source
        self.target = target
        self.batch_size = max(1, int(batch_size))

    # -- reading a thread into rows (no target I/O except blob storage) --

    def _thread_rows(self, thread_id: str) -> tuple[_Rows, ThreadResult]:
        result = ThreadResult(thread_id)
        with blocked_values() as blocked:
            tuples = self.source.tuples(thread_id)
        writes = self.source.write_rows(thread_id)
        if blocked:
            result.blocked = sorted(set(blocked))
            return _Rows(), result
        target = self.target
        rows = _Rows()
        seen: set[tuple[str, str, str]] = set()
        json_meta: dict[str, Any] = {}
        graph_id = ""
        first_ts = last_ts = None
        head: CheckpointTuple | None = None
        for tup in sorted(tuples, key=lambda t: (t.config["configurable"]["checkpoint_ns"],
                                                  t.config["configurable"]["checkpoint_id"])):
            conf = tup.config["configurable"]
            ns, checkpoint_id = conf.get("checkpoint_ns") or "", conf["checkpoint_id"]
            checkpoint = tup.checkpoint
            versions = checkpoint.get("channel_versions") or {}
            values = checkpoint.get("channel_values") or {}
            new_versions = {}
            for channel in values:
                if channel in versions and (ns, channel, str(versions[channel])) not in seen:
                    seen.add((ns, channel, str(versions[channel])))
                    new_versions[channel] = versions[channel]
            body, blobs = codec.split_checkpoint(target.serde, checkpoint, new_versions)
            meta = dict(tup.metadata or {})
            meta_json = _meta_json(meta)
            versions_json = codec.dump_versions(versions)
            size = len(body[1]) + len(versions_json) + len(meta_json)
            parent = (tup.parent_config or {}).get("configurable", {}).get("checkpoint_id")
            ts = _dt(checkpoint.get("ts")) or codec.now()
            run_id = meta.get("run_id")
            rows.checkpoints.append([
                thread_id, ns, checkpoint_id, parent, str(run_id) if run_id else None,
                body[0], body[1], versions_json, meta_json, size, ts,
            ])
            for channel, (type_, data) in blobs.items():
                key = None
                if target.blob_store is not None and len(data) >= target.blob_threshold:
                    # Objects first: a row never points at an object that is not there.
                    key = target.blob_store.put(data)
                rows.blobs.append([thread_id, ns, channel, str(new_versions[channel]), type_,
                                   None if key else data, key])
            if ns == "":
                json_meta.update(codec.thread_metadata(meta))
                graph_id = str(meta.get("graph_id") or graph_id)
                head = tup if head is None or checkpoint_id > head.config["configurable"]["checkpoint_id"] else head
            first_ts = ts if first_ts is None or ts < first_ts else first_ts
            last_ts = ts if last_ts is None or ts > last_ts else last_ts
        for ns, checkpoint_id, task_id, idx, task_path, channel, type_, blob in writes:
            rows.writes.append([thread_id, ns, checkpoint_id, task_id, idx, task_path or "", channel, type_, blob])
        head_id = head.config["configurable"]["checkpoint_id"] if head is not None else ""
        own = self.source.thread_row(thread_id)
        if own is not None:
            status, graph_id, json_meta = own["status"], own["graph_id"], own["metadata"]
            first_ts, last_ts = own["created_at"] or first_ts, own["updated_at"] or last_ts
        else:
            head_channels = {w[5] for w in writes if w[0] == "" and w[1] == head_id}
            status = _status(head, head_channels)
        now = codec.now()
        rows.thread = [thread_id, status, graph_id, codec.json_text(json_meta), head_id,
                       0, 0, first_ts or now, last_ts or now]
        result.checkpoints, result.writes, result.blobs = len(rows.checkpoints), len(rows.writes), len(rows.blobs)
        return rows, result

    # -- writing a batch --

    def _statements(self, all_rows: list[_Rows]) -> list[tuple[str, list[list[Any]]]]:
        """`(one-row statement, rows)` pairs for `executemany` (SQLite; PostgreSQL takes
        the rows through `COPY`, see `_copy_in`). Multi-row VALUES statements were 2x
        slower still: psycopg re-parses a long query on every call, caching only short ones."""
        dialect = self.target.dialect
        jp = dialect.json_param
        blobs = [r for rows in all_rows for r in rows.blobs]
        checkpoints = [r for rows in all_rows for r in rows.checkpoints]
        writes = [r for rows in all_rows for r in rows.writes]
        # Blob rows before the checkpoint rows that name their versions, as `put` does.
        out = [
            (dialect.insert_blobs_sql(1), blobs),
            (f"INSERT INTO {q.C} ({q.CHECKPOINT_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s, {jp}, {jp}, %s, %s) "
             "ON CONFLICT DO NOTHING", checkpoints),
            (dialect.insert_writes_sql(1, replace=False), writes),
        ]
        return [(sql, rows) for sql, rows in out if rows] + self._thread_statements(all_rows)

    def _thread_statements(self, all_rows: list[_Rows]) -> list[tuple[str, list[list[Any]]]]:
        jp = self.target.dialect.json_param
        threads = [rows.thread for rows in all_rows if rows.thread is not None and rows.checkpoints]
        if not threads:
            return []
        return [
            (f"INSERT INTO {q.T} ({q.THREAD_COLS}) VALUES (%s, %s, %s, {jp}, %s, %s, %s, %s, %s) "
             "ON CONFLICT (thread_id) DO UPDATE SET status = excluded.status, graph_id = excluded.graph_id, "
             "metadata = excluded.metadata, created_at = excluded.created_at, updated_at = excluded.updated_at",
             threads),
            # Counts, head and size from the rows now there.
            (q.REFRESH_THREAD_SQL, [[t[0]] for t in threads]),
        ]

    def _tables(self, all_rows: list[_Rows]) -> list[tuple[str, str, list[list[Any]]]]:
        return [
            (table, cols, rows) for table, cols, rows in (
                (q.B, q.BLOB_COLS, [r for rows in all_rows for r in rows.blobs]),
                (q.C, q.CHECKPOINT_COLS, [r for rows in all_rows for r in rows.checkpoints]),
                (q.W, q.WRITE_COLS, [r for rows in all_rows for r in rows.writes]),
            ) if rows
        ]

    @metrics.timed("copy.batch")
    def copy_batch(self, thread_ids: Sequence[str]) -> BatchResult:
        """Copy these threads in one target transaction (insert-or-ignore throughout)."""
        start = time.perf_counter()
        prepared = [self._thread_rows(t) for t in thread_ids]
        all_rows = [rows for rows, _ in prepared]

        if self.target.dialect.vendor == "postgresql":
            tables, statements = self._tables(all_rows), self._thread_statements(all_rows)

            def write(cur):
                for table, cols, rows in tables:
                    _copy_in(cur, table, cols, rows)
                for sql, rows in statements:
                    cur.executemany(sql, rows)
        else:
            statements = self._statements(all_rows)

            def write(cur):
                for sql, rows in statements:
                    cur.executemany(sql, rows)

        if any(rows.checkpoints or rows.writes for rows in all_rows):
            run(self.target.using, write, atomic=True)
        hot = getattr(self.target, "hot_tier", None)
        if hot is not None:
            for thread_id in thread_ids:
                hot.invalidate(thread_id)
        return BatchResult([r for _, r in prepared], thread_ids[-1] if thread_ids else "",
                           time.perf_counter() - start)

    def run(self, *, after: str = "", on_batch: Callable[[BatchResult], None] | None = None) -> list[BatchResult]:
        """Copy every thread after `after`, one batch at a time; `on_batch` is called
        after each batch has committed (record its cursor there to resume later)."""
        results: list[BatchResult] = []
        batch: list[str] = []
        for thread_id in self.source.iter_threads(after=after):
            batch.append(thread_id)
            if len(batch) >= self.batch_size:
                results.append(self._commit(batch, on_batch))
                batch = []
        if batch:
            results.append(self._commit(batch, on_batch))
        self.copy_tombstones()
        return results

    def copy_tombstones(self) -> int:
        """Copy the source's tombstones (a boundary only grows, so this is idempotent)."""
        rows = self.source.tombstones()
        if rows:
            run(self.target.using, lambda cur: cur.executemany(q.TOMBSTONE_SQL, [list(r) for r in rows]), atomic=True)
        return len(rows)

    def _commit(self, batch: list[str], on_batch) -> BatchResult:
        result = self.copy_batch(batch)
        if on_batch is not None:
            on_batch(result)
        return result

    def copy_store(self, *, on_chunk: Callable[[int], None] | None = None) -> int:
        """Copy the source's store items (insert-or-ignore by namespace and key)."""
        from django.db import connections

        if STORE_TABLE not in connections[self.target.using].introspection.table_names():
            return 0
        jp = self.target.dialect.json_param
        one = f"(%s, %s, {jp}, %s, %s, %s, %s, %s)"
        copied, after = 0, ("", "")
        while rows := self.source.store_rows(after=after):
            sql = f"INSERT INTO {STORE_TABLE} ({STORE_COLS}) VALUES {', '.join([one] * len(rows))} ON CONFLICT DO NOTHING"
            params = [x for row in rows for x in row]
            run(self.target.using, lambda cur: cur.execute(sql, params), atomic=True)
            copied += len(rows)
            after = (rows[-1][0], rows[-1][1])
            if on_chunk is not None:
                on_chunk(copied)
        return copied

    # -- dry run --

    def plan(self, *, after: str = "", on_thread: Callable[[int], None] | None = None) -> dict:
        """What a copy would do: per source totals, what the target already has, and
        the threads whose values the serializer refuses. Writes nothing."""
        totals = {"threads": 0, "checkpoints": 0, "writes": 0, "blobs": 0, "checkpoints_present": 0,
                  "store_items": 0}
        blocked: list[dict] = []
        for thread_id in self.source.iter_threads(after=after):
            with blocked_values() as refused:
                tuples = self.source.tuples(thread_id)
            totals["threads"] += 1
            totals["checkpoints"] += len(tuples)
            totals["writes"] += len(self.source.write_rows(thread_id))
            totals["blobs"] += len(_blob_keys(tuples))
            present = _target_ids(self.target, thread_id)
            totals["checkpoints_present"] += sum(
                1 for t in tuples
                if (t.config["configurable"].get("checkpoint_ns") or "", t.config["configurable"]["checkpoint_id"])
                in present
            )
            if refused:
                blocked.append({"thread_id": thread_id, "types": sorted(set(refused))})
            if on_thread is not None:
                on_thread(totals["threads"])
        after_key = ("", "")
        while rows := self.source.store_rows(after=after_key):
            totals["store_items"] += len(rows)
            after_key = (rows[-1][0], rows[-1][1])
        totals["checkpoints_to_copy"] = totals["checkpoints"] - totals["checkpoints_present"]
        return {"dry_run": True, "totals": totals, "blocked": blocked}


def _copy_in(cur, table: str, cols: str, rows: list[list[Any]]) -> None:
    """Insert-or-ignore `rows` through `COPY` into a temporary table dropped at commit
    (PostgreSQL): about 5x the rows per second of a pipelined `executemany`."""
    raw = cur.cursor  # psycopg's cursor under Django's wrapper
    tmp = f"_lg_copy_{table}"
    raw.execute(f"CREATE TEMP TABLE {tmp} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
    with raw.copy(f"COPY {tmp} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    raw.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {tmp} ON CONFLICT DO NOTHING")
    raw.execute(f"DROP TABLE {tmp}")


def _target_ids(target, thread_id: str) -> set[tuple[str, str]]:
    def read(cur):
        cur.execute(f"SELECT checkpoint_ns, checkpoint_id FROM {q.C} WHERE thread_id = %s", [thread_id])
        return cur.fetchall()

    return {(ns, cid) for ns, cid in run(target.using, read)}


def _blob_keys(tuples: Sequence[CheckpointTuple]) -> set[tuple[str, str, str]]:
    keys = set()
    for tup in tuples:
        ns = tup.config["configurable"].get("checkpoint_ns") or ""
        versions = tup.checkpoint.get("channel_versions") or {}
        for channel in tup.checkpoint.get("channel_values") or {}:
            if channel in versions:
                keys.add((ns, channel, str(versions[channel])))
    return keys


# -- verification -----------------------------------------------------------------


def canonical(value: Any) -> Any:
    """A form of a deserialised value whose serialisation does not depend on the
    order keys came back in (JSONB sorts them, SQLite keeps them)."""
    if isinstance(value, Mapping):
        return ["__map__", sorted(([repr(k), canonical(v)] for k, v in value.items()), key=lambda kv: kv[0])]
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return ["__set__", sorted((canonical(v) for v in value), key=repr)]
    return value


def _digest(serde, value: Any) -> str:
    return hashlib.sha256(serde.dumps_typed(canonical(value))[1]).hexdigest()


def checkpoint_digest(serde, tup: CheckpointTuple, writes: Sequence[tuple]) -> str:
    """SHA-256 of a deserialised checkpoint with its metadata, parent and pending
    writes `(task_id, idx, task_path, channel, value)`."""
    parent = (tup.parent_config or {}).get("configurable", {}).get("checkpoint_id")
    return _digest(serde, {
        "checkpoint": tup.checkpoint,
        "metadata": tup.metadata or {},
        "parent": parent,
        "writes": sorted(writes, key=lambda w: (w[2], w[0], w[1])),
    })


@dataclass
class _Side:
    tuples: dict[tuple[str, str], CheckpointTuple]
    writes: dict[tuple[str, str], list[tuple]]
    n_writes: int
    blobs: int
    blocked: list[str]


def _read_side(saver, write_rows: list[WriteRow], tuples: list[CheckpointTuple], blocked: list[str]) -> _Side:
    writes: dict[tuple[str, str], list[tuple]] = {}
    with blocked_values() as refused:
        for ns, cid, task_id, idx, task_path, channel, type_, blob in write_rows:
            writes.setdefault((ns, cid), []).append(
                (task_id, idx, task_path or "", channel, saver.serde.loads_typed((type_, bytes(blob))))
            )
    return _Side(
        tuples={(t.config["configurable"].get("checkpoint_ns") or "", t.config["configurable"]["checkpoint_id"]): t
                for t in tuples},
        writes=writes, n_writes=len(write_rows), blobs=len(_blob_keys(tuples)), blocked=blocked + refused,
    )


def verify(source: Source, target, *, copy_store: bool = True,
           on_thread: Callable[[int], None] | None = None) -> dict:
    """Compare every thread of `source` with the target `DjangoSaver`.

    Returns:
        `{"ok", "threads", "checkpoints", "writes", "blobs", "store_items", "blocked",
        "differences": [{"thread_id", "checkpoint_ns", "checkpoint_id", "problem", ...}],
        "differences_total"}`; `ok` only with no difference and no blocked value.
    """
    target_source = DjangoSource(target.using, saver=_unhot(target))
    report: dict[str, Any] = {"threads": 0, "checkpoints": 0, "writes": 0, "blobs": 0, "blocked": 0,
                              "blocked_types": [], "store_items": 0, "differences": [], "differences_total": 0}
    differences: list[dict] = report["differences"]

    def differ(**item):
        report["differences_total"] += 1
        if len(differences) < MAX_DIFFERENCES:
            differences.append(item)

    blocked_types: set[str] = set()
    for thread_id in source.iter_threads():
        report["threads"] += 1
        with blocked_values() as refused_src:
            src_tuples = source.tuples(thread_id)
        src = _read_side(source.saver, source.write_rows(thread_id), src_tuples, refused_src)
        with blocked_values() as refused_tgt:
            tgt_tuples = target_source.tuples(thread_id)
        tgt = _read_side(target_source.saver, target_source.write_rows(thread_id), tgt_tuples, refused_tgt)
        report["checkpoints"] += len(src.tuples)
        report["writes"] += src.n_writes
        report["blobs"] += src.blobs
        if src.blocked or tgt.blocked:
            report["blocked"] += len(src.blocked) + len(tgt.blocked)
            blocked_types |= set(src.blocked) | set(tgt.blocked)
            differ(thread_id=thread_id, checkpoint_ns="", checkpoint_id="", problem="blocked values",
                   types=sorted(set(src.blocked) | set(tgt.blocked)))
        for name, a, b in (("checkpoints", len(src.tuples), len(tgt.tuples)),
                           ("writes", src.n_writes, tgt.n_writes), ("blobs", src.blobs, tgt.blobs)):
            if a != b:
                differ(thread_id=thread_id, checkpoint_ns="", checkpoint_id="", problem=f"{name} count",
                       source=a, target=b)
        for key, tup in src.tuples.items():
            other = tgt.tuples.get(key)
            if other is None:
                differ(thread_id=thread_id, checkpoint_ns=key[0], checkpoint_id=key[1], problem="missing in target")
                continue
            a = checkpoint_digest(source.saver.serde, tup, src.writes.get(key, []))
            b = checkpoint_digest(source.saver.serde, other, tgt.writes.get(key, []))
            if a != b:
                differ(thread_id=thread_id, checkpoint_ns=key[0], checkpoint_id=key[1], problem="content differs",
                       parts=_differing_parts(source.saver.serde, tup, other, src.writes.get(key, []),
                                              tgt.writes.get(key, [])))
        for key in tgt.tuples.keys() - src.tuples.keys():
            differ(thread_id=thread_id, checkpoint_ns=key[0], checkpoint_id=key[1], problem="only in target")
        if on_thread is not None:
            on_thread(report["threads"])
    if copy_store:
        _verify_store(source, target_source, report, differ)
    target_tombstones = {t: before for t, before, _ in target_source.tombstones()}
    for thread_id, before, _ in source.tombstones():
        if target_tombstones.get(thread_id, "") < before:
            differ(thread_id=thread_id, checkpoint_ns="", checkpoint_id="", problem="tombstone missing in target",
                   deleted_before=before)
    report["blocked_types"] = sorted(blocked_types)
    report["ok"] = report["differences_total"] == 0 and report["blocked"] == 0
    return report


def _differing_parts(serde, a: CheckpointTuple, b: CheckpointTuple, wa, wb) -> list[str]:
    parts = []
    for name, x, y in (
        ("channel_values", a.checkpoint.get("channel_values"), b.checkpoint.get("channel_values")),
        ("channel_versions", a.checkpoint.get("channel_versions"), b.checkpoint.get("channel_versions")),
        ("versions_seen", a.checkpoint.get("versions_seen"), b.checkpoint.get("versions_seen")),
        ("metadata", a.metadata, b.metadata),
        ("parent", a.parent_config, b.parent_config),
        ("pending_writes", sorted(wa, key=lambda w: (w[2], w[0], w[1])), sorted(wb, key=lambda w: (w[2], w[0], w[1]))),
    ):
        if _digest(serde, x) != _digest(serde, y):
            parts.append(name)
    return parts or ["checkpoint"]


def _verify_store(source: Source, target: DjangoSource, report: dict, differ) -> None:
    def items(src: Source) -> dict[tuple[str, str], str]:
        out, after = {}, ("", "")
        while rows := src.store_rows(after=after):
            for ns, key, value, *_ in rows:
                out[(ns, key)] = hashlib.sha256(
                    json.dumps(canonical(codec.load_json(value)), sort_keys=True).encode()
                ).hexdigest()
            after = (rows[-1][0], rows[-1][1])
        return out

    src, tgt = items(source), items(target)
    report["store_items"] = len(src)
    for key, digest in src.items():
        if key not in tgt:
            differ(thread_id="", checkpoint_ns="", checkpoint_id="", problem="store item missing in target",
                   namespace=key[0], key=key[1])
        elif tgt[key] != digest:
            differ(thread_id="", checkpoint_ns="", checkpoint_id="", problem="store item differs",
                   namespace=key[0], key=key[1])


def _unhot(target):
    """The target saver without its hot tier: verification reads the database."""
    from .saver import DjangoSaver

    return DjangoSaver(using=target.using, serde=target.serde, hot_tier=None, blob_store=target.blob_store,
                       blob_threshold=target.blob_threshold)
