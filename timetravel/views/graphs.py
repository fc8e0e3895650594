"""The graph registry."""

from __future__ import annotations

from django.shortcuts import render

from .. import graphs
from .base import json_response, staff_view, wants_json


@staff_view
def graph_list(request):
    infos, errors = [], {}
    for name in graphs.graph_names():
        try:
            infos.append(graphs.graph_info(name))
        except Exception as exc:  # noqa: BLE001 - a broken factory is shown, not fatal
            errors[name] = f"{type(exc).__name__}: {exc}"
    if wants_json(request):
        return json_response({
            "graphs": [{"graph_id": i.name, "factory": i.path, "nodes": list(i.nodes),
                        "edges": [{"source": s, "target": t, "conditional": c} for s, t, c in i.edges]}
                       for i in infos],
            "errors": errors,
        })
    return render(request, "timetravel/graphs.html", dict(infos=infos, errors=errors))
