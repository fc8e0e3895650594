"""The audit log."""

from __future__ import annotations

from urllib.parse import urlencode

from django.shortcuts import render

from .. import selectors
from ..forms import AuditFilterForm
from .base import json_response, staff_view, wants_json


@staff_view
def audit_log(request):
    form = AuditFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    rows, before = selectors.audit_list(thread_id=data.get("thread_id") or "", action=data.get("action") or "",
                                        username=data.get("username") or "", before=data.get("before"))
    if wants_json(request):
        return json_response({
            "entries": [
                {"id": e.id, "created_at": e.created_at.isoformat(), "user": e.username, "action": e.action,
                 "thread_id": e.thread_id, "checkpoint_id": e.checkpoint_id, "detail": e.detail}
                for e in rows
            ],
            "next_before": before,
        })
    keep = {k: v for k, v in request.GET.items() if k != "before" and v}
    return render(request, "timetravel/audit.html", dict(form=form, entries=rows,
        next_url="?" + urlencode({**keep, "before": before}) if before else "",
    ))
