"""Fixtures of the operations tests: PostgreSQL URLs the tests' child processes can
reach, and scratch databases created and dropped around a test."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def pg_url(name: str | None = None) -> str:
    """The URL of the `postgres` test alias (its test database, unless `name`)."""
    s = settings.DATABASES["postgres"]
    auth = quote(s.get("USER") or "")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    return f"postgresql://{auth}@{host}:{port}/{name or s['NAME']}"


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(pg_url("postgres"), autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture
def scratch_pg():
    """A real, non-test PostgreSQL database (other processes see what is committed in
    it), dropped afterwards. Yields its URL."""
    if "postgres" not in settings.DATABASES:
        pytest.skip("PostgreSQL does not answer")
    name = f"lg_ops_{uuid.uuid4().hex[:10]}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield pg_url(name)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child `manage.py`: production settings on the test's
    SQLite file, no Redis unless given, no background flusher."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "PYTEST_CURRENT_TEST")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{settings.DATABASES['default']['NAME']}",
        "CHECKPOINTS_METRICS_FLUSH_SECONDS": "0",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT,
                            env=env or child_env(), **popen)
