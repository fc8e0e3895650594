"""The demo graph: an order-support agent with a human approval step for refunds.

Deterministic on purpose (no LLM, no network): the console's seed data, the `witness`
command and the tests replay it and expect the same states every time.

    classify -> draft -> approve (refunds only: `interrupt()`) -> execute -> END

With a store (`build_graph(store=DjangoStore())`), what a customer said in one thread
serves them in another: the last order they named and the name they asked to be called
live under the namespace `("customers", customer)`, not in the checkpoints.

`approve` pauses with an Agent Inbox `HumanInterrupt`-shaped payload and resumes on a
`HumanResponse` list (`[{"type": "accept" | "edit" | "response" | "ignore", "args": ...}]`);
a bare dict or string is accepted too, for people resuming by hand.
"""

from __future__ import annotations

import operator
import re
from typing import Annotated, Any, Literal, Optional, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.store.base import BaseStore
from langgraph.types import interrupt

# Moving money needs a person; a tracking reply or a question back does not.
APPROVAL_ACTIONS = frozenset({"issue_refund"})
RESPONSE_TYPES = ("accept", "edit", "response", "ignore")

_ORDER_RE = re.compile(r"#\s*(\d{3,})")
_AMOUNT_RE = re.compile(r"\$\s*(\d+(?:\.\d{1,2})?)")
_REFUND_WORDS = ("refund", "money back", "return", "broken", "damaged")
_NAME_RE = re.compile(r"(?:call me|my name is)\s+([A-Z][a-z]+)")
_STATUS_WORDS = ("where", "status", "track", "shipped", "arrive", "delivery", "update")


class Message(TypedDict):
    role: Literal["user", "assistant"]
    content: str


class ActionRequest(TypedDict):
    action: str
    args: dict[str, Any]


class SupportState(TypedDict, total=False):
    # Plain dicts rather than langchain messages: small, JSON-shaped checkpoints that
    # the console can show and a person can edit when forking.
    messages: Annotated[list[Message], operator.add]
    customer: str
    intent: str
    order_id: str | None
    amount: float | None
    proposal: ActionRequest | None
    decision: str | None
    outcome: str | None


def user_message(text: str, *, customer: str | None = None) -> dict[str, Any]:
    """The input of one conversation turn."""
    turn: dict[str, Any] = {"messages": [{"role": "user", "content": text}]}
    if customer:
        turn["customer"] = customer
    return turn


def _last_user_text(state: SupportState) -> str:
    for message in reversed(state.get("messages") or []):
        if message.get("role") == "user":
            return message.get("content", "")
    return ""


def _memory(store: BaseStore | None, state: SupportState) -> tuple[str, ...] | None:
    customer = state.get("customer")
    return ("customers", customer) if store is not None and customer else None


# `Optional[BaseStore]` spelled out: LangGraph injects the store by this annotation.
def classify(state: SupportState, store: Optional[BaseStore] = None) -> dict[str, Any]:  # noqa: UP045
    text = _last_user_text(state)
    lowered = text.lower()
    if any(w in lowered for w in _REFUND_WORDS):
        intent = "refund"
    elif any(w in lowered for w in _STATUS_WORDS):
        intent = "order_status"
    else:
        intent = "other"
    order = _ORDER_RE.search(text)
    amount = _AMOUNT_RE.search(text)
    # A follow-up ("is it shipped yet?") refers to the order of the conversation so
    # far: this is where session memory shows.
    order_id = order.group(1) if order else state.get("order_id")
    namespace = _memory(store, state)
    if namespace is not None:
        # Cross-thread memory: an order named in another conversation, and a name.
        if order:
            store.put(namespace, "last_order", {"order_id": order_id})
        elif not order_id and (item := store.get(namespace, "last_order")):
            order_id = item.value["order_id"]
        if name := _NAME_RE.search(text):
            store.put(namespace, "profile", {"name": name.group(1)})
    return {
        "intent": intent,
        "order_id": order_id,
        "amount": float(amount.group(1)) if amount else state.get("amount"),
        "proposal": None,
        "decision": None,
        "outcome": None,
    }


def draft(state: SupportState) -> dict[str, Any]:
    order_id, amount = state.get("order_id"), state.get("amount")
    if not order_id:
        proposal = {"action": "reply", "args": {"text": "Which order is this about? Please send its number (#1234)."}}
    elif state.get("intent") == "refund":
        proposal = {"action": "issue_refund", "args": {"order_id": order_id, "amount": amount or 0.0}}
    elif state.get("intent") == "order_status":
        proposal = {"action": "send_tracking", "args": {"order_id": order_id}}
    else:
        proposal = {"action": "reply", "args": {"text": f"Thanks, I have noted this on order #{order_id}."}}
    return {"proposal": proposal}


def needs_approval(state: SupportState) -> Literal["approve", "execute"]:
    proposal = state.get("proposal") or {}
    return "approve" if proposal.get("action") in APPROVAL_ACTIONS else "execute"


def approval_request(state: SupportState) -> dict[str, Any]:
    """The `HumanInterrupt` payload for the drafted action."""
    proposal = state["proposal"]
    args = proposal["args"]
    return {
        "action_request": {"action": proposal["action"], "args": dict(args)},
        "config": {
            "allow_accept": True,
            "allow_edit": True,
            "allow_respond": True,
            "allow_ignore": True,
        },
        "description": (
            f"Refund ${args.get('amount', 0):.2f} on order #{args.get('order_id')} "
            f"for {state.get('customer') or 'the customer'}: "
            f"\u201c{_last_user_text(state)}\u201d"
        ),
    }


def parse_human_response(value: Any, proposal: ActionRequest) -> tuple[str, Any]:
    """Normalise a resume value to `(type, args)`.

    Accepts the Agent Inbox `HumanResponse` list, one `HumanResponse` dict, an edited
    `ActionRequest` (`{"action", "args"}`), a dict of edited args, or a string: an
    accept/ignore word or else a text response.

    Raises:
        ValueError: an unknown response type, or an edit whose args are not a dict.
    """
    if isinstance(value, list):
        if len(value) != 1:
            raise ValueError(f"Expected one HumanResponse, got {len(value)}")
        value = value[0]
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("accept", "approve", "approved", "yes", "ok"):
            return "accept", None
        if word in ("ignore", "reject", "rejected", "no"):
            return "ignore", None
        return "response", value
    if not isinstance(value, dict):
        raise ValueError(f"Cannot read a human response from {type(value).__name__}")
    if "type" in value:
        kind = value["type"]
        if kind not in RESPONSE_TYPES:
            raise ValueError(f"Unknown response type {kind!r}; expected one of {RESPONSE_TYPES}")
        args = value.get("args")
    elif "action" in value:
        kind, args = "edit", value
    else:
        kind, args = "edit", {"action": proposal["action"], "args": {**proposal["args"], **value}}
    if kind == "edit":
        if isinstance(args, dict) and "action" not in args:
            args = {"action": proposal["action"], "args": {**proposal["args"], **args}}
        if not isinstance(args, dict) or not isinstance(args.get("args"), dict):
            raise ValueError("An edit needs {'action': ..., 'args': {...}}")
    if kind == "response" and not isinstance(args, str):
        raise ValueError("A response needs a text")
    return kind, args


def approve(state: SupportState) -> dict[str, Any]:
    # Everything before `interrupt()` runs again on resume, so it must stay pure.
    kind, args = parse_human_response(interrupt(approval_request(state)), state["proposal"])
    if kind == "edit":
        return {"decision": "edit", "proposal": {"action": args["action"], "args": dict(args["args"])}}
    if kind == "response":
        return {"decision": "response", "proposal": {"action": "reply", "args": {"text": args}}}
    return {"decision": kind}


def execute(state: SupportState, store: Optional[BaseStore] = None) -> dict[str, Any]:  # noqa: UP045
    if state.get("decision") == "ignore":
        return {"outcome": "ignored"}
    proposal = state["proposal"]
    args = proposal["args"]
    if proposal["action"] == "issue_refund":
        text = f"I have refunded ${float(args['amount']):.2f} for order #{args['order_id']}."
        outcome = f"refunded {float(args['amount']):.2f}"
    elif proposal["action"] == "send_tracking":
        text = f"Order #{args['order_id']} is on its way: tracking number TRK-{args['order_id']}."
        outcome = "tracking sent"
    else:
        text, outcome = args["text"], "replied"
    namespace = _memory(store, state)
    if namespace is not None and (profile := store.get(namespace, "profile")):
        text = f"{profile.value['name']}, {text[0].lower()}{text[1:]}"
    return {"messages": [{"role": "assistant", "content": text}], "outcome": outcome}


def build_graph(checkpointer=None, store=None):
    """The compiled demo graph (the `demo` entry of `TIMETRAVEL_GRAPHS`).

    Args:
        checkpointer: a saver, e.g. `DjangoSaver(using=alias)`; without one the graph
            keeps no memory and cannot pause.
        store: an optional `BaseStore`, passed through to the graph.
    """
    builder = StateGraph(SupportState)
    builder.add_node("classify", classify)
    builder.add_node("draft", draft)
    builder.add_node("approve", approve)
    builder.add_node("execute", execute)
    builder.add_edge(START, "classify")
    builder.add_edge("classify", "draft")
    builder.add_conditional_edges("draft", needs_approval, ["approve", "execute"])
    builder.add_edge("approve", "execute")
    builder.add_edge("execute", END)
    return builder.compile(checkpointer=checkpointer, store=store)
