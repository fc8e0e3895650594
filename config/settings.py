"""Settings, driven by environment variables.

DATABASE_URL      default: a SQLite file under ./var (the embedded default)
REDIS_URL         optional: hot tier, background jobs and live updates when set
SECRET_KEY        required when DEBUG is off
"""

import os
from pathlib import Path

from checkpoints.dbconfig import database_settings

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = os.environ.get("DEBUG", "1") == "1"
SECRET_KEY = os.environ.get("SECRET_KEY") or (
    "dev-only-insecure-key" if DEBUG else None
)
if not SECRET_KEY:
    raise RuntimeError("SECRET_KEY must be set when DEBUG is off")
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_rq",
    "checkpoints",
    "store",
    "timetravel",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "timetravel.context_processors.console",
            ],
        },
    },
]

DATABASES = {
    "default": database_settings(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
RQ_QUEUES = {
    "default": {"URL": REDIS_URL or "redis://127.0.0.1:6379/0", "ASYNC": bool(REDIS_URL)}
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
LOGIN_URL = "admin:login"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"checkpoints": {"handlers": ["console"], "level": "INFO"}},
}

# Graphs the console can run, like langgraph.json: name -> "module:factory".
TIMETRAVEL_GRAPHS = {"demo": "timetravel.demo:build_graph"}

# Store TTL sweeps (`manage.py rqcron store.cron`, or `manage.py sweep_store`).
STORE_TTL_SWEEP_INTERVAL_MINUTES = float(os.environ.get("STORE_TTL_SWEEP_INTERVAL_MINUTES", "5"))
STORE_TTL_SWEEP_DATABASES = ["default"]

# The checkpoint saver's tiers (see checkpoints/tiers/). The database is the source of truth.
CHECKPOINTS_HOT_TIER_URL = os.environ.get("CHECKPOINTS_HOT_TIER_URL", REDIS_URL)
CHECKPOINTS_HOT_TIER_SIZE = int(os.environ.get("CHECKPOINTS_HOT_TIER_SIZE", "10"))
CHECKPOINTS_HOT_TIER_TIMEOUT = float(os.environ.get("CHECKPOINTS_HOT_TIER_TIMEOUT", "0.05"))
CHECKPOINTS_HOT_TIER_TTL = int(os.environ.get("CHECKPOINTS_HOT_TIER_TTL", "3600"))
CHECKPOINTS_BLOB_STORE_URL = os.environ.get("BLOB_STORE_URL", f"file://{VAR_DIR / 'blobs'}")
CHECKPOINTS_BLOB_THRESHOLD = int(os.environ.get("CHECKPOINTS_BLOB_THRESHOLD", str(64 * 1024)))
CHECKPOINTS_BLOB_DELETE_GRACE = float(os.environ.get("CHECKPOINTS_BLOB_DELETE_GRACE", "60"))
CHECKPOINTS_MAX_CHECKPOINT_BYTES = int(os.environ.get("CHECKPOINTS_MAX_CHECKPOINT_BYTES", "10000"))
CHECKPOINTS_SIZE_POLICY = os.environ.get("CHECKPOINTS_SIZE_POLICY", "warn")  # or "reject"
# The saver's hot statements are prepared on PostgreSQL; turn off behind a PgBouncer in
# transaction mode older than 1.21, which cannot keep prepared statements.
CHECKPOINTS_PREPARED_STATEMENTS = os.environ.get("CHECKPOINTS_PREPARED_STATEMENTS", "1") not in ("0", "false", "")
# Connections per event loop for the a-methods on PostgreSQL; 0: as many as the Django pool.
CHECKPOINTS_ASYNC_POOL_SIZE = int(os.environ.get("CHECKPOINTS_ASYNC_POOL_SIZE", "0"))
# Objects uploaded by a put that never committed are collected after this many seconds.
CHECKPOINTS_BLOB_ORPHAN_GRACE = float(os.environ.get("CHECKPOINTS_BLOB_ORPHAN_GRACE", "3600"))

# -- The console (timetravel) ----------------------------------------------------------
# The alias the console reads threads from and runs graphs against.
TIMETRAVEL_DATABASE = os.environ.get("TIMETRAVEL_DATABASE", "default")
# A run's lock on its thread lasts this long without a heartbeat (a dead worker's lock
# is then taken over); a claimed, undecided interrupt is free again after the timeout.
TIMETRAVEL_RUN_LEASE_SECONDS = 600
TIMETRAVEL_CLAIM_TIMEOUT_SECONDS = 300
TIMETRAVEL_LOCK_WAIT_SECONDS = 30
# A dotted path to a callable returning the `BaseStore` graphs get; empty: a DjangoStore
# on the console's database.
TIMETRAVEL_STORE = os.environ.get("TIMETRAVEL_STORE", "")
CHANNEL_LAYERS = {
    "default": (
        {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
        if REDIS_URL
        else {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    )
}
# Static files are served from the app folders too, so a server started without
# `collectstatic` (tests, the embedded default) has them.
WHITENOISE_USE_FINDERS = True
# whitenoise warns (an error under the tests) when STATIC_ROOT is missing before `collectstatic`.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# -- Operations: metrics, thresholds and alerts, migrations (operations/) ----------------
INSTALLED_APPS += ["operations"]
MIDDLEWARE += ["operations.middleware.MetricsFlushMiddleware"]
TEMPLATES[0]["OPTIONS"]["context_processors"] += ["operations.context_processors.alerts"]
# Each process hands its saver metrics to the aggregate this often (0: only on request,
# at the scheduled evaluation and through `metrics_store.flush()`). Through Redis when
# set (default REDIS_URL), else through the database below.
CHECKPOINTS_METRICS_FLUSH_SECONDS = float(os.environ.get("CHECKPOINTS_METRICS_FLUSH_SECONDS", "10"))
CHECKPOINTS_METRICS_REDIS_URL = os.environ.get("CHECKPOINTS_METRICS_REDIS_URL", REDIS_URL)
CHECKPOINTS_METRICS_DATABASE = "default"
CHECKPOINTS_METRICS_RETENTION_MINUTES = 2 * 24 * 60
# Migration thresholds: crossing one raises an alert (banner, log line, webhook) at the
# next evaluation (every OPERATIONS_EVALUATE_SECONDS, `manage.py rqcron operations.cron`).
OPERATIONS_THRESHOLDS = {
    "error_rate": float(os.environ.get("OPERATIONS_MAX_ERROR_RATE", "0.01")),  # > 1 % of operations
    "writes_per_second": float(os.environ.get("OPERATIONS_MAX_WRITES_PER_SECOND", "100")),
    "p99_ms": float(os.environ.get("OPERATIONS_MAX_P99_MS", "50")),
    "database_bytes": int(os.environ.get("OPERATIONS_MAX_DATABASE_BYTES", str(1024**3))),  # 1 GiB
}
# Rates are taken over this window; error rate and P99 need this many operations in it.
OPERATIONS_WINDOW_SECONDS = 60
OPERATIONS_MIN_OPERATIONS = 20
OPERATIONS_EVALUATE_SECONDS = 30
OPERATIONS_ALERT_WEBHOOK_URL = os.environ.get("OPERATIONS_ALERT_WEBHOOK_URL", "")
OPERATIONS_ALERT_WEBHOOK_TIMEOUT = 5.0
# `Authorization: Bearer <token>` for /operations/metrics (staff sessions work too).
OPERATIONS_METRICS_TOKEN = os.environ.get("OPERATIONS_METRICS_TOKEN", "")
# The database whose size is watched: the saver's.
OPERATIONS_DATABASE = TIMETRAVEL_DATABASE
# A running migration without a heartbeat for this long died and may be resumed.
OPERATIONS_MIGRATION_STALE_SECONDS = 120
# RQ workers flush the saver metrics of each job before its work horse exits.
RQ = {"WORKER_CLASS": "operations.worker.MetricsWorker"}

# Retention (checkpoints/retention.py): idle threads keep only their latest state after
# this many days, and are deleted after that many; unset (empty) turns a step off.
CHECKPOINTS_RETENTION_PRUNE_DAYS = float(os.environ.get("CHECKPOINTS_RETENTION_PRUNE_DAYS", "30")) or None
CHECKPOINTS_RETENTION_DELETE_DAYS = (
    float(os.environ["CHECKPOINTS_RETENTION_DELETE_DAYS"]) if os.environ.get("CHECKPOINTS_RETENTION_DELETE_DAYS") else None
)
# A deleted thread's tombstone (refusing late writes of runs in flight) is kept this long.
CHECKPOINTS_TOMBSTONE_DAYS = float(os.environ.get("CHECKPOINTS_TOMBSTONE_DAYS", "7"))
# A thread page also watches its thread row this often (seconds; 0: off), so checkpoints
# written by agents in other processes show without a reload.
TIMETRAVEL_WATCH_SECONDS = float(os.environ.get("TIMETRAVEL_WATCH_SECONDS", "2"))
