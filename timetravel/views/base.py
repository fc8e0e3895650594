from __future__ import annotations

import json

from django.contrib.admin.views.decorators import staff_member_required
from django.http import JsonResponse



def staff_view(view):
    """Staff login for every page (anyone else goes to the login form)."""
    return staff_member_required(view)


def wants_json(request) -> bool:
    return request.GET.get("format") == "json"


def json_response(data, *, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, safe=False, json_dumps_params={"ensure_ascii": False})


def pretty_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
