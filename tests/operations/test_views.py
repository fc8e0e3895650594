"""The operations pages: staff only, JSON twins, the thresholds on the charts, the
Prometheus endpoint behind a token, and migrations started and resumed from the
console (permission, CSRF, audit, live progress over the websocket)."""

from __future__ import annotations

import re
import sqlite3

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.test import Client
from langgraph.checkpoint.sqlite import SqliteSaver

from checkpoints import metrics_store
from checkpoints.saver import DjangoSaver
from config.asgi import application
from operations import events
from operations.models import Migration
from tests.checkpoints.graphs import chat_graph
from timetravel.models import AuditEntry

from . import graphs

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")
needs_postgres = pytest.mark.skipif("postgres" not in settings.DATABASES, reason="PostgreSQL does not answer")


def _user(name, *, staff=True, migrate=False):
    user = User.objects.create_user(name, password="pw", is_staff=staff)
    if migrate:
        user.user_permissions.add(Permission.objects.get(codename="can_migrate"))
    return User.objects.get(pk=user.pk)


def _client(user, **kwargs):
    client = Client(**kwargs)
    client.force_login(user)
    return client


@pytest.fixture
def measured():
    metrics_store.flush(type("Discard", (), {"add": lambda self, rows: None})())
    graph = chat_graph(DjangoSaver(using="default", hot_tier=None, blob_store=None))
    for i in range(3):
        graph.invoke({"messages": [{"role": "user", "content": f"m{i}"}]}, {"configurable": {"thread_id": "v"}})
    metrics_store.flush()


def test_dashboard_is_staff_only():
    assert Client().get("/operations/").status_code == 302
    assert _client(_user("nope", staff=False)).get("/operations/").status_code == 302


def test_dashboard_draws_figures_and_thresholds(measured):
    client = _client(_user("ops"))
    page = client.get("/operations/")
    assert page.status_code == 200
    html = page.content.decode()
    for chart in ("hour-writes", "hour-errors", "hour-p99", "hour-hot", "day-writes", "day-db"):
        assert f'id="{chart}"' in html
    thresholds = re.findall(r'class="threshold"[^>]*data-threshold="([^"]+)"', html)
    assert "100" in thresholds[0] and len(thresholds) >= 7  # writes, errors, P99 per range, and size
    assert 'data-op="put"' in html and 'class="series"' in html
    data = client.get("/operations/?format=json").json()
    assert data["thresholds"]["writes_per_second"] == 100 and data["thresholds"]["error_rate"] == 0.01
    ops = {row["op"]: row for row in data["last_hour"]["ops"]}
    assert ops["put"]["count"] >= 6 and ops["put"]["p99_ms"] is not None
    assert data["database"]["bytes"] > 0


def test_prometheus_needs_a_token_or_staff(settings, measured):
    settings.OPERATIONS_METRICS_TOKEN = "s3cret"
    assert Client().get("/operations/metrics").status_code == 401
    assert Client(HTTP_AUTHORIZATION="Bearer wrong").get("/operations/metrics").status_code == 401
    response = Client(HTTP_AUTHORIZATION="Bearer s3cret").get("/operations/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert re.search(r'langgraph_saver_operations_total\{op="put"\} [1-9]', text)
    assert 'langgraph_saver_operation_duration_seconds_bucket{le="0.05",op="put"}' in text
    assert "langgraph_saver_events_total" in text and "langgraph_database_bytes" in text
    assert _client(_user("ops")).get("/operations/metrics").status_code == 200


@needs_postgres
def test_a_migration_started_from_the_console(tmp_path):
    path = str(tmp_path / "lg.sqlite")
    conn = sqlite3.connect(path, check_same_thread=False)
    graphs.seed(graphs.build(SqliteSaver(conn)), "c", interrupted=1, finished=0)
    conn.close()
    viewer, operator = _user("viewer"), _user("operator", migrate=True)
    form = {"source_kind": "sqlite", "source": path, "target": "postgres", "batch_size": 10, "copy_store": "on"}

    assert _client(viewer).post("/operations/migrations/", form).status_code == 403
    assert _client(operator, enforce_csrf_checks=True).post("/operations/migrations/", form).status_code == 403
    bad = _client(operator).post("/operations/migrations/", {**form, "source": str(tmp_path / "none")})
    assert bad.status_code == 400 and b"No SQLite file" in bad.content
    assert not Migration.objects.exists()

    client = _client(operator)
    dry = client.post("/operations/migrations/", {**form, "dry_run": "on"})
    assert dry.status_code == 302
    migration = Migration.objects.get()
    assert migration.dry_run and migration.state == "succeeded"  # no Redis: the job ran in-process
    assert migration.report["totals"]["checkpoints_to_copy"] > 0
    assert AuditEntry.objects.get(action="migration_start").username == "operator"

    response = client.post("/operations/migrations/", form)
    migration = Migration.objects.latest("id")
    assert response["Location"] == f"/operations/migrations/{migration.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert 'id="m-verdict"' in page and "Verified: zero loss." in page
    data = client.get(f"/operations/migrations/{migration.pk}/?format=json").json()
    assert data["state"] == "succeeded" and data["verified"] and data["threads_done"] == 1
    listing = client.get("/operations/migrations/?format=json").json()["migrations"]
    assert [m["id"] for m in listing] == [migration.pk, migration.pk - 1]

    # Only a failed (or stalled) migration resumes.
    assert client.post(f"/operations/migrations/{migration.pk}/resume/").status_code == 302
    assert Migration.objects.get(pk=migration.pk).attempts == 1
    Migration.objects.filter(pk=migration.pk).update(state="failed", error="worker lost")
    assert _client(viewer).post(f"/operations/migrations/{migration.pk}/resume/").status_code == 403
    client.post(f"/operations/migrations/{migration.pk}/resume/")
    migration.refresh_from_db()
    assert (migration.state, migration.attempts, migration.verified) == ("succeeded", 2, True)
    assert AuditEntry.objects.filter(action="migration_resume").count() == 1


async def test_migration_progress_reaches_staff_over_the_websocket():
    user = await sync_to_async(_user)("watcher")
    client = Client()
    await sync_to_async(client.force_login)(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()
    migration = await sync_to_async(Migration.objects.create)(source_kind="django", source="default",
                                                              target="postgres", threads_total=4, threads_done=1)
    ws = WebsocketCommunicator(application, f"/ws/operations/migrations/{migration.pk}/",
                               headers=[(b"origin", b"http://127.0.0.1:8000"), (b"cookie", cookie)])
    connected, _ = await ws.connect(timeout=3)
    assert connected
    await sync_to_async(events.migration_progress_event)(migration)
    message = await ws.receive_json_from(timeout=3)
    assert message["type"] == "migration.progress" and message["data"]["percent"] == 25
    await ws.disconnect()
    anonymous = WebsocketCommunicator(application, f"/ws/operations/migrations/{migration.pk}/",
                                      headers=[(b"origin", b"http://127.0.0.1:8000")])
    connected, code = await anonymous.connect(timeout=3)
    assert not connected and code == 4403
    await anonymous.disconnect()


def test_database_passwords_stay_off_the_pages():
    migration = Migration(source_kind="postgres", source="postgresql://lg:hunter2@db:5432/old",
                          target="postgresql://app:s3cret@db/new")
    assert "hunter2" not in migration.source_label and migration.source_label.startswith("postgresql://lg:***@db")
    assert "s3cret" not in migration.target_label
    assert Migration(source_kind="django", source="default", target="postgres").target_label == "postgres"
