"""Bad input to DjangoStore: each a clear error, raised before any statement runs, and
filter keys that only ever travel as parameters."""

from __future__ import annotations

import pytest
from django.db import connections
from langgraph.store.base import GetOp, InvalidNamespaceError, ListNamespacesOp, MatchCondition, PutOp, SearchOp

from store.codec import InvalidValueError
from store.store import DjangoStore

from .django_only import impl  # noqa: F401 - fixtures


@pytest.fixture
def store(impl):
    return DjangoStore(using="default" if impl == "sqlite" else "postgres")


@pytest.fixture
def statements(store):
    """Every statement the store sends on this thread: (sql, params)."""
    seen: list[tuple[str, object]] = []

    def record(execute, sql, params, many, context):
        seen.append((sql, params))
        return execute(sql, params, many, context)

    with connections[store.using].execute_wrapper(record):
        yield seen


@pytest.mark.parametrize(
    "namespace,message",
    [
        (("",), "cannot be empty strings"),
        (("a.b",), "cannot contain periods"),
        (("langgraph", "x"), 'cannot be "langgraph"'),
        (("a", 3), "must be strings"),
        ((), "cannot be empty"),
    ],
)
def test_bad_namespaces_say_what_is_wrong(store, statements, namespace, message):
    with pytest.raises(InvalidNamespaceError, match=message):
        store.put(namespace, "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError, match=message):
        store.batch([PutOp(("ok",), "k", {"v": 1}), PutOp(namespace, "k", {"v": 1})])
    assert statements == []


@pytest.mark.parametrize(
    "value,message",
    [
        ({"o": object()}, "must be JSON-serialisable: Object of type object"),
        ({"n": float("nan")}, "must be JSON-serialisable: Out of range float"),
        ({"s": "a\x00"}, "cannot contain NUL"),
        ({"s": "\ud800"}, "must be JSON-serialisable"),
        ({1: "a", "b": 2}, "must be JSON-serialisable"),
        (["k", "v"], "must be dicts, got list"),
    ],
)
def test_bad_values_say_what_is_wrong_and_which_item(store, statements, value, message):
    with pytest.raises(InvalidValueError, match=message) as info:
        store.put(("ns",), "item-key", value)
    assert "item-key" in str(info.value)
    assert statements == []


@pytest.mark.parametrize(
    "op,message",
    [
        (SearchOp(("a",), filter={"x": {"$in": [1]}}), r"Unsupported filter operator '\$in' for key 'x'; use a value or one of \$eq"),
        (SearchOp(("a",), filter={"x": {"$gt": [1]}}), r"\$gt on 'x' compares numbers or strings"),
        (SearchOp(("a",), filter={"x": {"$lt": None}}), r"\$lt on 'x' compares numbers or strings"),
        (SearchOp(("a",), filter={1: "x"}), "Filter keys must be strings"),
        (SearchOp(("a",), filter={"x": float("inf")}), "JSON-serialisable"),
        (SearchOp(("a",), filter=["x"]), "filter must be a dict"),
        (SearchOp(("a",), limit=-1), "limit must be a non-negative integer"),
        (SearchOp(("a",), offset=1.5), "offset must be a non-negative integer"),
        (GetOp(("a",), 7), "Store keys must be strings"),
        (GetOp(("a",), "a\x00"), "NUL"),
        (PutOp(("a",), "k", {"v": 1}, ttl="soon"), "ttl must be a number of minutes"),
        (ListNamespacesOp(match_conditions=(MatchCondition("middle", ("a",)),)), "Unknown match_type"),
        (ListNamespacesOp(max_depth=-1), "max_depth must be a non-negative integer"),
        ("not an op", "Unknown operation type"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_bad_ops_fail_the_batch_before_any_statement(store, statements, op, message):
    with pytest.raises(InvalidValueError, match=message):
        store.batch([PutOp(("fine",), "k", {"v": 1}), op])
    assert statements == []
    assert store.get(("fine",), "k") is None


HOSTILE_KEYS = ["'); DELETE FROM lg_store_item; --", 'a"b', "x' OR 1=1 --", "$.a", "a\\b"]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_filter_keys_travel_only_as_parameters(store, statements, key):
    store.put(("h",), "k", {key: 5})
    statements.clear()
    for filter in ({key: 5}, {key: {"$ne": 4}}, {key: {"$gte": 5}}, {key: {"$lt": "z"}}):
        store.search(("h",), filter=filter)
    assert len(statements) == 4
    for sql, params in statements:
        assert key not in sql
        assert any(key in str(p) for p in params)
    assert [i.key for i in store.search(("h",), filter={key: {"$gte": 5}})] == ["k"]


def test_an_index_config_without_dims_is_refused():
    with pytest.raises(InvalidValueError, match="dims"):
        DjangoStore(index={"embed": lambda texts: [[0.0] for _ in texts]})
    with pytest.raises(InvalidValueError, match="distance_type"):
        DjangoStore(index={"dims": 2, "embed": lambda texts: [], "distance_type": "hamming"})
