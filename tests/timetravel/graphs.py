"""Small graphs for the console's tests, registered next to the demo."""

import operator
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt


class PairState(TypedDict, total=False):
    log: Annotated[list, operator.add]
    a: str
    b: str


def ask_a(state):
    answer = interrupt({"question": "a?"})
    if answer == "boom":
        raise RuntimeError("the node exploded on 'boom'")
    return {"a": answer, "log": [f"a={answer}"]}


def ask_b(state):
    answer = interrupt({"question": "b?"})
    return {"b": answer, "log": [f"b={answer}"]}


def build_pair(checkpointer=None, store=None):
    """Two nodes in one step, each pausing with a plain JSON interrupt."""
    builder = StateGraph(PairState)
    builder.add_node("ask_a", ask_a)
    builder.add_node("ask_b", ask_b)
    builder.add_edge(START, "ask_a")
    builder.add_edge(START, "ask_b")
    builder.add_edge("ask_a", END)
    builder.add_edge("ask_b", END)
    return builder.compile(checkpointer=checkpointer, store=store)


def build_single(checkpointer=None, store=None):
    """One node pausing with a plain JSON interrupt; resuming with "boom" fails."""
    builder = StateGraph(PairState)
    builder.add_node("ask_a", ask_a)
    builder.add_edge(START, "ask_a")
    builder.add_edge("ask_a", END)
    return builder.compile(checkpointer=checkpointer, store=store)


class InnerState(TypedDict, total=False):
    log: Annotated[list, operator.add]


def inner_step(state):
    return {"log": ["inside"]}


def build_nested(checkpointer=None, store=None):
    """A parent whose node is a subgraph: its checkpoints live in their own namespace."""
    inner = StateGraph(InnerState)
    inner.add_node("inner_step", inner_step)
    inner.add_edge(START, "inner_step")
    inner.add_edge("inner_step", END)
    builder = StateGraph(InnerState)
    builder.add_node("child", inner.compile())
    builder.add_edge(START, "child")
    builder.add_edge("child", END)
    return builder.compile(checkpointer=checkpointer, store=store)
