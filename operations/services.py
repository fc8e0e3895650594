"""Writes of the operations pages: evaluating thresholds into alerts, and starting,
resuming and executing migrations.

Alerts: the evaluation (a scheduled job, every `OPERATIONS_EVALUATE_SECONDS`) reads the
figures of the last minute from the shared aggregate, so any worker may run it; an
alert is raised by inserting the one active row of its key (a second evaluator loses
on the unique constraint and only refreshes the figure) and cleared by a
compare-and-set, so each raise and each clear is logged and posted once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connections, transaction
from django.db.models import F
from django.utils import timezone

from checkpoints import metrics_store

from . import events, selectors
from .models import Alert, DatabaseSize, Migration
from .webhooks import webhook_post

logger = logging.getLogger("operations.alerts")

PERM_MIGRATE = "operations.can_migrate"
RULE_LABELS = {
    "error_rate": "Error rate",
    "writes_per_second": "Writes per second",
    "p99_ms": "P99 latency (ms)",
    "database_bytes": "Database size (bytes)",
}


# -- alerts ------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    key: str
    rule: str
    value: float
    threshold: float

    @property
    def over(self) -> bool:
        return self.value > self.threshold

    @property
    def message(self) -> str:
        what = RULE_LABELS[self.rule]
        if ":" in self.key:
            what += f" of {self.key.split(':', 1)[1]}"
        fmt = (lambda v: f"{v:.2%}") if self.rule == "error_rate" else (lambda v: f"{v:,.1f}")
        return f"{what} is {fmt(self.value)}, over the threshold of {fmt(self.threshold)}"


def alert_checks(figures: selectors.Figures, *, database_bytes: int | None) -> list[Check]:
    """The thresholds against the figures (no I/O)."""
    limits = selectors.thresholds()
    minimum = getattr(settings, "OPERATIONS_MIN_OPERATIONS", 20)
    checks = [Check("writes_per_second", "writes_per_second", figures.writes_per_second,
                    limits["writes_per_second"])]
    if figures.operations >= minimum:
        checks.append(Check("error_rate", "error_rate", figures.error_rate, limits["error_rate"]))
    for op, f in figures.ops.items():
        p99 = f.percentile_ms(0.99)
        if f.count >= minimum and p99 is not None:
            checks.append(Check(f"p99_ms:{op}", "p99_ms", p99, limits["p99_ms"]))
    if database_bytes is not None:
        checks.append(Check("database_bytes", "database_bytes", database_bytes, limits["database_bytes"]))
    return checks


def _payload(event: str, alert: Alert) -> dict[str, Any]:
    return {
        "event": event, "key": alert.key, "rule": alert.rule, "value": alert.value, "peak": alert.peak,
        "threshold": alert.threshold, "message": alert.message, "raised_at": alert.raised_at.isoformat(),
        "cleared_at": alert.cleared_at.isoformat() if alert.cleared_at else None,
    }


def alert_raise(*, check: Check, now) -> Alert | None:
    """Raise the alert of `check`, or refresh the one already active. Returns the new
    alert, or None when it was already active."""
    try:
        with transaction.atomic():
            alert = Alert.objects.create(key=check.key, rule=check.rule, threshold=check.threshold,
                                         value=check.value, peak=check.value, message=check.message,
                                         raised_at=now, seen_at=now)
    except IntegrityError:
        active = Alert.objects.filter(key=check.key, state=Alert.State.ACTIVE)
        active.update(value=check.value, seen_at=now, message=check.message)
        active.filter(peak__lt=check.value).update(peak=check.value)
        return None
    logger.warning("ALERT raised: %s", alert.message)
    webhook_post(_payload("alert.raised", alert))
    return alert


def alert_clear(*, alert: Alert, value: float | None, now) -> bool:
    won = Alert.objects.filter(pk=alert.pk, state=Alert.State.ACTIVE).update(
        state=Alert.State.CLEARED, cleared_at=now, value=value if value is not None else 0.0)
    if not won:
        return False
    alert.refresh_from_db()
    logger.warning("ALERT cleared: %s (now %s)", alert.key, "no operations" if value is None else f"{value:,.4g}")
    webhook_post(_payload("alert.cleared", alert))
    return True


def alerts_evaluate(*, now: float | None = None, backend=None) -> dict[str, Any]:
    """Flush this process's metrics, sample the database size, compare every threshold
    with the last minute's figures; raise what crossed and clear what went back.

    Returns:
        `{"raised": [keys], "cleared": [keys], "checks": {key: value}}`
    """
    metrics_store.flush(backend)
    at = timezone.now() if now is None else datetime.fromtimestamp(now, tz=dt_timezone.utc)
    figures = selectors.window_figures(now=now, backend=backend)
    alias = getattr(settings, "OPERATIONS_DATABASE", "default")
    try:
        size = selectors.database_bytes(alias)
        DatabaseSize.objects.create(alias=alias, bytes=size, taken_at=at)
    except Exception as exc:  # noqa: BLE001 - a size we cannot read is no reason to skip the rest
        logger.warning("could not read the size of database %s: %s", alias, exc)
        size = None
    checks = alert_checks(figures, database_bytes=size)
    over = {c.key: c for c in checks if c.over}
    values = {c.key: c.value for c in checks}
    raised = [c.key for c in over.values() if alert_raise(check=c, now=at)]
    cleared = [a.key for a in Alert.objects.filter(state=Alert.State.ACTIVE).exclude(key__in=list(over))
               if alert_clear(alert=a, value=values.get(a.key), now=at)]
    _prune(at)
    return {"raised": raised, "cleared": cleared, "checks": values}


def _prune(at) -> None:
    keep = timedelta(minutes=getattr(settings, "CHECKPOINTS_METRICS_RETENTION_MINUTES", 2880))
    DatabaseSize.objects.filter(taken_at__lt=at - keep).delete()
    try:
        metrics_store.configured_backend().prune(int((at - keep).timestamp() // 60))
    except Exception as exc:  # noqa: BLE001
        logger.warning("could not prune old metrics: %s", exc)


# -- migrations ---------------------------------------------------------------------


class MigrationError(Exception):
    """A migration the console refuses to start or resume; nothing was written."""


def _require(user, perm: str) -> None:
    if user is None or not user.is_active or not user.is_staff or not user.has_perm(perm):
        raise PermissionDenied(f"You need the {perm.split('.')[-1]} permission")


def _audit(*, user, action: str, detail: dict) -> None:
    try:
        from timetravel.services import audit_record
    except ImportError:  # the console is optional
        return
    audit_record(user=user, action=action, detail=detail)


def _check_source(kind: str, source: str) -> None:
    import os

    if kind == Migration.Source.DJANGO:
        if source not in settings.DATABASES:
            raise MigrationError(f"No database alias {source!r} in DATABASES")
    elif kind == Migration.Source.SQLITE:
        if not os.path.isfile(source):
            raise MigrationError(f"No SQLite file at {source}")
    elif kind == Migration.Source.POSTGRES:
        if not source.startswith(("postgres://", "postgresql://")):
            raise MigrationError("A langgraph-checkpoint-postgres source is a postgresql:// URL")
    else:
        raise MigrationError(f"Unknown source kind {kind!r}")


def target_alias(target: str) -> str:
    """A target is a Django alias, or a PostgreSQL URL configured as one on the fly."""
    if target in settings.DATABASES:
        return target
    if target.startswith(("postgres://", "postgresql://")):
        from checkpoints.standalone import configure_alias

        return configure_alias(target)
    raise MigrationError(f"The target {target!r} is neither a database alias nor a postgresql:// URL")


def _check_target(kind: str, source: str, target: str) -> None:
    if target in settings.DATABASES:
        if connections[target].vendor != "postgresql":
            raise MigrationError(f"The target {target!r} is not a PostgreSQL database")
        if kind == Migration.Source.DJANGO and source == target:
            raise MigrationError("The source and the target are the same database")
    elif not target.startswith(("postgres://", "postgresql://")):
        raise MigrationError(f"The target {target!r} is neither a database alias nor a postgresql:// URL")


def migration_create(*, user, source_kind: str, source: str, target: str, dry_run: bool = False,
                     copy_store: bool = True, batch_size: int = 50) -> Migration:
    """A queued migration (not enqueued): for the management command and `migration_start`."""
    _check_source(source_kind, source)
    _check_target(source_kind, source, target)
    return Migration.objects.create(
        source_kind=source_kind, source=source, target=target, dry_run=dry_run, copy_store=copy_store,
        batch_size=max(1, batch_size), created_by=user if user is not None and user.pk else None,
    )


def migration_start(*, user, source_kind: str, source: str, target: str, dry_run: bool = False,
                    copy_store: bool = True, batch_size: int = 50) -> Migration:
    """Start a migration (or a dry run) as a background job, audited.

    Raises:
        PermissionDenied: without `operations.can_migrate`.
        MigrationError: a bad source or target; nothing written.
    """
    _require(user, PERM_MIGRATE)
    with transaction.atomic():
        migration = migration_create(user=user, source_kind=source_kind, source=source, target=target,
                                     dry_run=dry_run, copy_store=copy_store, batch_size=batch_size)
        _audit(user=user, action="migration_start", detail={
            "migration_id": migration.pk, "source_kind": source_kind, "source": migration.source_label,
            "target": migration.target_label, "dry_run": dry_run,
        })
        transaction.on_commit(lambda: _enqueue(migration.pk))
    return migration


def migration_resume(*, user, migration_id: int) -> Migration:
    """Resume a failed migration, or one whose worker died (stale heartbeat)."""
    _require(user, PERM_MIGRATE)
    migration = Migration.objects.get(pk=migration_id)
    stale_before = timezone.now() - timedelta(seconds=getattr(settings, "OPERATIONS_MIGRATION_STALE_SECONDS", 120))
    with transaction.atomic():
        won = (Migration.objects.filter(pk=migration_id, state=Migration.State.FAILED)
               | Migration.objects.filter(pk=migration_id, state=Migration.State.RUNNING,
                                          heartbeat_at__lt=stale_before)).update(
            state=Migration.State.QUEUED, error="")
        if not won:
            raise MigrationError(f"Migration {migration_id} is {migration.state}: only a failed or stalled one resumes")
        _audit(user=user, action="migration_resume", detail={"migration_id": migration_id,
                                                              "cursor": migration.cursor})
        transaction.on_commit(lambda: _enqueue(migration_id))
    migration.refresh_from_db()
    return migration


def _enqueue(migration_id: int) -> None:
    from . import jobs

    jobs.migration_enqueue(migration_id)


def _claim(migration_id: int) -> bool:
    now = timezone.now()
    stale_before = now - timedelta(seconds=getattr(settings, "OPERATIONS_MIGRATION_STALE_SECONDS", 120))
    qs = (Migration.objects.filter(pk=migration_id, state=Migration.State.QUEUED)
          | Migration.objects.filter(pk=migration_id, state=Migration.State.RUNNING, heartbeat_at__lt=stale_before))
    return bool(qs.update(state=Migration.State.RUNNING, heartbeat_at=now, attempts=F("attempts") + 1,
                          started_at=now, error=""))


def migration_execute(*, migration_id: int, throttle: float = 0.0, force: bool = False) -> Migration:
    """Run (or resume, after the cursor) a migration, then verify it. Safe to call
    twice: only the caller that moves it to running does the work.

    Args:
        throttle: seconds to pause between batches (to spare a busy source).
        force: take over a running migration without waiting for its heartbeat to go
            stale (the management command's `--resume` after a crash).
    """
    from checkpoints.copy import Copier, source_open, verify
    from checkpoints.saver import DjangoSaver

    if force:
        Migration.objects.filter(pk=migration_id, state__in=[Migration.State.RUNNING, Migration.State.FAILED]).update(
            state=Migration.State.QUEUED)
    if not _claim(migration_id):
        return Migration.objects.get(pk=migration_id)
    migration = Migration.objects.get(pk=migration_id)
    try:
        alias = target_alias(migration.target)
        _ensure_schema(alias)
        target = DjangoSaver(using=alias)
        with source_open(migration.source_kind, migration.source) as source:
            copier = Copier(source, target, batch_size=migration.batch_size)
            if migration.dry_run:
                report = copier.plan(on_thread=lambda n: _heartbeat(migration, threads_done=n))
                _finish(migration, state=Migration.State.SUCCEEDED, report=report, verified=None)
                return migration
            if not migration.threads_total:
                Migration.objects.filter(pk=migration.pk).update(threads_total=source.count_threads())
                migration.refresh_from_db()

            def on_batch(result):
                Migration.objects.filter(pk=migration.pk).update(
                    cursor=result.cursor, heartbeat_at=timezone.now(),
                    threads_done=F("threads_done") + len(result.threads),
                    checkpoints_copied=F("checkpoints_copied") + result.checkpoints,
                    writes_copied=F("writes_copied") + result.writes,
                    blobs_copied=F("blobs_copied") + result.blobs,
                )
                if result.blocked:
                    migration.refresh_from_db(fields=["blocked"])
                    Migration.objects.filter(pk=migration.pk).update(blocked=migration.blocked + [
                        {"thread_id": t.thread_id, "types": t.blocked} for t in result.blocked])
                migration.refresh_from_db()
                events.migration_progress_event(migration)
                if throttle:
                    time.sleep(throttle)

            copier.run(after=migration.cursor, on_batch=on_batch)
            if migration.copy_store:
                copied = copier.copy_store()
                Migration.objects.filter(pk=migration.pk).update(store_items_copied=copied)
            _heartbeat(migration)
            report = verify(source, target, copy_store=migration.copy_store,
                            on_thread=lambda n: _heartbeat(migration))
        ok = report["ok"]
        _finish(migration, state=Migration.State.SUCCEEDED if ok else Migration.State.FAILED, report=report,
                verified=ok, error="" if ok else (
                    f"Verification failed: {report['differences_total']} differences, "
                    f"{report['blocked']} blocked values"))
    except Exception as exc:  # noqa: BLE001 - a failed migration is recorded and resumable
        logger.exception("migration %s failed", migration_id)
        _finish(migration, state=Migration.State.FAILED, error=f"{type(exc).__name__}: {exc}")
    migration.refresh_from_db()
    return migration


def _heartbeat(migration: Migration, *, threads_done: int | None = None) -> None:
    fields: dict[str, Any] = {"heartbeat_at": timezone.now()}
    if threads_done is not None:
        fields["threads_done"] = threads_done
    Migration.objects.filter(pk=migration.pk).update(**fields)


def _finish(migration: Migration, *, state: str, report=None, verified=None, error: str = "") -> None:
    fields = {"state": state, "finished_at": timezone.now(), "heartbeat_at": timezone.now(), "error": error}
    if report is not None:
        fields["report"] = report
        fields["verified"] = verified
    Migration.objects.filter(pk=migration.pk).update(**fields)
    migration.refresh_from_db()
    events.migration_progress_event(migration)


def _ensure_schema(alias: str) -> None:
    """The target has the saver's (and the store's) tables."""
    from django.apps import apps
    from django.core.management import call_command

    for app in ("checkpoints", "store"):
        if apps.is_installed(app) and apps.get_app_config(app.split(".")[-1]).models_module is not None:
            call_command("migrate", app, database=alias, verbosity=0)


# -- the embedded default's scheduler ----------------------------------------------

_evaluator_started = False


def evaluator_start() -> None:
    """Without Redis there is no RQ cron: each process that uses the saver evaluates the
    thresholds itself every `OPERATIONS_EVALUATE_SECONDS` on a daemon thread (raising
    and clearing are compare-and-set, so several processes doing it is harmless)."""
    global _evaluator_started
    interval = float(getattr(settings, "OPERATIONS_EVALUATE_SECONDS", 30))
    if (_evaluator_started or getattr(settings, "REDIS_URL", "") or interval <= 0
            or metrics_store.flush_interval() <= 0):
        return
    _evaluator_started = True

    def loop():
        while True:
            time.sleep(interval)
            try:
                alerts_evaluate()
            except Exception:  # noqa: BLE001 - the next round tries again
                logger.warning("threshold evaluation failed", exc_info=True)

    threading.Thread(target=loop, name="alerts-evaluator", daemon=True).start()


def _evaluator_after_fork() -> None:
    global _evaluator_started
    _evaluator_started = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_evaluator_after_fork)
