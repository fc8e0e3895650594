"""The inbox of interrupted runs, and deciding one interrupt."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from .. import selectors, services, shapes
from ..forms import DecisionForm
from .base import json_response, pretty_json, staff_view, wants_json


@staff_view
def inbox(request):
    try:
        page = selectors.inbox(after=request.GET.get("after", ""), before=request.GET.get("before", ""))
    except ValueError:
        page = selectors.inbox()
    if wants_json(request):
        return json_response({"interrupts": [shapes.inbox_item_json(i) for i in page.items],
                              "next_cursor": page.next_cursor or None, "prev_cursor": page.prev_cursor or None})
    template = "timetravel/_inbox_list.html" if request.GET.get("fragment") == "list" else "timetravel/inbox.html"
    return render(request, template, dict(page=page,
        next_url="?" + urlencode({"after": page.next_cursor}) if page.next_cursor else "",
        prev_url="?" + urlencode({"before": page.prev_cursor}) if page.prev_cursor else "",
    ))


def _decision_initial(item) -> dict:
    if item.kind == "human_interrupt":
        return {"type": "accept", "args": pretty_json(item.request["action_request"].get("args") or {})}
    return {"type": "json", "value": "null"}


@staff_view
@require_http_methods(["GET", "POST"])
def interrupt_decide(request, thread_id: str, interrupt_id: str):
    if request.method == "POST":
        form = DecisionForm(request.POST)
        if form.is_valid():
            try:
                approval = services.interrupt_decide(user=request.user, thread_id=thread_id,
                                                     interrupt_id=interrupt_id, decision=form.decision())
            except services.ConsoleError as exc:
                if wants_json(request):
                    return json_response({"error": str(exc)}, status=409)
                messages.error(request, str(exc))
                return redirect(request.POST.get("next") or "timetravel:inbox")
            approval.refresh_from_db()
            if wants_json(request):
                return json_response({"state": approval.state, "run_id": approval.run_id})
            verb = {"accept": "Accepted", "edit": "Edited", "response": "Responded to", "ignore": "Ignored",
                    "json": "Resumed", "resolve": "Resolved"}[form.cleaned_data["type"]]
            text = f"{verb} the interrupt on {thread_id}: {approval.state}."
            (messages.success if approval.state == "resumed" or approval.state == "decided" else messages.error)(
                request, text + (f" {approval.error}" if approval.error else ""))
            return redirect(request.POST.get("next") or "timetravel:inbox")
        if wants_json(request):
            return json_response({"errors": form.errors.get_json_data()}, status=400)
        item = selectors.inbox_item(thread_id=thread_id, interrupt_id=interrupt_id)
        status = 400
    else:
        item = selectors.inbox_item(thread_id=thread_id, interrupt_id=interrupt_id)
        if wants_json(request):
            return json_response(shapes.inbox_item_json(item))
        if not request.user.has_perm(services.PERM_APPROVE):
            raise PermissionDenied("You need the can_approve permission")
        form = DecisionForm(initial=_decision_initial(item))
        status = 200
    return render(request, "timetravel/decide.html", dict(item=item, form=form), status=status)


@staff_view
@require_POST
def interrupt_claim(request, thread_id: str, interrupt_id: str):
    try:
        services.interrupt_claim(user=request.user, thread_id=thread_id, interrupt_id=interrupt_id)
        messages.success(request, "Claimed: the others see you are deciding it.")
    except services.ConsoleError as exc:
        messages.error(request, str(exc))
    return redirect("timetravel:interrupt_decide", thread_id=thread_id, interrupt_id=interrupt_id)
