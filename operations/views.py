"""The operations pages: dashboard, alerts, Prometheus metrics, migrations.

Each page is also JSON with `?format=json`. Staff only; starting or resuming a
migration needs `operations.can_migrate`, is a POST with CSRF, and is audited.
"""

from __future__ import annotations

import hmac
import time

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from timetravel.views.base import json_response, staff_view, wants_json

from . import charts, prometheus, selectors, services
from .forms import MigrationForm
from .models import Migration


def page_context(request, **extra) -> dict:
    return extra


def _pct(v: float) -> str:
    return f"{v:.1%}"


def _ms(v: float) -> str:
    return f"{v:,.3g} ms"


def _bytes(v: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(v) < 1024 or unit == "TB":
            return f"{v:,.0f} {unit}" if unit == "B" else f"{v:,.1f} {unit}"
        v /= 1024
    return f"{v}"


def _charts(points: list[selectors.Point], *, name: str, end: float, limits: dict) -> list:
    start = points[0].at if points else end - 3600
    at = [p.at for p in points]
    out = [
        charts.line_chart(chart_id=f"{name}-writes", title="Writes per second", start=start, end=end,
                          threshold=limits["writes_per_second"],
                          series=[charts.Series("writes/s", list(zip(at, (p.figures.writes_per_second
                                                                          for p in points))))]),
        charts.line_chart(chart_id=f"{name}-errors", title="Error rate", start=start, end=end, fmt=_pct,
                          threshold=limits["error_rate"],
                          series=[charts.Series("errors", list(zip(at, (
                              p.figures.error_rate if p.figures.operations else None for p in points))))]),
        charts.line_chart(chart_id=f"{name}-p99", title="P99 latency per operation (ms)", start=start, end=end,
                          threshold=limits["p99_ms"], fmt=lambda v: f"{v:,.3g}",
                          series=[charts.Series(op, list(zip(at, (
                              p.figures.ops[op].percentile_ms(0.99) if op in p.figures.ops else None
                              for p in points)))) for op in selectors.CHART_OPS]),
        charts.line_chart(chart_id=f"{name}-hot", title="Hot-tier hit rate", start=start, end=end, fmt=_pct,
                          series=[charts.Series("hit rate", list(zip(at, (p.figures.hot_hit_rate for p in points))))]),
    ]
    return out


def _op_rows(figures: selectors.Figures) -> list[dict]:
    return [
        {"op": op, "count": round(f.count), "errors": round(f.errors), "error_rate": f.error_rate,
         "bytes": round(f.bytes), "p50_ms": f.percentile_ms(0.5), "p95_ms": f.percentile_ms(0.95),
         "p99_ms": f.percentile_ms(0.99)}
        for op, f in figures.ops.items()
    ]


@staff_view
def dashboard(request):
    now = time.time()
    limits = selectors.thresholds()
    window = selectors.window_figures(now=now)
    hour = selectors.series(minutes=60, step=1, now=now)
    day = selectors.series(minutes=24 * 60, step=15, now=now)
    hour_figures = selectors.last_hour(now=now)
    try:
        db_bytes = selectors.database_bytes()
    except Exception:  # noqa: BLE001 - shown as unknown
        db_bytes = None
    samples = selectors.database_growth()
    growth = selectors.growth_per_day(samples)
    data = {
        "thresholds": limits,
        "last_minute": {
            "writes_per_second": window.writes_per_second, "error_rate": window.error_rate,
            "operations": round(window.operations), "p50_ms": window.p(0.5), "p95_ms": window.p(0.95),
            "p99_ms": window.p(0.99), "hot_hit_rate": window.hot_hit_rate, "ops": _op_rows(window),
        },
        "last_hour": {"ops": _op_rows(hour_figures), "hot_hit_rate": hour_figures.hot_hit_rate,
                      "writes_per_second": hour_figures.writes_per_second},
        "database": {"alias": getattr(settings, "OPERATIONS_DATABASE", "default"), "bytes": db_bytes,
                     "growth_bytes_per_day": growth},
        "alerts": [{"key": a.key, "message": a.message, "raised_at": a.raised_at.isoformat()}
                   for a in selectors.alerts_active()],
    }
    if wants_json(request):
        return json_response(data)
    db_chart = charts.line_chart(
        chart_id="day-db", title="Database size", start=now - 86400, end=now, fmt=_bytes,
        threshold=limits["database_bytes"],
        series=[charts.Series("size", [(s.taken_at.timestamp(), s.bytes) for s in samples])],
    )
    return render(request, "operations/dashboard.html", page_context(
        request, data=data, hour_charts=_charts(hour, name="hour", end=now, limits=limits),
        day_charts=_charts(day, name="day", end=now, limits=limits) + [db_chart],
        db_bytes=_bytes(db_bytes) if db_bytes is not None else "unknown",
        growth=_bytes(growth) + "/day" if growth is not None else "not enough samples yet",
        db_limit=_bytes(limits["database_bytes"]),
    ))


@staff_view
def alert_list(request):
    alerts = selectors.alert_history()
    if wants_json(request):
        return json_response({"alerts": [
            {"key": a.key, "rule": a.rule, "state": a.state, "value": a.value, "peak": a.peak,
             "threshold": a.threshold, "message": a.message, "raised_at": a.raised_at.isoformat(),
             "cleared_at": a.cleared_at.isoformat() if a.cleared_at else None} for a in alerts]})
    return render(request, "operations/alerts.html", page_context(request, alerts=alerts))


def prometheus_metrics(request):
    """Prometheus exposition: `Authorization: Bearer <OPERATIONS_METRICS_TOKEN>`, or a
    staff session."""
    token = getattr(settings, "OPERATIONS_METRICS_TOKEN", "")
    header = request.headers.get("Authorization", "")
    by_token = bool(token) and header.startswith("Bearer ") and hmac.compare_digest(
        header[len("Bearer "):].encode(), token.encode())
    user = request.user
    if not by_token and not (user.is_authenticated and user.is_active and user.is_staff):
        response = HttpResponse("Authentication required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    from prometheus_client import CONTENT_TYPE_LATEST

    return HttpResponse(prometheus.exposition(), content_type=CONTENT_TYPE_LATEST)


@staff_view
def migration_list(request):
    if request.method == "POST":
        form = MigrationForm(request.POST)
        if form.is_valid():
            try:
                migration = services.migration_start(user=request.user, **form.cleaned_data)
            except services.MigrationError as exc:
                form.add_error(None, str(exc))
            else:
                if wants_json(request):
                    return json_response(selectors.migration_json(migration), status=202)
                messages.success(request, f"Migration {migration.pk} started"
                                 + (" (dry run)" if migration.dry_run else ""))
                return redirect("operations:migration_detail", migration_id=migration.pk)
        if wants_json(request):
            return json_response({"errors": form.errors.get_json_data()}, status=400)
        status = 400
    else:
        form, status = MigrationForm(), 200
    migrations = selectors.migration_list()
    if wants_json(request):
        return json_response({"migrations": [selectors.migration_json(m) for m in migrations]})
    return render(request, "operations/migrations.html", page_context(
        request, form=form, migrations=migrations,
        can_migrate=request.user.has_perm(services.PERM_MIGRATE)), status=status)


def _migration(migration_id: int) -> Migration:
    try:
        return Migration.objects.select_related("created_by").get(pk=migration_id)
    except Migration.DoesNotExist:
        raise Http404("No such migration") from None


@staff_view
def migration_detail(request, migration_id: int):
    migration = _migration(migration_id)
    data = selectors.migration_json(migration)
    if wants_json(request):
        return json_response(data)
    return render(request, "operations/migration_detail.html", page_context(
        request, migration=migration, data=data, stale=data["stale"],
        can_migrate=request.user.has_perm(services.PERM_MIGRATE)))


@staff_view
@require_POST
def migration_resume(request, migration_id: int):
    _migration(migration_id)
    try:
        services.migration_resume(user=request.user, migration_id=migration_id)
        messages.success(request, f"Migration {migration_id} resumed")
    except services.MigrationError as exc:
        messages.error(request, str(exc))
    except PermissionDenied:
        raise
    return redirect("operations:migration_detail", migration_id=migration_id)
