"""The benchmark's workload: checkpoints as LangGraph writes them, and a small graph. No I/O.

A thread is a chat: every step appends one message to `messages`, fires one trigger
channel (consuming the previous one) and bumps a counter; `summary` changes every fifth
step. So a checkpoint holds 4 channel values, `new_versions` names only the 4-5 channels
that changed, versions come from the saver's own `get_next_version`, and the `messages`
blob grows with the thread, as with `add_messages` (channel-version dedup stores the
whole list again each turn)."""

from __future__ import annotations

import operator
from datetime import datetime, timezone
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver, Checkpoint, empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

# A chat turn of ~60 words: enough that `messages` reaches ~10-15 kB after 30 steps.
_WORDS = (
    "checkpoint thread channel version blob write saver graph node state message "
    "step parent pending task resume interrupt replay fork history delta"
).split()


def message_text(thread: str, step: int, words: int = 60) -> str:
    return " ".join(_WORDS[(step * 7 + i * 3 + len(thread)) % len(_WORDS)] for i in range(words))


def make_message(thread: str, step: int):
    cls = HumanMessage if step % 2 == 0 else AIMessage
    return cls(content=message_text(thread, step), id=f"{thread}-m{step}")


class ChatThread:
    """One thread's checkpoints, step by step, as a LangGraph run would put them.

    `step()` returns the arguments of the step's `put_writes` (two writes of the task
    that ran, against the current checkpoint) and of its `put` (the next checkpoint).
    Call `advance(config)` with what `put` returned before the next `step()`.
    """

    def __init__(self, saver: BaseCheckpointSaver, thread_id: str) -> None:
        self.saver = saver
        self.thread_id = thread_id
        self.n = 0
        self.checkpoint: Checkpoint = empty_checkpoint()
        self.config: dict = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        self.ids: list[str] = []

    def _bump(self, channel: str) -> str:
        versions = self.checkpoint["channel_versions"]
        version = self.saver.get_next_version(versions.get(channel), None)
        versions[channel] = version
        return version

    def step(self) -> tuple[tuple, tuple]:
        n = self.n
        prev = self.checkpoint
        values = dict(prev["channel_values"])
        trigger = "branch:to:agent" if n % 2 == 0 else "branch:to:tools"
        message = make_message(self.thread_id, n)
        task_id = str(uuid6(clock_seq=n))
        writes = [("messages", [message]), (trigger, None)]

        self.checkpoint = {
            **prev,
            "id": str(uuid6(clock_seq=n)),
            "ts": datetime.now(timezone.utc).isoformat(),
            "channel_values": values,
            "channel_versions": dict(prev["channel_versions"]),
            "versions_seen": {k: dict(v) for k, v in prev["versions_seen"].items()},
        }
        changed = ["messages", trigger, "step_count"]
        # A consumed channel leaves `channel_values` and gets a new version, as LangGraph
        # does when a trigger fires or `__start__` is read.
        consumed = ["__start__"] if n == 1 else []
        consumed.append("branch:to:tools" if trigger == "branch:to:agent" else "branch:to:agent")
        if n == 0:
            values["__start__"] = {"messages": [message]}
            changed.append("__start__")
        for channel in consumed:
            if values.pop(channel, None) is not None or channel in prev["channel_versions"]:
                changed.append(channel)
        if n % 5 == 0:
            changed.append("summary")
            values["summary"] = f"Summary after {n} turns: " + message_text(self.thread_id, n, 20)
        values["messages"] = [*values.get("messages", []), message]
        values[trigger] = None
        values["step_count"] = n
        new_versions = {ch: self._bump(ch) for ch in changed}
        node = trigger.split(":")[-1]
        self.checkpoint["versions_seen"][node] = {trigger: new_versions[trigger]}
        self.checkpoint["updated_channels"] = sorted(changed)
        metadata = {"source": "loop", "step": n, "parents": {}, "run_id": f"run-{self.thread_id}"}
        put_writes_args = (self.config, writes, task_id)
        put_args = (self.config, self.checkpoint, metadata, new_versions)
        return put_writes_args, put_args

    def advance(self, config: dict) -> None:
        self.config = config
        self.ids.append(config["configurable"]["checkpoint_id"])
        self.n += 1

    @property
    def latest(self) -> dict:
        return {"configurable": {"thread_id": self.thread_id, "checkpoint_ns": ""}}

    def by_id(self, back: int = 3) -> dict:
        """A config naming an earlier checkpoint of this thread (not the head)."""
        checkpoint_id = self.ids[max(0, len(self.ids) - 1 - back)]
        return {"configurable": {"thread_id": self.thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}}


# -- the graph ------------------------------------------------------------------------


class State(TypedDict):
    messages: Annotated[list, add_messages]
    count: Annotated[int, operator.add]
    summary: str


def _plan(state: State) -> dict[str, Any]:
    n = len(state["messages"])
    return {"messages": [AIMessage(content="Plan: " + message_text("plan", n, 30), id=f"plan-{n}")], "count": 1}


def _act(state: State) -> dict[str, Any]:
    return {"count": 1}


def _respond(state: State) -> dict[str, Any]:
    n = len(state["messages"])
    return {
        "messages": [AIMessage(content="Answer: " + message_text("respond", n, 40), id=f"respond-{n}")],
        "summary": f"{n} messages, {state['count']} actions",
    }


def build_graph():
    """plan -> act -> respond: three nodes, deterministic, no LLM."""
    builder = StateGraph(State)
    builder.add_node("plan", _plan)
    builder.add_node("act", _act)
    builder.add_node("respond", _respond)
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "act")
    builder.add_edge("act", "respond")
    builder.add_edge("respond", END)
    return builder


def graph_input(thread: str, turn: int) -> dict[str, Any]:
    return {"messages": [HumanMessage(content=message_text(thread, turn, 25), id=f"{thread}-h{turn}")]}
