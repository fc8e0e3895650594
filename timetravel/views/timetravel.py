"""Time travel: fork (edit, preview, create, continue), replay, delete. Each action
confirms on GET and acts on POST, then messages and redirects (django-rq's pattern)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from .. import graphs, selectors, services
from ..forms import ForkForm
from .base import json_response, pretty_json, staff_view, wants_json


def _detail_url(thread_id: str, checkpoint_id: str = "") -> str:
    url = reverse("timetravel:thread_detail", args=[thread_id])
    return f"{url}?checkpoint={checkpoint_id}" if checkpoint_id else url


@staff_view
@require_http_methods(["GET", "POST"])
def checkpoint_fork(request, thread_id: str, checkpoint_id: str):
    thread = selectors.thread_get(thread_id)
    state = selectors.checkpoint_state(thread=thread, checkpoint_id=checkpoint_id, with_writes=False)
    try:
        nodes = graphs.graph_nodes(graphs.graph_for_thread(thread.graph_id))
    except graphs.UnknownGraph as exc:
        messages.error(request, str(exc))
        return redirect(_detail_url(thread_id, checkpoint_id))
    preview = None
    if request.method == "POST":
        form = ForkForm(request.POST, nodes=nodes)
        if form.is_valid():
            data = form.cleaned_data
            args = dict(user=request.user, thread_id=thread_id, checkpoint_id=checkpoint_id, edited=data["values"],
                        as_node=data["as_node"], mode=data["mode"])
            try:
                if request.POST.get("action") == "create":
                    result = services.checkpoint_fork(**args, continue_run=data["continue_run"])
                    if wants_json(request):
                        return json_response({"checkpoint_id": result.checkpoint_id,
                                              "run_id": result.run.pk if result.run else None})
                    note = " and continued the run" if result.run else ""
                    messages.success(request, f"Forked from {checkpoint_id[-12:]}{note}.")
                    return redirect(_detail_url(thread_id, result.checkpoint_id))
                preview = services.checkpoint_fork_preview(**args)
            except services.ConsoleError as exc:
                form.add_error(None, str(exc))
        if wants_json(request) and (form.errors or preview):
            if form.errors:
                return json_response({"errors": form.errors.get_json_data()}, status=400)
            return json_response({"values": preview.values, "next": list(preview.next),
                                  "changes": [c.__dict__ for c in preview.changes]})
    else:
        if not request.user.has_perm(services.PERM_FORK):
            raise PermissionDenied("You need the can_fork permission")
        form = ForkForm(initial={"values": pretty_json(state.values), "mode": "state"}, nodes=nodes)
    status = 400 if request.method == "POST" and form.errors else 200
    return render(request, "timetravel/fork.html", dict(thread=thread, state=state, form=form, preview=preview,
    ), status=status)


@staff_view
@require_http_methods(["GET", "POST"])
def checkpoint_replay(request, thread_id: str, checkpoint_id: str):
    thread = selectors.thread_get(thread_id)
    if request.method == "POST":
        try:
            run = services.checkpoint_replay(user=request.user, thread_id=thread_id, checkpoint_id=checkpoint_id)
        except services.ConsoleError as exc:
            messages.error(request, str(exc))
            return redirect(_detail_url(thread_id, checkpoint_id))
        run.refresh_from_db()
        messages.success(request, f"Replay from {checkpoint_id[-12:]}: run #{run.pk} {run.state}.")
        return redirect(_detail_url(thread_id))
    if not request.user.has_perm(services.PERM_FORK):
        raise PermissionDenied("You need the can_fork permission")
    return render(request, "timetravel/confirm.html", dict(thread=thread, title="Replay from this checkpoint?",
        text=f"The graph runs again from checkpoint {checkpoint_id}. The history so far stays; "
             "the new steps form a branch.", button="Replay", checkpoint_id=checkpoint_id,
    ))


@staff_view
@require_http_methods(["GET", "POST"])
def thread_delete(request, thread_id: str):
    thread = selectors.thread_get(thread_id)
    if request.method == "POST":
        try:
            services.thread_delete(user=request.user, thread_id=thread_id)
        except services.ConsoleError as exc:
            messages.error(request, str(exc))
            return redirect(_detail_url(thread_id))
        messages.success(request, f"Deleted thread {thread_id}.")
        return redirect("timetravel:thread_list")
    if not request.user.has_perm(services.PERM_DELETE):
        raise PermissionDenied("You need the can_delete_thread permission")
    return render(request, "timetravel/confirm.html", dict(thread=thread, title=f"Delete thread {thread_id}?",
        text=f"Every checkpoint ({thread.checkpoint_count}), value and pending write of this thread is deleted. "
             "The audit log keeps a record.", button="Delete", danger=True,
    ))
