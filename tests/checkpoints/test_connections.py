"""LangGraph calls the saver from a fresh thread pool on every invoke; the saver must
give pooled PostgreSQL connections back at the end of each call, or each dead worker
thread keeps one (the failure of `langgraph-checkpoint-django`: ~600 sessions for 100
invokes, then "too many clients")."""

import threading
import time

import psycopg
import pytest
from django.conf import settings
from django.db import connections

from checkpoints.saver import DjangoSaver

from .graphs import chat_graph
from .threads import in_fresh_thread

pytestmark = pytest.mark.skipif("postgres" not in settings.DATABASES, reason="needs PostgreSQL")


def _backend_pids(url: str, dbname: str, stop: threading.Event, seen: set, peak: list):
    with psycopg.connect(url, autocommit=True) as conn:
        own = conn.info.backend_pid
        while not stop.is_set():
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> %s", (dbname, own)
            ).fetchall()
            seen.update(pid for (pid,) in rows)
            peak[0] = max(peak[0], len(rows))
            time.sleep(0.002)


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_hundreds_of_invokes_keep_the_session_count_flat():
    alias = "postgres"
    db = settings.DATABASES[alias]
    pool_max = db["OPTIONS"]["pool"]["max_size"]
    url = f"postgresql://{db['USER'] or 'postgres'}@{db['HOST']}:{db['PORT']}/postgres"
    connections[alias].close()
    graph = chat_graph(DjangoSaver(using=alias))
    seen: set[int] = set()
    peak = [0]
    stop = threading.Event()
    watcher = threading.Thread(target=_backend_pids, args=(url, db["NAME"], stop, seen, peak))
    watcher.start()
    try:
        for i in range(200):
            graph.invoke(
                {"messages": [{"role": "user", "content": f"m{i}"}]},
                {"configurable": {"thread_id": f"conn-{i % 10}"}},
            )
    finally:
        stop.set()
        watcher.join()
    assert len(graph.get_state({"configurable": {"thread_id": "conn-3"}}).values["messages"]) == 40
    # Every session ever seen came from the pool, and the pool never grew past its size.
    assert len(seen) <= pool_max, f"{len(seen)} distinct sessions for 200 invokes"
    assert peak[0] <= pool_max


def _statements(cur) -> dict[str, int]:
    cur.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
    return dict(cur.fetchall())


@pytest.mark.django_db(transaction=True, databases="__all__")
@pytest.mark.parametrize("prepared", [True, False])
def test_hot_statements_are_prepared_on_the_server_once(prepared):
    """A put or a read is planned once per connection, not on every call (planning the
    put's upsert costs more than running it); `prepared_statements=False` (for a
    PgBouncer in transaction mode) prepares nothing."""
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.base.id import uuid6

    from checkpoints.connection import use_connection

    saver = DjangoSaver(using="postgres", hot_tier=None, blob_store=None, prepared_statements=prepared)
    config = {"configurable": {"thread_id": f"prep-{prepared}", "checkpoint_ns": ""}}
    version = None
    # Holding the connection keeps every saver call of this thread on one session.
    with use_connection("postgres") as conn:
        conn.ensure_connection()
        with conn.cursor() as cur:
            cur.execute("DEALLOCATE ALL")  # psycopg forgets its own cache on seeing this
        for i in range(6):
            version = saver.get_next_version(version, None)
            checkpoint = {
                **empty_checkpoint(), "id": str(uuid6(clock_seq=i)),
                "channel_values": {"messages": [f"m{n}" for n in range(i + 1)]},
                "channel_versions": {"messages": version},
            }
            config = saver.put(config, checkpoint, {"step": i}, {"messages": version})
            saver.put_writes(config, [("__interrupt__", "approve?")], task_id="t")
            assert saver.get_tuple(config).pending_writes == [("t", "__interrupt__", "approve?")]
        with conn.cursor() as cur:
            statements = _statements(cur)
    if not prepared:
        assert statements == {}
        return
    def calls(part):
        return [n for s, n in statements.items() if part in s]

    assert calls("INSERT INTO lg_checkpoint (") == [6], statements
    assert calls("INSERT INTO lg_checkpoint_write") == [6], statements
    assert calls("WITH page AS") == [6], statements
    assert saver.get_tuple(config).checkpoint["channel_values"]["messages"][-1] == "m5"


@pytest.mark.django_db(transaction=True, databases="__all__")
async def test_wide_puts_and_writes_are_not_reparsed_on_every_call(monkeypatch):
    """A put of many channels or a task of many writes passes psycopg's 50-parameter
    limit for caching a statement's placeholders (a five-channel put took 0.26 ms more
    to parse than to run); the hot statements arrive with PostgreSQL's own placeholders,
    so psycopg parses none of them, on the sync or the async path."""
    from asgiref.sync import sync_to_async
    from langgraph.checkpoint.base import empty_checkpoint
    from psycopg import _queries

    parsed = []
    real = _queries._query2pg_nocache
    monkeypatch.setattr(_queries, "_query2pg_nocache", lambda *a, **k: parsed.append(a[0][:40]) or real(*a, **k))
    monkeypatch.setattr(_queries, "_query2pg", lambda *a, **k: parsed.append(a[0][:40]) or real(*a, **k))
    channels = [f"field_{i}" for i in range(9)]
    writes = [(ch, {"value": i}) for i, ch in enumerate(channels)]

    async def wide(saver, thread_id, *, is_async):
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        versions = {ch: saver.get_next_version(None, None) for ch in channels}
        checkpoint = {
            **empty_checkpoint(),
            "channel_values": {ch: {"value": i, "items": list(range(i))} for i, ch in enumerate(channels)},
            "channel_versions": versions,
        }
        if is_async:
            config = await saver.aput(config, checkpoint, {"step": 0}, versions)
            await saver.aput_writes(config, writes, task_id="wide-task")
            return await saver.aget_tuple(config)
        config = await sync_to_async(saver.put)(config, checkpoint, {"step": 0}, versions)
        await sync_to_async(saver.put_writes)(config, writes, task_id="wide-task")
        return await sync_to_async(saver.get_tuple)(config)

    saver = DjangoSaver(using="postgres", hot_tier=None, blob_store=None)
    for is_async in (False, True):
        tup = await wide(saver, f"wide-{is_async}", is_async=is_async)
        assert tup.checkpoint["channel_values"]["field_8"] == {"value": 8, "items": list(range(8))}
        assert [(w[1], w[2]) for w in tup.pending_writes] == writes
    assert parsed == []


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_calls_recover_when_every_pooled_connection_was_dropped():
    """A PostgreSQL restart (or a failover) leaves every idle pooled connection dead; the
    saver's next calls discard them and succeed instead of failing one per connection."""
    from concurrent.futures import ThreadPoolExecutor

    alias = "postgres"
    db = settings.DATABASES[alias]
    saver = DjangoSaver(using=alias, hot_tier=None, blob_store=None)
    graph = chat_graph(saver)
    config = {"configurable": {"thread_id": "dropped"}}
    graph.invoke({"messages": [{"role": "user", "content": "before"}]}, config)
    # Several connections in the pool: concurrent reads from several threads.
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda _: saver.get_tuple(config), range(24)))
    url = f"postgresql://{db['USER'] or 'postgres'}@{db['HOST']}:{db['PORT']}/postgres"
    with psycopg.connect(url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (db["NAME"],),
        ).fetchone()[0]
    assert killed >= 2
    time.sleep(0.2)  # let the terminations land
    try:
        assert saver.get_tuple(config) is not None
        graph.invoke({"messages": [{"role": "user", "content": "after"}]}, config)
        messages = graph.get_state(config).values["messages"]
        assert [m["content"] for m in messages if m["role"] == "user"] == ["before", "after"]
    finally:
        connections[alias].close_pool()  # dead connections the saver never met stay idle


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_reads_stay_index_lookups_under_the_generic_plan():
    """After five calls a prepared read runs on PostgreSQL's generic plan, which cannot
    see its parameters. Planned as a plain join it hashed the whole blob table (20+ ms
    per `get_tuple` at 10,000 blobs); it must look up each channel's blob by key."""
    from langgraph.checkpoint.base import empty_checkpoint
    from langgraph.checkpoint.base.id import uuid6

    from checkpoints.connection import use_connection

    saver = DjangoSaver(using="postgres", hot_tier=None, blob_store=None)
    config = {"configurable": {"thread_id": "generic", "checkpoint_ns": ""}}
    with use_connection("postgres") as conn:
        conn.ensure_connection()
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO lg_checkpoint_blob (thread_id, checkpoint_ns, channel, version, type, blob) "
                "SELECT 'filler-' || (n / 20), '', 'c' || (n % 20), '1', 'bytes', '\\x00' "
                "FROM generate_series(1, 20000) n"
            )
            cur.execute("ANALYZE lg_checkpoint_blob")
            cur.execute("DEALLOCATE ALL")
        version = None
        for i in range(7):
            version = saver.get_next_version(version, None)
            checkpoint = {
                **empty_checkpoint(), "id": str(uuid6(clock_seq=i)),
                "channel_values": {"messages": [f"m{n}" for n in range(i + 1)], "step": i},
                "channel_versions": {"messages": version, "step": version},
            }
            config = saver.put(config, checkpoint, {"step": i}, {"messages": version, "step": version})
            assert saver.get_tuple(config).checkpoint["channel_values"]["step"] == i
            assert len(list(saver.list(config, limit=10))) == 1
        with conn.cursor() as cur:
            cur.execute(
                "SELECT name, generic_plans, parameter_types::text FROM pg_prepared_statements "
                "WHERE statement LIKE '%%WITH page AS%%'"
            )
            reads = cur.fetchall()
            assert len(reads) == 2, reads  # get_tuple by id and list's page
            for name, generic_plans, types in reads:
                assert generic_plans > 0, (name, generic_plans)  # planned once, then reused
                cur.execute("SET plan_cache_mode = force_generic_plan")
                args = ", ".join(["'generic'", "''", f"'{config['configurable']['checkpoint_id']}'"][: types.count(",") + 1])
                cur.execute(f"EXPLAIN EXECUTE {name}({args})")
                plan = "\n".join(r[0] for r in cur.fetchall())
                cur.execute("RESET plan_cache_mode")
                assert "Index Scan using lg_checkpoint_blob_pkey" in plan, plan
                assert "Seq Scan on lg_checkpoint_blob" not in plan and "Hash" not in plan, plan


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_thread_without_a_connection_borrows_one_from_the_pool(monkeypatch):
    """LangGraph's worker threads hold no Django connection: their calls run on one
    borrowed from the alias's pool, without Django's connect() and close() per call;
    the thread is left without a connection either way."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    saver = DjangoSaver(using="postgres", hot_tier=None, blob_store=None)
    config = {"configurable": {"thread_id": "borrow"}}
    graph = chat_graph(saver)
    connects = []
    real_connect = DatabaseWrapper.connect
    monkeypatch.setattr(DatabaseWrapper, "connect", lambda self: connects.append(self.alias) or real_connect(self))

    def invoke_and_read():
        graph.invoke({"messages": [{"role": "user", "content": "hi"}]}, config)
        tup = saver.get_tuple(config)
        return tup, connections["postgres"].connection

    tup, left = in_fresh_thread(invoke_and_read)
    assert [m["content"] for m in tup.checkpoint["channel_values"]["messages"]][0] == "hi"
    assert left is None
    assert connects == []


@pytest.mark.django_db(transaction=True, databases="__all__")
@pytest.mark.parametrize("path", ["borrowed", "django"])
def test_calls_one_at_a_time_stay_on_the_backend_used_last(path):
    """Once a burst grew the pool, worker threads calling one at a time keep to the
    connection given back last: psycopg_pool hands out the longest idle one, which sent
    each call to a backend gone cold since its last turn (a step 1.6 ms against 1.2).
    Both ways a call takes a connection: borrowed by the saver, or through Django's
    connect() (here because an execute wrapper must see the statement)."""
    conn = connections["postgres"]
    conn.close()  # the test's own connection goes back to the pool too
    pool = conn.pool
    pool.open()
    size = settings.DATABASES["postgres"]["OPTIONS"]["pool"]["max_size"]
    taken = [pool.getconn() for _ in range(size)]  # every connection the pool may hold
    marker = "SELECT 'idle'"
    pids = []
    for raw in taken:
        raw.autocommit = True
        raw.execute(marker)
        pids.append(raw.info.backend_pid)
    for raw in taken:
        pool.putconn(raw)
    saver = DjangoSaver(using="postgres", hot_tier=None, blob_store=None)

    def read(config):
        if path == "borrowed":
            return saver.get_tuple(config)
        with connections["postgres"].execute_wrapper(lambda execute, *args: execute(*args)):
            return saver.get_tuple(config)

    for i in range(size):
        config = {"configurable": {"thread_id": f"lifo-{i}"}}
        assert in_fresh_thread(lambda config=config: read(config)) is None
    with conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s) AND query <> %s", [pids, marker])
        ran = cur.fetchall()
    assert len(ran) == 1, f"{size} calls one after another ran on {len(ran)} backends"


def test_a_pool_keeping_idle_connections_otherwise_is_left_alone():
    """The most-recent-first order rides on psycopg_pool's private deque; a release
    without it keeps its own order rather than failing every call."""
    from checkpoints.connection import _most_recent_first

    class OtherPool:
        _pool = ["idle"]
        _lock = None

    pool = OtherPool()
    _most_recent_first(pool)
    assert pool._pool == ["idle"]


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_statements_still_reach_django_execute_wrappers():
    """An execute wrapper (an APM agent, a test's query blocker) sees the saver's
    statements: with one installed, calls keep to the thread's Django connection."""
    saver = DjangoSaver(using="postgres", hot_tier=None, blob_store=None)
    config = {"configurable": {"thread_id": "wrapped"}}
    seen = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql.split()[0])
        return execute(sql, params, many, context)

    def read():
        with connections["postgres"].execute_wrapper(wrapper):
            return saver.get_tuple(config)

    assert in_fresh_thread(read) is None
    assert seen == ["WITH"]


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_borrowed_connection_always_autocommits():
    """A pooled connection given back out of autocommit (by code outside the saver) is
    put back into autocommit before a saver statement runs on it, so a put is never
    left in a transaction that nobody commits."""
    from checkpoints.connection import _pool_connection

    conn = connections["postgres"]
    pool = conn.pool
    pool.open()
    size = settings.DATABASES["postgres"]["OPTIONS"]["pool"]["max_size"]
    taken = [pool.getconn() for _ in range(3)]
    for raw in taken:
        raw.autocommit = False
        pool.putconn(raw)
    for _ in range(size + 1):
        with _pool_connection(conn) as raw:
            assert raw.autocommit


def _waiting_on_a_lock(url: str, dbname: str) -> int:
    with psycopg.connect(url, autocommit=True) as admin:
        return admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", (dbname,)
        ).fetchone()[0]


def _wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


class _Race:
    """A thread with one checkpoint on PostgreSQL, and a late write for it (a put of a
    newer checkpoint, or pending writes) to run on a fresh thread."""

    def __init__(self, name: str, write: str) -> None:
        from langgraph.checkpoint.base import empty_checkpoint
        from langgraph.checkpoint.base.id import uuid6

        db = settings.DATABASES["postgres"]
        self.dbname = db["NAME"]
        self.url = f"postgresql://{db['USER'] or 'postgres'}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        self.saver = DjangoSaver(using="postgres", hot_tier=None, blob_store=None)
        self.thread, self.write = f"{name}-{write}", write
        self.head = self.saver.put(
            {"configurable": {"thread_id": self.thread, "checkpoint_ns": ""}},
            {**empty_checkpoint(), "id": str(uuid6(clock_seq=1))}, {"step": 0}, {},
        )
        self.late = {**empty_checkpoint(), "id": str(uuid6(clock_seq=2))}

    def waiting(self) -> int:
        return _waiting_on_a_lock(self.url, self.dbname)

    def start_write(self, pool):
        if self.write == "put":
            return pool.submit(in_fresh_thread, lambda: self.saver.put(self.head, self.late, {"step": 1}, {}))
        return pool.submit(
            in_fresh_thread, lambda: self.saver.put_writes(self.head, [("c", "late")], task_id="task")
        )

    def start_delete(self, pool):
        return pool.submit(in_fresh_thread, lambda: self.saver.delete_thread(self.thread))

    def assert_gone(self) -> None:
        from checkpoints.models import Checkpoint, CheckpointWrite, Thread

        for model in (Thread, Checkpoint, CheckpointWrite):
            assert not model.objects.using("postgres").filter(thread_id=self.thread).exists(), model


@pytest.mark.django_db(transaction=True, databases="__all__")
@pytest.mark.parametrize("write", ["put", "put_writes"])
def test_a_write_in_flight_when_its_thread_is_deleted_leaves_nothing(write):
    """A write past its gate when a delete commits must not outlive the delete (its
    statement's snapshot cannot see the tombstone). Held mid-statement by another
    session's uncommitted row with its key, the write keeps its gate's lock (a put on
    the thread row, writes on their checkpoint's row); the delete waits for it and then
    deletes what it wrote."""
    from concurrent.futures import ThreadPoolExecutor

    from checkpoints.saver import ThreadDeleted

    race = _Race("race", write)
    with psycopg.connect(race.url) as blocker:  # a transaction holding the key the write needs
        if write == "put":
            blocker.execute(
                "INSERT INTO lg_checkpoint (thread_id, checkpoint_ns, checkpoint_id, type, checkpoint, "
                "channel_versions, metadata, size, created_at) VALUES (%s, '', %s, 'x', '', '{}', '{}', 0, now())",
                (race.thread, race.late["id"]),
            )
        else:
            blocker.execute(
                "INSERT INTO lg_checkpoint_write (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, task_path, "
                "channel, type, blob) VALUES (%s, '', %s, 'task', 0, '', 'c', 'x', '')",
                (race.thread, race.head["configurable"]["checkpoint_id"]),
            )
        with ThreadPoolExecutor(2) as pool:
            try:
                writing = race.start_write(pool)
                _wait_until(lambda: race.waiting() == 1)  # the write, held mid-statement
                deleting = race.start_delete(pool)
                # The delete either waits for the write (two sessions waiting) or, without
                # the lock, has already committed.
                _wait_until(lambda: deleting.done() or race.waiting() == 2)
            finally:
                blocker.rollback()
            try:
                writing.result(timeout=10)
            except ThreadDeleted:
                pass
            deleting.result(timeout=10)
    race.assert_gone()


@pytest.mark.django_db(transaction=True, databases="__all__")
@pytest.mark.parametrize("write", ["put", "put_writes"])
def test_a_write_that_meets_a_delete_in_progress_is_refused(write):
    """The other order: a delete holds the thread row (held mid-transaction by another
    session's uncommitted tombstone) when a write arrives. A put waits at its gate, then
    finds the row its snapshot saw gone: `ThreadDeleted`, nothing written. Either way
    nothing of the thread is left."""
    from concurrent.futures import ThreadPoolExecutor

    from checkpoints.saver import ThreadDeleted

    race = _Race("race2", write)
    with psycopg.connect(race.url) as blocker:
        blocker.execute(
            "INSERT INTO lg_thread_tombstone (thread_id, deleted_before, deleted_at) VALUES (%s, '', now())",
            (race.thread,),
        )
        with ThreadPoolExecutor(2) as pool:
            try:
                deleting = race.start_delete(pool)
                _wait_until(lambda: race.waiting() == 1)  # the delete, holding the thread row
                writing = race.start_write(pool)
                # A put waits at its gate for the thread row; ordinary writes lock their
                # checkpoint's row, which the delete has not reached yet: they may land
                # first, and are deleted with the rest.
                _wait_until(lambda: race.waiting() == 2 or (write == "put_writes" and writing.done()))
            finally:
                blocker.rollback()
            deleting.result(timeout=10)
            if write == "put":
                with pytest.raises(ThreadDeleted):
                    writing.result(timeout=10)
            else:
                try:
                    writing.result(timeout=10)
                except ThreadDeleted:
                    pass
    race.assert_gone()


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_errors_on_the_bare_cursors_are_djangos():
    """The hot statements skip Django's cursor wrapper (held connection) or Django's
    connection (borrowed one); their errors still arrive as Django's exceptions."""
    from django.db import ProgrammingError

    from checkpoints.connection import run

    def bad(cur):
        cur.execute("SELECT no_such_column FROM lg_thread WHERE thread_id = %s", ["x"])

    def borrowed():
        with pytest.raises(ProgrammingError):
            run("postgres", bad, prepared=True)
        return True

    assert in_fresh_thread(borrowed)
    connections["postgres"].ensure_connection()
    with pytest.raises(ProgrammingError):
        run("postgres", bad, prepared=True)
    assert run("postgres", lambda cur: (cur.execute("SELECT %s::int", [7]), cur.fetchall())[1]) == [(7,)]
