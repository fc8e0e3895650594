"""Settings for the test suite: the default database is a SQLite file (threads share it,
as they do in production), and PostgreSQL is added as the `postgres` alias whenever it
answers. Under CI=true a PostgreSQL that does not answer is an error, never a skip."""

import os

from checkpoints.dbconfig import database_settings

from .settings import *  # noqa: F403
from .settings import DATABASES, VAR_DIR

TEST_POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CI = os.environ.get("CI") == "true"

DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}


def _postgres_answers(url: str) -> bool:
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=3).close()
        return True
    except psycopg.OperationalError:
        return False


if _postgres_answers(TEST_POSTGRES_URL):
    DATABASES["postgres"] = database_settings(TEST_POSTGRES_URL)
    DATABASES["postgres"]["TEST"] = {"NAME": f"test_lg_{os.getpid()}"}
elif CI:
    raise RuntimeError(f"CI=true but PostgreSQL does not answer at {TEST_POSTGRES_URL}")

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# No background metrics flusher under the tests: they flush explicitly.
CHECKPOINTS_METRICS_FLUSH_SECONDS = 0
# Off unless a test turns it on: its events would interleave with the ones a test expects.
TIMETRAVEL_WATCH_SECONDS = 0
