"""Semantic search with a deterministic embedding function, on SQLite and PostgreSQL,
sync and async.

PostgresStore cannot be the reference here: its vector search needs pgvector, which
the project's machines do not have. The cases follow its SQL instead (which texts are
embedded, `index=False`, an item's best vector, `1 - cosine distance` as the score,
highest first), and one case checks rankings and scores against LangGraph's
`InMemoryStore` on a random corpus.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from langgraph.store.base import PutOp, SearchOp
from langgraph.store.memory import InMemoryStore

DIMS = 16


def word_vector(word: str) -> np.ndarray:
    return np.random.default_rng(zlib.crc32(word.encode())).standard_normal(DIMS)


def embed_text(text: str) -> list[float]:
    """The sum of a fixed random vector per word: similar texts, similar vectors."""
    words = [w for w in "".join(c if c.isalnum() else " " for c in text.lower()).split()]
    return sum((word_vector(w) for w in words), np.zeros(DIMS)).tolist()


def embed(texts: list[str]) -> list[list[float]]:
    return [embed_text(t) for t in texts]


def cosine(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    n = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / n) if n else 0.0


def index(**extra):
    return {"dims": DIMS, "embed": embed, **extra}


@pytest.fixture(params=["sqlite", "postgres"])
def impl(request):
    if request.param == "postgres":
        from .conftest import HAS_POSTGRES

        if not HAS_POSTGRES:
            pytest.skip("needs PostgreSQL")
    return request.param


def keys(items):
    return [i.key for i in items]


DOCS = {
    "fruit": "apple banana cherry",
    "apple": "apple apple pie",
    "pets": "dog cat hamster",
    "code": "python rust sql",
    "sea": "ocean waves salt",
}


async def test_a_query_ranks_items_by_cosine_similarity_and_scores_them(make_store):
    s = make_store(index=index(fields=["text"]))
    for key, text in DOCS.items():
        await s.put(("docs",), key, {"text": text})
    found = await s.search(("docs",), query="apple pie")
    expected = sorted(DOCS, key=lambda k: -cosine(embed_text(DOCS[k]), embed_text("apple pie")))
    assert keys(found) == expected
    for item in found:
        assert item.score == pytest.approx(cosine(embed_text(DOCS[item.key]), embed_text("apple pie")), abs=1e-5)
    assert found[0].key == "apple"
    assert found[0].value == {"text": DOCS["apple"]}
    assert found[0].namespace == ("docs",)
    assert found[0].created_at is not None


async def test_without_fields_the_whole_value_is_embedded(make_store):
    s = make_store(index=index())
    await s.put(("d",), "a", {"title": "ocean", "body": "waves salt"})
    await s.put(("d",), "b", {"title": "python", "body": "rust"})
    found = await s.search(("d",), query="ocean waves", limit=1)
    assert keys(found) == ["a"]
    whole = '{"body": "waves salt", "title": "ocean"}'  # get_text_at_path's json.dumps
    assert found[0].score == pytest.approx(cosine(embed_text(whole), embed_text("ocean waves")), abs=1e-5)


async def test_only_configured_fields_are_embedded_and_items_without_them_are_not_ranked(make_store):
    s = make_store(index=index(fields=["text"]))
    await s.put(("d",), "match-in-text", {"text": "python rust", "other": "ocean"})
    await s.put(("d",), "match-in-other", {"text": "dog cat", "other": "python rust"})
    await s.put(("d",), "no-text-field", {"other": "python rust"})
    found = await s.search(("d",), query="python rust", limit=10)
    assert keys(found) == ["match-in-text", "match-in-other"]
    assert found[0].score == pytest.approx(1.0, abs=1e-5)
    # Still there for gets and plain searches.
    assert (await s.get(("d",), "no-text-field")).value == {"other": "python rust"}
    assert len(await s.search(("d",))) == 3


async def test_index_false_stores_no_vector_and_a_later_put_replaces_vectors(make_store):
    s = make_store(index=index(fields=["text"]))
    await s.put(("d",), "k", {"text": "python"})
    await s.put(("d",), "other", {"text": "ocean"})
    assert keys(await s.search(("d",), query="python"))[0] == "k"
    await s.put(("d",), "k", {"text": "python"}, index=False)
    assert keys(await s.search(("d",), query="python")) == ["other"]
    assert keys(await s.search(("d",), filter={"text": "python"})) == ["k"]
    await s.put(("d",), "k", {"text": "ocean waves"})
    found = await s.search(("d",), query="ocean waves")
    assert keys(found) == ["k", "other"]
    assert found[0].score == pytest.approx(1.0, abs=1e-5)


async def test_put_index_paths_override_the_configured_fields(make_store):
    s = make_store(index=index(fields=["text"]))
    await s.put(("d",), "k", {"text": "dog", "title": "python rust"}, index=["title"])
    found = await s.search(("d",), query="python rust")
    assert found[0].score == pytest.approx(1.0, abs=1e-5)
    found = await s.search(("d",), query="dog")
    assert found[0].score == pytest.approx(cosine(embed_text("python rust"), embed_text("dog")), abs=1e-5)


async def test_each_array_element_is_a_vector_and_the_best_one_scores_the_item(make_store):
    s = make_store(index=index(fields=["chunks[*].text", "title"]))
    await s.put(("d",), "k", {"title": "misc", "chunks": [{"text": "dog cat"}, {"text": "apple pie"}, {"text": "sql"}]})
    await s.put(("d",), "j", {"title": "apple", "chunks": []})
    found = await s.search(("d",), query="apple pie")
    assert keys(found) == ["k", "j"]
    assert found[0].score == pytest.approx(1.0, abs=1e-5)
    assert found[1].score == pytest.approx(cosine(embed_text("apple"), embed_text("apple pie")), abs=1e-5)


async def test_a_query_search_is_narrowed_by_prefix_and_filter(make_store):
    s = make_store(index=index(fields=["text"]))
    await s.put(("u", "1"), "a", {"text": "apple", "kind": "fruit"})
    await s.put(("u", "1"), "b", {"text": "apple pie", "kind": "dessert"})
    await s.put(("u", "2"), "c", {"text": "apple", "kind": "fruit"})
    await s.put(("u10",), "d", {"text": "apple", "kind": "fruit"})
    assert keys(await s.search(("u", "1"), query="apple")) == ["a", "b"]
    assert keys(await s.search(("u", "1"), query="apple", filter={"kind": "dessert"})) == ["b"]
    assert sorted(keys(await s.search(("u",), query="apple", filter={"kind": {"$ne": "dessert"}}))) == ["a", "c"]


async def test_query_results_page_exactly_at_any_offset(make_store):
    s = make_store(index=index(fields=["text"]))
    words = ["apple", "banana", "cherry", "dog", "cat", "ocean", "python", "rust"]
    ops = [PutOp(("p",), f"k{i:02}", {"text": " ".join(words[j] for j in range(8) if (i >> (j % 5)) & 1 or j == i % 8)}) for i in range(30)]
    await s.batch(ops)
    everything = await s.search(("p",), query="apple dog ocean", limit=100)
    assert len(everything) == 30
    scores = [i.score for i in everything]
    assert scores == sorted(scores, reverse=True)
    for offset in (0, 7, 25, 29, 30):
        page = await s.search(("p",), query="apple dog ocean", limit=4, offset=offset)
        assert keys(page) == keys(everything)[offset : offset + 4]


async def test_equal_scores_are_ordered_by_namespace_then_key(make_store):
    s = make_store(index=index(fields=["text"]))
    for ns, key in [(("b",), "x"), (("a",), "z"), (("a",), "y")]:
        await s.put(ns, key, {"text": "same words"})
    assert keys(await s.search((), query="same words")) == ["y", "z", "x"]


async def test_a_batch_embeds_puts_and_queries_and_reads_precede_writes(make_store):
    calls = []

    def counting(texts):
        calls.append(list(texts))
        return embed(texts)

    s = make_store(index={"dims": DIMS, "embed": counting, "fields": ["text"]})
    await s.put(("d",), "old", {"text": "ocean"})
    calls.clear()
    results = await s.batch(
        [
            PutOp(("d",), "new", {"text": "ocean"}),
            PutOp(("d",), "twin", {"text": "ocean"}),
            SearchOp(("d",), query="ocean"),
        ]
    )
    # The two puts' one text, embedded once; then the query.
    assert calls == [["ocean"], ["ocean"]]
    assert keys(results[2]) == ["old"]
    assert sorted(keys(await s.search(("d",), query="ocean"))) == ["new", "old", "twin"]


async def test_an_embedding_of_the_wrong_size_fails_the_batch_and_writes_nothing(make_store):
    s = make_store(index={"dims": DIMS, "embed": lambda texts: [[1.0, 2.0] for _ in texts]})
    with pytest.raises(ValueError, match="dimensions"):
        await s.put(("d",), "k", {"text": "x"})
    assert await s.row_count() == 0


async def test_an_async_embedding_function(make_store, mode):
    async def aembed(texts):
        return embed(texts)

    if mode == "sync":
        pytest.skip("an async-only embedding function serves the async API")
    s = make_store(index={"dims": DIMS, "embed": aembed, "fields": ["text"]})
    await s.put(("d",), "k", {"text": "python"})
    await s.put(("d",), "j", {"text": "ocean"})
    assert keys(await s.search(("d",), query="python")) == ["k", "j"]


@pytest.mark.parametrize("distance", ["inner_product", "l2"])
async def test_other_distances(make_store, distance):
    s = make_store(index=index(fields=["text"], distance_type=distance))
    for key, text in DOCS.items():
        await s.put(("d",), key, {"text": text})
    q = np.asarray(embed_text("apple"))

    def expected(text):
        v = np.asarray(embed_text(text))
        return float(v @ q) if distance == "inner_product" else -float(np.linalg.norm(v - q))

    found = await s.search(("d",), query="apple")
    assert keys(found) == sorted(DOCS, key=lambda k: -expected(DOCS[k]))
    for item in found:
        assert item.score == pytest.approx(expected(DOCS[item.key]), rel=1e-4, abs=1e-4)


async def test_expired_items_are_not_ranked(make_store):
    s = make_store(index=index(fields=["text"]), ttl={"refresh_on_read": True})
    await s.put(("d",), "old", {"text": "python"}, ttl=5)
    await s.put(("d",), "new", {"text": "python"}, ttl=5)
    await s.age(("d",), "old")
    assert keys(await s.search(("d",), query="python")) == ["new"]


VOCAB = "apple banana cherry dog cat ocean python rust sql tree river stone cloud".split()


async def test_rankings_and_scores_match_langgraphs_in_memory_store(make_store):
    rng = np.random.default_rng(7)
    config = index(fields=["text", "tags[*]"])
    reference = InMemoryStore(index=config)
    s = make_store(index=config)
    ops = []
    for i in range(60):
        value = {
            "text": " ".join(rng.choice(VOCAB, size=rng.integers(2, 6))),
            "tags": [str(t) for t in rng.choice(VOCAB, size=rng.integers(1, 3), replace=False)],
            "group": int(i % 3),
        }
        ops.append(PutOp(("corpus", f"g{i % 4}"), f"k{i:02}", value))
    # One put at a time: InMemoryStore fails a batch whose items share a text.
    for op in ops:
        reference.batch([op])
    await s.batch(ops)
    for query, prefix, filter in [
        ("apple ocean", ("corpus",), None),
        ("python rust sql", ("corpus", "g1"), None),
        ("stone cloud tree", ("corpus",), {"group": 2}),
    ]:
        want = reference.search(prefix, query=query, filter=filter, limit=100)
        got = await s.search(prefix, query=query, filter=filter, limit=100)
        assert [i.score for i in got] == pytest.approx([i.score for i in want], abs=1e-5)
        # Items whose best vectors are the same text tie; the stores may order a tie
        # differently (DjangoStore by namespace and key).
        assert _by_score(got) == _by_score(want), query


def _by_score(items) -> list[set]:
    groups: dict[float, set] = {}
    for item in items:
        groups.setdefault(round(item.score, 4), set()).add((item.namespace, item.key))
    return list(groups.values())
