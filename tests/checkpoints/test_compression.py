"""Large values are compressed with lz4 on PostgreSQL (migration 0008)."""

import importlib

import pytest
from django.conf import settings
from django.db import connections
from langgraph.checkpoint.base import empty_checkpoint

from checkpoints.saver import DjangoSaver

pytestmark = [
    pytest.mark.skipif("postgres" not in settings.DATABASES, reason="needs PostgreSQL"),
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

migration = importlib.import_module("checkpoints.migrations.0008_lz4_compression")


def test_large_columns_are_lz4():
    with connections["postgres"].cursor() as cur:
        if not migration.lz4_available(cur):
            pytest.skip("this PostgreSQL is built without lz4")
        for table, column in migration.COLUMNS:
            cur.execute(
                "SELECT attcompression FROM pg_attribute WHERE attrelid = %s::regclass AND attname = %s",
                [table, column],
            )
            assert cur.fetchone()[0] == "l", (table, column)


def test_a_large_value_is_stored_lz4_and_reads_back():
    saver = DjangoSaver(using="postgres", hot_tier=None, blob_store=None)
    value = " ".join(f"word{i % 50}" for i in range(4000))  # ~28 kB, compressible
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"notes": value}
    checkpoint["channel_versions"] = {"notes": saver.get_next_version(None, None)}
    config = {"configurable": {"thread_id": "lz4-t", "checkpoint_ns": ""}}
    stored = saver.put(config, checkpoint, {}, checkpoint["channel_versions"])
    with connections["postgres"].cursor() as cur:
        if not migration.lz4_available(cur):
            pytest.skip("this PostgreSQL is built without lz4")
        cur.execute(
            "SELECT pg_column_compression(blob), length(blob), pg_column_size(blob) "
            "FROM lg_checkpoint_blob WHERE thread_id = 'lz4-t'"
        )
        method, length, size = cur.fetchone()
    assert method == "lz4"
    assert size < length / 4
    assert saver.get_tuple(stored).checkpoint["channel_values"]["notes"] == value


class _Cursor:
    def __init__(self, row):
        self.row = row

    def execute(self, sql, params=None):
        pass

    def fetchone(self):
        return self.row


@pytest.mark.parametrize(
    ("row", "expected"), [((True,), True), ((False,), False), (None, False)], ids=["lz4", "pglz-only", "pre-14"]
)
def test_migration_applies_lz4_only_where_the_server_has_it(row, expected):
    assert migration.lz4_available(_Cursor(row)) is expected
