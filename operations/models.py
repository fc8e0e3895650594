"""Tables of the operations pages: alerts, database size samples, migrations.

The saver's per-minute metrics are `checkpoints.MetricSample` (or Redis); nothing here
holds in-process state, so any number of web processes and workers share it.
"""

from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import models


def _redacted(url: str) -> str:
    """A database URL without its password (an alias is returned as it is)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=f"{parts.username}:***@{parts.netloc.rsplit('@', 1)[-1]}")
    return urlunsplit(parts)


class Alert(models.Model):
    """A threshold crossed: raised by the scheduled evaluation, cleared when the figure
    is back under the threshold, and kept afterwards as history.

    At most one active alert per key (a partial unique constraint), so two evaluators
    running at once raise it once and notify once.
    """

    class State(models.TextChoices):
        ACTIVE = "active"
        CLEARED = "cleared"

    # The rule, and the operation for per-operation rules: `error_rate`, `p99_ms:put`.
    key = models.CharField(max_length=200)
    rule = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    threshold = models.FloatField()
    value = models.FloatField()
    peak = models.FloatField()
    message = models.TextField()
    raised_at = models.DateTimeField()
    cleared_at = models.DateTimeField(null=True, blank=True)
    # When the figure was last seen over the threshold.
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=models.Q(state="active"), name="ops_alert_one_active"
            )
        ]
        indexes = [models.Index(fields=["-raised_at"], name="ops_alert_raised")]

    def __str__(self):
        return f"{self.key} ({self.state})"


class DatabaseSize(models.Model):
    """The saver database's size, sampled by each evaluation, for the growth chart."""

    alias = models.CharField(max_length=100)
    bytes = models.BigIntegerField()
    taken_at = models.DateTimeField(db_index=True)


class Migration(models.Model):
    """A copy of every thread from a source saver into this project's database.

    The progress row: threads are copied in `thread_id` order, a batch at a time, and
    `cursor` is the last thread whose batch committed on the target, so a run that
    died resumes after it (re-copying a thread is harmless: every insert is
    insert-or-ignore). A running migration renews `heartbeat_at`; one whose heartbeat
    is older than `OPERATIONS_MIGRATION_STALE_SECONDS` died and may be resumed.
    """

    class Source(models.TextChoices):
        DJANGO = "django", "This project's database (a Django alias)"
        SQLITE = "sqlite", "A langgraph-checkpoint-sqlite file"
        POSTGRES = "postgres", "A langgraph-checkpoint-postgres database"

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    source_kind = models.CharField(max_length=16, choices=Source.choices)
    # The alias, the file path or the connection URL.
    source = models.TextField()
    target = models.CharField(max_length=100)
    dry_run = models.BooleanField(default=False)
    copy_store = models.BooleanField(default=True)
    batch_size = models.IntegerField(default=50)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    cursor = models.TextField(blank=True, default="")
    threads_total = models.IntegerField(default=0)
    threads_done = models.IntegerField(default=0)
    checkpoints_copied = models.BigIntegerField(default=0)
    writes_copied = models.BigIntegerField(default=0)
    blobs_copied = models.BigIntegerField(default=0)
    store_items_copied = models.BigIntegerField(default=0)
    # Threads whose values the serializer refused (blocked types): not copied.
    blocked = models.JSONField(default=list, blank=True)
    # The dry run's plan, or the verification after a copy.
    report = models.JSONField(null=True, blank=True)
    verified = models.BooleanField(null=True)
    error = models.TextField(blank=True, default="")
    attempts = models.IntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("can_migrate", "Can start and resume checkpoint migrations")]

    def __str__(self):
        return f"migration {self.pk} from {self.source_kind}:{self.source_label} ({self.state})"

    @property
    def source_label(self) -> str:
        """The source without a password."""
        return _redacted(self.source) if self.source_kind == self.Source.POSTGRES else self.source

    @property
    def target_label(self) -> str:
        return _redacted(self.target)

    @property
    def percent(self) -> int:
        if not self.threads_total:
            return 100 if self.state == self.State.SUCCEEDED else 0
        return min(100, int(100 * self.threads_done / self.threads_total))
