"""SQLite plans of the reads: every blob and write is found by its primary key, so a
read costs the same at step 30 as at step 3,000."""

import pytest
from django.db import connections

from checkpoints import saver as saver_module
from checkpoints.saver import DjangoSaver

from .graphs import chat_graph

pytestmark = pytest.mark.django_db(transaction=True)


def _plans(monkeypatch, read) -> list[str]:
    captured = []
    real = saver_module._fetchall
    monkeypatch.setattr(
        saver_module, "_fetchall", lambda cur, sql, params: captured.append((sql, list(params))) or real(cur, sql, params)
    )
    read()
    assert captured
    with connections["default"].cursor() as cur:
        plans = []
        for sql, params in captured:
            cur.execute("EXPLAIN QUERY PLAN " + sql, params)
            plans.append("\n".join(row[-1] for row in cur.fetchall()))
    return plans


@pytest.mark.parametrize("read", ["get_tuple", "list"])
def test_reads_find_blobs_and_writes_by_primary_key(monkeypatch, read):
    assert connections["default"].vendor == "sqlite"
    saver = DjangoSaver(using="default", hot_tier=None, blob_store=None)
    graph = chat_graph(saver)
    config = {"configurable": {"thread_id": "plans"}}
    for turn in range(5):
        graph.invoke({"messages": [{"role": "user", "content": f"turn {turn}"}]}, config)

    def go():
        if read == "get_tuple":
            assert saver.get_tuple(config) is not None
        else:
            assert len(list(saver.list(config, limit=10))) == 10

    for plan in _plans(monkeypatch, go):
        assert "SEARCH b USING INDEX sqlite_autoindex_lg_checkpoint_blob_1 (thread_id=? AND checkpoint_ns=? AND channel=? AND version=?)" in plan, plan
        assert "(thread_id=? AND checkpoint_ns=? AND checkpoint_id=?)" in plan.split("SEARCH w")[1], plan
