"""Tables of the checkpoint saver.

Each table's natural key is its primary key and leads with `thread_id`, so every saver
read is an index scan (REFERENCE: 0.3-0.8 ms P99 at 2.1 M checkpoints, against
170-1,100 ms without). The saver writes them with raw SQL (`checkpoints.sql`); the
models exist for migrations, the admin and the console's reads.
"""

from django.db import models


class ThreadStatus(models.TextChoices):
    IDLE = "idle"
    BUSY = "busy"
    INTERRUPTED = "interrupted"
    ERROR = "error"


class Thread(models.Model):
    """One row per thread_id, kept in the transaction of every `put`/`put_writes`,
    so listing threads never scans checkpoints."""

    thread_id = models.TextField(primary_key=True)
    status = models.CharField(
        max_length=16, choices=ThreadStatus.choices, default=ThreadStatus.IDLE
    )
    graph_id = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict)
    head_checkpoint_id = models.TextField(blank=True, default="")
    checkpoint_count = models.BigIntegerField(default=0)
    bytes_stored = models.BigIntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "lg_thread"
        indexes = [
            models.Index(fields=["-updated_at"], name="lg_thread_updated"),
            models.Index(fields=["status", "-updated_at"], name="lg_thread_status"),
            models.Index(fields=["graph_id", "-updated_at"], name="lg_thread_graph"),
        ]

    def __str__(self):
        return self.thread_id


class ThreadTombstone(models.Model):
    """A deleted thread: a put or write for one of its checkpoints created before the
    delete (`checkpoint_id <= deleted_before`; checkpoint ids are time-ordered uuid6) is
    refused, so a run still in flight cannot bring the thread back (langgraph#7206).
    A new run on the same thread_id writes later ids and is accepted. A write already
    executing when the delete runs cannot land either: on PostgreSQL it holds a lock on
    its thread's row (a put, a special write) or its checkpoint's row (an ordinary
    write), which the delete waits for (`PostgresDialect.live`); SQLite serialises
    writers."""

    thread_id = models.TextField(primary_key=True)
    deleted_before = models.TextField()
    deleted_at = models.DateTimeField()

    class Meta:
        db_table = "lg_thread_tombstone"

    def __str__(self):
        return self.thread_id


class Checkpoint(models.Model):
    """A checkpoint without its channel values: the body is `serde.dumps_typed` of the
    checkpoint less `channel_values` and `channel_versions`; the versions are kept as
    JSON so SQL can join them to the blob rows."""

    pk = models.CompositePrimaryKey("thread_id", "checkpoint_ns", "checkpoint_id")
    thread_id = models.TextField()
    checkpoint_ns = models.TextField(default="", blank=True)
    checkpoint_id = models.TextField()
    parent_checkpoint_id = models.TextField(null=True, blank=True)
    run_id = models.TextField(null=True, blank=True)
    type = models.TextField()
    checkpoint = models.BinaryField()
    channel_versions = models.JSONField(default=dict)
    metadata = models.JSONField(default=dict)
    size = models.IntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "lg_checkpoint"
        # Partial: runs outside LangGraph Server carry no run id, and a NULL entry per
        # checkpoint would cost an index insert on every put for nothing.
        indexes = [
            models.Index(fields=["run_id"], name="lg_checkpoint_run_set", condition=models.Q(run_id__isnull=False))
        ]


class CheckpointBlob(models.Model):
    """One channel value at one version; a step writes only the channels it changed."""

    pk = models.CompositePrimaryKey("thread_id", "checkpoint_ns", "channel", "version")
    thread_id = models.TextField()
    checkpoint_ns = models.TextField(default="", blank=True)
    channel = models.TextField()
    version = models.TextField()
    type = models.TextField()
    blob = models.BinaryField(null=True)
    # Set when the value lives in blob storage: `sha256/{digest}`, content-addressed.
    blob_key = models.TextField(null=True, blank=True)

    class Meta:
        db_table = "lg_checkpoint_blob"
        # Partial: most values live in the row, and a NULL entry per row would cost an
        # index insert on every put for nothing.
        indexes = [
            models.Index(
                fields=["blob_key"], name="lg_blob_key_set", condition=models.Q(blob_key__isnull=False)
            )
        ]


class CheckpointWrite(models.Model):
    """A pending write of a task against a checkpoint."""

    pk = models.CompositePrimaryKey(
        "thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx"
    )
    thread_id = models.TextField()
    checkpoint_ns = models.TextField(default="", blank=True)
    checkpoint_id = models.TextField()
    task_id = models.TextField()
    idx = models.IntegerField()
    task_path = models.TextField(default="", blank=True)
    channel = models.TextField()
    type = models.TextField()
    blob = models.BinaryField()

    class Meta:
        db_table = "lg_checkpoint_write"


class MetricSample(models.Model):
    """One field of the saver's metrics for one minute, summed over every process
    (`checkpoints.metrics_store`, when Redis is not configured); minute 0 holds the
    all-time totals. Written only by additive upserts, so flushes never conflict."""

    pk = models.CompositePrimaryKey("minute", "name")
    minute = models.BigIntegerField()
    name = models.TextField()
    value = models.BigIntegerField(default=0)

    class Meta:
        db_table = "lg_metric_sample"
