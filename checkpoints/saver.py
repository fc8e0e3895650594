"""`DjangoSaver`: a LangGraph checkpoint saver over Django's database connections.

Order of operations
-------------------
`put`: serialise everything first (an unserialisable value fails before any I/O);
check the size guard; upload values at or above the blob threshold to blob storage
(content-addressed; if storage fails, the put fails with `BlobStoreError` and no row
is written); then in one transaction write the changed channels' blob rows, the
checkpoint row and the thread row (one prepared statement on PostgreSQL,
`BEGIN IMMEDIATE` on SQLite); then write through to the Redis hot tier. If the database fails, nothing is
written and the error propagates; if Redis fails, the put still succeeds (the hot tier
counts and logs it, see `checkpoints.tiers.hot`).

`put_writes`: serialise, then in one transaction insert the writes (special writes
such as errors and interrupts replace, ordinary ones never duplicate; only special
ones update the thread row's status and size), then write through to the hot tier.

Both open with a gate: a write for a checkpoint created before its thread was deleted
writes nothing (`ThreadDeleted`). On PostgreSQL the gate also locks the thread row (a
put) or the checkpoint's row (ordinary writes), and `delete_thread` locks the thread
rows and deletes checkpoints before writes, so a write already in flight is waited
for and deleted with the rest (`PostgresDialect.live`).

`get_tuple`: the hot tier first (one Redis round trip); on a miss or a Redis error,
one statement returns the checkpoint with its blobs and pending writes, and the result
is cached unless the thread was invalidated meanwhile. Offloaded values are read from
blob storage and checked against their digest before deserialising; a missing or
tampered object is a `BlobStoreError`. A missing checkpoint is `None`. `list` pages
through the same statement (database only).

The a-methods on PostgreSQL send the same statements over asyncio connections
(`checkpoints.aconnection`) and run the hot tier on its asyncio client; on SQLite they
run the sync methods on worker threads. A sync call from a thread without a Django
connection (LangGraph's workers) borrows one from the alias's pool for the call.

A dropped PostgreSQL connection is retried (on each dead pooled connection in turn, within
a deadline) for these idempotent operations.
Every stored byte goes through `self.serde` (`dumps_typed`/`loads_typed`), so
`with_allowlist` and `LANGGRAPH_STRICT_MSGPACK` apply; metadata is plain JSON.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from concurrent.futures import ThreadPoolExecutor

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.serde.base import SerializerProtocol

from . import aconnection, codec, metrics
from . import sql as q
from .connection import dialect_for, run
from .tiers import configured_blob_store, configured_hot_tier, setting
from .tiers.blobs import BlobStore, BlobStoreError, digest_of

logger = logging.getLogger("checkpoints.saver")
_DEFAULT: Any = object()
_warned_threads: set[tuple[str, str]] = set()

# Where the a-methods cannot run on asyncio connections (SQLite, the hot tier), they run
# the sync ones on these threads, not on the event loop's default
# executor (cpu + 4 threads: 6 on 2 cores), which capped 16 concurrent tasks below the
# connection pool; one thread per pooled connection lets them all work at once.
_executor: ThreadPoolExecutor | None = None


def _forget_executor() -> None:
    # A forked child (an RQ work horse) inherits the executor but not its threads.
    global _executor
    _executor = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_executor)


def _threaded(fn):
    """`fn` as a coroutine function running on the saver's threads, in a copy of the
    caller's context. A plain `run_in_executor`: asgiref's `sync_to_async` costs ~50 µs
    more per call for thread-sensitivity bookkeeping the saver does not need."""

    async def call(*args: Any, **kwargs: Any) -> Any:
        global _executor
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=int(setting("CHECKPOINTS_ASYNC_THREADS", 16)), thread_name_prefix="djangosaver"
            )
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(
            _executor, functools.partial(context.run, fn, *args, **kwargs)
        )

    return call


class ThreadDeleted(RuntimeError):
    """A put or write for a checkpoint created before its thread was deleted: a run
    still in flight must not bring the thread back (langgraph#7206)."""

    def __init__(self, thread_id: str, checkpoint_id: str) -> None:
        super().__init__(f"Thread {thread_id!r} was deleted after checkpoint {checkpoint_id} was created")


@dataclass
class _Write:
    """A put or put_writes, serialised and ready to commit: the objects for blob
    storage, then one statement returning `ok` (PostgreSQL) or `steps` run in one
    transaction; `hot` and then `done` run after the commit."""

    thread_id: str
    checkpoint_id: str
    done: Callable[[], Any]
    sql: str | None = None
    params: list = field(default_factory=list)
    steps: Callable[[Any], bool] | None = None
    uploads: list[bytes] = field(default_factory=list)  # values for blob storage, put first
    hot: Any = None  # the hot tier's write-through (`HotTier` steps), run after the commit


class CheckpointTooLarge(ValueError):
    """A checkpoint above `CHECKPOINTS_MAX_CHECKPOINT_BYTES` under the `reject` policy."""

LIST_PAGE_SIZE = 200
PRUNE_STRATEGIES = ("keep_latest", "delete")


def _fetchall(cur, sql: str, params: Sequence[Any]) -> list:
    cur.execute(sql, params)
    return cur.fetchall()


def _in(n: int) -> str:
    return q.placeholders(n)


def _offloaded(row: tuple, data_i: int = 6, key_i: int = 7) -> bool:
    """A blob row whose value lives in blob storage."""
    return row[0] == "b" and row[data_i] is None and bool(row[key_i])


def _deleted(cur, thread_id: str, checkpoint_id: str) -> bool:
    cur.execute(q.DEAD_SQL, [thread_id, checkpoint_id])
    return cur.fetchone() is not None


def _delete_threads(cur, dialect: q.Dialect, thread_ids: Sequence[str]) -> set[str]:
    """Delete every row of the threads and leave a tombstone for each; returns the
    blob storage keys the threads referenced.

    A write already past its gate holds a lock on its thread's row or its checkpoint's
    row until it commits: the thread rows are locked first and the checkpoints deleted
    before the writes, so the delete waits for it and deletes what it wrote. The
    tombstone's boundary is the later of now (as a checkpoint id) and the newest
    checkpoint stored, so a writer whose clock runs ahead is refused too."""
    keys: set[str] = set()
    if dialect.lock_threads_sql:
        _fetchall(cur, dialect.lock_threads_sql.format(in_=_in(len(thread_ids))), list(thread_ids))
    deleted_at = codec.now()
    for thread_id in thread_ids:
        keys |= {k for (k,) in _fetchall(cur, q.SELECT_THREAD_BLOB_KEYS_SQL, [thread_id])}
        newest = _fetchall(cur, q.SELECT_MAX_CHECKPOINT_SQL, [thread_id])[0][0] or ""
        cur.execute(q.TOMBSTONE_SQL, [thread_id, max(str(uuid6()), newest), deleted_at])
        for statement in q.DELETE_THREAD_SQL:
            cur.execute(statement, [thread_id])
    return keys


class DjangoSaver(BaseCheckpointSaver[str]):
    """A checkpoint saver that stores checkpoints in this project's Django models.

    Args:
        using: the Django database alias (SQLite or PostgreSQL).
        serde: the serializer; LangGraph's `JsonPlusSerializer` by default.
        prepared_statements: prepare the hot statements on PostgreSQL (default: the
            `CHECKPOINTS_PREPARED_STATEMENTS` setting, on); off behind a PgBouncer in
            transaction mode older than 1.21.

    Example:
        ```python
        saver = DjangoSaver()  # inside a Django project
        graph = builder.compile(checkpointer=saver)
        ```
    """

    def __init__(
        self,
        using: str = "default",
        *,
        serde: SerializerProtocol | None = None,
        hot_tier: Any = _DEFAULT,
        blob_store: BlobStore | None = _DEFAULT,
        blob_threshold: int | None = None,
        max_checkpoint_bytes: int | None = None,
        size_policy: str | None = None,
        prepared_statements: bool | None = None,
    ) -> None:
        super().__init__(serde=serde)
        self.using = using
        self._dialect_cache: q.Dialect | None = None
        self.hot_tier = configured_hot_tier() if hot_tier is _DEFAULT else hot_tier
        self.blob_store = configured_blob_store() if blob_store is _DEFAULT else blob_store
        self.blob_threshold = (
            int(setting("CHECKPOINTS_BLOB_THRESHOLD", 64 * 1024)) if blob_threshold is None else blob_threshold
        )
        self.max_checkpoint_bytes = max_checkpoint_bytes or int(
            setting("CHECKPOINTS_MAX_CHECKPOINT_BYTES", 10_000)
        )
        self.size_policy = size_policy or setting("CHECKPOINTS_SIZE_POLICY", "warn")
        if self.size_policy not in ("warn", "reject"):
            raise ValueError(f"size_policy must be 'warn' or 'reject', not {self.size_policy!r}")
        self.blob_delete_grace = float(setting("CHECKPOINTS_BLOB_DELETE_GRACE", 60))
        self.prepared_statements = (
            bool(setting("CHECKPOINTS_PREPARED_STATEMENTS", True)) if prepared_statements is None else prepared_statements
        )

    # -- set-up -----------------------------------------------------------------

    @classmethod
    def from_conn_string(cls, conn_string: str, **kwargs: Any) -> DjangoSaver:
        """Create a saver for a database URL, configuring Django if the app has none.

        Works as `saver = DjangoSaver.from_conn_string(url)` and as a (async) context
        manager. Applies the saver's migrations, as `PostgresSaver.setup()` does.

        Args:
            conn_string: `sqlite:///path.db` or `postgresql://user@host/db`.
        """
        from .standalone import configure_alias

        return cls(configure_alias(conn_string), **kwargs)

    def setup(self) -> None:
        """Apply the saver's migrations to its database (idempotent)."""
        from django.core.management import call_command

        call_command("migrate", "checkpoints", database=self.using, verbosity=0)

    def __enter__(self) -> DjangoSaver:
        return self

    def __exit__(self, *exc: Any) -> None:
        from django.db import connections

        connections[self.using].close()

    async def __aenter__(self) -> DjangoSaver:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        aconnection.close_loop_pool(self.using)
        if self.hot_tier is not None:
            await self.hot_tier.aclose()
        await _threaded(self.__exit__)(*exc)

    @property
    def dialect(self) -> q.Dialect:
        if self._dialect_cache is None:
            self._dialect_cache = dialect_for(self.using, q.DIALECTS, "DjangoSaver")
        return self._dialect_cache

    def _run(self, fn, *, atomic: bool = False, prepared: bool = False):
        # On SQLite `prepared` only marks a hot statement; the setting is PostgreSQL's.
        prepared = prepared and (self.prepared_statements or self.dialect.vendor == "sqlite")
        return run(self.using, fn, atomic=atomic, prepared=prepared)

    def _check_size(
        self, thread_id: str, checkpoint_id: str, row_size: int, inline: dict[str, tuple[str, bytes]]
    ) -> None:
        """The size guard: a checkpoint row plus the values it keeps in the database."""
        total = row_size + sum(len(data) for _, data in inline.values())
        if total <= self.max_checkpoint_bytes:
            return
        largest = sorted(inline.items(), key=lambda kv: len(kv[1][1]), reverse=True)[:3]
        channels = ", ".join(f"{ch} ({len(data):,} B)" for ch, (_, data) in largest) or "none"
        message = (
            f"Checkpoint {checkpoint_id} is {total:,} bytes, over the {self.max_checkpoint_bytes:,}-byte "
            f"limit; largest channels: {channels}. Keep long-lived facts in the store "
            "(DjangoStore) rather than in graph state, or raise CHECKPOINTS_MAX_CHECKPOINT_BYTES."
        )
        metrics.incr("checkpoints.oversize")
        if self.size_policy == "reject":
            raise CheckpointTooLarge(message)
        # Once per thread and process: a long chat crosses the limit on every later put.
        if (self.using, thread_id) not in _warned_threads:
            if len(_warned_threads) > 10_000:
                _warned_threads.clear()
            _warned_threads.add((self.using, thread_id))
            logger.warning(message)

    def _resolve_offloaded(self, rows: list, *, data_i: int = 6, key_i: int = 7) -> list:
        """Replace offloaded blob rows' data with the bytes from blob storage, each
        checked against the digest its key names before anything deserialises it."""
        wanted = [r[key_i] for r in rows if _offloaded(r, data_i, key_i)]
        if not wanted:
            return rows
        if self.blob_store is None:
            raise BlobStoreError("A value lives in blob storage but this saver has no blob store")
        fetched = self.blob_store.get_many(wanted)
        out = []
        for r in rows:
            if _offloaded(r, data_i, key_i):
                r = (*r[:data_i], fetched[r[key_i]], *r[data_i + 1 :])
            out.append(r)
        return out

    def _after_delete(self, thread_ids: Sequence[str], freed_keys: set[str]) -> None:
        """After a delete committed: drop the threads from the hot tier, and remove the
        objects no row references any more (past the grace period that protects an
        object a concurrent put has just written)."""
        if self.hot_tier is not None:
            for thread_id in thread_ids:
                self.hot_tier.invalidate(thread_id)
        if not freed_keys or self.blob_store is None:
            return
        keys = sorted(freed_keys)
        sql = q.SELECT_REFERENCED_KEYS_SQL.format(in_=_in(len(keys)))
        referenced = {k for (k,) in self._run(lambda cur: _fetchall(cur, sql, keys))}
        try:
            deleted = self.blob_store.delete_unreferenced(keys, referenced, grace=self.blob_delete_grace)
            metrics.incr("blobs.deleted", deleted)
        except Exception as exc:  # the orphan collector will retry
            logger.warning("could not delete unreferenced blobs: %s", exc)

    # -- reads ------------------------------------------------------------------

    @metrics.timed("get_tuple")
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Fetch the checkpoint of `config` (the latest of the thread without an id).

        Returns:
            The tuple with its pending writes in `writes_sort_key` order, or `None`.
        Raises:
            ValueError: the config has no usable `thread_id`.
        """
        thread_id, ns, checkpoint_id = codec.thread_key(config)
        sql, params = self._tuple_query(thread_id, ns, checkpoint_id)
        rows, gen = (None, "")
        if self.hot_tier is not None:
            rows, gen = self.hot_tier.get(thread_id, ns, checkpoint_id)
        if rows is None:
            rows = self._run(lambda cur: _fetchall(cur, sql, params), prepared=True)
            if rows and self.hot_tier is not None:
                self.hot_tier.fill(rows, gen=gen, latest=not checkpoint_id)
        tuples = codec.rows_to_tuples(self.serde, self._resolve_offloaded(rows))
        return tuples[0] if tuples else None

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        if not self._native_async:
            return await _threaded(self.get_tuple)(config)
        with metrics.timing("get_tuple"):
            thread_id, ns, checkpoint_id = codec.thread_key(config)
            sql, params = self._tuple_query(thread_id, ns, checkpoint_id)
            rows, gen = (None, "")
            if self.hot_tier is not None:
                rows, gen = await self.hot_tier.arun(self.hot_tier.get_steps(thread_id, ns, checkpoint_id))
            if rows is None:
                rows = await aconnection.fetch(self.using, sql, params, prepared=self.prepared_statements)
                if rows and self.hot_tier is not None:
                    await self.hot_tier.arun(self.hot_tier.fill_steps(rows, gen=gen, latest=not checkpoint_id))
            tuples = codec.rows_to_tuples(self.serde, await self._aresolve(rows))
            return tuples[0] if tuples else None

    def _tuple_query(self, thread_id: str, ns: str, checkpoint_id: str | None) -> tuple[str, list[Any]]:
        where = "thread_id = %s AND checkpoint_ns = %s"
        params: list[Any] = [thread_id, ns]
        if checkpoint_id:
            where += " AND checkpoint_id = %s"
            params.append(checkpoint_id)
        return self.dialect.select_tuples_sql(where, limit=1), params

    @property
    def _native_async(self) -> bool:
        """The a-methods run on asyncio connections (`checkpoints.aconnection`, and the
        hot tier's asyncio client) on PostgreSQL; on SQLite, on worker threads."""
        return self.dialect.vendor == "postgresql"

    async def _afetch_rows(self, sql: str, params: list[Any]) -> list:
        return await self._aresolve(await aconnection.fetch(self.using, sql, params, prepared=self.prepared_statements))

    async def _aresolve(self, rows: list) -> list:
        if any(_offloaded(r) for r in rows):  # blob storage clients are synchronous
            rows = await _threaded(self._resolve_offloaded)(rows)
        return rows

    def _list_where(
        self,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
    ) -> tuple[list[str], list[Any]]:
        wheres: list[str] = []
        params: list[Any] = []
        configurable = (config or {}).get("configurable") or {}
        if configurable.get("thread_id") is not None:
            thread_id, _, checkpoint_id = codec.thread_key(config)
            wheres.append("thread_id = %s")
            params.append(thread_id)
            if configurable.get("checkpoint_ns") is not None:
                wheres.append("checkpoint_ns = %s")
                params.append(codec.valid_id("checkpoint_ns", configurable["checkpoint_ns"], empty=True))
            if checkpoint_id:
                wheres.append("checkpoint_id = %s")
                params.append(checkpoint_id)
        if filter := codec.validate_filter(filter):
            clauses, values = self.dialect.metadata_filter(filter)
            wheres += clauses
            params += values
        if before is not None:
            before_id = ((before or {}).get("configurable") or {}).get("checkpoint_id")
            if before_id:
                wheres.append("checkpoint_id < %s")
                params.append(codec.valid_id("checkpoint_id", before_id))
        return wheres, params

    def _page_query(
        self, wheres: list[str], params: list[Any], after: tuple | None, size: int
    ) -> tuple[str, list[Any]]:
        wheres = list(wheres)
        params = list(params)
        if after is not None:
            # Keyset paging in the page's own order: no row is skipped or repeated
            # while a run appends to the thread.
            wheres.append("(checkpoint_id, thread_id, checkpoint_ns) < (%s, %s, %s)")
            params += list(after)
        return self.dialect.select_tuples_sql(" AND ".join(wheres) or "1 = 1", limit=size), params

    @metrics.timed("list")
    def _list_page(
        self, wheres: list[str], params: list[Any], after: tuple | None, size: int
    ) -> list[CheckpointTuple]:
        sql, params = self._page_query(wheres, params, after, size)
        rows = self._run(lambda cur: _fetchall(cur, sql, params), prepared=True)
        return codec.rows_to_tuples(self.serde, self._resolve_offloaded(rows))

    async def _alist_page(
        self, wheres: list[str], params: list[Any], after: tuple | None, size: int
    ) -> list[CheckpointTuple]:
        with metrics.timing("list"):
            rows = await self._afetch_rows(*self._page_query(wheres, params, after, size))
            return codec.rows_to_tuples(self.serde, rows)

    @staticmethod
    def _page_key(tup: CheckpointTuple) -> tuple[str, str, str]:
        c = tup.config["configurable"]
        return (c["checkpoint_id"], c["thread_id"], c["checkpoint_ns"])

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """List checkpoints newest first.

        Args:
            config: `thread_id` (and optionally `checkpoint_ns`, `checkpoint_id`); `None`
                lists every thread.
            filter: metadata key/values the checkpoints must contain.
            before: only checkpoints older than this config's checkpoint.
            limit: at most this many.
        Raises:
            ValueError: a filter key outside `[A-Za-z0-9_.-]` or containing `__`.
        """
        wheres, params = self._list_where(config, filter, before)
        remaining, after = limit, None
        while remaining is None or remaining > 0:
            size = LIST_PAGE_SIZE if remaining is None else min(remaining, LIST_PAGE_SIZE)
            page = self._list_page(wheres, params, after, size)
            yield from page
            if len(page) < size:
                return
            after = self._page_key(page[-1])
            remaining = None if remaining is None else remaining - len(page)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        wheres, params = self._list_where(config, filter, before)
        fetch = self._alist_page if self._native_async else _threaded(self._list_page)
        remaining, after = limit, None
        while remaining is None or remaining > 0:
            size = LIST_PAGE_SIZE if remaining is None else min(remaining, LIST_PAGE_SIZE)
            page = await fetch(wheres, params, after, size)
            for tup in page:
                yield tup
            if len(page) < size:
                return
            after = self._page_key(page[-1])
            remaining = None if remaining is None else remaining - len(page)

    # -- writes -----------------------------------------------------------------

    @metrics.timed("put")
    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint, the values of the channels in `new_versions`, and the
        thread row, atomically.

        Returns:
            The config of the stored checkpoint.
        Raises:
            ValueError: no `thread_id`, or a value or metadata that cannot be serialised;
                nothing is written.
            ThreadDeleted: the thread was deleted after this checkpoint was created;
                nothing is written.
        """
        return self._commit(self._put_write(config, checkpoint, metadata, new_versions))

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        if not self._native_async:
            return await _threaded(self.put)(config, checkpoint, metadata, new_versions)
        with metrics.timing("put"):
            return await self._acommit(self._put_write(config, checkpoint, metadata, new_versions))

    def _put_write(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> _Write:
        """A put, serialised and ready to commit."""
        thread_id, ns, parent_id = codec.thread_key(config)
        checkpoint_id = codec.valid_id("checkpoint id", checkpoint["id"])
        body, blobs = codec.split_checkpoint(self.serde, checkpoint, new_versions)
        meta_json, meta = codec.dump_metadata(config, metadata)
        versions_json = codec.dump_versions(checkpoint.get("channel_versions") or {})
        thread_meta = codec.thread_metadata(meta)
        size = len(body[1]) + len(versions_json) + len(meta_json)
        offload = {
            ch for ch, (_, data) in blobs.items()
            if self.blob_store is not None and len(data) >= self.blob_threshold
        }
        self._check_size(thread_id, checkpoint_id, size, {ch: b for ch, b in blobs.items() if ch not in offload})
        # Content-addressed: the key is known before the object is uploaded (by the commit).
        keys = {ch: self.blob_store.key_for(digest_of(blobs[ch][1])) for ch in offload}
        stored = size + sum(len(b) for _, b in blobs.values())
        ts = codec.now()
        root = ns == ""
        status = codec.checkpoint_status(checkpoint) if root else "busy"
        run_id = meta.get("run_id")
        b_rows = [
            ("b", thread_id, ns, checkpoint_id, channel, type_,
             None if channel in keys else data, keys.get(channel), str(new_versions[channel]), None)
            for channel, (type_, data) in blobs.items()
        ]
        blob_params: list[Any] = []
        for r in b_rows:
            blob_params += [thread_id, ns, r[4], r[8], r[5], r[6], r[7]]
        checkpoint_params = [
            thread_id, ns, checkpoint_id, parent_id, str(run_id) if run_id else None,
            body[0], body[1], versions_json, meta_json, size, ts,
        ]
        thread_params = [
            thread_id, status,
            str(meta.get("graph_id") or ""), codec.json_text(thread_meta), checkpoint_id if root else "",
        ]

        def done() -> RunnableConfig:
            metrics.incr("bytes_written.put", stored)
            return codec.make_config(thread_id, ns, checkpoint_id)

        hot = None
        if self.hot_tier is not None:
            versions = checkpoint.get("channel_versions") or {}
            present = [
                (ch, str(versions[ch]))
                for ch, value in (checkpoint.get("channel_values") or {}).items()
                if ch in versions and not codec.is_inline(value)
            ]
            c_row = ("c", thread_id, ns, checkpoint_id, parent_id, body[0], body[1], versions_json, meta_json, None)
            hot = self.hot_tier.put_steps(thread_id, ns, checkpoint_id, c_row, present, b_rows)

        dialect = self.dialect
        if dialect.one_statement_writes:
            return _Write(
                thread_id, checkpoint_id, done,
                sql=dialect.put_sql(len(blobs)),
                params=[*dialect.live_params(thread_id, ns, checkpoint_id, updates_thread=True),
                        *blob_params, *checkpoint_params, *thread_params, stored, ts, ts],
                uploads=[blobs[ch][1] for ch in offload],
                hot=hot,
            )

        def steps(cur) -> bool:
            # Few statements: each hands the GIL to the graph's other threads and back
            # while this one holds the database's write lock.
            cur.execute(dialect.insert_checkpoint_sql, [*checkpoint_params, thread_id, checkpoint_id])
            inserted = cur.rowcount == 1
            if not inserted:
                if _deleted(cur, thread_id, checkpoint_id):
                    return False
                cur.execute(dialect.upsert_checkpoint_sql, checkpoint_params)
            if blobs:
                cur.execute(dialect.insert_blobs_sql(len(blobs)), blob_params)
            cur.execute(dialect.insert_thread_sql, [*thread_params, 1 if inserted else 0, stored, ts, ts])
            return True

        return _Write(
            thread_id, checkpoint_id, done, steps=steps, uploads=[blobs[ch][1] for ch in offload], hot=hot
        )

    def _upload(self, uploads: list[bytes]) -> None:
        """Objects first: a row must never point at an object that is not there yet."""
        for data in uploads:
            self.blob_store.put(data)
        metrics.incr("blobs.offloaded_bytes", sum(len(data) for data in uploads))

    def _commit(self, write: _Write) -> Any:
        if write.uploads:
            self._upload(write.uploads)
        if write.sql is not None:
            ok = self._run(lambda cur: _fetchall(cur, write.sql, write.params)[0][0], prepared=True)
        else:
            ok = self._run(write.steps, atomic=True, prepared=True)
        if not ok:
            raise ThreadDeleted(write.thread_id, write.checkpoint_id)
        if write.hot is not None:
            self.hot_tier.run(write.hot)
        return write.done()

    async def _acommit(self, write: _Write) -> Any:
        if write.uploads:  # blob storage clients are synchronous
            await _threaded(self._upload)(write.uploads)
        (ok,) = await aconnection.fetch(self.using, write.sql, write.params, prepared=self.prepared_statements, one=True)
        if not ok:
            raise ThreadDeleted(write.thread_id, write.checkpoint_id)
        if write.hot is not None:
            await self.hot_tier.arun(write.hot)
        return write.done()

    @metrics.timed("put_writes")
    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store the pending writes of a task against a checkpoint.

        Special writes (errors, interrupts, resumes) replace an earlier one of the same
        task; ordinary writes are inserted once and never duplicated.
        Raises:
            ValueError: no `thread_id`/`checkpoint_id`, or a value that cannot be
                serialised; nothing is written.
            ThreadDeleted: as for `put`.
        """
        write = self._writes_write(config, writes, task_id, task_path)
        if write is not None:
            self._commit(write)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        if not self._native_async:
            return await _threaded(self.put_writes)(config, writes, task_id, task_path)
        with metrics.timing("put_writes"):
            write = self._writes_write(config, writes, task_id, task_path)
            if write is not None:
                await self._acommit(write)

    def _writes_write(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str
    ) -> _Write | None:
        """Pending writes, serialised and ready to commit; `None` when there are none."""
        thread_id, ns, checkpoint_id = codec.thread_key(config)
        if not checkpoint_id:
            raise codec.InvalidConfig("put_writes needs config['configurable']['checkpoint_id']")
        if not writes:
            return None
        task_id = codec.valid_id("task_id", task_id)
        dumped = codec.dump_writes(self.serde, writes)
        replace = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        params: list[Any] = []
        for idx, channel, type_, data in dumped:
            params += [thread_id, ns, checkpoint_id, task_id, idx, task_path or "", channel, type_, data]
        status = codec.writes_status(writes)
        ts = codec.now()
        thread_params = [
            thread_id, status or "busy", checkpoint_id if ns == "" else "",
            sum(len(d[3]) for d in dumped), ts, ts, status, status,
        ]

        def done() -> None:
            metrics.incr("bytes_written.put_writes", sum(len(d[3]) for d in dumped))

        hot = None
        if self.hot_tier is not None:
            hot = self.hot_tier.put_writes_steps(thread_id, ns, checkpoint_id, [
                ("w", thread_id, ns, checkpoint_id, channel, type_, data, task_path or "", task_id, idx)
                for idx, channel, type_, data in dumped
            ])

        dialect = self.dialect
        # Ordinary writes leave the thread row alone: every task of a step writes, and
        # all of them updating one row would queue behind each other and the step's put.
        if dialect.one_statement_writes:
            return _Write(
                thread_id, checkpoint_id, done,
                sql=dialect.put_writes_sql(len(dumped), replace=replace, with_thread=bool(status)),
                params=[*dialect.live_params(thread_id, ns, checkpoint_id, updates_thread=bool(status)), *params,
                        *(thread_params if status else ())],
                hot=hot,
            )
        writes_sql = dialect.gated_writes_sql(len(dumped), replace=replace)

        def steps(cur) -> bool:
            cur.execute(writes_sql, [*params, thread_id, checkpoint_id])
            if cur.rowcount <= 0 and _deleted(cur, thread_id, checkpoint_id):  # else: all there already
                return False
            if status:
                cur.execute(dialect.writes_thread_sql, thread_params)
            return True

        return _Write(thread_id, checkpoint_id, done, steps=steps, hot=hot)

    # -- deletion and copying ---------------------------------------------------

    @metrics.timed("delete_thread")
    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, blob and write of a thread, and its thread row, and
        leave a tombstone: later writes for checkpoints created before now raise
        `ThreadDeleted` (a new run on the same thread_id is not affected)."""
        thread_id = codec.valid_id("thread_id", thread_id)
        freed = self._run(lambda cur: _delete_threads(cur, self.dialect, [thread_id]), atomic=True)
        self._after_delete([thread_id], freed)

    async def adelete_thread(self, thread_id: str) -> None:
        await _threaded(self.delete_thread)(thread_id)

    @metrics.timed("delete_for_runs")
    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints the given runs created, their writes, and the blobs no
        remaining checkpoint uses. A surviving child is re-parented to the nearest
        surviving ancestor, so its history stays walkable."""
        if isinstance(run_ids, str):
            raise TypeError("run_ids must be a sequence of run ids, not a str")
        run_ids = [codec.valid_id("run_id", r) for r in run_ids]
        if not run_ids:
            return

        def delete(cur):
            rows = _fetchall(cur, q.SELECT_RUN_CHECKPOINTS_SQL.format(in_=_in(len(run_ids))), run_ids)
            by_ns: dict[tuple[str, str], list[str]] = {}
            for thread_id, ns, checkpoint_id, _ in rows:
                by_ns.setdefault((thread_id, ns), []).append(checkpoint_id)
            freed: set[str] = set()
            for (thread_id, ns), ids in by_ns.items():
                freed |= self._delete_checkpoints(cur, thread_id, ns, ids)
            threads = sorted({t for t, _ in by_ns})
            for thread_id in threads:
                self._refresh_thread(cur, thread_id)
            return threads, freed

        self._after_delete(*self._run(delete, atomic=True))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await _threaded(self.delete_for_runs)(run_ids)

    def _delete_checkpoints(self, cur, thread_id: str, ns: str, ids: Sequence[str]) -> set[str]:
        """Delete checkpoints of one namespace with their writes and unused blobs;
        returns the blob storage keys of the blob rows deleted."""
        rows = _fetchall(
            cur,
            f"SELECT checkpoint_id, parent_checkpoint_id, {self.dialect.text('channel_versions')} "
            f"FROM {q.C} WHERE thread_id = %s AND checkpoint_ns = %s",
            [thread_id, ns],
        )
        doomed = set(ids)
        parent_of = {cid: parent for cid, parent, _ in rows}
        freed, referenced = [], []
        for cid, _, versions in rows:
            pairs = codec.load_json(versions).items()
            (freed if cid in doomed else referenced).extend(pairs)
        doomed_list = sorted(doomed)
        ph = _in(len(doomed_list))
        base = [thread_id, ns]
        cur.execute(
            f"DELETE FROM {q.W} WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id IN ({ph})",
            base + doomed_list,
        )
        cur.execute(
            f"DELETE FROM {q.C} WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id IN ({ph})",
            base + doomed_list,
        )
        for cid, parent in parent_of.items():
            if cid in doomed or parent not in doomed:
                continue
            while parent in doomed:
                parent = parent_of.get(parent)
            cur.execute(
                f"UPDATE {q.C} SET parent_checkpoint_id = %s "
                "WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = %s",
                [parent, thread_id, ns, cid],
            )
        freed_keys: set[str] = set()
        for channel, versions in codec.garbage_blobs(freed, referenced).items():
            where = (
                f"FROM {q.B} WHERE thread_id = %s AND checkpoint_ns = %s AND channel = %s "
                f"AND version IN ({_in(len(versions))})"
            )
            params = [thread_id, ns, channel, *versions]
            freed_keys |= {k for (k,) in _fetchall(cur, f"SELECT blob_key {where} AND blob_key IS NOT NULL", params)}
            cur.execute(f"DELETE {where}", params)
        return freed_keys

    def _refresh_thread(self, cur, thread_id: str) -> None:
        cur.execute(q.REFRESH_THREAD_SQL, [thread_id])
        cur.execute(q.DELETE_EMPTY_THREAD_SQL, [thread_id])

    @metrics.timed("copy_thread")
    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's whole history (every checkpoint with its parent chain, blobs
        and writes, in every namespace) to another thread id. A tombstone the target
        id had is lifted: the copy is meant to continue from its older checkpoints."""
        source = codec.valid_id("source_thread_id", source_thread_id)
        target = codec.valid_id("target_thread_id", target_thread_id)
        if source == target:
            raise ValueError("copy_thread needs two different thread ids")

        def copy(cur):
            cur.execute(q.LIFT_TOMBSTONE_SQL, [target])
            for statement in q.COPY_THREAD_SQL:
                cur.execute(statement, [target, source])
            self._refresh_thread(cur, target)

        self._run(copy, atomic=True)
        self._after_delete([target], set())

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await _threaded(self.copy_thread)(
            source_thread_id, target_thread_id
        )

    @metrics.timed("prune")
    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Prune threads.

        `"delete"` removes every row of the threads in one transaction. `"keep_latest"`
        keeps, per namespace, the latest checkpoint with its writes and the blobs it
        uses, plus, when the thread uses a `DeltaChannel`, every ancestor back to the
        nearest stored value of each delta channel, so the kept state still rebuilds.
        Only checkpoints up to the head read at the start are deleted: a run appending
        meanwhile keeps its new checkpoints. A subgraph call's namespace (`node:task`)
        goes with the root checkpoint it started from.

        Raises:
            TypeError: `thread_ids` is a single string.
            ValueError: an unknown strategy.
        """
        if isinstance(thread_ids, str):
            raise TypeError("thread_ids must be a sequence of thread IDs, not a str")
        if strategy not in PRUNE_STRATEGIES:
            raise ValueError(f"Unknown prune strategy: {strategy!r}; use one of {PRUNE_STRATEGIES}")
        thread_ids = [codec.valid_id("thread_id", t) for t in thread_ids]
        if not thread_ids:
            return
        if strategy == "delete":
            freed = self._run(lambda cur: _delete_threads(cur, self.dialect, thread_ids), atomic=True)
            self._after_delete(thread_ids, freed)
            return
        for thread_id in thread_ids:
            freed = self._run(lambda cur, t=thread_id: self._keep_latest(cur, t), atomic=True)
            self._after_delete([thread_id], freed)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await _threaded(self.prune)(thread_ids, strategy=strategy)

    def _keep_latest(self, cur, thread_id: str) -> None:
        heads = dict(_fetchall(cur, q.SELECT_NS_HEADS_SQL, [thread_id]))
        freed: set[str] = set()
        if not heads:
            return freed
        kept: dict[str, set[str]] = {}
        root_meta: dict[str, dict] = {}
        for ns, head in heads.items():
            _, meta = _fetchall(cur, q.SELECT_HEAD_SQL, [thread_id, ns])[0]
            meta = codec.load_json(meta) or {}
            root_meta[ns] = meta
            keep = {head}
            delta_channels = sorted((meta.get("counters_since_delta_snapshot") or {}).keys())
            if delta_channels:
                chain, inline_of = self._chain(cur, thread_id, ns, head)
                stored = self._stored_versions(cur, thread_id, ns, delta_channels)
                walked, _ = codec.walk_chain(chain, delta_channels, stored, inline_of)
                for ids in walked.values():
                    keep.update(ids)
            kept[ns] = keep
        root_kept = kept.get("", set())
        root_ids = {
            cid for (cid,) in _fetchall(
                cur, f"SELECT checkpoint_id FROM {q.C} WHERE thread_id = %s AND checkpoint_ns = ''", [thread_id]
            )
        }
        for ns, head in heads.items():
            root = (root_meta[ns].get("parents") or {}).get("")
            if ns and ":" in ns and root in root_ids and root not in root_kept:
                freed |= self._delete_checkpoints(
                    cur, thread_id, ns,
                    [cid for (cid,) in _fetchall(
                        cur,
                        f"SELECT checkpoint_id FROM {q.C} WHERE thread_id = %s AND checkpoint_ns = %s "
                        "AND checkpoint_id <= %s",
                        [thread_id, ns, head],
                    )],
                )
                continue
            doomed = [
                cid for (cid,) in _fetchall(
                    cur,
                    f"SELECT checkpoint_id FROM {q.C} WHERE thread_id = %s AND checkpoint_ns = %s "
                    "AND checkpoint_id <= %s",
                    [thread_id, ns, head],
                )
                if cid not in kept[ns]
            ]
            if doomed:
                freed |= self._delete_checkpoints(cur, thread_id, ns, doomed)
                # The oldest kept checkpoint has no parent left.
                cur.execute(
                    f"UPDATE {q.C} SET parent_checkpoint_id = NULL WHERE thread_id = %s "
                    f"AND checkpoint_ns = %s AND parent_checkpoint_id IN ({_in(len(doomed))})",
                    [thread_id, ns, *doomed],
                )
        self._refresh_thread(cur, thread_id)
        return freed

    # -- DeltaChannel support -----------------------------------------------------

    def _chain(self, cur, thread_id: str, ns: str, checkpoint_id: str) -> tuple[list, Any]:
        """The parent chain (nearest first) as `(id, versions)`, and a reader of the
        small scalars each checkpoint keeps in its body, decoded only when asked."""
        rows = _fetchall(cur, self.dialect.chain_sql(), [thread_id, ns, checkpoint_id, thread_id, ns])
        chain = [(cid, codec.load_json(versions) or {}) for cid, versions, _, _ in rows]
        decoded: dict[int, dict] = {}

        def inline_of(position: int) -> dict:
            if position not in decoded:
                _, _, type_, body = rows[position]
                decoded[position] = self.serde.loads_typed((type_, bytes(body))).get("channel_values") or {}
            return decoded[position]

        return chain, inline_of

    def _stored_versions(self, cur, thread_id: str, ns: str, channels: Sequence[str]) -> set[tuple[str, str]]:
        rows = _fetchall(
            cur,
            q.SELECT_BLOB_VERSIONS_SQL.format(in_=_in(len(channels))),
            [thread_id, ns, *channels],
        )
        return {(channel, version) for channel, version, type_ in rows if type_ != "empty"}

    @metrics.timed("get_delta_channel_history")
    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> dict[str, DeltaChannelHistory]:
        """Walk the parent chain of `config`'s checkpoint once for all `channels`, in three
        queries whatever the chain's length: the chain, the stored versions, then the
        writes and seeds. See `BaseCheckpointSaver.get_delta_channel_history`."""
        channels = list(channels)
        if not channels:
            return {}
        thread_id, ns, checkpoint_id = codec.thread_key(config)

        def read(cur):
            target = checkpoint_id
            if not target:
                head = _fetchall(cur, q.SELECT_HEAD_SQL, [thread_id, ns])
                if not head:
                    return {ch: {"writes": []} for ch in channels}
                target = head[0][0]
            chain, inline_of = self._chain(cur, thread_id, ns, target)
            chain = chain[1:]  # the target's own value is not part of its history
            if not chain:
                return {ch: {"writes": []} for ch in channels}
            stored = self._stored_versions(cur, thread_id, ns, channels)
            walked, seeds = codec.walk_chain(chain, channels, stored, lambda i: inline_of(i + 1))
            ids = sorted({cid for w in walked.values() for cid in w})
            params: list[Any] = [thread_id, ns, *channels, *ids] if ids else []
            blob_seeds = {ch: seed for ch, (kind, seed) in seeds.items() if kind == "blob"}
            for ch, version in blob_seeds.items():
                params += [thread_id, ns, ch, version]
            sql = self.dialect.history_rows_sql(len(ids), len(channels), len(blob_seeds))
            rows = _fetchall(cur, sql, params) if sql else []
            return walked, seeds, rows

        result = self._run(read)
        if isinstance(result, dict):
            return result
        walked, seeds, rows = result
        rows = self._resolve_offloaded(rows, data_i=4, key_i=1)
        return codec.delta_histories(self.serde, channels, walked, seeds, rows)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> dict[str, DeltaChannelHistory]:
        return await _threaded(self.get_delta_channel_history)(
            config=config, channels=channels
        )

    def get_next_version(self, current: str | None, channel: None = None) -> str:
        """`{n:032}.{random:016}`, the format of `langgraph-checkpoint-postgres`."""
        return codec.next_version(current)


def alias_for_url(url: str) -> str:
    return "lg_" + hashlib.sha1(url.encode()).hexdigest()[:10]
