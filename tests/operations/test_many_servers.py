"""Many servers: two ASGI processes (daphne) and two RQ workers on one real
PostgreSQL database and one Redis. Every interrupt is approved through both web
processes at once; each is resumed exactly once, none is lost, and the saver metrics
of all four processes add up in Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.conf import settings

from .conftest import ROOT
from tests.ports import free_port

pytestmark = [pytest.mark.slow, pytest.mark.skipif("postgres" not in settings.DATABASES,
                                                   reason="PostgreSQL does not answer")]

THREADS = 8
CSRF = "a" * 32  # an unmasked CSRF secret: the cookie and the header carry the same
SEED = f"""
import json
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from timetravel import graphs
from timetravel.demo import user_message
boss = User.objects.create_superuser("boss", "b@example.com", "pw")
sessions = []
for _ in range(2):
    s = SessionStore()
    s["_auth_user_id"] = str(boss.pk)
    s["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    s["_auth_user_hash"] = boss.get_session_auth_hash()
    s.create()
    sessions.append(s.session_key)
graph = graphs.graph_get("demo")
for i in range({THREADS}):
    config = {{"configurable": {{"thread_id": f"multi-{{i}}"}}, "metadata": {{"graph_id": "demo", "customer": f"c{{i}}"}}}}
    graph.invoke(user_message(f"My kettle arrived broken. Refund order #10{{i}}0 please ($12.50)", customer=f"c{{i}}"), config)
print("SESSIONS=" + json.dumps(sessions))
"""




def _redis_url() -> str:
    parts = urllib.parse.urlsplit(settings.TEST_REDIS_URL)
    return urllib.parse.urlunsplit(parts._replace(path="/14"))  # a database of its own, flushed


def _run(args, env, timeout=120) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _request(port: int, path: str, session: str, data: dict | None = None):
    headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}; csrftoken={CSRF}", "X-CSRFToken": CSRF}
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers,
                                     method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _wait_http(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "exited"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=2).read()
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    raise AssertionError(f"daphne on {port} did not answer")


def _stop(procs) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def test_two_web_processes_and_two_workers_resume_each_interrupt_once(scratch_pg, tmp_path):
    import redis

    redis_url = _redis_url()
    r = redis.Redis.from_url(redis_url)
    try:
        r.ping()
    except redis.RedisError:
        if settings.CI:
            raise
        pytest.skip("Redis does not answer")
    r.flushdb()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_CURRENT_TEST",)}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": scratch_pg, "REDIS_URL": redis_url,
        "DEBUG": "1", "ALLOWED_HOSTS": "127.0.0.1,localhost", "VAR_DIR": str(tmp_path),
        "CHECKPOINTS_METRICS_FLUSH_SECONDS": "1", "PYTHONUNBUFFERED": "1",
    })
    _run(["manage.py", "migrate", "--no-input", "-v", "0"], env)
    sessions = json.loads(_run(["manage.py", "shell", "-c", SEED], env).split("SESSIONS=")[1])

    ports = [free_port(), free_port()]
    procs = []
    try:
        for port in ports:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        for name in ("w1", "w2"):
            procs.append(subprocess.Popen(
                [sys.executable, "manage.py", "rqworker", "default", "--name", f"{name}-{os.getpid()}"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for port, proc in zip(ports, procs):
            _wait_http(port, proc)

        status, inbox = _request(ports[0], "/inbox/?format=json", sessions[0])
        assert status == 200
        pending = [(i["thread_id"], i["interrupt"]["id"]) for i in inbox["interrupts"]]
        assert len(pending) == THREADS
        _, other_view = _request(ports[1], "/inbox/?format=json", sessions[1])
        assert sorted(pending) == sorted((i["thread_id"], i["interrupt"]["id"]) for i in other_view["interrupts"])

        # Each interrupt approved through both servers at the same moment.
        def decide(args):
            (thread_id, interrupt_id), port, session = args
            path = f"/threads/{thread_id}/interrupts/{interrupt_id}/?format=json"
            return thread_id, port, *_request(port, path, session, {"type": "accept"})

        attempts = [(item, port, session) for item in pending for port, session in zip(ports, sessions)]
        with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
            answers = list(pool.map(decide, attempts))
        for thread_id, _ in pending:
            codes = sorted(code for t, _, code, _ in answers if t == thread_id)
            assert codes == [200, 409], (thread_id, [a for a in answers if a[0] == thread_id])
        assert {port for _, port, code, _ in answers if code == 200} <= set(ports)

        # The workers resume them: each thread once.
        with psycopg.connect(scratch_pg, autocommit=True) as conn:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                states = dict(conn.execute(
                    "SELECT state, count(*) FROM timetravel_run GROUP BY state").fetchall())
                if states.get("succeeded", 0) + states.get("failed", 0) >= THREADS:
                    break
                time.sleep(0.3)
            runs = conn.execute("SELECT thread_id, kind, state, error FROM timetravel_run ORDER BY thread_id").fetchall()
            assert [(t, k, s) for t, k, s, _ in runs] == [
                (f"multi-{i}", "resume", "succeeded") for i in range(THREADS)], runs
            approvals = conn.execute("SELECT thread_id, state FROM timetravel_approval ORDER BY thread_id").fetchall()
            assert approvals == [(f"multi-{i}", "resumed") for i in range(THREADS)]
            threads = conn.execute("SELECT thread_id, status FROM lg_thread ORDER BY thread_id").fetchall()
            assert threads == [(f"multi-{i}", "idle") for i in range(THREADS)]
            # `execute` ran once per thread.
            executed = conn.execute(
                "SELECT thread_id, count(*) FROM lg_checkpoint_write WHERE channel = 'outcome' "
                "AND task_path LIKE '%%execute' GROUP BY thread_id ORDER BY thread_id").fetchall()
            assert executed == [(f"multi-{i}", 1) for i in range(THREADS)]

        # Both web processes answer the same about every thread.
        for port, session in zip(ports, sessions):
            status, inbox = _request(port, "/inbox/?format=json", session)
            assert status == 200 and inbox["interrupts"] == []
            status, thread = _request(port, "/threads/multi-0/?format=json", session)
            assert status == 200

        # The metrics of the web processes and the workers added up in Redis.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            totals = {k.decode(): int(v) for k, v in r.hgetall("lgmetrics:totals").items()}
            if totals.get("op:put:count", 0) >= THREADS:
                break
            time.sleep(0.3)
        assert totals.get("op:put:count", 0) >= THREADS and totals.get("op:get_tuple:count", 0) > 0
    finally:
        _stop(procs)
        r.flushdb()
