"""A graph with everything a migration must carry: a subgraph (its own checkpoint
namespace), three tasks in one step of which one pauses on an interrupt while the two
others finish (their writes stay pending, with task paths), and forks."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt


class SubState(TypedDict, total=False):
    sub_log: Annotated[list, operator.add]
    sub_result: str


class State(TypedDict, total=False):
    log: Annotated[list, operator.add]
    sub_result: str
    answer: str


def _inner(state: SubState):
    return {"sub_log": ["inner"], "sub_result": "sub-done"}


def _subgraph():
    builder = StateGraph(SubState)
    builder.add_node("inner", _inner)
    builder.add_edge(START, "inner")
    builder.add_edge("inner", END)
    return builder.compile()


def build(checkpointer=None, store=None):
    def prepare(state: State):
        return {"log": ["prepare"]}

    def side(state: State):
        return {"log": ["side"]}

    def ask(state: State):
        answer = interrupt({"question": "approve?", "log_len": len(state.get("log", []))})
        return {"answer": answer, "log": [f"ask={answer}"]}

    def finish(state: State):
        return {"log": ["finish"]}

    builder = StateGraph(State)
    builder.add_node("prepare", prepare)
    builder.add_node("sub", _subgraph())
    builder.add_node("side", side)
    builder.add_node("ask", ask)
    builder.add_node("finish", finish)
    builder.add_edge(START, "prepare")
    for node in ("sub", "side", "ask"):
        builder.add_edge("prepare", node)
    builder.add_edge(["sub", "side", "ask"], "finish")
    builder.add_edge("finish", END)
    return builder.compile(checkpointer=checkpointer, store=store)


def config(thread_id: str, **extra) -> dict:
    return {"configurable": {"thread_id": thread_id, **extra}}


def seed(graph, prefix: str, *, interrupted: int, finished: int) -> list[str]:
    """Threads left interrupted, and threads finished then forked from before `ask`
    (the fork paused again on its interrupt). Returns the thread ids."""
    ids = []
    for i in range(interrupted):
        tid = f"{prefix}-int-{i}"
        graph.invoke({"log": [f"start-{i}"]}, config(tid))
        ids.append(tid)
    for i in range(finished):
        tid = f"{prefix}-done-{i}"
        graph.invoke({"log": [f"start-{i}"]}, config(tid))
        graph.invoke(Command(resume=f"yes-{i}"), config(tid))
        fork_from = next(s for s in graph.get_state_history(config(tid)) if set(s.next) == {"ask", "side", "sub"})
        forked = graph.update_state(fork_from.config, {"log": [f"forked-{i}"]}, as_node="prepare")
        graph.invoke(None, forked)
        ids.append(tid)
    return ids


@dataclass
class Opaque:
    """A value outside LangGraph's safe types: a strict serializer refuses to load it."""

    secret: str


def build_opaque(checkpointer=None):
    def keep(state: dict):
        return {"thing": Opaque(secret="s3cret")}

    builder = StateGraph(dict)
    builder.add_node("keep", keep)
    builder.add_edge(START, "keep")
    builder.add_edge("keep", END)
    return builder.compile(checkpointer=checkpointer)
