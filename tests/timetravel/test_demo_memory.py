"""Cross-thread memory in the demo: a fact saved while serving one thread is used when
serving another, and the checkpoints of both stay small."""

from checkpoints.models import Checkpoint
from store.store import DjangoStore
from timetravel.demo import build_graph, user_message


def cfg(thread_id):
    return {"configurable": {"thread_id": thread_id}}


def test_a_fact_from_one_thread_serves_another(saver, db_alias):
    store = DjangoStore(using=db_alias)
    graph = build_graph(checkpointer=saver, store=store)
    graph.invoke(user_message("Hi, call me Grace. Where is order #4242?", customer="c-7"), cfg("mem-a"))
    assert store.get(("customers", "c-7"), "last_order").value == {"order_id": "4242"}
    assert store.get(("customers", "c-7"), "profile").value == {"name": "Grace"}

    # A new conversation: no order number, no name, and yet.
    state = graph.invoke(user_message("Has it shipped yet?", customer="c-7"), cfg("mem-b"))
    assert state["outcome"] == "tracking sent"
    assert state["messages"][-1]["content"].startswith("Grace, order #4242 is on its way")

    # Another customer's new thread knows nothing of it.
    other = graph.invoke(user_message("Has it shipped yet?", customer="c-8"), cfg("mem-c"))
    assert other["outcome"] == "replied" and "Which order" in other["messages"][-1]["content"]

    # The facts live in the store, not in the checkpoints, which stay under 10 KB.
    for thread_id in ("mem-a", "mem-b"):
        tup = saver.get_tuple(cfg(thread_id))
        blobs = sum(len(saver.serde.dumps_typed(v)[1]) for v in tup.checkpoint["channel_values"].values())
        row = max(Checkpoint.objects.using(db_alias).filter(thread_id=thread_id).values_list("size", flat=True))
        assert row + blobs < 10_000


def test_without_a_store_each_thread_starts_afresh(saver):
    graph = build_graph(checkpointer=saver)
    graph.invoke(user_message("Where is order #4242?", customer="c-9"), cfg("mem-d"))
    state = graph.invoke(user_message("Has it shipped yet?", customer="c-9"), cfg("mem-e"))
    assert "Which order" in state["messages"][-1]["content"]
