"""Blob offload: large values go to blob storage (a folder, or S3 through a real HTTP
endpoint), digest-checked before deserialising, deduplicated, deleted with their last
reference, and an unreachable store fails the put cleanly. Plus the size guard."""

import logging
import os
import time
import uuid

import pytest
from django.conf import settings

from checkpoints.blobgc import blobs_collect_orphans
from checkpoints.models import Checkpoint, CheckpointBlob
from checkpoints.saver import CheckpointTooLarge, DjangoSaver
from checkpoints.tiers.blobs import BlobStoreError, FileBlobStore, S3BlobStore

from .graphs import ChatState, chat_graph
from tests.ports import free_port

BIG = "x" * (5 * 1024 * 1024)


def cfg(thread_id):
    return {"configurable": {"thread_id": thread_id}}


def say(text):
    return {"messages": [{"role": "user", "content": text}]}


def big_graph(saver):
    """A graph whose state holds a 5 MB document that only the first step writes."""
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    class State(TypedDict, total=False):
        document: str
        notes: list
        step: int

    def load(state):
        return {"document": state.get("document") or BIG, "step": 1}

    def annotate(state):
        return {"notes": [f"len={len(state['document'])}"], "step": state["step"] + 1}

    builder = StateGraph(State)
    builder.add_node("load", load)
    builder.add_node("annotate", annotate)
    builder.add_edge(START, "load")
    builder.add_edge("load", "annotate")
    builder.add_edge("annotate", END)
    return builder.compile(checkpointer=saver)


class CountingStore(FileBlobStore):
    def __init__(self, root):
        super().__init__(root)
        self.writes = 0

    def _write(self, key, data):
        self.writes += 1
        super()._write(key, data)


@pytest.fixture
def file_saver(db_alias, tmp_path):
    return DjangoSaver(using=db_alias, hot_tier=None, blob_store=CountingStore(tmp_path / "blobs"))


def test_a_5mb_value_leaves_the_checkpoint_row_small(file_saver, db_alias):
    graph = big_graph(file_saver)
    graph.invoke({"notes": []}, cfg("b1"))
    assert graph.get_state(cfg("b1")).values["document"] == BIG
    sizes = list(Checkpoint.objects.using(db_alias).filter(thread_id="b1").values_list("size", flat=True))
    assert sizes and max(sizes) < 1024
    offloaded = CheckpointBlob.objects.using(db_alias).filter(thread_id="b1", blob_key__isnull=False)
    assert offloaded.count() == 1 and offloaded.get().blob is None
    uploads = file_saver.blob_store.writes
    # Steps that do not change the document do not upload it again.
    graph.invoke({"notes": ["again"]}, cfg("b1"))
    assert file_saver.blob_store.writes == uploads
    assert graph.get_state(cfg("b1")).values["notes"] == [f"len={len(BIG)}"]


def test_a_tampered_or_missing_object_is_a_clear_error(file_saver, db_alias, monkeypatch):
    graph = big_graph(file_saver)
    graph.invoke({"notes": []}, cfg("b2"))
    key = CheckpointBlob.objects.using(db_alias).get(thread_id="b2", blob_key__isnull=False).blob_key
    path = file_saver.blob_store.root / key
    path.write_bytes(path.read_bytes()[:-1] + b"!")
    seen = []
    real = file_saver.serde.loads_typed
    monkeypatch.setattr(file_saver.serde, "loads_typed", lambda typed: seen.append(len(typed[1])) or real(typed))
    with pytest.raises(BlobStoreError, match="does not match its digest"):
        file_saver.get_tuple(cfg("b2"))
    assert all(n < len(BIG) for n in seen)  # the tampered bytes never reached the serializer
    path.unlink()
    with pytest.raises(BlobStoreError, match="missing"):
        file_saver.get_tuple(cfg("b2"))


def test_deleting_removes_only_unreferenced_objects(file_saver, db_alias, settings):
    file_saver.blob_delete_grace = 0
    graph = big_graph(file_saver)
    graph.invoke({"notes": []}, cfg("b3"))
    file_saver.copy_thread("b3", "b3-copy")
    key = CheckpointBlob.objects.using(db_alias).filter(thread_id="b3", blob_key__isnull=False).first().blob_key
    path = file_saver.blob_store.root / key
    file_saver.delete_thread("b3")
    assert path.exists()  # the copy still references it
    assert graph.get_state(cfg("b3-copy")).values["document"] == BIG
    file_saver.prune(["b3-copy"], strategy="delete")
    assert not path.exists()


def test_orphans_of_a_crash_are_collected_and_referenced_blobs_never(file_saver, db_alias):
    graph = big_graph(file_saver)
    graph.invoke({"notes": []}, cfg("b4"))
    referenced = CheckpointBlob.objects.using(db_alias).get(thread_id="b4", blob_key__isnull=False).blob_key
    # A crash between upload and commit leaves an object no row points at.
    orphan = file_saver.blob_store.put(b"y" * 100_000)
    assert blobs_collect_orphans(using=db_alias, store=file_saver.blob_store, grace=3600) == 0
    old = time.time() - 7200
    for key in (orphan, referenced):
        os.utime(file_saver.blob_store.root / key, (old, old))
    assert blobs_collect_orphans(using=db_alias, store=file_saver.blob_store, grace=3600) == 1
    assert not (file_saver.blob_store.root / orphan).exists()
    assert (file_saver.blob_store.root / referenced).exists()
    assert graph.get_state(cfg("b4")).values["document"] == BIG


def test_size_guard_rejects_with_the_channels_to_blame(db_alias, tmp_path):
    saver = DjangoSaver(using=db_alias, hot_tier=None, blob_store=None, size_policy="reject")
    graph = chat_graph(saver)
    with pytest.raises(CheckpointTooLarge, match=r"(__start__|messages) \([\d,]+ B\).*store"):
        graph.invoke(say("z" * 20_000), cfg("b5"))
    assert not Checkpoint.objects.using(db_alias).filter(thread_id="b5").exists()


def test_size_guard_warns_by_default(db_alias, caplog):
    saver = DjangoSaver(using=db_alias, hot_tier=None, blob_store=None)
    with caplog.at_level(logging.WARNING, logger="checkpoints.saver"):
        chat_graph(saver).invoke(say("z" * 20_000), cfg("b6"))
    assert caplog.text.count("over the 10,000-byte limit") == 1  # once per thread, not per put
    assert "largest channels: __start__" in caplog.text
    assert chat_graph(saver).get_state(cfg("b6")).values["turns"] == 1


# -- S3 through moto's standalone server -------------------------------------------------




@pytest.fixture
def s3_endpoint(monkeypatch):
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }.items():
        monkeypatch.setenv(name, value)

    class Endpoint:
        url = f"http://127.0.0.1:{port}"

        def stop(self):
            server.stop()

    endpoint = Endpoint()
    yield endpoint
    try:
        server.stop()
    except Exception:
        pass


@pytest.fixture
def s3_saver(s3_endpoint, db_alias):
    bucket = f"lg-{uuid.uuid4().hex[:8]}"
    store = S3BlobStore(bucket, "checkpoints", timeout=1.0)
    store.client.create_bucket(Bucket=bucket)
    return DjangoSaver(using=db_alias, hot_tier=None, blob_store=store, blob_threshold=1024)


def _objects(store):
    return sorted(key for key, _ in store.iter_keys())


def test_s3_upload_read_dedup_delete(s3_saver, db_alias):
    s3_saver.blob_delete_grace = 0
    graph = big_graph(s3_saver)
    graph.invoke({"notes": []}, cfg("s1"))
    graph.invoke({"notes": []}, cfg("s2"))  # the same 5 MB document in another thread
    store = s3_saver.blob_store
    assert len([k for k in _objects(store)]) == 1  # content-addressed: one object
    assert graph.get_state(cfg("s2")).values["document"] == BIG
    s3_saver.delete_thread("s1")
    assert len(_objects(store)) == 1  # s2 still references it
    s3_saver.delete_thread("s2")
    assert _objects(store) == []


def test_s3_tamper_is_detected_and_orphans_are_collected(s3_saver, db_alias):
    graph = big_graph(s3_saver)
    graph.invoke({"notes": []}, cfg("s3"))
    store = s3_saver.blob_store
    (key,) = _objects(store)
    store.client.put_object(Bucket=store.bucket, Key=store._object(key), Body=b"evil")
    with pytest.raises(BlobStoreError, match="does not match its digest"):
        s3_saver.get_tuple(cfg("s3"))
    orphan = store.put(b"q" * 5000)
    assert blobs_collect_orphans(using=db_alias, store=store, grace=0) == 1
    assert _objects(store) == [key]
    assert orphan not in _objects(store)


def test_s3_unreachable_fails_the_put_and_leaves_no_row(s3_saver, s3_endpoint, db_alias):
    graph = big_graph(s3_saver)
    s3_endpoint.stop()
    with pytest.raises(BlobStoreError, match="Could not write blob"):
        graph.invoke({"notes": []}, cfg("s4"))
    rows = CheckpointBlob.objects.using(db_alias).filter(thread_id="s4", blob_key__isnull=False)
    assert not rows.exists()
    # What did commit (the input checkpoint) never points at a missing object.
    assert not CheckpointBlob.objects.using(db_alias).filter(blob_key__isnull=False).exists()


@pytest.mark.skipif("postgres" not in settings.DATABASES, reason="needs PostgreSQL")
def test_thread_status_is_error_free_for_small_states(file_saver, db_alias):
    chat_graph(file_saver).invoke(say("hi"), cfg("b7"))
    assert ChatState  # the small graph keeps every value in the database
    assert not CheckpointBlob.objects.using(db_alias).filter(thread_id="b7", blob_key__isnull=False).exists()
