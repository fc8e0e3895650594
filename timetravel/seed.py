"""Demo threads for the embedded default, so the console has something to show.

Each scenario leaves its thread in a state an operator meets in real life: finished
conversations, a refund waiting for approval, approved, edited and rejected refunds,
and a conversation forked from an earlier checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from langgraph.types import Command

from .demo import build_graph, user_message

THREAD_PREFIX = "demo-"
CUSTOMERS = ("Ada Byron", "Grace Hopper", "Alan Turing", "Katherine Johnson", "Edsger Dijkstra",
             "Barbara Liskov", "Donald Knuth", "Margaret Hamilton")


@dataclass
class SeedResult:
    created: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _customer(config) -> str:
    return config["metadata"]["customer"]


def _finished(graph, config, order):
    graph.invoke(user_message(f"Hi, where is my order #{order}?", customer=_customer(config)), config)
    graph.invoke(user_message("Great, has it shipped yet?"), config)


def _awaiting_approval(graph, config, order):
    text = f"My kettle arrived broken. Refund order #{order} please ($39.90)"
    graph.invoke(user_message(text, customer=_customer(config)), config)


def _approved(graph, config, order):
    _awaiting_approval(graph, config, order)
    graph.invoke(Command(resume=[{"type": "accept", "args": None}]), config)


def _edited(graph, config, order):
    text = f"Order #{order} came damaged, I want my $120 back"
    graph.invoke(user_message(text, customer=_customer(config)), config)
    edit = {"action": "issue_refund", "args": {"order_id": order, "amount": 60.0}}
    graph.invoke(Command(resume=[{"type": "edit", "args": edit}]), config)


def _rejected(graph, config, order):
    text = f"Refund order #{order} ($15), I changed my mind"
    graph.invoke(user_message(text, customer=_customer(config)), config)
    graph.invoke(Command(resume=[{"type": "ignore", "args": None}]), config)


def _forked(graph, config, order):
    # The customer gave the wrong number; the operator forks from before the draft
    # with the right one, leaving the original answer in the history.
    graph.invoke(user_message(f"Where is my order #{order}?", customer=_customer(config)), config)
    before_draft = next(s for s in graph.get_state_history(config) if s.next == ("draft",))
    fork = graph.update_state(
        {**before_draft.config, "metadata": config["metadata"]}, {"order_id": str(int(order) + 1)}
    )
    graph.invoke(None, fork)


SCENARIOS: dict[str, Callable] = {
    "finished": _finished,
    "awaiting-approval": _awaiting_approval,
    "approved": _approved,
    "edited": _edited,
    "rejected": _rejected,
    "forked": _forked,
}


def seed_demo(saver, n: int = len(SCENARIOS)) -> SeedResult:
    """Create `n` demo threads, cycling through `SCENARIOS`; a thread that already
    exists is skipped, so seeding twice (or after a crash halfway) is safe.

    Args:
        saver: the checkpointer, e.g. `DjangoSaver(using=alias)`.
        n: how many threads.
    Returns:
        The thread ids created and skipped.
    """
    from store.store import DjangoStore

    # The store on the saver's database: customers' facts outlive their threads.
    graph = build_graph(checkpointer=saver, store=DjangoStore(using=saver.using))
    result = SeedResult()
    names = list(SCENARIOS)
    for i in range(n):
        scenario = names[i % len(names)]
        thread_id = f"{THREAD_PREFIX}{i + 1:02d}-{scenario}"
        if saver.get_tuple({"configurable": {"thread_id": thread_id}}) is not None:
            result.skipped.append(thread_id)
            continue
        customer = CUSTOMERS[i % len(CUSTOMERS)]
        config = {
            "configurable": {"thread_id": thread_id},
            "metadata": {"graph_id": "demo", "customer": customer},
        }
        SCENARIOS[scenario](graph, config, order=str(1000 + 7 * i))
        result.created.append(thread_id)
    return result
