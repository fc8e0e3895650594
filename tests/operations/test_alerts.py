"""Thresholds: driving the saver past one raises an alert at the next evaluation (a
banner, a log line and a webhook to a real local HTTP server), once, and clears it
when the figure goes back under; the history stays."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth.models import User
from django.test import Client

from checkpoints import metrics_store
from checkpoints.saver import DjangoSaver
from operations import services
from operations.models import Alert, DatabaseSize
from tests.checkpoints.graphs import chat_graph

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def webhook(settings):
    """A real HTTP server on loopback collecting the JSON bodies posted to it."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.OPERATIONS_ALERT_WEBHOOK_URL = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield received
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def clean_metrics():
    metrics_store.flush(type("Discard", (), {"add": lambda self, rows: None})())


@pytest.fixture
def staff_client():
    user = User.objects.create_user("ops", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


def _chat(n: int, thread_id: str = "busy") -> None:
    graph = chat_graph(DjangoSaver(using="default", hot_tier=None, blob_store=None))
    for i in range(n):
        graph.invoke({"messages": [{"role": "user", "content": f"m{i}"}]}, {"configurable": {"thread_id": thread_id}})


def test_write_rate_over_the_threshold_raises_within_a_minute_then_clears(settings, webhook, staff_client, caplog):
    # Only the write rate is under test: a loaded machine must not add a latency alert.
    settings.OPERATIONS_THRESHOLDS = {**settings.OPERATIONS_THRESHOLDS, "writes_per_second": 2, "p99_ms": 10**6}
    caplog.set_level(logging.WARNING, logger="operations.alerts")
    assert services.alerts_evaluate()["raised"] == []
    crossed_at = time.time()
    _chat(45)  # about 4 writes per checkpointed step: well over 2/s over the minute

    result = services.alerts_evaluate()
    assert result["raised"] == ["writes_per_second"] and result["checks"]["writes_per_second"] > 2
    alert = Alert.objects.get(key="writes_per_second")
    assert alert.state == "active" and alert.raised_at.timestamp() - crossed_at < 60
    assert [h["event"] for h in webhook] == ["alert.raised"]
    assert webhook[0]["key"] == "writes_per_second" and webhook[0]["threshold"] == 2
    assert any("ALERT raised: Writes per second" in r.getMessage() for r in caplog.records)
    page = staff_client.get("/threads/")
    assert b'id="alert-banner"' in page.content and b"Writes per second" in page.content

    # Still over: one alert, one webhook.
    _chat(5)
    assert services.alerts_evaluate()["raised"] == []
    assert Alert.objects.filter(key="writes_per_second").count() == 1 and len(webhook) == 1

    # Three minutes on, the window holds no writes: cleared, notified, kept as history.
    result = services.alerts_evaluate(now=time.time() + 180)
    assert result["cleared"] == ["writes_per_second"]
    alert.refresh_from_db()
    assert alert.state == "cleared" and alert.cleared_at is not None and alert.peak > 2
    assert [h["event"] for h in webhook] == ["alert.raised", "alert.cleared"]
    assert b'id="alert-banner"' not in staff_client.get("/threads/").content
    history = staff_client.get("/operations/alerts/?format=json").json()["alerts"]
    assert [(a["key"], a["state"]) for a in history] == [("writes_per_second", "cleared")]


def test_error_rate_and_latency_thresholds(settings, webhook):
    settings.OPERATIONS_THRESHOLDS = {**settings.OPERATIONS_THRESHOLDS, "p99_ms": 0.0001}
    saver = DjangoSaver(using="default", hot_tier=None, blob_store=None)
    _chat(10, "ok")
    for _ in range(5):
        with pytest.raises(ValueError):
            saver.get_tuple({"configurable": {}})
    result = services.alerts_evaluate()
    assert "error_rate" in result["raised"] and "p99_ms:put" in result["raised"]
    assert result["checks"]["error_rate"] > 0.01
    assert {h["key"] for h in webhook} >= {"error_rate", "p99_ms:put"}


def test_database_size_is_sampled_and_has_a_threshold(settings):
    settings.OPERATIONS_THRESHOLDS = {**settings.OPERATIONS_THRESHOLDS, "database_bytes": 1}
    result = services.alerts_evaluate()
    assert "database_bytes" in result["raised"] and result["checks"]["database_bytes"] > 1
    assert DatabaseSize.objects.count() == 1


def test_an_unreachable_webhook_does_not_stop_the_alert(settings):
    settings.OPERATIONS_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/nowhere"
    settings.OPERATIONS_ALERT_WEBHOOK_TIMEOUT = 1
    settings.OPERATIONS_THRESHOLDS = {**settings.OPERATIONS_THRESHOLDS, "database_bytes": 1}
    assert services.alerts_evaluate()["raised"] == ["database_bytes"]


def test_two_evaluators_raise_once(settings, webhook):
    settings.OPERATIONS_THRESHOLDS = {**settings.OPERATIONS_THRESHOLDS, "database_bytes": 1}
    check = services.Check("database_bytes", "database_bytes", 10, 1)
    now = __import__("django.utils.timezone", fromlist=["now"]).now()
    assert services.alert_raise(check=check, now=now) is not None
    assert services.alert_raise(check=check, now=now) is None
    assert Alert.objects.filter(state="active").count() == 1 and len(webhook) == 1


def test_the_evaluation_is_scheduled_within_a_minute(settings):
    from rq import cron

    cron._job_data_registry = []
    import importlib

    import operations.cron

    importlib.reload(operations.cron)
    jobs = [d for d in cron._job_data_registry if d["func"].__name__ == "alerts_evaluate"]
    assert jobs and jobs[0]["interval"] <= 60
    # A crossing is in the aggregate after at most one flush interval.
    assert settings.OPERATIONS_EVALUATE_SECONDS + 10 <= 60


def test_without_redis_each_process_evaluates_on_its_own():
    """The embedded default has no RQ cron: a process that uses the saver evaluates the
    thresholds itself (here every second, in a real child process)."""
    import subprocess

    from .conftest import child_env, manage

    script = (
        "import time\n"
        "from django.conf import settings\n"
        "settings.OPERATIONS_EVALUATE_SECONDS = 1\n"
        "settings.OPERATIONS_THRESHOLDS = {**settings.OPERATIONS_THRESHOLDS, 'database_bytes': 1}\n"
        "from checkpoints import metrics\n"
        "metrics.observe('put', 0.001)\n"
        "time.sleep(3)\n"
    )
    child = manage("shell", "-c", script, env=child_env(CHECKPOINTS_METRICS_FLUSH_SECONDS="1"),
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert Alert.objects.filter(key="database_bytes", state="active").exists()
    assert metrics_store.by_op(metrics_store.totals())["put"].count >= 1  # its flusher ran too
