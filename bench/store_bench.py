"""Benchmark `DjangoStore` (SQLite and PostgreSQL) beside LangGraph's `PostgresStore`.

    .venv/bin/python -m bench.store_bench            # 10,000 and 100,000 items
    .venv/bin/python -m bench.store_bench --quick    # 10,000 items, fewer calls
    .venv/bin/python -m bench.store_bench --sizes 1000 50000 --calls 500

For each size, every store is loaded with the same items (batches of 500 puts) and then
timed op by op, the stores taking turns call by call so load on the machine hits all
of them alike. P50 and P99 in milliseconds, per single call through the sync API:

    put             a new key into an existing namespace (an upsert)
    get             a random existing item
    search          one namespace's 10 newest items (`ORDER BY updated_at DESC`)
    search+filter   the same with `filter={"kind": "a", "n": {"$gte": 500}}`
    list_ns         `list_namespaces(prefix=("bench",), max_depth=2)`
    semantic ns     `search(query=...)` in one namespace (DjangoStore only: PostgresStore's
                    vector search needs pgvector, which this machine does not have)
    semantic all    `search(query=...)` across every item (DjangoStore only)

DjangoStore is loaded through a store with an index, so its rows carry their vectors
(1.5 kB each, in the row): that is what its plain searches pay for below, against
PostgresStore rows that have no vectors at all (its vectors would live in a table of
their own). Slow calls (semantic all, and list_ns at 100,000 items) get fewer samples.

Items live in 100 namespaces `("bench", "u<n>")`, so a namespace holds 1% of them. The
semantic rows use 384-dimensional vectors (all-MiniLM-L6-v2's size) from a
deterministic hash embedding; embedding time is excluded by caching the query vector.

It needs PostgreSQL at `BENCH_PG_URL` (default `postgresql://postgres@127.0.0.1:5432`)
and **drops and recreates** the database `bench_store`; `PostgresStore`'s tables go to
its schema `pgstore`. SQLite goes to a temporary file. Not a pass/fail test.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from functools import lru_cache

import numpy as np
import psycopg

PG_BASE_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
DB_NAME = "bench_store"
PG_SCHEMA = "pgstore"
NAMESPACES = 100
DIMS = 384
LOAD_BATCH = 500
WORDS = (
    "apple banana cherry river stone cloud python rust ocean mountain forest city train "
    "music paint garden coffee winter summer letter window bridge market doctor teacher"
).split()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare_database() -> None:
    with psycopg.connect(f"{PG_BASE_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    with psycopg.connect(f"{PG_BASE_URL}/{DB_NAME}", autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {PG_SCHEMA}")


def configure(sqlite_path: str) -> None:
    os.environ["DATABASE_URL"] = f"{PG_BASE_URL}/{DB_NAME}"
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "store-bench")
    for name in ("REDIS_URL", "BLOB_STORE_URL", "TIMETRAVEL_DATABASE"):
        os.environ.pop(name, None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    from django.conf import settings

    from checkpoints.dbconfig import database_settings

    settings.DATABASES["sqlite"] = database_settings(f"sqlite:///{sqlite_path}")
    import django

    django.setup()
    from django.core.management import call_command

    for alias in ("default", "sqlite"):
        call_command("migrate", "store", database=alias, verbosity=0)


@lru_cache(maxsize=None)
def word_vector(word: str) -> np.ndarray:
    return np.random.default_rng(zlib.crc32(word.encode())).standard_normal(DIMS).astype("f4")


def embed(texts: list[str]) -> list[np.ndarray]:
    return [sum((word_vector(w) for w in t.split()), np.zeros(DIMS, "f4")) for t in texts]


def item(i: int, rng: random.Random) -> tuple[tuple[str, str], str, dict]:
    return (
        ("bench", f"u{i % NAMESPACES}"),
        f"k{i}",
        {
            "text": " ".join(rng.choices(WORDS, k=8)),
            "kind": "abc"[i % 3],
            "n": i % 1000,
            "meta": {"source": "bench", "tags": ["x", "y"]},
        },
    )


class Stores:
    """The stores under test: name -> (plain store, indexed store or None)."""

    def __init__(self, reference_conn) -> None:
        from langgraph.store.postgres import PostgresStore

        from store.store import DjangoStore

        index = {"dims": DIMS, "embed": embed, "fields": ["text"]}
        self.stores = {
            "DjangoStore(pg)": (DjangoStore("default"), DjangoStore("default", index=index)),
            "DjangoStore(sqlite)": (DjangoStore("sqlite"), DjangoStore("sqlite", index=index)),
            "PostgresStore": (PostgresStore(reference_conn), None),
        }

    def clear(self, reference_conn) -> None:
        from django.db import connections

        for alias in ("default", "sqlite"):
            with connections[alias].cursor() as cur:
                cur.execute("DELETE FROM lg_store_item")
            connections[alias].close()
        reference_conn.execute(f"TRUNCATE {PG_SCHEMA}.store")


def load(stores: Stores, size: int) -> dict[str, float]:
    from langgraph.store.base import PutOp

    rates = {}
    rng = random.Random(1)
    items = [item(i, rng) for i in range(size)]
    for name, (plain, indexed) in stores.stores.items():
        target = indexed or plain
        started = time.perf_counter()
        for start in range(0, size, LOAD_BATCH):
            target.batch([PutOp(ns, key, value) for ns, key, value in items[start : start + LOAD_BATCH]])
        rates[name] = size / (time.perf_counter() - started)
        log(f"  loaded {size} items into {name}: {rates[name]:,.0f} items/s")
    with psycopg.connect(f"{PG_BASE_URL}/{DB_NAME}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE lg_store_item")
        conn.execute(f"VACUUM ANALYZE {PG_SCHEMA}.store")
    return rates


def measure(stores: Stores, size: int, calls: int) -> dict[str, dict[str, tuple[float, float]]]:
    rng = random.Random(2)
    samples: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    query_text = "apple river coffee winter"

    for name, (plain, indexed) in stores.stores.items():
        if indexed is not None:
            # Embedding is the model's cost, not the store's: serve the query from a cache.
            vector = embed([query_text])[0]
            indexed.embeddings.embed_query = lambda text, v=vector: v

    def ops(i: int):
        ns = ("bench", f"u{rng.randrange(NAMESPACES)}")
        key = f"k{rng.randrange(size)}"
        key_ns = ("bench", f"u{int(key[1:]) % NAMESPACES}")
        return [
            ("put", lambda s, _: s.put(ns, f"new-{i}", {"text": "fresh item", "kind": "a", "n": i})),
            ("get", lambda s, _: s.get(key_ns, key, refresh_ttl=False)),
            ("search", lambda s, _: s.search(ns, limit=10, refresh_ttl=False)),
            ("search+filter", lambda s, _: s.search(ns, filter={"kind": "a", "n": {"$gte": 500}}, limit=10, refresh_ttl=False)),
            ("list_ns", lambda s, _: s.list_namespaces(prefix=("bench",), max_depth=2)),
            ("semantic ns", lambda _, ix: ix and ix.search(ns, query=query_text, limit=10, refresh_ttl=False)),
            ("semantic all", lambda _, ix: ix and ix.search(("bench",), query=query_text, limit=10, refresh_ttl=False)),
        ]

    # Slow calls get fewer samples: a scan of every vector (slow by nature, see the
    # docstring) and PostgresStore's list_namespaces, which reads every row.
    big = size > 20_000
    limited = {
        "semantic ns": max(20, calls // 4),
        "semantic all": max(10, calls // (50 if big else 10)),
        "list_ns": calls // 5 if big else calls,
    }
    names = list(stores.stores)
    for i in range(calls):
        # The stores take turns in a rotating order, so none always follows the same
        # (possibly heavy) call of another.
        order = names[i % len(names):] + names[: i % len(names)]
        for op, fn in ops(i):
            if i >= limited.get(op, calls):
                continue
            for name in order:
                plain, indexed = stores.stores[name]
                if op.startswith("semantic") and indexed is None:
                    continue
                gc.disable()
                started = time.perf_counter_ns()
                fn(plain, indexed)
                elapsed = (time.perf_counter_ns() - started) / 1e6
                gc.enable()
                samples[name][op].append(elapsed)
        if i % 100 == 0:
            gc.collect()
    return {
        name: {op: (float(np.percentile(v, 50)), float(np.percentile(v, 99))) for op, v in by_op.items()}
        for name, by_op in samples.items()
    }


OPS = ("put", "get", "search", "search+filter", "list_ns", "semantic ns", "semantic all")


def report(size: int, figures, rates) -> None:
    names = list(figures)
    print(f"\n## {size:,} items in {NAMESPACES} namespaces (P50 / P99, ms)\n")
    print("| op | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for op in OPS:
        cells = []
        for name in names:
            p = figures[name].get(op)
            cells.append(f"{p[0]:.2f} / {p[1]:.2f}" if p else "n/a")
        print(f"| {op} | " + " | ".join(cells) + " |")
    print("| load (items/s, batches of 500) | " + " | ".join(f"{rates[n]:,.0f}" for n in names) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 items and 300 calls per op")
    parser.add_argument("--sizes", type=int, nargs="+", help="item counts (default 10000 100000)")
    parser.add_argument("--calls", type=int, help="timed calls per op per store (default 1000)")
    args = parser.parse_args()
    sizes = args.sizes or ([10_000] if args.quick else [10_000, 100_000])
    calls = args.calls or (300 if args.quick else 1000)

    prepare_database()
    with tempfile.TemporaryDirectory() as tmp:
        configure(os.path.join(tmp, "store.sqlite3"))
        from langgraph.store.postgres import PostgresStore

        url = f"{PG_BASE_URL}/{DB_NAME}?options=-csearch_path%3D{PG_SCHEMA}"
        with PostgresStore.from_conn_string(url) as reference:
            reference.setup()
            stores = Stores(reference.conn)
            print(f"# Store benchmark: {calls} calls per op, sync API, one process, load {os.getloadavg()[0]:.2f}")
            for size in sizes:
                log(f"{size:,} items")
                stores.clear(reference.conn)
                rates = load(stores, size)
                report(size, measure(stores, size, calls), rates)
            print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
