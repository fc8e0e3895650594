"""Reads of the console: thread lists, checkpoint trees, states, diffs, the inbox, runs
and the audit log.

Every selector's query count is bounded by its page size, never by the number of
threads or checkpoints: lists are keyset-paginated over indexed columns (no
`COUNT(*)` of everything), the tree reads one window of checkpoint rows without their
values, and a state is one `get_state` of the graph.
"""

from __future__ import annotations

import base64
import datetime
import json
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.db.models.fields.json import KeyTextTransform
from django.http import Http404
from django.utils.safestring import mark_safe
from langgraph.checkpoint.serde.types import ERROR, INTERRUPT

from checkpoints.codec import valid_filter_key
from checkpoints.models import Checkpoint, CheckpointWrite, Thread
from checkpoints.saver import DjangoSaver

from . import graphs, values
from .models import Approval, AuditEntry, Run

PAGE_SIZE = 50
TREE_PAGE_SIZE = 100
INBOX_PAGE_SIZE = 25
# Metadata keys go into a JSON path, never an ORM lookup (CVE-2025-67644).

SORTS = {
    "-updated_at": ("updated_at", True),
    "updated_at": ("updated_at", False),
    "-created_at": ("created_at", True),
    "created_at": ("created_at", False),
    "thread_id": ("thread_id", False),
    "-thread_id": ("thread_id", True),
    "-checkpoint_count": ("checkpoint_count", True),
    "-bytes_stored": ("bytes_stored", True),
}
SORT_LABELS = {
    "-updated_at": "Last update, newest first",
    "updated_at": "Last update, oldest first",
    "-created_at": "Created, newest first",
    "created_at": "Created, oldest first",
    "thread_id": "Thread id, A-Z",
    "-thread_id": "Thread id, Z-A",
    "-checkpoint_count": "Most checkpoints",
    "-bytes_stored": "Largest",
}
DEFAULT_SORT = "-updated_at"


def _saver() -> DjangoSaver:
    return graphs.saver()


def _threads():
    return Thread.objects.using(graphs.saver_alias())


# -- keyset cursors --------------------------------------------------------------------


def cursor_encode(value: Any, thread_id: str) -> str:
    if isinstance(value, datetime.datetime):
        value = {"t": value.isoformat()}
    raw = json.dumps([value, thread_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(cursor: str) -> tuple[Any, str]:
    """Raises ValueError on a cursor this module did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, thread_id = json.loads(raw)
    except Exception as exc:
        raise ValueError("Bad cursor") from exc
    if isinstance(value, dict) and "t" in value:
        value = datetime.datetime.fromisoformat(value["t"])
    if not isinstance(thread_id, str):
        raise ValueError("Bad cursor")
    return value, thread_id


def _keyset(field_name: str, descending: bool, value: Any, thread_id: str) -> Q:
    """Rows after `(value, thread_id)` in the page order; the redundant bound on the
    sort column alone lets the index start at the cursor instead of filtering from the top."""
    if field_name == "thread_id":
        return Q(thread_id__lt=thread_id) if descending else Q(thread_id__gt=thread_id)
    if descending:
        return Q(**{f"{field_name}__lte": value}) & (
            Q(**{f"{field_name}__lt": value}) | Q(**{field_name: value, "thread_id__lt": thread_id})
        )
    return Q(**{f"{field_name}__gte": value}) & (
        Q(**{f"{field_name}__gt": value}) | Q(**{field_name: value, "thread_id__gt": thread_id})
    )


@dataclass
class Page:
    items: list
    next_cursor: str = ""
    prev_cursor: str = ""


def _paginate(qs, sort: str, *, after: str = "", before: str = "", limit: int) -> Page:
    field_name, descending = SORTS[sort]
    order = (f"-{field_name}" if descending else field_name, "-thread_id" if descending else "thread_id")
    backwards = bool(before) and not after
    if backwards:
        # The previous page: walk the other way from the cursor, then flip the rows.
        value, tid = cursor_decode(before)
        qs = qs.filter(_keyset(field_name, not descending, value, tid))
        order = tuple(o[1:] if o.startswith("-") else f"-{o}" for o in order)
    elif after:
        value, tid = cursor_decode(after)
        qs = qs.filter(_keyset(field_name, descending, value, tid))
    rows = list(qs.order_by(*order)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    page = Page(items=rows)
    if rows:
        first, last = rows[0], rows[-1]
        if more or backwards:
            page.next_cursor = cursor_encode(getattr(last, field_name), last.thread_id)
        if (backwards and more) or (after and not backwards):
            page.prev_cursor = cursor_encode(getattr(first, field_name), first.thread_id)
    return page


# -- threads -----------------------------------------------------------------------


def thread_list(
    *,
    q: str = "",
    meta_key: str = "",
    meta_value: str = "",
    status: str = "",
    graph: str = "",
    sort: str = DEFAULT_SORT,
    after: str = "",
    before: str = "",
    limit: int = PAGE_SIZE,
) -> Page:
    """Threads, filtered and keyset-paginated.

    Args:
        q: thread id prefix.
        meta_key, meta_value: a metadata key (letters, digits, `_ . -`) and its value
            (as text; a number matches its JSON number too). A key alone means "has key".
    Raises:
        ValueError: a bad metadata key, sort or cursor.
    """
    if sort not in SORTS:
        raise ValueError(f"Unknown sort {sort!r}")
    qs = _threads().all()
    if q:
        qs = qs.filter(thread_id__startswith=q)
    if status:
        qs = qs.filter(status=status)
    if graph:
        qs = qs.filter(graph_id=graph)
    if meta_key:
        if not valid_filter_key(meta_key):
            raise ValueError("A metadata key has letters, digits, '_', '.' or '-' only")
        if meta_value == "":
            qs = qs.filter(metadata__has_key=meta_key)
        else:
            # KT() builds a JSON path from the key as a parameter, never a lookup.
            match = Q(meta_text=meta_value)
            number = _number(meta_value)
            if number is not None:
                match |= Q(meta_text=str(number))
            # KeyTextTransform puts the key in a JSON path parameter, never in a lookup;
            # the cast makes the comparison plain text on SQLite too.
            qs = qs.alias(meta_text=Cast(KeyTextTransform(meta_key, "metadata"), TextField())).filter(match)
    return _paginate(qs, sort, after=after, before=before, limit=limit)


def _number(text: str) -> int | float | None:
    try:
        number = json.loads(text)
    except ValueError:
        return None
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        return None
    return number


def thread_get(thread_id: str) -> Thread:
    try:
        return _threads().get(thread_id=thread_id)
    except Thread.DoesNotExist:
        raise Http404(f"No thread {thread_id!r}") from None


def inbox_count() -> int:
    """Interrupted threads (the status index holds them together)."""
    return _threads().filter(status="interrupted").count()


def thread_storage_estimate() -> int | None:
    """The planner's row estimate on PostgreSQL (free); None elsewhere."""
    alias = graphs.saver_alias()
    from django.db import connections

    conn = connections[alias]
    if conn.vendor != "postgresql":
        return None
    with conn.cursor() as cur:
        cur.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [Thread._meta.db_table])
        row = cur.fetchone()
    return max(int(row[0]), 0) if row else None


# -- the checkpoint tree -----------------------------------------------------------

ROW_H = 30
LANE_W = 16


@dataclass
class TreeRow:
    checkpoint_id: str
    parent_id: str | None
    source: str
    step: Any
    created_at: Any
    run_id: str | None
    lane: int = 0
    lines: list = field(default_factory=list)  # (x1, y1, x2, y2)
    fork_of: str | None = None  # the parent, when this checkpoint starts a branch
    children: int = 0
    drawing: str = ""

    @property
    def cx(self) -> int:
        return self.lane * LANE_W + LANE_W // 2

    def svg(self, width: int):
        """The row's slice of the tree drawing, built here: a template loop per line
        per row costs more than the rest of the page on a long thread."""
        lines = "".join(f'<line x1="{a}" y1="{b}" x2="{c}" y2="{d}"/>' for a, b, c, d in self.lines)
        source = self.source if self.source in ("input", "loop", "update", "fork") else "other"
        return mark_safe(
            f'<svg width="{width}" height="{ROW_H}" aria-hidden="true">{lines}'
            f'<circle class="dot source-{source}" cx="{self.cx}" cy="{ROW_H // 2}" r="5"/></svg>'
        )


@dataclass
class Tree:
    rows: list[TreeRow]
    lanes: int
    older: str = ""  # checkpoint id to page from, when older rows exist
    head: str = ""

    @property
    def width(self) -> int:
        return max(self.lanes, 1) * LANE_W

    @property
    def ids(self) -> set[str]:
        return {r.checkpoint_id for r in self.rows}


def checkpoint_tree(*, thread_id: str, ns: str = "", before: str = "", limit: int = TREE_PAGE_SIZE) -> Tree:
    """A window of a thread's checkpoints, newest first, laid out as branches: a
    checkpoint continues its parent's lane unless a sibling took it first, so a fork
    (an `update_state` on an earlier checkpoint) opens a lane of its own."""
    qs = Checkpoint.objects.using(graphs.saver_alias()).filter(thread_id=thread_id, checkpoint_ns=ns)
    if before:
        qs = qs.filter(checkpoint_id__lt=before)
    raw = list(
        qs.order_by("-checkpoint_id").values_list(
            "checkpoint_id", "parent_checkpoint_id", "metadata", "created_at", "run_id"
        )[: limit + 1]
    )
    older = raw[limit - 1][0] if len(raw) > limit else ""
    raw = raw[:limit]
    rows = [
        TreeRow(cid, parent, str((meta or {}).get("source", "")), (meta or {}).get("step"), created, run_id)
        for cid, parent, meta, created, run_id in raw
    ]
    _layout(rows, truncated=bool(older))
    tree = Tree(rows=rows, lanes=1 + max((r.lane for r in rows), default=0), older=older)
    for row in rows:
        row.drawing = row.svg(tree.width)
    return tree


def _layout(rows: list[TreeRow], *, truncated: bool) -> None:
    index = {r.checkpoint_id: i for i, r in enumerate(rows)}
    n = len(rows)
    # Branches, oldest first: a row continues its parent's branch if it is the first child.
    branch_of: dict[str, int] = {}
    branches: list[dict] = []
    continued: set[str] = set()
    for i in range(n - 1, -1, -1):
        row = rows[i]
        parent = row.parent_id
        if parent in index:
            rows[index[parent]].children += 1
        if parent in index and parent not in continued:
            continued.add(parent)
            b = branch_of[parent]
        else:
            b = len(branches)
            if parent in index:
                row.fork_of = parent
                bottom = index[parent]
            else:
                # The parent is older than the window: the line runs off the bottom.
                bottom = n if parent else i
            branches.append({"top": i, "bottom": bottom, "nodes": set()})
        branch_of[row.checkpoint_id] = b
        branches[b]["top"] = i
        branches[b]["nodes"].add(i)
    # Lanes: interval colouring of the branches' row spans, oldest span first.
    lane_end: list[int] = []  # per lane, the top row index it is busy up to
    lanes: dict[int, int] = {}
    for b in sorted(range(len(branches)), key=lambda b: -branches[b]["bottom"]):
        span = branches[b]
        for lane, busy_to in enumerate(lane_end):
            if busy_to > span["bottom"]:
                lanes[b] = lane
                lane_end[lane] = span["top"]
                break
        else:
            lanes[b] = len(lane_end)
            lane_end.append(span["top"])
    for i, row in enumerate(rows):
        row.lane = lanes[branch_of[row.checkpoint_id]]
    h, mid = ROW_H, ROW_H // 2
    for b, span in enumerate(branches):
        x = lanes[b] * LANE_W + LANE_W // 2
        top, bottom = span["top"], span["bottom"]
        for i in range(top, min(bottom, n - 1) + 1):
            if i in span["nodes"]:
                if i > top:
                    rows[i].lines.append((x, 0, x, mid))
                if i < bottom:
                    rows[i].lines.append((x, mid, x, h))
            elif i == bottom:
                # The fork point: from the parent's dot up to this branch's lane.
                px = rows[i].cx
                rows[i].lines.append((px, mid, x, 0))
            else:
                rows[i].lines.append((x, 0, x, h))


def namespaces(thread_id: str) -> list[str]:
    """The thread's checkpoint namespaces: "" and one per subgraph call."""
    return list(
        Checkpoint.objects.using(graphs.saver_alias())
        .filter(thread_id=thread_id)
        .order_by("checkpoint_ns")
        .values_list("checkpoint_ns", flat=True)
        .distinct()
    )


# -- state at a checkpoint -----------------------------------------------------------


@dataclass
class Task:
    id: str
    name: str
    path: tuple
    error: str | None
    interrupts: list[dict]
    state_ns: str = ""


@dataclass
class State:
    """A checkpoint as the console shows it (and as `ThreadState` serialises it)."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    values: Any  # JSON-compatible
    next: tuple[str, ...]
    tasks: list[Task]
    interrupts: list[dict]
    metadata: dict
    created_at: str | None
    pending_writes: list[dict]
    from_graph: bool  # False: read from the saver alone (unregistered graph or a subgraph namespace)

    @property
    def errors(self) -> list[Task]:
        return [t for t in self.tasks if t.error]

    @property
    def messages(self) -> list[values.Message]:
        return values.conversation(self.values)


def _config(thread_id: str, ns: str = "", checkpoint_id: str | None = None) -> dict:
    configurable = {"thread_id": thread_id, "checkpoint_ns": ns}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def _graph_for(thread: Thread):
    try:
        return graphs.graph_get(graphs.graph_for_thread(thread.graph_id))
    except (graphs.UnknownGraph, ImportError):
        return None


def checkpoint_state(*, thread: Thread, checkpoint_id: str = "", ns: str = "", with_writes: bool = True) -> State:
    """The state at a checkpoint (the head without one), through the thread's graph
    when it is registered, else from the saver's raw channels.

    Raises:
        Http404: no such checkpoint.
    """
    saver = _saver()
    config = _config(thread.thread_id, ns, checkpoint_id or None)
    graph = _graph_for(thread) if ns == "" else None
    saved = saver.get_tuple(config) if (with_writes or graph is None) else None
    if (with_writes or graph is None) and saved is None:
        raise Http404("No such checkpoint")
    if graph is not None:
        if saved is not None:
            config = saved.config
        snapshot = graph.get_state(config, subgraphs=True)
        if not snapshot.config:
            raise Http404("No such checkpoint")
        conf = snapshot.config["configurable"]
        tasks = [
            Task(
                id=t.id, name=t.name, path=tuple(str(p) for p in t.path), error=t.error and str(t.error),
                interrupts=[values.interrupt_json(i) for i in t.interrupts],
                state_ns=((getattr(t.state, "config", None) or {}).get("configurable") or {}).get("checkpoint_ns", "")
                if t.state is not None else "",
            )
            for t in snapshot.tasks
        ]
        state = State(
            thread_id=thread.thread_id, checkpoint_ns=conf.get("checkpoint_ns", ""),
            checkpoint_id=conf["checkpoint_id"],
            parent_checkpoint_id=((snapshot.parent_config or {}).get("configurable") or {}).get("checkpoint_id"),
            values=values.to_jsonable(snapshot.values), next=tuple(snapshot.next), tasks=tasks,
            interrupts=[values.interrupt_json(i) for i in snapshot.interrupts],
            metadata=values.to_jsonable(snapshot.metadata or {}), created_at=snapshot.created_at,
            pending_writes=[], from_graph=True,
        )
    else:
        state = _raw_state(thread.thread_id, saved)
    if saved is not None:
        state.pending_writes = [
            {"task_id": task_id, "channel": channel, "value": values.to_jsonable(value)}
            for task_id, channel, value in saved.pending_writes or []
        ]
    return state


def _raw_state(thread_id: str, saved) -> State:
    checkpoint = saved.checkpoint
    channel_values = {
        k: v for k, v in (checkpoint.get("channel_values") or {}).items()
        if not k.startswith("branch:") and not k.startswith("__")
    }
    errors: dict[str, str] = {}
    interrupts: dict[str, list] = {}
    names: dict[str, str] = {}
    for task_id, channel, value in saved.pending_writes or []:
        if channel == ERROR:
            errors[task_id] = str(value)
        elif channel == INTERRUPT:
            interrupts.setdefault(task_id, []).extend(values.interrupt_json(i) for i in value or ())
        names.setdefault(task_id, "")
    tasks = [
        Task(id=t, name=names[t], path=(), error=errors.get(t), interrupts=interrupts.get(t, []))
        for t in names if t in errors or t in interrupts
    ]
    conf = saved.config["configurable"]
    return State(
        thread_id=thread_id, checkpoint_ns=conf.get("checkpoint_ns", ""), checkpoint_id=conf["checkpoint_id"],
        parent_checkpoint_id=((saved.parent_config or {}).get("configurable") or {}).get("checkpoint_id"),
        values=values.to_jsonable(channel_values), next=(), tasks=tasks,
        interrupts=[i for t in tasks for i in t.interrupts],
        metadata=values.to_jsonable(saved.metadata or {}),
        created_at=checkpoint.get("ts"), pending_writes=[], from_graph=False,
    )


def checkpoint_diff(*, thread: Thread, state: State, against: str = "") -> tuple[str | None, list[values.Change]]:
    """Changes from `against` (the parent by default) to `state`; `(None, [])` for a
    root checkpoint."""
    other_id = against or state.parent_checkpoint_id
    if not other_id:
        return None, []
    if other_id == state.checkpoint_id:
        return other_id, []
    other = checkpoint_state(thread=thread, checkpoint_id=other_id, ns=state.checkpoint_ns, with_writes=False)
    return other_id, values.diff(other.values, state.values)


def thread_runs(thread_id: str, *, limit: int = 10) -> list[Run]:
    return list(Run.objects.filter(thread_id=thread_id).select_related("created_by").order_by("-id")[:limit])


def run_active(thread_id: str) -> Run | None:
    return Run.objects.filter(thread_id=thread_id, state__in=[Run.State.QUEUED, Run.State.RUNNING]).first()


# -- the inbox --------------------------------------------------------------------


@dataclass
class InboxItem:
    thread: Thread
    checkpoint_id: str
    interrupt_id: str
    value: Any  # JSON-compatible
    kind: str  # human_interrupt | hitl | json
    request: dict | None  # the HumanInterrupt, unwrapped from a one-item list
    approval: Approval | None
    siblings: int  # interrupts pending on the same checkpoint

    @property
    def state(self) -> str:
        return self.approval.state if self.approval else Approval.State.PENDING

    @property
    def allowed(self) -> dict[str, bool]:
        return interrupt_allowed(self.kind, self.request)


def interrupt_kind(value: Any) -> tuple[str, dict | None]:
    """Which form an interrupt payload gets: Agent Inbox's `HumanInterrupt` (alone or
    as a one-item list), LangChain's `HITLRequest`, or plain JSON."""
    candidate = value[0] if isinstance(value, list) and len(value) == 1 else value
    if (
        isinstance(candidate, dict)
        and isinstance(candidate.get("action_request"), dict)
        and "action" in candidate["action_request"]
    ):
        return "human_interrupt", candidate
    if isinstance(candidate, dict) and isinstance(candidate.get("action_requests"), list):
        return "hitl", candidate
    return "json", None


def interrupt_allowed(kind: str, request: dict | None) -> dict[str, bool]:
    if kind != "human_interrupt":
        return {"accept": False, "edit": False, "response": False, "ignore": False, "json": True, "resolve": True}
    config = request.get("config") or {}
    return {
        "accept": bool(config.get("allow_accept")),
        "edit": bool(config.get("allow_edit")),
        "response": bool(config.get("allow_respond")),
        "ignore": bool(config.get("allow_ignore")),
        "json": False,
        "resolve": True,
    }


HIDDEN_STATES = (Approval.State.DECIDED, Approval.State.RESUMED)


def pending_interrupts(threads: list[Thread]) -> list[tuple[Thread, str, Any]]:
    """`(thread, checkpoint_id, Interrupt)` for the interrupts recorded on each thread's
    head checkpoint, in one query."""
    if not threads:
        return []
    by_id = {t.thread_id: t for t in threads}
    heads = Q()
    for t in threads:
        heads |= Q(thread_id=t.thread_id, checkpoint_id=t.head_checkpoint_id)
    rows = (
        CheckpointWrite.objects.using(graphs.saver_alias())
        .filter(heads, checkpoint_ns="", channel=INTERRUPT)
        .order_by("thread_id", "task_path", "task_id")
        .values_list("thread_id", "checkpoint_id", "type", "blob")
    )
    serde = _saver().serde
    out = []
    for thread_id, checkpoint_id, type_, blob in rows:
        for interrupt in serde.loads_typed((type_, bytes(blob))) or ():
            out.append((by_id[thread_id], checkpoint_id, interrupt))
    return out


def inbox(*, after: str = "", before: str = "", limit: int = INBOX_PAGE_SIZE) -> Page:
    """Pending interrupts of interrupted threads, oldest thread first: three queries
    (threads, their head's interrupt writes, approvals) per page."""
    page = _paginate(_threads().filter(status="interrupted"), "updated_at", after=after, before=before, limit=limit)
    found = pending_interrupts(page.items)
    approvals = {}
    if found:
        keys = Q()
        for thread, checkpoint_id, interrupt in found:
            keys |= Q(thread_id=thread.thread_id, checkpoint_id=checkpoint_id, interrupt_id=interrupt.id)
        approvals = {
            (a.thread_id, a.checkpoint_id, a.interrupt_id): a
            for a in Approval.objects.filter(keys).select_related("claimed_by", "decided_by")
        }
    per_checkpoint: dict[tuple[str, str], int] = {}
    for thread, checkpoint_id, _ in found:
        per_checkpoint[(thread.thread_id, checkpoint_id)] = per_checkpoint.get((thread.thread_id, checkpoint_id), 0) + 1
    items = []
    for thread, checkpoint_id, interrupt in found:
        approval = approvals.get((thread.thread_id, checkpoint_id, interrupt.id))
        if approval is not None and approval.state in HIDDEN_STATES:
            continue
        value = values.to_jsonable(interrupt.value)
        kind, request = interrupt_kind(value)
        items.append(InboxItem(
            thread=thread, checkpoint_id=checkpoint_id, interrupt_id=interrupt.id, value=value, kind=kind,
            request=request, approval=approval, siblings=per_checkpoint[(thread.thread_id, checkpoint_id)],
        ))
    page.items = items
    return page


def inbox_item(*, thread_id: str, interrupt_id: str) -> InboxItem:
    """One pending interrupt of a thread (its head checkpoint).

    Raises:
        Http404: the thread has no such pending interrupt.
    """
    thread = thread_get(thread_id)
    found = pending_interrupts([thread])
    for t, checkpoint_id, interrupt in found:
        if interrupt.id == interrupt_id:
            value = values.to_jsonable(interrupt.value)
            kind, request = interrupt_kind(value)
            approval = (
                Approval.objects.filter(thread_id=thread_id, checkpoint_id=checkpoint_id, interrupt_id=interrupt_id)
                .select_related("claimed_by", "decided_by").first()
            )
            return InboxItem(
                thread=t, checkpoint_id=checkpoint_id, interrupt_id=interrupt_id, value=value, kind=kind,
                request=request, approval=approval, siblings=len(found),
            )
    raise Http404("This interrupt is not pending on the thread's latest checkpoint")


def approvals_recent(*, thread_id: str, limit: int = 10) -> list[Approval]:
    return list(
        Approval.objects.filter(thread_id=thread_id).select_related("decided_by", "claimed_by").order_by("-id")[:limit]
    )


# -- the audit log --------------------------------------------------------------------


def audit_list(*, thread_id: str = "", action: str = "", username: str = "", before: int | None = None,
               limit: int = PAGE_SIZE) -> tuple[list[AuditEntry], int | None]:
    """Newest first, keyset on the id; returns the page and the id to continue before."""
    qs = AuditEntry.objects.all()
    if thread_id:
        qs = qs.filter(thread_id=thread_id)
    if action:
        qs = qs.filter(action=action)
    if username:
        qs = qs.filter(username=username)
    if before:
        qs = qs.filter(id__lt=before)
    rows = list(qs.order_by("-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)



# -- the store ------------------------------------------------------------------------

STORE_PAGE_SIZE = 50
STORE_CHILDREN_LIMIT = 500


def namespace_parse(text: str) -> tuple[str, ...]:
    """`a.b.c` -> `("a", "b", "c")`: store namespace labels cannot contain a dot."""
    return tuple(label for label in (text or "").split(".") if label)


@dataclass
class StoreListing:
    namespace: tuple[str, ...]
    children: list[tuple[str, ...]]
    items: list
    next_key: str = ""


def store_listing(*, namespace: tuple[str, ...], after: str = "", limit: int = STORE_PAGE_SIZE) -> StoreListing:
    """The namespaces one level below `namespace`, and the items in it (by key, keyset
    paginated). Expired items are left out; reading never refreshes a TTL."""
    from django.utils import timezone
    from store.models import StoreItem

    store = graphs.store()
    kwargs = {"prefix": namespace} if namespace else {}
    children = [
        ns for ns in store.list_namespaces(max_depth=len(namespace) + 1, limit=STORE_CHILDREN_LIMIT, **kwargs)
        if len(ns) == len(namespace) + 1
    ]
    qs = StoreItem.objects.using(graphs.saver_alias()).filter(namespace=".".join(namespace)).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    ).defer("embedding")
    if after:
        qs = qs.filter(key__gt=after)
    items = list(qs.order_by("key")[: limit + 1])
    more = len(items) > limit
    items = items[:limit]
    return StoreListing(namespace=namespace, children=children, items=items,
                        next_key=items[-1].key if more and items else "")


def store_search(*, namespace: tuple[str, ...], query: str = "", filter: dict | None = None,
                 limit: int = STORE_PAGE_SIZE, offset: int = 0) -> list:
    """`BaseStore.search` under `namespace` (semantic when the store has an index and a
    query is given); never refreshes TTLs.

    Raises:
        ValueError: a filter the store refuses.
    """
    return graphs.store().search(namespace, query=query or None, filter=filter or None, limit=limit,
                                 offset=offset, refresh_ttl=False)


def store_item(*, namespace: tuple[str, ...], key: str):
    item = graphs.store().get(namespace, key, refresh_ttl=False)
    if item is None:
        raise Http404("No such item")
    return item
