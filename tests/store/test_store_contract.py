"""The store contract, op by op: every case runs against `DjangoStore` on SQLite and on
PostgreSQL and against LangGraph's `PostgresStore`, through the sync and the async
methods. Where `DjangoStore` deliberately differs from `PostgresStore`, the case says
why with `differs_from_reference`, and is a strict expected failure on the reference.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from langgraph.store.base import (
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchItem,
    SearchOp,
)

# What a store may raise for a value it cannot store: DjangoStore raises a ValueError
# before any I/O; PostgresStore a TypeError from json.dumps or the server's DataError.
VALUE_ERRORS = (ValueError, TypeError, psycopg.DataError)


def keys(items) -> list[str]:
    return [i.key for i in items]


async def put_all(s, items) -> None:
    for namespace, key, value in items:
        await s.put(namespace, key, value)


# -- put, get, delete ---------------------------------------------------------------


async def test_put_then_get_returns_the_item(make_store):
    s = make_store()
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    await s.put(("users", "u1"), "prefs", {"theme": "dark", "n": 1})
    item = await s.get(("users", "u1"), "prefs")
    assert isinstance(item, Item)
    assert item.namespace == ("users", "u1")
    assert item.key == "prefs"
    assert item.value == {"theme": "dark", "n": 1}
    assert item.created_at == item.updated_at
    assert item.created_at.tzinfo is not None
    assert before < item.created_at < datetime.now(timezone.utc) + timedelta(seconds=5)


async def test_get_of_a_missing_item_is_none(make_store):
    s = make_store()
    await s.put(("a",), "k", {"v": 1})
    assert await s.get(("a",), "other") is None
    assert await s.get(("b",), "k") is None
    assert await s.get(("a", "k"), "k") is None


async def test_put_replaces_the_value_and_keeps_created_at(make_store):
    s = make_store()
    await s.put(("a",), "k", {"v": 1, "old": True})
    first = await s.get(("a",), "k")
    await asyncio.sleep(0.01)
    await s.put(("a",), "k", {"v": 2})
    second = await s.get(("a",), "k")
    assert second.value == {"v": 2}
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at


async def test_delete_removes_the_item_and_missing_deletes_are_fine(make_store):
    s = make_store()
    await s.put(("a",), "k", {"v": 1})
    await s.put(("a",), "keep", {"v": 2})
    await s.delete(("a",), "k")
    await s.delete(("a",), "never-there")
    await s.delete(("nowhere",), "k")
    assert await s.get(("a",), "k") is None
    assert (await s.get(("a",), "keep")).value == {"v": 2}


VALUES = [
    {},
    {"text": "héllo wörld ✓ 日本語", "emoji": "🙂"},
    {"nested": {"list": [1, 2.5, None, True, {"deep": ["x"]}], "empty": {}}},
    {"big": 2**70, "neg": -(2**40), "float": 1e-300, "zero": 0.0},
    {"a.b": 1, 'quo"te': 2, "back\\slash": 3, "new\nline": 4, "": 5, "$eq": 6},
    {"sql": "'); DROP TABLE store; --", "text_with_backslash_u": "\\u0000"},
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
async def test_values_round_trip(make_store, value):
    s = make_store()
    await s.put(("v",), "k", value)
    assert (await s.get(("v",), "k")).value == value
    assert (await s.search(("v",)))[0].value == value


async def test_keys_and_labels_with_like_and_regex_metacharacters(make_store):
    s = make_store()
    odd = ["%", "_", "a_b", "x%y", "^$", "(", "[", "\\", "*", "sp ace", "ü"]
    for label in odd:
        await s.put(("odd", label), label, {"label": label})
    for label in odd:
        assert (await s.get(("odd", label), label)).value == {"label": label}
        assert keys(await s.search(("odd", label))) == [label]
    assert sorted(await s.list_namespaces(prefix=("odd",))) == sorted(("odd", x) for x in odd)


# -- batch ----------------------------------------------------------------------------


async def test_batch_returns_one_result_per_op_and_reads_see_the_store_before_its_writes(make_store):
    s = make_store()
    await s.put(("b",), "existing", {"v": 0})
    results = await s.batch(
        [
            PutOp(("b",), "new", {"v": 1}),
            GetOp(("b",), "new"),
            GetOp(("b",), "existing"),
            SearchOp(("b",)),
            ListNamespacesOp(),
            PutOp(("b",), "existing", None),
        ]
    )
    assert len(results) == 6
    assert results[0] is None and results[5] is None
    assert results[1] is None
    assert results[2].value == {"v": 0}
    assert keys(results[3]) == ["existing"]
    assert results[4] == [("b",)]
    assert await s.get(("b",), "existing") is None
    assert (await s.get(("b",), "new")).value == {"v": 1}


async def test_batch_puts_to_one_key_the_last_wins(make_store):
    s = make_store()
    await s.batch(
        [
            PutOp(("b",), "k", {"v": 1}),
            PutOp(("b",), "k", {"v": 2}),
            PutOp(("b",), "gone", {"v": 1}),
            PutOp(("b",), "gone", None),
            PutOp(("b",), "back", None),
            PutOp(("b",), "back", {"v": 3}),
        ]
    )
    assert (await s.get(("b",), "k")).value == {"v": 2}
    assert await s.get(("b",), "gone") is None
    assert (await s.get(("b",), "back")).value == {"v": 3}


async def test_batch_of_many_gets_across_namespaces(make_store):
    s = make_store()
    await s.batch([PutOp(("n", str(i % 3)), f"k{i}", {"i": i}) for i in range(30)])
    ops = [GetOp(("n", str(i % 3)), f"k{i}") for i in range(30)] + [GetOp(("n", "0"), "k1")]
    results = await s.batch(ops)
    assert [r.value["i"] for r in results[:30]] == list(range(30))
    assert results[30] is None


async def test_empty_batch(make_store):
    s = make_store()
    assert await s.batch([]) == []


# -- search -----------------------------------------------------------------------------


async def test_search_prefix_matches_whole_labels(make_store):
    s = make_store()
    await put_all(
        s,
        [
            (("docs",), "root", {}),
            (("docs", "a"), "child", {}),
            (("docs", "a", "b"), "grandchild", {}),
            (("docsx",), "sibling", {}),
            (("doc",), "shorter", {}),
            (("docs-a",), "dash", {}),
        ],
    )
    assert sorted(keys(await s.search(("docs",)))) == ["child", "grandchild", "root"]
    assert sorted(keys(await s.search(("docs", "a")))) == ["child", "grandchild"]
    assert keys(await s.search(("docs", "a", "b"))) == ["grandchild"]
    assert await s.search(("docs", "b")) == []
    assert len(await s.search((), limit=100)) == 6


async def test_search_prefix_labels_are_literal_not_like_patterns(make_store):
    s = make_store()
    await put_all(s, [(("user_1",), "a", {}), (("userX1",), "b", {}), (("user%",), "c", {}), (("userzz",), "d", {})])
    assert keys(await s.search(("user_1",))) == ["a"]
    assert keys(await s.search(("user%",))) == ["c"]


async def test_search_orders_by_updated_at_newest_first_and_pages(make_store):
    s = make_store()
    for i in range(7):
        await s.put(("p",), f"k{i}", {"i": i})
    await s.put(("p",), "k2", {"i": 2, "touched": True})
    order = ["k2", "k6", "k5", "k4", "k3", "k1", "k0"]
    found = await s.search(("p",), limit=10)
    assert keys(found) == order
    assert all(isinstance(i, SearchItem) and i.score is None for i in found)
    assert keys(await s.search(("p",))) == order  # default limit 10
    assert keys(await s.search(("p",), limit=3)) == order[:3]
    assert keys(await s.search(("p",), limit=3, offset=3)) == order[3:6]
    assert keys(await s.search(("p",), limit=3, offset=6)) == order[6:]
    assert await s.search(("p",), limit=3, offset=10) == []


async def test_search_with_a_query_but_no_index_is_a_plain_search(make_store):
    s = make_store()
    await s.put(("q",), "k", {"text": "anything"})
    found = await s.search(("q",), query="unrelated words")
    assert keys(found) == ["k"] and found[0].score is None


FILTER_ITEMS = [
    ("s1", {"color": "red", "size": 3, "tags": ["a", "b"], "flag": True, "none": None, "obj": {"x": 1, "y": [2]}}),
    ("s2", {"color": "blue", "size": 7, "tags": ["b"], "flag": False, "none": 1, "obj": {"y": [2], "x": 1}}),
    ("s3", {"color": "green", "size": 5.5, "tags": [], "flag": True}),
    ("s4", {"color": "Red", "label": "5", "other": 1}),
]


@pytest.mark.parametrize(
    "filter,expected",
    [
        ({"color": "red"}, ["s1"]),
        ({"color": {"$eq": "red"}}, ["s1"]),
        ({"size": 3}, ["s1"]),
        ({"size": 3.0}, ["s1"]),
        ({"size": 5.5}, ["s3"]),
        ({"label": "5"}, ["s4"]),
        ({"flag": True}, ["s1", "s3"]),
        ({"flag": False}, ["s2"]),
        ({"none": None}, ["s1"]),
        ({"tags": ["a", "b"]}, ["s1"]),
        ({"tags": []}, ["s3"]),
        ({"obj": {"$eq": {"x": 1, "y": [2]}}}, ["s1", "s2"]),
        ({"color": "red", "size": 3}, ["s1"]),
        ({"color": "red", "size": 4}, []),
        ({"missing": "x"}, []),
        ({"color": {"$ne": "red"}}, ["s2", "s3", "s4"]),
        ({"other": {"$ne": 2}}, ["s4"]),
        ({"flag": {"$ne": True}}, ["s2"]),
        ({"color": {"$gt": "green"}}, ["s1"]),
        ({"color": {"$gte": "green"}}, ["s1", "s3"]),
        ({"color": {"$lt": "blue"}}, ["s4"]),
        ({"color": {"$lte": "blue"}}, ["s2", "s4"]),
        ({"color": {"$gt": "a", "$lt": "c"}}, ["s2"]),
        ({"size": {"$gt": 4}}, ["s2", "s3"]),
        ({"size": {"$gte": 3, "$lt": 6}}, ["s1", "s3"]),
        ({"size": {"$lte": 5.5}}, ["s1", "s3"]),
        ({"color": {}}, ["s1", "s2", "s3", "s4"]),
    ],
    ids=lambda v: str(v),
)
async def test_search_filters(make_store, filter, expected):
    s = make_store()
    for key, value in FILTER_ITEMS:
        await s.put(("f",), key, value)
    assert sorted(keys(await s.search(("f",), filter=filter))) == expected


async def test_range_filters_compare_numbers_as_numbers(make_store, differs_from_reference):
    differs_from_reference("PostgresStore compares `value->>key` as text: '10' < '9'")
    s = make_store()
    for n in (2, 9, 10, 100, "5", "99"):
        await s.put(("n",), f"k{n}", {"n": n})
    assert sorted(keys(await s.search(("n",), filter={"n": {"$gt": 9}}))) == ["k10", "k100"]
    assert sorted(keys(await s.search(("n",), filter={"n": {"$lt": 10}}))) == ["k2", "k9"]
    # A number is compared with numbers only, a string with strings only.
    assert sorted(keys(await s.search(("n",), filter={"n": {"$gt": "1"}}))) == ["k5", "k99"]


async def test_filter_keys_are_top_level_and_never_sql(make_store):
    s = make_store()
    hostile = [
        "a.b",
        "'); DROP TABLE lg_store_item; --",
        "x' OR '1'='1",
        'we"ird',
        "back\\slash",
        "new\nline",
        "$.path",
        "",
    ]
    await s.put(("h",), "flat", {k: "hit" for k in hostile})
    await s.put(("h",), "nested", {"a": {"b": "hit"}})
    for key in hostile:
        assert keys(await s.search(("h",), filter={key: "hit"})) == ["flat"], key
        assert keys(await s.search(("h",), filter={key: {"$gte": "hit"}})) == ["flat"], key
        assert keys(await s.search(("h",), filter={key: {"$ne": "miss"}})) == ["flat"], key
    assert await s.row_count() == 2


async def test_search_filters_and_prefix_combine_with_paging(make_store):
    s = make_store()
    for i in range(12):
        await s.put(("c", "even" if i % 2 == 0 else "odd"), f"k{i:02}", {"i": i, "kind": "x" if i < 8 else "y"})
    found = await s.search(("c",), filter={"kind": "x"}, limit=3, offset=1)
    assert keys(found) == ["k06", "k05", "k04"]
    found = await s.search(("c", "even"), filter={"i": {"$gte": 4}, "kind": "x"}, limit=10)
    assert keys(found) == ["k06", "k04"]


# -- list_namespaces -------------------------------------------------------------------

NAMESPACES = [
    ("a",),
    ("a", "b"),
    ("a", "b", "c"),
    ("a", "c", "c"),
    ("ab", "x"),
    ("users", "u1", "memories"),
    ("users", "u2", "memories"),
    ("users", "u2", "prefs"),
    ("z", "v1"),
]


async def _put_namespaces(s):
    await s.batch([PutOp(ns, "k", {"ns": list(ns)}) for ns in NAMESPACES])


async def test_list_namespaces_all_in_order(make_store):
    s = make_store()
    await _put_namespaces(s)
    assert await s.list_namespaces() == sorted(NAMESPACES, key=".".join)


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({"prefix": ("a",)}, [("a",), ("a", "b"), ("a", "b", "c"), ("a", "c", "c")]),
        ({"prefix": ("a", "b")}, [("a", "b"), ("a", "b", "c")]),
        ({"prefix": ("a", "*", "c")}, [("a", "b", "c"), ("a", "c", "c")]),
        ({"prefix": ("*", "u2")}, [("users", "u2", "memories"), ("users", "u2", "prefs")]),
        ({"suffix": ("memories",)}, [("users", "u1", "memories"), ("users", "u2", "memories")]),
        ({"suffix": ("*", "c")}, [("a", "b", "c"), ("a", "c", "c")]),
        ({"suffix": ("c",)}, [("a", "b", "c"), ("a", "c", "c")]),
        ({"prefix": ("users",), "suffix": ("prefs",)}, [("users", "u2", "prefs")]),
        ({"prefix": ("users",), "max_depth": 2}, [("users", "u1"), ("users", "u2")]),
        ({"max_depth": 1}, [("a",), ("ab",), ("users",), ("z",)]),
        ({"prefix": ("a",), "max_depth": 2}, [("a",), ("a", "b"), ("a", "c")]),
        ({"prefix": ("nothing",)}, []),
        ({"prefix": ("a", "b", "c", "d")}, []),
        ({"limit": 3}, [("a",), ("a", "b"), ("a", "b", "c")]),
        ({"limit": 2, "offset": 3}, [("a", "c", "c"), ("ab", "x")]),
        ({"max_depth": 1, "offset": 2}, [("users",), ("z",)]),
    ],
    ids=lambda v: str(v),
)
async def test_list_namespaces_matches(make_store, kwargs, expected):
    s = make_store()
    await _put_namespaces(s)
    assert await s.list_namespaces(**kwargs) == expected


async def test_list_namespaces_with_match_conditions_given_to_batch(make_store):
    s = make_store()
    await _put_namespaces(s)
    op = ListNamespacesOp(
        match_conditions=(
            MatchCondition("prefix", ("users",)),
            MatchCondition("suffix", ("memories",)),
        ),
        max_depth=None,
        limit=10,
    )
    assert (await s.batch([op]))[0] == [("users", "u1", "memories"), ("users", "u2", "memories")]


async def test_list_namespaces_forgets_emptied_namespaces(make_store):
    s = make_store()
    await s.put(("gone",), "k", {})
    await s.put(("kept",), "k", {})
    await s.delete(("gone",), "k")
    assert await s.list_namespaces() == [("kept",)]


# -- bad input: a clear error and nothing written -----------------------------------------

BAD_NAMESPACES = [
    pytest.param(("",), id="empty-label"),
    pytest.param(("a", ""), id="empty-inner-label"),
    pytest.param(("a.b",), id="dot"),
    pytest.param(("ok", "a.b"), id="inner-dot"),
    pytest.param(("langgraph",), id="reserved-root"),
    pytest.param(("langgraph", "x"), id="reserved-root-deep"),
    pytest.param(("a", 1), id="non-str"),
    pytest.param((), id="empty"),
]


@pytest.mark.parametrize("namespace", BAD_NAMESPACES)
async def test_put_to_a_bad_namespace_raises_and_writes_nothing(make_store, namespace):
    s = make_store()
    with pytest.raises(InvalidNamespaceError):
        await s.put(namespace, "k", {"v": 1})
    assert await s.row_count() == 0


@pytest.mark.parametrize("label", ["", "a.b", 7])
async def test_reads_with_bad_labels_raise(make_store, label):
    s = make_store()
    with pytest.raises(InvalidNamespaceError):
        await s.get(("ok", label), "k")
    with pytest.raises(InvalidNamespaceError):
        await s.search(("ok", label))
    with pytest.raises(InvalidNamespaceError):
        await s.list_namespaces(prefix=("ok", label))
    with pytest.raises(InvalidNamespaceError):
        await s.delete(("ok", label), "k")


async def test_a_bad_label_in_a_batch_fails_the_whole_batch(make_store):
    s = make_store()
    with pytest.raises(InvalidNamespaceError):
        await s.batch([PutOp(("fine",), "k", {"v": 1}), PutOp(("a.b",), "k", {"v": 1})])
    assert await s.row_count() == 0


@pytest.mark.parametrize("namespace", [("langgraph", "x"), ()], ids=["reserved-root", "empty"])
async def test_batch_puts_get_the_namespace_checks_of_put(make_store, differs_from_reference, namespace):
    differs_from_reference("PostgresStore checks only labels for ops given to batch()")
    s = make_store()
    with pytest.raises(InvalidNamespaceError):
        await s.batch([PutOp(namespace, "k", {"v": 1})])
    assert await s.row_count() == 0


BAD_VALUES = [
    pytest.param({"obj": object()}, id="object"),
    pytest.param({"when": datetime(2020, 1, 1)}, id="datetime"),
    pytest.param({"nan": float("nan")}, id="nan"),
    pytest.param({"inf": float("inf")}, id="inf"),
    pytest.param({"nul": "a\x00b"}, id="nul"),
    pytest.param("not a dict", id="str"),
    pytest.param(["a"], id="list"),
]


@pytest.mark.parametrize("value", BAD_VALUES)
async def test_a_value_that_is_not_a_json_object_raises_and_writes_nothing(make_store, value):
    s = make_store()
    await s.put(("v",), "existing", {"v": 1})
    with pytest.raises(VALUE_ERRORS):
        await s.put(("v",), "k", value)
    with pytest.raises(VALUE_ERRORS):
        await s.batch([PutOp(("v",), "other", {"fine": True}), PutOp(("v",), "k", value)])
    assert await s.row_count() == 1
    assert (await s.get(("v",), "existing")).value == {"v": 1}


@pytest.mark.parametrize(
    "filter",
    [{"a": {"$in": [1]}}, {"a": {"$regex": "x"}}, {"a": {"nested": 1}}],
    ids=["$in", "$regex", "nested-dict"],
)
async def test_an_unknown_filter_operator_raises(make_store, filter):
    s = make_store()
    await s.put(("f",), "k", {"a": 1})
    with pytest.raises(ValueError):
        await s.search(("f",), filter=filter)
    with pytest.raises(ValueError):
        await s.batch([SearchOp(("f",), filter=filter), PutOp(("f",), "k2", {"a": 2})])
    assert await s.row_count() == 1


# -- TTL -------------------------------------------------------------------------------

TTL = {"default_ttl": None, "refresh_on_read": True, "omit_expired": True}


def _close(a: datetime, b: datetime, seconds: float = 5) -> bool:
    return abs((a - b).total_seconds()) < seconds


async def test_an_expired_item_is_invisible_before_the_sweep_and_gone_after(make_store):
    s = make_store(ttl=TTL)
    await s.put(("t",), "old", {"v": 1}, ttl=5)
    await s.put(("t", "sub"), "old2", {"v": 1}, ttl=5)
    await s.put(("t",), "fresh", {"v": 2}, ttl=5)
    await s.put(("t",), "forever", {"v": 3})
    await s.age(("t",), "old")
    await s.age(("t", "sub"), "old2")
    assert await s.get(("t",), "old") is None
    assert await s.get(("t", "sub"), "old2", refresh_ttl=False) is None
    assert sorted(keys(await s.search(("t",)))) == ["forever", "fresh"]
    assert await s.list_namespaces() == [("t",)]
    assert await s.row_count() == 4  # invisible, not yet deleted
    assert await s.sweep() == 2
    assert await s.row_count() == 2
    assert await s.sweep() == 0
    assert (await s.get(("t",), "fresh")).value == {"v": 2}


async def test_a_read_of_an_expired_item_does_not_bring_it_back(make_store):
    s = make_store(ttl=TTL)
    await s.put(("t",), "old", {"v": 1}, ttl=5)
    await s.age(("t",), "old")
    assert await s.get(("t",), "old") is None
    assert await s.search(("t",)) == []
    assert await s.expires_at(("t",), "old") < datetime.now(timezone.utc)


async def test_put_sets_the_expiry_from_the_ttl(make_store):
    s = make_store(ttl=TTL)
    await s.put(("t",), "k", {"v": 1}, ttl=10)
    assert _close(await s.expires_at(("t",), "k"), datetime.now(timezone.utc) + timedelta(minutes=10))
    await s.put(("t",), "k", {"v": 2}, ttl=None)
    assert await s.expires_at(("t",), "k") is None


async def test_get_refreshes_the_ttl_unless_told_not_to(make_store):
    s = make_store(ttl=TTL)
    await s.put(("t",), "k", {"v": 1}, ttl=10)
    soon = datetime.now(timezone.utc) + timedelta(seconds=30)
    await s.set_expiry(("t",), "k", soon)
    await s.get(("t",), "k", refresh_ttl=False)
    assert _close(await s.expires_at(("t",), "k"), soon, 1)
    await s.get(("t",), "k")
    assert _close(await s.expires_at(("t",), "k"), datetime.now(timezone.utc) + timedelta(minutes=10))


async def test_search_refreshes_the_ttl_of_what_it_returns(make_store):
    s = make_store(ttl=TTL)
    await s.put(("t",), "hit", {"v": 1}, ttl=10)
    await s.put(("t",), "miss", {"v": 2}, ttl=10)
    soon = datetime.now(timezone.utc) + timedelta(seconds=30)
    await s.set_expiry(("t",), "hit", soon)
    await s.set_expiry(("t",), "miss", soon)
    await s.search(("t",), filter={"v": 1}, refresh_ttl=False)
    assert _close(await s.expires_at(("t",), "hit"), soon, 1)
    assert keys(await s.search(("t",), filter={"v": 1})) == ["hit"]
    assert _close(await s.expires_at(("t",), "hit"), datetime.now(timezone.utc) + timedelta(minutes=10))
    assert _close(await s.expires_at(("t",), "miss"), soon, 1)


async def test_refresh_on_read_false_makes_reads_leave_the_ttl_alone(make_store):
    s = make_store(ttl={**TTL, "refresh_on_read": False})
    await s.put(("t",), "k", {"v": 1}, ttl=10)
    soon = datetime.now(timezone.utc) + timedelta(seconds=30)
    await s.set_expiry(("t",), "k", soon)
    await s.get(("t",), "k")
    await s.search(("t",))
    assert _close(await s.expires_at(("t",), "k"), soon, 1)
    await s.get(("t",), "k", refresh_ttl=True)
    assert _close(await s.expires_at(("t",), "k"), datetime.now(timezone.utc) + timedelta(minutes=10))


async def test_default_ttl_applies_to_puts_without_one(make_store):
    s = make_store(ttl={**TTL, "default_ttl": 30})
    await s.put(("t",), "default", {"v": 1})
    await s.put(("t",), "own", {"v": 1}, ttl=2)
    await s.put(("t",), "none", {"v": 1}, ttl=None)
    now = datetime.now(timezone.utc)
    assert _close(await s.expires_at(("t",), "default"), now + timedelta(minutes=30))
    assert _close(await s.expires_at(("t",), "own"), now + timedelta(minutes=2))
    assert await s.expires_at(("t",), "none") is None


async def test_fractional_ttl_minutes_are_kept_on_refresh(make_store, differs_from_reference):
    differs_from_reference("PostgresStore keeps ttl_minutes in an INT column: 0.5 refreshes as 1")
    s = make_store(ttl=TTL)
    await s.put(("t",), "k", {"v": 1}, ttl=0.5)
    await s.get(("t",), "k")
    assert _close(await s.expires_at(("t",), "k"), datetime.now(timezone.utc) + timedelta(seconds=30), 3)


async def test_omit_expired_false_returns_expired_items_until_swept(make_store):
    s = make_store(ttl={**TTL, "omit_expired": False})
    await s.put(("t",), "k", {"v": 1}, ttl=5)
    await s.age(("t",), "k")
    assert (await s.get(("t",), "k", refresh_ttl=False)).value == {"v": 1}
    assert keys(await s.search(("t",), refresh_ttl=False)) == ["k"]
    assert await s.sweep() == 1
    assert await s.get(("t",), "k") is None


async def test_expired_items_are_hidden_without_a_ttl_config(make_store, differs_from_reference):
    differs_from_reference("PostgresStore shows expired items unless TTLConfig.omit_expired is set")
    s = make_store()
    await s.put(("t",), "k", {"v": 1}, ttl=5)
    await s.age(("t",), "k")
    assert await s.get(("t",), "k") is None
    assert await s.search(("t",)) == []
    assert await s.list_namespaces() == []
