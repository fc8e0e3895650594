"""`DjangoStore`: LangGraph's `BaseStore` on Django's database connections.

Order of operations in `batch`
------------------------------
1. Plan (`codec.plan_batch`, no I/O): every op validated, every value serialised, puts
   deduplicated per `(namespace, key)` with the last winning. A bad op fails the batch
   here, before anything is embedded or written.
2. Embed: the texts of the puts (one `embed_documents` call) and the search queries
   (`embed_query`), when an index is configured.
3. One database call (`checkpoints.connection.run`, which gives a pooled PostgreSQL
   connection back afterwards): gets, searches and namespace listings first, then the
   puts and deletes, as PostgresStore orders them, so the reads of a batch see the store
   as it was before its writes. The writes of a batch are one transaction (on
   PostgreSQL one multi-statement query, one round trip; on SQLite `BEGIN IMMEDIATE`);
   a failure leaves nothing of them.

`abatch` is the same plan, `aembed_*` calls, and the database call on a worker thread
(`thread_sensitive=False`, so concurrent async callers do not queue on one thread).

TTL
---
`PutOp.ttl` (minutes) sets `expires_at`; reads with `refresh_ttl` move it to now + ttl.
Expired items are invisible to get, search and list_namespaces before any sweep
(`TTLConfig.omit_expired`, which `DjangoStore` defaults to True where PostgresStore
defaults to False); `sweep_ttl()`, the `store_sweep_expired` job and the `sweep_store`
command delete them. Times come from this process's clock, in UTC.

Semantic search
---------------
With `index={"dims", "embed", "fields"}`, a put embeds the texts at `fields` (or at the
put's own `index` paths; `index=False` stores no vector), and a search with `query`
ranks the items that have vectors by their best vector's similarity to the query,
returned as `SearchItem.score`. Candidates are narrowed in SQL (namespace range,
filter, expiry) and scored with NumPy; the vectors live in the item's row as float32
bytes, which SQLite and PostgreSQL both hold. pgvector is not used: it is not
installed on the project's machines, and PostgresStore itself does not use an ANN
index for filtered searches.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from asgiref.sync import sync_to_async
from langgraph.store.base import (
    BaseStore,
    IndexConfig,
    Op,
    Result,
    TTLConfig,
    ensure_embeddings,
)

from checkpoints.connection import dialect_for, run

from . import codec
from . import sql as q
from .services import store_sweep_expired

logger = logging.getLogger(__name__)

DEFAULT_SWEEP_INTERVAL_MINUTES = 5


class DjangoStore(BaseStore):
    """A LangGraph store in this project's database (SQLite or PostgreSQL).

    Args:
        using: the Django database alias.
        index: an `IndexConfig` (`dims`, `embed`, optional `fields`, and optionally
            `distance_type`: "cosine" (default), "inner_product" or "l2") to enable
            semantic search.
        ttl: a `TTLConfig`: `default_ttl` (minutes) for puts that give none,
            `refresh_on_read` (default True), `sweep_interval_minutes` for
            `start_ttl_sweeper`, and `omit_expired` (default True here).

    Example:
        ```python
        store = DjangoStore(index={"dims": 384, "embed": embed, "fields": ["text"]})
        graph = builder.compile(checkpointer=DjangoSaver(), store=store)
        ```
    """

    supports_ttl = True

    def __init__(
        self,
        using: str = "default",
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
    ) -> None:
        self.using = using
        self.index_config = codec.prepare_index_config(index) if index else None
        self.embeddings = ensure_embeddings(index.get("embed")) if index else None
        self.ttl_config = ttl
        self._dialect: q.Dialect | None = None
        self._sweeper: threading.Thread | None = None
        self._sweeper_stop = threading.Event()

    @property
    def omit_expired(self) -> bool:
        return bool((self.ttl_config or {}).get("omit_expired", True))

    @property
    def dialect(self) -> q.Dialect:
        if self._dialect is None:
            self._dialect = dialect_for(self.using, q.DIALECTS, "DjangoStore")
        return self._dialect

    def setup(self) -> None:
        """Apply the store's migrations to its database (idempotent), as
        `PostgresStore.setup()` does."""
        from django.core.management import call_command

        call_command("migrate", "store", database=self.using, verbosity=0)

    # -- batch ------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Execute `ops` in one database call; see the module docstring for the order.

        Returns:
            One result per op: an `Item` or None for a get, a list of `SearchItem` for
            a search, a list of namespace tuples for a listing, None for a put.
        Raises:
            InvalidNamespaceError: a bad namespace label, or a put to an empty namespace
                or under the reserved root "langgraph".
            InvalidValueError (a ValueError): a value that is not a JSON object, an
                unknown filter operator, a bad key, limit or embedding.
        """
        plan = codec.plan_batch(ops, self.index_config)
        vectors, queries = self._embed(plan)
        return self._execute(plan, vectors, queries)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        plan = codec.plan_batch(ops, self.index_config)
        vectors, queries = await self._aembed(plan)
        return await sync_to_async(self._execute, thread_sensitive=False)(plan, vectors, queries)

    # -- embeddings ---------------------------------------------------------------

    def _embed(self, plan: codec.Plan) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        if self.embeddings is None:
            return {}, {}
        docs = self.embeddings.embed_documents(plan.texts) if plan.texts else []
        queries = [self.embeddings.embed_query(text) for text in plan.queries]
        return self._vectors(plan, docs, queries)

    async def _aembed(self, plan: codec.Plan) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        if self.embeddings is None:
            return {}, {}
        docs = await self.embeddings.aembed_documents(plan.texts) if plan.texts else []
        queries = await asyncio.gather(*(self.embeddings.aembed_query(t) for t in plan.queries))
        return self._vectors(plan, docs, list(queries))

    def _vectors(
        self, plan: codec.Plan, docs: Sequence[Sequence[float]], queries: Sequence[Sequence[float]]
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        dims = self.index_config["dims"]
        if len(docs) != len(plan.texts):
            raise codec.InvalidValueError(
                f"The embedding function returned {len(docs)} vectors for {len(plan.texts)} texts"
            )
        doc_matrix = codec.as_matrix(docs, dims, what="document vectors") if plan.texts else None
        query_matrix = codec.as_matrix(queries, dims, what="query vectors") if plan.queries else None
        return (
            {t: doc_matrix[i] for i, t in enumerate(plan.texts)},
            {t: query_matrix[i] for i, t in enumerate(plan.queries)},
        )

    # -- execution ----------------------------------------------------------------

    def _execute(
        self,
        plan: codec.Plan,
        vectors: Mapping[str, np.ndarray],
        queries: Mapping[str, np.ndarray],
    ) -> list[Result]:
        results: list[Result] = [None] * plan.size
        if not plan.size:
            return results
        now = codec.now()

        def work(cur) -> list[Result]:
            if plan.gets:
                self._run_gets(cur, plan.gets, results, now)
            for search in plan.searches:
                if search.semantic:
                    results[search.index] = self._run_semantic(cur, search, queries[search.op.query], now)
                else:
                    results[search.index] = self._run_search(cur, search, now)
            for i, op in plan.lists:
                results[i] = self._run_list(cur, op, now)
            if plan.writes:
                self._run_writes(cur, plan.writes, vectors, now)
            return results

        # PostgreSQL gets every write of the batch in one `execute` (one round trip, one
        # implicit transaction); SQLite runs them one by one inside BEGIN IMMEDIATE.
        atomic = bool(plan.writes) and not self.dialect.batches_statements
        return run(self.using, work, atomic=atomic)

    def _live(self, now: datetime) -> tuple[str, list[Any]]:
        if not self.omit_expired:
            return "", []
        return q.LIVE, [self.dialect.ts(now)]

    def _fetch_items(self, cur, pairs: Sequence[tuple[str, str]], now: datetime) -> dict[tuple[str, str], tuple]:
        """Rows of the given (namespace, key) pairs: {pair: row}."""
        d = self.dialect
        live = self.omit_expired
        found: dict[tuple[str, str], tuple] = {}
        for start in range(0, len(pairs), q.CHUNK):
            chunk = pairs[start : start + q.CHUNK]
            params: list[Any] = [p for pair in chunk for p in pair]
            if live:
                params.append(d.ts(now))
            cur.execute(d.get_sql(len(chunk), live=live), params)
            for row in cur.fetchall():
                found[(row[0], row[1])] = row
        return found

    def _refresh(self, cur, rows: Iterable[tuple], now: datetime) -> None:
        """Move `expires_at` to now + ttl for the given item rows that have a TTL
        (one statement per distinct TTL, usually one)."""
        by_ttl: dict[float, list[tuple[str, str]]] = defaultdict(list)
        for row in rows:
            if row[5] is not None:
                by_ttl[row[5]].append((row[0], row[1]))
        d = self.dialect
        live = self.omit_expired
        for ttl, pairs in by_ttl.items():
            expiry = d.ts(codec.expires_at(now, ttl))
            for start in range(0, len(pairs), q.CHUNK):
                chunk = pairs[start : start + q.CHUNK]
                params: list[Any] = [expiry, ttl, *(p for pair in chunk for p in pair)]
                if live:
                    params.append(d.ts(now))
                cur.execute(d.refresh_sql(len(chunk), live=live), params)

    def _run_gets(self, cur, gets, results: list[Result], now: datetime) -> None:
        pairs = list(dict.fromkeys((codec.ns_text(op.namespace), op.key) for _, op in gets))
        found = self._fetch_items(cur, pairs, now)
        refresh: dict[tuple[str, str], tuple] = {}
        load = self.dialect.load_ts
        for i, op in gets:
            pair = (codec.ns_text(op.namespace), op.key)
            row = found.get(pair)
            if row is None:
                continue
            results[i] = codec.make_item(row[0], row[1], row[2], load(row[3]), load(row[4]))
            if op.refresh_ttl:
                refresh[pair] = row
        if refresh:
            self._refresh(cur, refresh.values(), now)

    def _search_where(self, search: codec.Search, now: datetime) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        bounds = codec.ns_range(search.op.namespace_prefix)
        if bounds:
            low, high, child = bounds
            clauses.append(q.NS_RANGE)
            params += [low, high, low, child]
        for condition in search.conditions:
            sql, values = self.dialect.condition_sql(condition)
            clauses.append(sql)
            params += values
        live, live_params = self._live(now)
        if live:
            clauses.append(live)
            params += live_params
        return " AND ".join(clauses) or "1 = 1", params

    def _run_search(self, cur, search: codec.Search, now: datetime) -> list:
        op = search.op
        where, params = self._search_where(search, now)
        cur.execute(q.SEARCH_SQL.format(where=where), [*params, op.limit, op.offset])
        rows = cur.fetchall()
        load = self.dialect.load_ts
        items = [codec.make_search_item(r[0], r[1], r[2], load(r[3]), load(r[4])) for r in rows]
        if op.refresh_ttl:
            self._refresh(cur, rows, now)
        return items

    def _run_semantic(self, cur, search: codec.Search, query: np.ndarray, now: datetime) -> list:
        op = search.op
        where, params = self._search_where(search, now)
        cur.execute(q.CANDIDATES_SQL.format(where=f"{where} AND embedding IS NOT NULL"), params)
        dims = self.index_config["dims"]
        distance = self.index_config.get("distance_type", "cosine")
        # Scored a chunk at a time: the vectors of a large namespace (100,000 items of
        # 384 floats are 150 MB) are never all in memory at once, and each chunk is
        # scored while it is still in the CPU's cache.
        candidates: list[tuple[str, str]] = []
        parts: list[np.ndarray] = []
        while rows := cur.fetchmany(q.SCORE_CHUNK):
            parts.append(codec.score_items(query, [r[2] for r in rows], dims, distance))
            candidates.extend((r[0], r[1]) for r in rows)
        scores = np.concatenate(parts) if parts else np.empty(0, dtype="f4")
        page = codec.top_k(scores, op.offset, op.limit)
        pairs = [candidates[i] for i in page]
        found = self._fetch_items(cur, pairs, now)
        load = self.dialect.load_ts
        items, rows = [], []
        for i, pair in zip(page, pairs, strict=True):
            row = found.get(pair)
            if row is None:  # deleted between the two reads
                continue
            rows.append(row)
            items.append(
                codec.make_search_item(row[0], row[1], row[2], load(row[3]), load(row[4]), float(scores[i]))
            )
        if op.refresh_ttl:
            self._refresh(cur, rows, now)
        return items

    def _run_list(self, cur, op, now: datetime) -> list[tuple[str, ...]]:
        bounds = codec.ns_range(codec.literal_prefix(op.match_conditions))
        params: list[Any] = []
        if bounds:
            params += [bounds[0], bounds[1], bounds[1]]
        if self.omit_expired:
            params.append(self.dialect.ts(now))
        sql = self.dialect.namespaces_sql(bounded=bool(bounds), live=self.omit_expired)
        cur.execute(sql, params)
        return codec.select_namespaces((r[0] for r in cur.fetchall()), op)

    def _run_writes(self, cur, writes: list[codec.Write], vectors: Mapping[str, np.ndarray], now: datetime) -> None:
        d = self.dialect
        statements: list[tuple[str, list[Any]]] = []
        deletes = [(w.namespace, w.key) for w in writes if w.value_json is None]
        for start in range(0, len(deletes), q.CHUNK):
            chunk = deletes[start : start + q.CHUNK]
            statements.append((d.delete_sql(len(chunk)), [p for pair in chunk for p in pair]))
        upserts = [w for w in writes if w.value_json is not None]
        ts = d.ts(now)
        for start in range(0, len(upserts), q.CHUNK):
            chunk = upserts[start : start + q.CHUNK]
            params: list[Any] = []
            for w in chunk:
                params += [
                    w.namespace, w.key, w.value_json, ts, ts,
                    d.ts(codec.expires_at(now, w.ttl_minutes)), w.ttl_minutes,
                    codec.pack_vectors(w.texts, vectors),
                ]
            statements.append((d.upsert_sql(len(chunk)), params))
        if d.batches_statements:
            # One round trip: the client binds the parameters and the server runs the
            # statements of one query string as one transaction.
            cur.execute(";\n".join(s for s, _ in statements), [p for _, ps in statements for p in ps])
            return
        for sql, params in statements:
            cur.execute(sql, params)

    # -- TTL ------------------------------------------------------------------------

    def sweep_ttl(self) -> int:
        """Delete expired items now.

        Returns:
            The number of items deleted.
        """
        return store_sweep_expired(using=self.using)

    async def asweep_ttl(self) -> int:
        return await sync_to_async(self.sweep_ttl, thread_sensitive=False)()

    def start_ttl_sweeper(self, sweep_interval_minutes: int | None = None) -> concurrent.futures.Future[None]:
        """Sweep every `sweep_interval_minutes` (or the config's, or 5) on a daemon
        thread, as PostgresStore does. In this project the scheduled django-rq job
        (`store.cron`) does the same without a thread per process.

        Returns:
            A future that finishes when the sweeper stops; cancelling it stops it.
        """
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        if not self.ttl_config:
            future.set_result(None)
            return future
        if self._sweeper and self._sweeper.is_alive():
            future.add_done_callback(lambda f: self._sweeper_stop.set() if f.cancelled() else None)
            return future
        interval = float(
            sweep_interval_minutes
            or self.ttl_config.get("sweep_interval_minutes")
            or DEFAULT_SWEEP_INTERVAL_MINUTES
        )
        self._sweeper_stop.clear()

        def loop() -> None:
            from django.db import connections

            try:
                while not self._sweeper_stop.wait(interval * 60):
                    try:
                        self.sweep_ttl()
                    except Exception:
                        logger.exception("store: TTL sweep failed")
                future.set_result(None)
            except Exception as exc:  # pragma: no cover - the loop body catches
                future.set_exception(exc)
            finally:
                connections.close_all()

        self._sweeper = threading.Thread(target=loop, daemon=True, name="store-ttl-sweeper")
        self._sweeper.start()
        future.add_done_callback(lambda f: self._sweeper_stop.set() if f.cancelled() else None)
        return future

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper thread.

        Returns:
            True if it stopped (or was not running) within `timeout` seconds.
        """
        if not self._sweeper or not self._sweeper.is_alive():
            return True
        self._sweeper_stop.set()
        self._sweeper.join(timeout)
        stopped = not self._sweeper.is_alive()
        if stopped:
            self._sweeper = None
        return stopped
