"""The demo graph: routing, the Agent Inbox interrupt and every kind of human response,
conversations that continue, small checkpoints, and the seed data."""

import pytest
from django.core.management import call_command
from django.db.models import Max
from langgraph.types import Command

from checkpoints.models import Checkpoint, CheckpointBlob, Thread
from timetravel.demo import build_graph, parse_human_response, user_message
from timetravel.seed import SCENARIOS, seed_demo

REFUND = "My kettle arrived broken, please refund order #1234 ($42.50)"
PROPOSAL = {"action": "issue_refund", "args": {"order_id": "1234", "amount": 42.5}}


def cfg(thread_id):
    return {"configurable": {"thread_id": thread_id}, "metadata": {"graph_id": "demo", "customer": "acme"}}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([{"type": "accept", "args": None}], ("accept", None)),
        ([{"type": "ignore", "args": None}], ("ignore", None)),
        ([{"type": "response", "args": "Call us"}], ("response", "Call us")),
        (
            [{"type": "edit", "args": {"action": "issue_refund", "args": {"order_id": "1234", "amount": 5}}}],
            ("edit", {"action": "issue_refund", "args": {"order_id": "1234", "amount": 5}}),
        ),
        ({"type": "edit", "args": {"amount": 5}}, ("edit", {"action": "issue_refund", "args": {"order_id": "1234", "amount": 5}})),
        ({"amount": 7}, ("edit", {"action": "issue_refund", "args": {"order_id": "1234", "amount": 7}})),
        ({"action": "reply", "args": {"text": "no"}}, ("edit", {"action": "reply", "args": {"text": "no"}})),
        ("approve", ("accept", None)),
        ("reject", ("ignore", None)),
        ("Please send a photo first", ("response", "Please send a photo first")),
    ],
)
def test_parse_human_response(value, expected):
    assert parse_human_response(value, PROPOSAL) == expected


@pytest.mark.parametrize(
    "value",
    [[], [{"type": "accept"}, {"type": "accept"}], {"type": "approve"}, 42, {"type": "response", "args": {}}],
)
def test_parse_human_response_rejects(value):
    with pytest.raises(ValueError):
        parse_human_response(value, PROPOSAL)


def test_order_status_runs_without_a_pause(saver):
    result = build_graph(saver).invoke(user_message("Where is my order #1001?"), cfg("status"))
    assert "__interrupt__" not in result
    assert result["messages"][-1] == {
        "role": "assistant", "content": "Order #1001 is on its way: tracking number TRK-1001."
    }
    assert result["outcome"] == "tracking sent"


def test_refund_pauses_with_a_human_interrupt(saver, db_alias):
    graph = build_graph(saver)
    paused = graph.invoke(user_message(REFUND, customer="Ada"), cfg("pause"))
    (pending,) = paused["__interrupt__"]
    assert pending.value == {
        "action_request": PROPOSAL,
        "config": {"allow_accept": True, "allow_edit": True, "allow_respond": True, "allow_ignore": True},
        "description": f"Refund $42.50 on order #1234 for Ada: \u201c{REFUND}\u201d",
    }
    assert graph.get_state(cfg("pause")).next == ("approve",)
    assert Thread.objects.using(db_alias).get(thread_id="pause").status == "interrupted"


RESPONSES = {
    "accept": ([{"type": "accept", "args": None}], "refunded 42.50", "I have refunded $42.50 for order #1234."),
    "edit": (
        [{"type": "edit", "args": {"action": "issue_refund", "args": {"order_id": "1234", "amount": 20}}}],
        "refunded 20.00", "I have refunded $20.00 for order #1234.",
    ),
    "response": ([{"type": "response", "args": "Please send a photo."}], "replied", "Please send a photo."),
    "ignore": ([{"type": "ignore", "args": None}], "ignored", None),
    "plain-str": ("Please send a photo.", "replied", "Please send a photo."),
}


def test_each_human_response_completes_the_run(saver):
    # One thread per response in one test: a database flush per case would cost more
    # than the cases themselves.
    graph = build_graph(saver)
    for name, (resume, outcome, reply) in RESPONSES.items():
        graph.invoke(user_message(REFUND), cfg(name))
        done = graph.invoke(Command(resume=resume), cfg(name))
        assert done["outcome"] == outcome, name
        assert graph.get_state(cfg(name)).next == (), name
        if reply is None:
            assert [m["role"] for m in done["messages"]] == ["user"], name
        else:
            assert done["messages"][-1] == {"role": "assistant", "content": reply}, name


def test_conversation_continues_and_checkpoints_stay_small(saver, db_alias):
    graph = build_graph(saver)
    graph.invoke(user_message("Where is my order #1001?"), cfg("chat"))
    second = graph.invoke(user_message("Has it shipped yet?"), cfg("chat"))
    graph.invoke(user_message("Never mind, refund it ($10)"), cfg("chat"))
    third = graph.invoke(Command(resume="accept"), cfg("chat"))
    assert [m["content"] for m in second["messages"]] == [
        "Where is my order #1001?",
        "Order #1001 is on its way: tracking number TRK-1001.",
        "Has it shipped yet?",
        "Order #1001 is on its way: tracking number TRK-1001.",
    ]
    assert third["messages"][-1]["content"] == "I have refunded $10.00 for order #1001."
    assert len(third["messages"]) == 6
    # A step writes only the channels it changed, and the rows hold no channel values.
    rows = Checkpoint.objects.using(db_alias).filter(thread_id="chat")
    assert rows.aggregate(m=Max("size"))["m"] < 4_000
    blobs = CheckpointBlob.objects.using(db_alias).filter(thread_id="chat")
    assert max(len(bytes(b.blob or b"")) for b in blobs) < 2_000


def test_seed_demo_leaves_threads_in_each_state(saver, db_alias):
    result = seed_demo(saver)
    assert result.created == [f"demo-{i + 1:02d}-{name}" for i, name in enumerate(SCENARIOS)]
    threads = {t.thread_id: t for t in Thread.objects.using(db_alias).filter(thread_id__startswith="demo-")}
    assert {t: r.status for t, r in threads.items()} == {
        "demo-01-finished": "idle",
        "demo-02-awaiting-approval": "interrupted",
        "demo-03-approved": "idle",
        "demo-04-edited": "idle",
        "demo-05-rejected": "idle",
        "demo-06-forked": "idle",
    }
    assert all(t.graph_id == "demo" and t.metadata["customer"] for t in threads.values())
    assert threads["demo-02-awaiting-approval"].metadata == {"graph_id": "demo", "customer": "Grace Hopper"}

    graph = build_graph(saver)
    forked = {"configurable": {"thread_id": "demo-06-forked"}}
    history = list(graph.get_state_history(forked))
    (update,) = [s for s in history if s.metadata["source"] == "update"]
    parent = graph.get_state(update.parent_config)
    assert parent.next == ("draft",) and parent.values["order_id"] == "1035"
    assert update.values["order_id"] == "1036"
    assert graph.get_state(forked).values["messages"][-1]["content"].startswith("Order #1036")
    original_answers = [s for s in history if s.values.get("outcome") and s.values["order_id"] == "1035"]
    assert original_answers, "the original branch is still in the history"

    again = seed_demo(saver)
    assert again.created == [] and again.skipped == result.created


def test_seed_demo_command_is_idempotent(db_alias, capsys):
    call_command("seed_demo", database=db_alias, count=2)
    call_command("seed_demo", database=db_alias, count=3)
    out = capsys.readouterr().out
    assert "created demo-01-finished" in out and "created demo-03-approved" in out
    assert "2 demo threads already existed" in out
    assert Thread.objects.using(db_alias).filter(thread_id__startswith="demo-").count() == 3
