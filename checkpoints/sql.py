"""SQL of the saver, one class per database vendor.

The two dialects differ only where the databases do: PostgreSQL reads JSON with
`jsonb_each_text`, tests containment with `@>` and writes a put (blobs, checkpoint,
thread row) as one statement of data-modifying CTEs, so it is one round trip, one
implicit transaction and one prepared plan (see `checkpoints.connection`); SQLite reads
JSON with `json_each` and is in-process, so it runs statements one by one inside
`BEGIN IMMEDIATE`.

Every value is a parameter. The only text interpolated into SQL is placeholders and
the fixed column lists below.
"""

from __future__ import annotations

import functools
import re

T = "lg_thread"
C = "lg_checkpoint"
B = "lg_checkpoint_blob"
W = "lg_checkpoint_write"
TB = "lg_thread_tombstone"

CHECKPOINT_COLS = (
    "thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, "
    "type, checkpoint, channel_versions, metadata, size, created_at"
)
BLOB_COLS = "thread_id, checkpoint_ns, channel, version, type, blob, blob_key"
WRITE_COLS = "thread_id, checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, blob"
THREAD_COLS = (
    "thread_id, status, graph_id, metadata, head_checkpoint_id, checkpoint_count, "
    "bytes_stored, created_at, updated_at"
)

# Thread row upsert of a put. `updated_at` is indexed (the console sorts by it), so on
# PostgreSQL it moves at most once a second: an update that changes no indexed column
# is HOT (no new index entries), which halves the server time of a put in a busy run.
# The head only moves forward, and only a put at or past the head changes the status.
# LangGraph may save a step's writes before the checkpoint they belong to (durability
# "async"); a special write moves the head to its checkpoint, so an interrupt or error
# already recorded against this very checkpoint is kept over the status the checkpoint
# itself implies. ON CONFLICT DO UPDATE reads the latest committed row, so this holds
# for a put_writes committed concurrently too.
THREAD_UPSERT_TAIL = """
ON CONFLICT (thread_id) DO UPDATE SET
    checkpoint_count = {T}.checkpoint_count + excluded.checkpoint_count,
    bytes_stored = {T}.bytes_stored + excluded.bytes_stored,
    updated_at = {touched},
    status = CASE
        WHEN excluded.status = '' THEN {T}.status
        WHEN excluded.head_checkpoint_id = {T}.head_checkpoint_id
            AND {T}.status IN ('error', 'interrupted') THEN {T}.status
        WHEN excluded.head_checkpoint_id >= {T}.head_checkpoint_id THEN excluded.status
        ELSE {T}.status END,
    head_checkpoint_id = CASE WHEN excluded.head_checkpoint_id > {T}.head_checkpoint_id
        THEN excluded.head_checkpoint_id ELSE {T}.head_checkpoint_id END,
    graph_id = CASE WHEN excluded.graph_id <> '' THEN excluded.graph_id ELSE {T}.graph_id END,
    metadata = {merge}
""".format

# Checkpoints first: deleting one waits for a write in flight against it (its gate's
# lock), and the statements after it then see what that write stored.
DELETE_THREAD_SQL = (
    f"DELETE FROM {C} WHERE thread_id = %s",
    f"DELETE FROM {W} WHERE thread_id = %s",
    f"DELETE FROM {B} WHERE thread_id = %s",
    f"DELETE FROM {T} WHERE thread_id = %s",
)

# A deleted thread's tombstone: later writes for checkpoints created before the delete
# are refused (see `checkpoints.models.ThreadTombstone`). The boundary only grows.
TOMBSTONE_SQL = f"""
INSERT INTO {TB} (thread_id, deleted_before, deleted_at) VALUES (%s, %s, %s)
ON CONFLICT (thread_id) DO UPDATE SET deleted_at = excluded.deleted_at,
    deleted_before = CASE WHEN excluded.deleted_before > {TB}.deleted_before
        THEN excluded.deleted_before ELSE {TB}.deleted_before END"""
SELECT_MAX_CHECKPOINT_SQL = f"SELECT max(checkpoint_id) FROM {C} WHERE thread_id = %s"
DEAD_SQL = f"SELECT 1 FROM {TB} WHERE thread_id = %s AND deleted_before >= %s"
LIFT_TOMBSTONE_SQL = f"DELETE FROM {TB} WHERE thread_id = %s"

COPY_THREAD_SQL = (
    f"""INSERT INTO {B} ({BLOB_COLS})
        SELECT %s, checkpoint_ns, channel, version, type, blob, blob_key FROM {B} WHERE thread_id = %s
        ON CONFLICT DO NOTHING""",
    f"""INSERT INTO {C} ({CHECKPOINT_COLS})
        SELECT %s, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type,
               checkpoint, channel_versions, metadata, size, created_at
        FROM {C} WHERE thread_id = %s
        ON CONFLICT DO NOTHING""",
    f"""INSERT INTO {W} ({WRITE_COLS})
        SELECT %s, checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, blob
        FROM {W} WHERE thread_id = %s
        ON CONFLICT DO NOTHING""",
    f"""INSERT INTO {T} ({THREAD_COLS})
        SELECT %s, status, graph_id, metadata, head_checkpoint_id, checkpoint_count,
               bytes_stored, created_at, updated_at
        FROM {T} WHERE thread_id = %s
        ON CONFLICT DO NOTHING""",
)

SELECT_RUN_CHECKPOINTS_SQL = f"""
SELECT thread_id, checkpoint_ns, checkpoint_id, channel_versions FROM {C}
WHERE run_id IN ({{in_}}) AND run_id IS NOT NULL"""

SELECT_NS_HEADS_SQL = f"""
SELECT checkpoint_ns, max(checkpoint_id) FROM {C} WHERE thread_id = %s GROUP BY checkpoint_ns"""

SELECT_NS_VERSIONS_SQL = f"""
SELECT checkpoint_id, channel_versions FROM {C} WHERE thread_id = %s AND checkpoint_ns = %s"""

SELECT_HEAD_SQL = f"""
SELECT checkpoint_id, metadata FROM {C}
WHERE thread_id = %s AND checkpoint_ns = %s ORDER BY checkpoint_id DESC LIMIT 1"""

SELECT_THREAD_BLOB_KEYS_SQL = f"""
SELECT DISTINCT blob_key FROM {B} WHERE thread_id = %s AND blob_key IS NOT NULL"""

SELECT_REFERENCED_KEYS_SQL = f"""
SELECT DISTINCT blob_key FROM {B} WHERE blob_key IN ({{in_}})"""

SELECT_BLOB_VERSIONS_SQL = f"""
SELECT channel, version, type FROM {B}
WHERE thread_id = %s AND checkpoint_ns = %s AND channel IN ({{in_}})"""

# Rebuilds the thread row's totals after rows were deleted by run or by prune.
REFRESH_THREAD_SQL = f"""
UPDATE {T} SET
    checkpoint_count = (SELECT count(*) FROM {C} WHERE {C}.thread_id = {T}.thread_id),
    head_checkpoint_id = COALESCE((SELECT max(checkpoint_id) FROM {C}
        WHERE {C}.thread_id = {T}.thread_id AND {C}.checkpoint_ns = ''), ''),
    bytes_stored = COALESCE((SELECT sum(size) FROM {C} WHERE {C}.thread_id = {T}.thread_id), 0)
        + COALESCE((SELECT sum(length(blob)) FROM {B} WHERE {B}.thread_id = {T}.thread_id), 0)
        + COALESCE((SELECT sum(length(blob)) FROM {W} WHERE {W}.thread_id = {T}.thread_id), 0)
WHERE thread_id = %s"""

DELETE_EMPTY_THREAD_SQL = f"DELETE FROM {T} WHERE thread_id = %s AND checkpoint_count = 0"


def placeholders(n: int) -> str:
    return ", ".join(["%s"] * n)


_FORMAT_PLACEHOLDER = re.compile(r"%%|%s")


def _placeholders_as(sql: str, placeholder) -> str:
    """`sql` with `placeholder(n)` for its n-th `%s` (from 1) and `%` for `%%`."""
    count = 0

    def sub(m: re.Match) -> str:
        nonlocal count
        if m.group() == "%%":
            return "%"
        count += 1
        return placeholder(count)

    return _FORMAT_PLACEHOLDER.sub(sub, sql)


@functools.lru_cache(maxsize=1024)
def numbered(sql: str) -> bytes:
    """`sql` with PostgreSQL's own placeholders ($1, $2...) for `%s`, for psycopg's raw
    cursors. psycopg parses a statement's `%s` on every execute once it has more than 50
    parameters (0.26 ms for a put of five channels on the 2-CPU bench machine): a put
    of four channels or more, a task of five writes or more; converted here once per text."""
    return _placeholders_as(sql, lambda n: f"${n}").encode()


@functools.lru_cache(maxsize=512)
def qmarked(sql: str) -> str:
    """`sql` with SQLite's `?` for `%s`, converted once per text (Django converts on
    every execute, with a regular expression over the whole statement)."""
    return _placeholders_as(sql, lambda n: "?")


class Dialect:
    """Statements whose text depends on the database."""

    vendor: str
    one_statement_writes: bool  # a put or put_writes is one statement (gate included)
    json_pairs: str  # table function yielding (key, value) text pairs of a JSON column
    metadata_merge: str
    json_param = "%s"
    touched: str
    # Locks the thread rows a delete is about to remove (PostgreSQL; SQLite writers
    # take turns, so nothing can write between its gate and its commit).
    lock_threads_sql: str | None = None

    # put_writes: adds the writes' bytes; only special writes (error, interrupt, resume)
    # change the status, and only at or past the head. Writes may commit before their
    # checkpoint (durability "async"), so they move the head forward too.
    writes_thread_tail = f"""
ON CONFLICT (thread_id) DO UPDATE SET
    bytes_stored = {T}.bytes_stored + excluded.bytes_stored,
    updated_at = excluded.updated_at,
    status = CASE WHEN %s <> '' AND excluded.head_checkpoint_id >= {T}.head_checkpoint_id
        THEN %s ELSE {T}.status END,
    head_checkpoint_id = CASE WHEN excluded.head_checkpoint_id > {T}.head_checkpoint_id
        THEN excluded.head_checkpoint_id ELSE {T}.head_checkpoint_id END"""

    @functools.lru_cache(maxsize=512)  # noqa: B019 - built on every read otherwise; dialects are singletons
    def select_tuples_sql(self, where: str, *, limit: int) -> str:
        """One statement returning a page of checkpoints with their blobs and writes.

        Rows: (kind, thread_id, checkpoint_ns, checkpoint_id, name, type, data, extra1,
        extra2, idx), kind `c` for a checkpoint (name = parent id, extra1 = versions,
        extra2 = metadata), `b` for a blob (name = channel, extra1 = blob storage key
        when offloaded, extra2 = version), `w` for a write (name = channel,
        extra1 = task_path, extra2 = task_id).
        """
        page = f"""SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type,
                       checkpoint, channel_versions, metadata
                FROM {C} WHERE {where}
                ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC"""
        # A literal, not a parameter: a prepared statement's generic plan would
        # otherwise guess a tenth of the thread, not one row, for `get_tuple`.
        page += f" LIMIT {int(limit)}"
        return f"""
WITH page AS {self.materialized} ({page})
SELECT 'c', p.thread_id, p.checkpoint_ns, p.checkpoint_id, p.parent_checkpoint_id, p.type,
       p.checkpoint, {self.text('p.channel_versions')}, {self.text('p.metadata')},
       CAST(NULL AS INTEGER)
FROM page p
UNION ALL
SELECT 'b', p.thread_id, p.checkpoint_ns, p.checkpoint_id, b.channel, b.type, b.blob,
       b.blob_key, b.version, NULL
FROM page p CROSS JOIN {self.json_pairs.format(col='p.channel_versions')} v
{self.per_row_join(B, 'b', f"b.thread_id = p.thread_id AND b.checkpoint_ns = p.checkpoint_ns AND b.channel = v.key AND b.version = {self.text('v.value')}")}
UNION ALL
SELECT 'w', w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.channel, w.type, w.blob,
       w.task_path, w.task_id, w.idx
FROM page p {self.per_row_join(W, 'w', "w.thread_id = p.thread_id AND w.checkpoint_ns = p.checkpoint_ns AND w.checkpoint_id = p.checkpoint_id")}"""

    materialized = "MATERIALIZED"

    def per_row_join(self, table: str, alias: str, on: str) -> str:
        """Join `table` to the rows before it by a primary-key lookup per row."""
        return f"JOIN {table} {alias} ON {on}"

    def text(self, expr: str) -> str:
        return f"CAST({expr} AS TEXT)"

    def metadata_filter(self, filter: dict) -> tuple[list[str], list]:
        raise NotImplementedError

    @functools.lru_cache(maxsize=256)  # noqa: B019 - hot path; dialects are singletons
    def insert_blobs_sql(self, n: int) -> str:
        rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * n)
        return f"INSERT INTO {B} ({BLOB_COLS}) VALUES {rows} ON CONFLICT DO NOTHING"

    @staticmethod
    def writes_conflict(replace: bool) -> str:
        action = (
            "DO UPDATE SET channel = excluded.channel, type = excluded.type, "
            "blob = excluded.blob, task_path = excluded.task_path"
            if replace
            else "DO NOTHING"
        )
        return f"ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) {action}"

    def insert_writes_sql(self, n: int, *, replace: bool) -> str:
        rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * n)
        return f"INSERT INTO {W} ({WRITE_COLS}) VALUES {rows} {self.writes_conflict(replace)}"

    def chain_sql(self) -> str:
        """The parent chain of one checkpoint, itself first: (id, versions, type, body)."""
        return f"""
WITH RECURSIVE chain(checkpoint_id, parent_checkpoint_id, channel_versions, type, checkpoint, depth) AS (
    SELECT checkpoint_id, parent_checkpoint_id, channel_versions, type, checkpoint, 0
    FROM {C} WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = %s
    UNION ALL
    SELECT c.checkpoint_id, c.parent_checkpoint_id, c.channel_versions, c.type, c.checkpoint, chain.depth + 1
    FROM {C} c JOIN chain ON c.thread_id = %s AND c.checkpoint_ns = %s
        AND c.checkpoint_id = chain.parent_checkpoint_id
)
SELECT checkpoint_id, {self.text('channel_versions')}, type, checkpoint FROM chain ORDER BY depth"""

    def history_rows_sql(self, n_ids: int, n_channels: int, n_seeds: int) -> str:
        """Writes of the given channels at the given checkpoints, and the seed blobs."""
        parts = []
        if n_ids and n_channels:
            parts.append(
                f"SELECT 'w', checkpoint_id, channel, type, blob, task_id, task_path, idx FROM {W} "
                f"WHERE thread_id = %s AND checkpoint_ns = %s AND channel IN ({placeholders(n_channels)}) "
                f"AND checkpoint_id IN ({placeholders(n_ids)})"
            )
        for _ in range(n_seeds):
            parts.append(
                f"SELECT 'b', blob_key, channel, type, blob, NULL, version, NULL FROM {B} "
                "WHERE thread_id = %s AND checkpoint_ns = %s AND channel = %s AND version = %s"
            )
        return " UNION ALL ".join(parts)


class PostgresDialect(Dialect):
    vendor = "postgresql"
    one_statement_writes = True
    touched = (
        f"CASE WHEN excluded.updated_at > {T}.updated_at + interval '1 second' "
        f"THEN excluded.updated_at ELSE {T}.updated_at END"
    )
    json_param = "%s::jsonb"
    json_pairs = "jsonb_each_text({col})"
    metadata_merge = f"{T}.metadata || excluded.metadata"

    def text(self, expr: str) -> str:
        return f"{expr}::text"

    def per_row_join(self, table: str, alias: str, on: str) -> str:
        # A prepared statement's generic plan cannot see the page's LIMIT and guesses
        # 49 checkpoints of 100 channels each, for which hashing the whole blob table
        # looks cheaper than lookups: 20+ ms per read once the table grows. The
        # fenced (OFFSET 0) lateral subquery can only run as an index lookup per row.
        return f"CROSS JOIN LATERAL (SELECT * FROM {table} {alias} WHERE {on} OFFSET 0) {alias}"

    def metadata_filter(self, filter: dict) -> tuple[list[str], list]:
        import json

        return ["metadata @> %s::jsonb"], [json.dumps(filter)]

    # Every write statement of a put or put_writes opens with this gate and ends by
    # returning it: a thread deleted after the checkpoint was created writes nothing.
    # The statement's snapshot cannot see a delete that commits while it runs, so the
    # gate also locks a row the delete must lock too, before anything is written: a
    # write already past the gate makes the delete wait and is deleted with the rest; a
    # write that reaches the lock after a delete committed finds the row it saw gone,
    # and writes nothing. A statement that updates the thread row locks that row, with
    # the update's own lock (the update then takes no second one); ordinary writes take
    # a key-share lock on their checkpoint's row, which the tasks of a step share and
    # which the next checkpoint's put, updating the thread row, never meets.
    @staticmethod
    def live(*, updates_thread: bool) -> str:
        """Params: `live_params(...)` with the same `updates_thread`."""
        if updates_thread:
            row = f"{T} WHERE thread_id = %s"
            lock = "NO KEY UPDATE"
        else:
            row = f"{C} WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = %s"
            lock = "KEY SHARE"
        return f"""lk AS (SELECT 1 FROM {row} FOR {lock}),
live AS (SELECT NOT EXISTS ({DEAD_SQL})
    AND (EXISTS (SELECT 1 FROM lk) OR NOT EXISTS (SELECT 1 FROM {row})) AS ok)"""

    @staticmethod
    def live_params(thread_id: str, ns: str, checkpoint_id: str, *, updates_thread: bool) -> list[str]:
        row = [thread_id] if updates_thread else [thread_id, ns, checkpoint_id]
        return [*row, thread_id, checkpoint_id, *row]

    # A delete locks the thread rows before it deletes anything, and deletes checkpoints
    # before writes (`DELETE_THREAD_SQL`): it waits for the puts and the writes in flight.
    lock_threads_sql = f"SELECT thread_id FROM {T} WHERE thread_id IN ({{in_}}) ORDER BY thread_id FOR UPDATE"

    @functools.lru_cache(maxsize=256)  # noqa: B019 - hot path; dialects are singletons
    def put_sql(self, n_blobs: int) -> str:
        """Blobs, checkpoint and thread row in one statement; returns `ok`, false when
        the thread was deleted after this checkpoint was created (nothing written).
        Params: the gate's (`live_params`), the blob rows, the checkpoint row, the
        thread row.

        `xmax = 0` tells a fresh insert from an update, so re-putting a checkpoint
        does not count it twice.
        """
        blobs = ""
        if n_blobs:
            rows = ", ".join(["(%s, %s, %s, %s, %s, %s::bytea, %s)"] * n_blobs)
            blobs = f"""blobs AS (
    INSERT INTO {B} ({BLOB_COLS}) SELECT v.* FROM (VALUES {rows}) AS v, live WHERE live.ok
    ON CONFLICT DO NOTHING),
"""
        return f"""WITH {self.live(updates_thread=True)},
{blobs}ins AS (
    INSERT INTO {C} ({CHECKPOINT_COLS})
    SELECT %s, %s, %s, %s, %s, %s, %s::bytea, %s::jsonb, %s::jsonb, %s, %s FROM live WHERE live.ok
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET
        type = excluded.type, checkpoint = excluded.checkpoint,
        channel_versions = excluded.channel_versions, metadata = excluded.metadata,
        run_id = excluded.run_id, size = excluded.size
    RETURNING (xmax = 0) AS inserted
),
t AS (
INSERT INTO {T} ({THREAD_COLS})
SELECT %s, %s, %s, %s::jsonb, %s, CASE WHEN ins.inserted THEN 1 ELSE 0 END, %s, %s, %s
FROM ins
{THREAD_UPSERT_TAIL(T=T, merge=self.metadata_merge, touched=self.touched)})
SELECT ok FROM live"""

    @functools.lru_cache(maxsize=256)  # noqa: B019 - hot path; dialects are singletons
    def put_writes_sql(self, n: int, *, replace: bool, with_thread: bool) -> str:
        """Writes (and, for special writes, the thread row) in one statement; returns
        `ok` like `put_sql`. Params: the gate's (`live_params`), the write rows, then the
        thread row's."""
        rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s::bytea)"] * n)
        thread = ""
        if with_thread:
            thread = f""",
t AS (INSERT INTO {T} ({THREAD_COLS})
    SELECT %s, %s, '', '{{}}'::jsonb, %s, 0, %s, %s, %s FROM live WHERE live.ok{self.writes_thread_tail})"""
        return f"""WITH {self.live(updates_thread=with_thread)},
w AS (INSERT INTO {W} ({WRITE_COLS}) SELECT v.* FROM (VALUES {rows}) AS v, live WHERE live.ok
    {self.writes_conflict(replace)}){thread}
SELECT ok FROM live"""


class SqliteDialect(Dialect):
    vendor = "sqlite"
    one_statement_writes = False
    touched = "excluded.updated_at"
    json_pairs = "json_each({col})"
    metadata_merge = f"json_patch({T}.metadata, excluded.metadata)"

    def per_row_join(self, table: str, alias: str, on: str) -> str:
        # SQLite keeps the tables of a CROSS JOIN in the order written. With a plain
        # JOIN it put the blob table outside `json_each`: every blob of the thread was
        # read and matched against the versions, a read growing with the thread (the
        # statement of a get_tuple took 0.08 ms at 30 steps and 1.10 ms at 300; by
        # primary key 0.03 and 0.07).
        return f"CROSS JOIN {table} {alias} ON {on}"

    def metadata_filter(self, filter: dict) -> tuple[list[str], list]:
        import json

        clauses, params = [], []
        for key, value in filter.items():
            # Keys are validated by the saver; the path is still a parameter.
            clauses.append("json_extract(metadata, %s) IS json_extract(%s, '$')")
            params += [f'$."{key}"', json.dumps(value)]
        return clauses, params

    # A put's first statement: a new checkpoint of a live thread. Nothing inserted means
    # the thread was deleted or the checkpoint is there already (told apart afterwards),
    # so the common put is one statement fewer. Params: the row, then the gate's.
    insert_checkpoint_sql = f"""
INSERT INTO {C} ({CHECKPOINT_COLS})
SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s WHERE NOT EXISTS ({DEAD_SQL})
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO NOTHING"""

    @functools.lru_cache(maxsize=256)  # noqa: B019 - hot path; dialects are singletons
    def gated_writes_sql(self, n: int, *, replace: bool) -> str:
        """Writes, unless the thread was deleted. Params: the rows, then the gate's."""
        rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * n)
        return (
            f"INSERT INTO {W} ({WRITE_COLS}) SELECT * FROM (VALUES {rows}) WHERE NOT EXISTS ({DEAD_SQL}) "
            + self.writes_conflict(replace)
        )

    insert_thread_sql = (
        f"INSERT INTO {T} ({THREAD_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        + THREAD_UPSERT_TAIL(T=T, merge=metadata_merge, touched=touched)
    )
    writes_thread_sql = (
        f"INSERT INTO {T} ({THREAD_COLS}) VALUES (%s, %s, '', '{{}}', %s, 0, %s, %s, %s)"
        + Dialect.writes_thread_tail
    )
    upsert_checkpoint_sql = f"""
INSERT INTO {C} ({CHECKPOINT_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET
    type = excluded.type, checkpoint = excluded.checkpoint,
    channel_versions = excluded.channel_versions, metadata = excluded.metadata,
    run_id = excluded.run_id, size = excluded.size"""


DIALECTS = {"postgresql": PostgresDialect(), "sqlite": SqliteDialect()}
