"""Database settings for a URL, shared by the project's settings and `DjangoSaver.from_conn_string`.

SQLite gets WAL, a busy timeout and IMMEDIATE transactions: a deferred transaction that
upgrades from read to write fails at once with "database is locked" instead of waiting,
which is the failure of langgraph#8136. PostgreSQL gets Django's native psycopg pool; the
saver returns its connection at the end of every call (see `checkpoints.connection`).
"""

from __future__ import annotations

import dj_database_url

SQLITE_BUSY_TIMEOUT_S = 30
SQLITE_INIT = (
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000};"
    # Checkpoints run on a thread of their own (`checkpoints.sqlite_wal`); the one in a
    # commit is only the safety net, 40 MB of log in rather than 4 MB.
    "PRAGMA wal_autocheckpoint=10000;"
    "PRAGMA journal_size_limit=33554432;"
)


def database_settings(url: str, *, pool_size: int = 16) -> dict:
    """Return a Django `DATABASES` entry for `url` (`sqlite:///path` or `postgresql://...`)."""
    config = dj_database_url.parse(url)
    engine = config["ENGINE"]
    options = config.setdefault("OPTIONS", {})
    if engine == "django.db.backends.sqlite3":
        options.setdefault("init_command", SQLITE_INIT)
        options.setdefault("transaction_mode", "IMMEDIATE")
        options.setdefault("timeout", SQLITE_BUSY_TIMEOUT_S)
    elif engine == "django.db.backends.postgresql":
        if pool_size:
            options.setdefault(
                "pool", {"min_size": 1, "max_size": pool_size, "timeout": 10}
            )
        # A pool keeps connections open; Django must not close them per request.
        config["CONN_MAX_AGE"] = 0
    else:
        raise ValueError(f"Unsupported database for the checkpoint saver: {engine}")
    return config
