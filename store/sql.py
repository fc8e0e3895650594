"""SQL of the store, one class per database vendor.

The dialects differ where the databases do: PostgreSQL reads the value with `->` and
`jsonb_typeof` and compares jsonb with jsonb; SQLite reads it with `json_type` and
`json_extract` and compares canonical JSON text (values are stored with sorted keys,
see `codec.dump_json`). PostgreSQL runs several write statements in one round trip;
SQLite runs them one by one inside `BEGIN IMMEDIATE`.

Every value is a parameter, filter keys included (CVE-2025-67644 was a filter key
pasted into SQL). The only text interpolated into SQL is placeholders, the fixed
column lists and comparison operators taken from `codec.RANGE_OPS`.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from .codec import RANGE_OPS, Condition

T = "lg_store_item"
COLS = "namespace, key, value, created_at, updated_at, expires_at, ttl_minutes, embedding"
ITEM_COLS = "namespace, key, value, created_at, updated_at, ttl_minutes"

LIVE = "(expires_at IS NULL OR expires_at > %s)"
NS_RANGE = "namespace >= %s AND namespace < %s AND (namespace = %s OR namespace >= %s)"

SEARCH_SQL = f"""
SELECT {ITEM_COLS} FROM {T} WHERE {{where}}
ORDER BY updated_at DESC, namespace, key LIMIT %s OFFSET %s"""

# Semantic search reads only the keys and vectors of the candidates; the values of the
# page are fetched afterwards by key.
CANDIDATES_SQL = f"""
SELECT namespace, key, embedding FROM {T} WHERE {{where}} ORDER BY namespace, key"""

UPSERT_TAIL = """
ON CONFLICT (namespace, key) DO UPDATE SET
    value = excluded.value, updated_at = excluded.updated_at,
    expires_at = excluded.expires_at, ttl_minutes = excluded.ttl_minutes,
    embedding = excluded.embedding"""

# Distinct namespaces by a loose index scan: one index seek per namespace, not one row
# per item. Matching, truncation and paging then happen in `codec.select_namespaces`.
NAMESPACES_SQL = f"""
WITH RECURSIVE ns(namespace) AS (
    SELECT (SELECT namespace FROM {T} WHERE {{first}} ORDER BY namespace LIMIT 1)
    UNION ALL
    SELECT (SELECT i.namespace FROM {T} i WHERE i.namespace > ns.namespace {{next}}
            ORDER BY i.namespace LIMIT 1)
    FROM ns WHERE ns.namespace IS NOT NULL
)
SELECT namespace FROM ns WHERE namespace IS NOT NULL {{live}}"""

# A correlated scalar subquery, not EXISTS: PostgreSQL turns EXISTS into a semi join
# that reads every row of the table; this probes each namespace by its key and stops at
# its first live item.
NAMESPACE_LIVE = (
    f"AND (SELECT 1 FROM {T} e WHERE e.namespace = ns.namespace "
    "AND (e.expires_at IS NULL OR e.expires_at > %s) LIMIT 1) IS NOT NULL"
)


# Row-count chunks keep every statement under SQLite's 32,766 and PostgreSQL's 65,535
# parameters.
CHUNK = 500
# Candidate rows scored at a time by semantic search.
SCORE_CHUNK = 2048


def placeholders(n: int) -> str:
    return ", ".join(["%s"] * n)


# Keys SQLite can address with a quoted JSON path: no quote, backslash or control
# character, which JSON text escapes and a path label cannot.
_PLAIN_KEY = re.compile(r'[^"\\\x00-\x1f]+')


class Dialect:
    vendor: str
    batches_statements: bool
    json_param: str

    def ts(self, value: datetime | None) -> Any:
        return value

    def load_ts(self, value: Any) -> datetime:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value

    def pairs_in(self, n: int) -> str:
        """The rows of n (namespace, key) pairs of parameters, as an OR of primary-key
        probes: both planners use the index for each term, where SQLite scans the
        table for `(namespace, key) IN (VALUES ...)`."""
        return "(" + " OR ".join(["(namespace = %s AND key = %s)"] * n) + ")"

    def upsert_sql(self, n: int) -> str:
        row = f"(%s, %s, {self.json_param}, %s, %s, %s, %s, %s)"
        return f"INSERT INTO {T} ({COLS}) VALUES {', '.join([row] * n)}{UPSERT_TAIL}"

    def delete_sql(self, n: int) -> str:
        return f"DELETE FROM {T} WHERE {self.pairs_in(n)}"

    def get_sql(self, n: int, *, live: bool) -> str:
        return f"SELECT {ITEM_COLS} FROM {T} WHERE {self.pairs_in(n)}" + (f" AND {LIVE}" if live else "")

    def refresh_sql(self, n: int, *, live: bool) -> str:
        return (
            f"UPDATE {T} SET expires_at = %s WHERE ttl_minutes = %s AND {self.pairs_in(n)}"
            + (f" AND {LIVE}" if live else "")
        )

    def namespaces_sql(self, *, bounded: bool, live: bool) -> str:
        first = "namespace >= %s AND namespace < %s" if bounded else "1 = 1"
        nxt = "AND i.namespace < %s" if bounded else ""
        return NAMESPACES_SQL.format(first=first, next=nxt, live=NAMESPACE_LIVE if live else "")

    def condition_sql(self, c: Condition) -> tuple[str, list[Any]]:
        raise NotImplementedError

    # The sweep deletes a chunk at a time, each its own short transaction, so a large
    # sweep never holds the write lock (SQLite) or many row locks (PostgreSQL) for long.
    # The chunk is found on the expiry index and deleted by physical row id: a join back
    # on (namespace, key) makes PostgreSQL hash the whole table.
    sweep_sql: str


class PostgresDialect(Dialect):
    vendor = "postgresql"
    batches_statements = True
    json_param = "%s::jsonb"
    sweep_sql = f"""
DELETE FROM {T} WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM {T} WHERE expires_at < %s LIMIT %s))"""

    def condition_sql(self, c: Condition) -> tuple[str, list[Any]]:
        if c.op == "$eq":
            return "value -> %s = %s::jsonb", [c.key, c.operand_json]
        if c.op == "$ne":
            return "value -> %s <> %s::jsonb", [c.key, c.operand_json]
        cmp = RANGE_OPS[c.op]
        if c.kind == "number":
            # jsonb orders numbers numerically; the type test keeps strings, booleans
            # and objects (which jsonb orders after numbers) out.
            return (
                f"(jsonb_typeof(value -> %s) = 'number' AND value -> %s {cmp} %s::jsonb)",
                [c.key, c.key, c.operand_json],
            )
        return (
            f"(jsonb_typeof(value -> %s) = 'string' AND (value ->> %s) COLLATE \"C\" {cmp} %s)",
            [c.key, c.key, c.operand],
        )


class SqliteDialect(Dialect):
    vendor = "sqlite"
    batches_statements = False
    json_param = "%s"
    sweep_sql = f"""
DELETE FROM {T} WHERE rowid IN (
    SELECT rowid FROM {T} WHERE expires_at < %s LIMIT %s)"""

    def ts(self, value: datetime | None) -> Any:
        # Django's own text form (UTC, no offset), so rows written here and by the ORM
        # compare correctly as text.
        if value is None:
            return None
        return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")

    def _field(self, key: str) -> tuple[str, str, list[Any]]:
        """SQL for the JSON type and value of `value[key]`, and the parameter of each."""
        if _PLAIN_KEY.fullmatch(key):
            path = f'$."{key}"'
            return "json_type(value, %s)", "json_extract(value, %s)", [path]
        # A key a path cannot spell: look it up by name among the top-level members.
        lookup = f"FROM json_each({T}.value) WHERE key = %s"
        return f"(SELECT type {lookup})", f"(SELECT value {lookup})", [key]

    def _eq(self, c: Condition, type_: str, val: str, p: list[Any]) -> tuple[str, list[Any]]:
        if c.kind == "null":
            return f"{type_} = 'null'", p
        if c.kind == "bool":
            return f"{type_} = '{'true' if c.operand else 'false'}'", p
        if c.kind == "number":
            return f"({type_} IN ('integer', 'real') AND {val} = %s)", [*p, *p, c.operand]
        if c.kind == "string":
            return f"({type_} = 'text' AND {val} = %s)", [*p, *p, c.operand]
        json_type = "array" if c.kind == "array" else "object"
        return f"({type_} = '{json_type}' AND {val} = %s)", [*p, *p, c.operand_json]

    def condition_sql(self, c: Condition) -> tuple[str, list[Any]]:
        type_, val, p = self._field(c.key)
        if c.op == "$eq":
            return self._eq(c, type_, val, p)
        if c.op == "$ne":
            eq, params = self._eq(c, type_, val, p)
            return f"({type_} IS NOT NULL AND NOT {eq})", [*p, *params]
        cmp = RANGE_OPS[c.op]
        types = "('integer', 'real')" if c.kind == "number" else "('text')"
        return f"({type_} IN {types} AND {val} {cmp} %s)", [*p, *p, c.operand]


DIALECTS = {"postgresql": PostgresDialect(), "sqlite": SqliteDialect()}
