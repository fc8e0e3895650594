"""Fixtures of the store suite.

`impl` runs a test against `DjangoStore` on SQLite and on PostgreSQL and against
LangGraph's own `PostgresStore` (the reference) on the test PostgreSQL database, in
a schema of its own (`pgstore`) emptied before each test. `mode` runs it through the
sync methods (on a worker thread, as LangGraph calls them) and through the async ones.
`make_store(**config)` builds the store under test wrapped in `Facade`, whose methods
are all awaitable whatever the mode, and which knows how to reach the implementation's
rows (to age an item past its TTL, read its expiry, sweep).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import psycopg
from psycopg.rows import tuple_row
import pytest
from django.conf import settings
from langgraph.store.postgres import PostgresStore

from checkpoints.connection import run
from store.store import DjangoStore

HAS_POSTGRES = "postgres" in settings.DATABASES
PG_SCHEMA = "pgstore"

IMPLS = ["sqlite", "postgres", "PostgresStore"]

def _store_db(databases):
    # Transactional: the stores are called from worker threads. `available_apps` limits
    # the flush after each test to the store's table: flushing every app's tables costs
    # about 0.7 s a test on PostgreSQL, which would make this suite take minutes.
    return pytest.mark.django_db(transaction=True, databases=databases, available_apps=["store"])


def pytest_collection_modifyitems(items):
    """Database access for the store tests: each `impl` only the database it uses
    (PostgresStore none through Django: it has its own connection)."""
    for item in items:
        if "tests/store" not in item.path.parent.as_posix() or item.get_closest_marker("django_db"):
            continue
        impl = getattr(item, "callspec", None) and item.callspec.params.get("impl")
        if impl == "PostgresStore":
            continue
        if impl == "sqlite":
            item.add_marker(_store_db(["default"]))
        elif impl == "postgres":
            item.add_marker(_store_db(["postgres"]))
        else:
            item.add_marker(_store_db("__all__"))


def _needs_postgres(impl: str):
    marks = []
    if impl != "sqlite" and not HAS_POSTGRES:
        marks.append(pytest.mark.skip(reason="needs PostgreSQL"))
    return pytest.param(impl, marks=marks, id=impl)


@pytest.fixture(params=[_needs_postgres(i) for i in IMPLS])
def impl(request):
    return request.param


@pytest.fixture(params=["sync", "async"])
def mode(request):
    return request.param


def pg_test_url(schema: str | None = None) -> str:
    db = settings.DATABASES["postgres"]
    url = f"postgresql://{db['USER'] or 'postgres'}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    if schema:
        url += f"?options=-csearch_path%3D{schema}"
    return url


@pytest.fixture(scope="session")
def reference_conn(django_db_setup, django_db_blocker):
    """One `PostgresStore` connection for the session, on the test database, with its
    tables (`store`, `store_migrations`) in their own schema."""
    if not HAS_POSTGRES:
        yield None
        return
    with django_db_blocker.unblock():
        with psycopg.connect(pg_test_url(), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
            conn.execute(f"CREATE SCHEMA {PG_SCHEMA}")
        with PostgresStore.from_conn_string(pg_test_url(PG_SCHEMA)) as store:
            store.setup()
            yield store.conn
            store.conn.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")


class Facade:
    """The store under test, every method awaitable."""

    def __init__(self, store, impl: str, mode: str):
        self.store = store
        self.impl = impl
        self.mode = mode

    @property
    def is_reference(self) -> bool:
        return self.impl == "PostgresStore"

    async def _call(self, name, *args, **kwargs):
        if self.mode == "async":
            return await getattr(self.store, "a" + name)(*args, **kwargs)
        return await asyncio.to_thread(getattr(self.store, name), *args, **kwargs)

    async def get(self, *a, **kw):
        return await self._call("get", *a, **kw)

    async def put(self, *a, **kw):
        return await self._call("put", *a, **kw)

    async def delete(self, *a, **kw):
        return await self._call("delete", *a, **kw)

    async def search(self, *a, **kw):
        return await self._call("search", *a, **kw)

    async def list_namespaces(self, *a, **kw):
        return await self._call("list_namespaces", *a, **kw)

    async def batch(self, ops):
        return await self._call("batch", list(ops))

    # -- reaching the rows ------------------------------------------------------

    async def _sql(self, sql: str, params=()):
        if self.is_reference:
            with self.store.conn.cursor(row_factory=tuple_row) as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []

        def query(cur):
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

        # Through the store's own helper, which gives the pooled connection back.
        return await asyncio.to_thread(run, self.store.using, query)

    def _where(self, namespace, key):
        column = "prefix" if self.is_reference else "namespace"
        table = "store" if self.is_reference else "lg_store_item"
        return table, f"{column} = %s AND key = %s", [".".join(namespace), key]

    async def set_expiry(self, namespace, key, when: datetime) -> None:
        table, where, params = self._where(namespace, key)
        value = when
        if not self.is_reference and self.store.dialect.vendor == "sqlite":
            value = self.store.dialect.ts(when)
        await self._sql(f"UPDATE {table} SET expires_at = %s WHERE {where}", [value, *params])

    async def age(self, namespace, key, minutes: float = 1) -> None:
        """Move the item's expiry into the past, as if its TTL had run out."""
        await self.set_expiry(namespace, key, datetime.now(timezone.utc) - timedelta(minutes=minutes))

    async def expires_at(self, namespace, key) -> datetime | None:
        table, where, params = self._where(namespace, key)
        rows = await self._sql(f"SELECT expires_at FROM {table} WHERE {where}", params)
        if not rows or rows[0][0] is None:
            return None
        value = rows[0][0]
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

    async def row_count(self) -> int:
        table = "store" if self.is_reference else "lg_store_item"
        return (await self._sql(f"SELECT count(*) FROM {table}"))[0][0]

    async def sweep(self) -> int:
        return await asyncio.to_thread(self.store.sweep_ttl)


@pytest.fixture
def make_store(impl, mode, reference_conn, request):
    """`make_store(index=..., ttl=...)` -> a `Facade` over a fresh store of `impl`."""
    if impl == "PostgresStore":
        reference_conn.execute(f"DELETE FROM {PG_SCHEMA}.store")

    def make(**config):
        if impl == "PostgresStore":
            store = PostgresStore(reference_conn, **config)
        else:
            store = DjangoStore(using="default" if impl == "sqlite" else "postgres", **config)
        return Facade(store, impl, mode)

    return make


@pytest.fixture
def differs_from_reference(impl, request):
    """`differs_from_reference("why")`: the case is expected to fail on PostgresStore
    (strict: if PostgresStore ever passes it, the note is stale)."""

    def mark(reason: str) -> None:
        if impl == "PostgresStore":
            request.applymarker(pytest.mark.xfail(strict=True, reason=reason))

    return mark
