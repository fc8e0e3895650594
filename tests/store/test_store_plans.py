"""Every read of DjangoStore is an index search, never a scan of the table: the
namespace prefix is a range of the primary key, gets are primary-key probes, the
namespace listing seeks from namespace to namespace, the sweep reads the expiry index.

On PostgreSQL the plans are taken with `enable_seqscan = off`: on a small test table
the planner rightly prefers a sequential scan, so a plain EXPLAIN would prove nothing.
"""

from __future__ import annotations

import json

import pytest
from django.db import connections
from langgraph.store.base import GetOp

from checkpoints.connection import run
from store.services import store_sweep_expired
from store.store import DjangoStore

from .conftest import HAS_POSTGRES
from .test_store_search import DIMS, embed


@pytest.fixture(params=["sqlite", "postgres"])
def alias(request):
    if request.param == "postgres" and not HAS_POSTGRES:
        pytest.skip("needs PostgreSQL")
    return "default" if request.param == "sqlite" else "postgres"


def captured(alias, fn) -> list[tuple[str, list]]:
    seen = []

    def record(execute, sql, params, many, context):
        seen.append((sql, list(params or [])))
        return execute(sql, params, many, context)

    with connections[alias].execute_wrapper(record):
        fn()
    return [(sql, params) for sql, params in seen if sql.lstrip().upper().startswith(("SELECT", "WITH", "DELETE", "UPDATE"))]


def scans(alias: str, sql: str, params: list) -> list[str]:
    """The table scans in the plan of one statement."""

    def explain(cur):
        if connections[alias].vendor == "postgresql":
            cur.execute("SET enable_seqscan = off")
            try:
                cur.execute("EXPLAIN (FORMAT JSON) " + sql, params)
                plan = cur.fetchone()[0]
            finally:
                cur.execute("RESET enable_seqscan")
            plan = json.loads(plan) if isinstance(plan, str) else plan
            found = []

            def walk(node):
                kind = node.get("Node Type")
                if kind == "Seq Scan" or (
                    # An index read without a condition reads the whole index.
                    kind in ("Index Scan", "Index Only Scan", "Bitmap Index Scan")
                    and "Index Cond" not in node
                ):
                    found.append(f"{kind} on {node.get('Relation Name') or node.get('Index Name')}")
                for child in node.get("Plans", ()):
                    walk(child)

            walk(plan[0]["Plan"])
            return found
        cur.execute("EXPLAIN QUERY PLAN " + sql.replace("%s", "?"), params)
        # "SCAN lg_store_item" (or its aliases i, e) without "USING ... INDEX" reads the
        # whole table; "SCAN ns" and "SCAN CONSTANT ROW" are the CTE and a literal.
        return [
            d for d in (row[3] for row in cur.fetchall())
            if d.split(" ")[:2] in (["SCAN", "lg_store_item"], ["SCAN", "i"], ["SCAN", "e"]) and "INDEX" not in d
        ]

    return run(alias, explain)


def test_reads_and_sweeps_use_indexes(alias):
    store = DjangoStore(using=alias, index={"dims": DIMS, "embed": embed, "fields": ["text"]})
    for ns in [("users", "u1"), ("users", "u2"), ("users", "u2", "deep"), ("other",)]:
        for i in range(5):
            store.put(ns, f"k{i}", {"text": f"note {i}", "i": i}, ttl=10)
    calls = {
        "get": lambda: store.get(("users", "u1"), "k1"),
        "get-many": lambda: store.batch([GetOp(("users", "u1"), "k1"), GetOp(("users", "u2"), "k2")]),
        "search-prefix": lambda: store.search(("users", "u2")),
        "search-filter": lambda: store.search(("users",), filter={"i": {"$gte": 2}}),
        "search-query": lambda: store.search(("users",), query="note 3", filter={"i": 3}),
        "namespaces": lambda: store.list_namespaces(prefix=("users",)),
        "sweep": lambda: store_sweep_expired(using=alias),
    }
    for name, call in calls.items():
        statements = captured(alias, call)
        assert statements, name
        for sql, params in statements:
            assert scans(alias, sql, params) == [], (name, sql)
