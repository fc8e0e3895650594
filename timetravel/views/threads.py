"""Thread list and thread detail (tree, state, diff, writes, interrupts, runs)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import render

from .. import graphs, selectors, shapes
from ..forms import ThreadSearchForm
from .base import json_response, pretty_json, staff_view, wants_json


CONVERSATION_TAIL = 50


@staff_view
def thread_list(request):
    form = ThreadSearchForm(request.GET or None, graph_choices=graphs.graph_names())
    page, error = selectors.Page(items=[]), ""
    if form.is_bound and not form.is_valid():
        error = "Check the search fields"
        data = {}
    else:
        data = form.cleaned_data if form.is_bound else {"sort": selectors.DEFAULT_SORT}
        try:
            page = selectors.thread_list(
                q=data.get("q", ""), meta_key=data.get("meta_key", ""), meta_value=data.get("meta_value", ""),
                status=data.get("status", ""), graph=data.get("graph", ""), sort=data.get("sort") or selectors.DEFAULT_SORT,
                after=data.get("after", ""), before=data.get("before", ""),
            )
        except ValueError as exc:
            error = str(exc)
    if wants_json(request):
        if error:
            return json_response({"error": error, "fields": form.errors}, status=400)
        return json_response({
            "threads": [shapes.thread_json(t) for t in page.items],
            "next_cursor": page.next_cursor or None, "prev_cursor": page.prev_cursor or None,
        })
    keep = {k: v for k, v in request.GET.items() if k not in ("after", "before") and v}
    return render(request, "timetravel/thread_list.html", dict(form=form, page=page, error=error,
        next_url="?" + urlencode({**keep, "after": page.next_cursor}) if page.next_cursor else "",
        prev_url="?" + urlencode({**keep, "before": page.prev_cursor}) if page.prev_cursor else "",
        first_url="?" + urlencode(keep) if (data.get("after") or data.get("before")) else "",
        estimate=selectors.thread_storage_estimate(),
    ))


def _detail_context(request, thread_id: str) -> dict:
    thread = selectors.thread_get(thread_id)
    ns = request.GET.get("ns", "")
    checkpoint_id = request.GET.get("checkpoint", "")
    tree = selectors.checkpoint_tree(thread_id=thread_id, ns=ns, before=request.GET.get("before", ""))
    tree.head = thread.head_checkpoint_id if ns == "" else (tree.rows[0].checkpoint_id if tree.rows else "")
    return {"thread": thread, "ns": ns, "tree": tree, "selected": checkpoint_id}


@staff_view
def thread_detail(request, thread_id: str):
    ctx = _detail_context(request, thread_id)
    thread, ns = ctx["thread"], ctx["ns"]
    if request.GET.get("fragment") == "live":
        ctx.update(runs=selectors.thread_runs(thread_id))
        return render(request, "timetravel/_thread_live.html", ctx)
    try:
        state = selectors.checkpoint_state(thread=thread, checkpoint_id=ctx["selected"], ns=ns)
    except Http404:
        if not ctx["selected"] and not ctx["tree"].rows:
            state = None
        else:
            raise
    against = request.GET.get("against", "")
    diff_with, changes = (None, [])
    if state is not None:
        try:
            diff_with, changes = selectors.checkpoint_diff(thread=thread, state=state, against=against)
        except Http404:
            return HttpResponseBadRequest("No checkpoint to compare with of that id")
    if wants_json(request):
        return json_response({
            "thread": shapes.thread_json(thread, state),
            "state": shapes.thread_state_json(state) if state else None,
            "history": [
                {"checkpoint": shapes.checkpoint_json(thread_id, ns, r.checkpoint_id),
                 "parent_checkpoint": shapes.checkpoint_json(thread_id, ns, r.parent_id),
                 "metadata": {"source": r.source, "step": r.step}, "created_at": r.created_at.isoformat()}
                for r in ctx["tree"].rows
            ],
            "diff": {"against": diff_with, "changes": [c.__dict__ for c in changes]},
        })
    view = request.GET.get("view", "pretty")
    # The newest messages; a thread with hundreds of turns shows the rest on request.
    conversation = state.messages if state else []
    shown = conversation if request.GET.get("messages") == "all" else conversation[-CONVERSATION_TAIL:]
    ctx.update(dict(state=state, diff_with=diff_with, changes=changes, view=view, conversation=shown,
        conversation_hidden=len(conversation) - len(shown),
        raw_json=pretty_json(state.values) if state else "",
        namespaces=selectors.namespaces(thread_id), runs=selectors.thread_runs(thread_id),
        approvals=selectors.approvals_recent(thread_id=thread_id),
        graph_known=thread.graph_id in graphs.graph_names() or len(graphs.graph_names()) == 1,
    ))
    return render(request, "timetravel/thread_detail.html", ctx)
