"""Small deterministic graphs the saver tests run (no model, no network)."""

import operator
from typing import Annotated, TypedDict

from langgraph.channels.delta import DeltaChannel
from langgraph.graph import END, START, StateGraph


class ChatState(TypedDict, total=False):
    messages: Annotated[list, operator.add]
    turns: int


def chat_graph(checkpointer):
    """Echoes each message; a second invoke on the thread continues the conversation."""

    def reply(state: ChatState):
        last = state["messages"][-1]
        return {
            "messages": [{"role": "ai", "content": f"echo: {last['content']}"}],
            "turns": state.get("turns", 0) + 1,
        }

    builder = StateGraph(ChatState)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    builder.add_edge("reply", END)
    return builder.compile(checkpointer=checkpointer)


def _extend(state, batches):
    out = list(state or [])
    for batch in batches:
        out.extend(batch)
    return out


class DeltaState(TypedDict, total=False):
    log: Annotated[list, DeltaChannel(_extend, snapshot_frequency=3)]
    step: int


def delta_graph(checkpointer):
    """Appends to a DeltaChannel on every node, so its value is rebuilt from writes."""

    def first(state: DeltaState):
        return {"log": [f"first-{state.get('step', 0)}"], "step": state.get("step", 0) + 1}

    def second(state: DeltaState):
        return {"log": [f"second-{state.get('step', 0)}"], "step": state.get("step", 0) + 1}

    builder = StateGraph(DeltaState)
    builder.add_node("first", first)
    builder.add_node("second", second)
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    builder.add_edge("second", END)
    return builder.compile(checkpointer=checkpointer)
