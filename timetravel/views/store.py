"""The store browser: namespaces as a tree, the items of a namespace, search, one item."""

from __future__ import annotations

from urllib.parse import urlencode

from django.shortcuts import render

from .. import selectors, shapes
from ..forms import StoreSearchForm
from .base import json_response, pretty_json, staff_view, wants_json


def _crumbs(namespace: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(label, ".".join(namespace[: i + 1])) for i, label in enumerate(namespace)]


@staff_view
def store_browser(request):
    namespace = selectors.namespace_parse(request.GET.get("ns", ""))
    form = StoreSearchForm(request.GET if "query" in request.GET or "filter" in request.GET else None)
    results, error = None, ""
    if form.is_bound and form.is_valid() and (form.cleaned_data["query"] or form.cleaned_data["filter"]):
        try:
            results = selectors.store_search(namespace=namespace, query=form.cleaned_data["query"],
                                             filter=form.cleaned_data["filter"])
        except ValueError as exc:
            error = str(exc)
    listing = selectors.store_listing(namespace=namespace, after=request.GET.get("after", ""))
    if wants_json(request):
        if error or form.errors:
            return json_response({"error": error, "fields": form.errors}, status=400)
        return json_response({
            "namespace": list(namespace),
            "namespaces": [list(ns) for ns in listing.children],
            "items": [shapes.store_item_json(i) for i in listing.items],
            "next_after": listing.next_key or None,
            "search": [shapes.store_item_json(i) for i in results] if results is not None else None,
        })
    return render(request, "timetravel/store.html", {
        "namespace": namespace, "ns": ".".join(namespace), "crumbs": _crumbs(namespace), "listing": listing,
        "form": form, "results": results, "error": error,
        "next_url": "?" + urlencode({"ns": ".".join(namespace), "after": listing.next_key}) if listing.next_key else "",
    })


@staff_view
def store_item(request):
    namespace = selectors.namespace_parse(request.GET.get("ns", ""))
    item = selectors.store_item(namespace=namespace, key=request.GET.get("key", ""))
    if wants_json(request):
        return json_response(shapes.store_item_json(item))
    return render(request, "timetravel/store_item.html", {
        "item": item, "namespace": namespace, "ns": ".".join(namespace), "crumbs": _crumbs(namespace),
        "raw_json": pretty_json(item.value),
    })
