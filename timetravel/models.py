"""The console's own tables: runs, the per-thread run lock, approvals and the audit log.

Checkpoints and threads belong to the saver (`checkpoints.models`); nothing here points
at them with a foreign key, so the saver's database may be another alias than the
console's (`TIMETRAVEL_DATABASE`).
"""

from django.conf import settings
from django.db import models


class Run(models.Model):
    """A graph run the console started: a resume, a replay, a fork's continuation, or
    marking an interrupt resolved. Executed by `timetravel.jobs.run_execute`."""

    class Kind(models.TextChoices):
        RESUME = "resume"
        RESOLVE = "resolve"
        REPLAY = "replay"
        CONTINUE = "continue"

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    thread_id = models.TextField()
    graph_id = models.TextField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    # The checkpoint the run starts from; empty for the thread's head.
    checkpoint_id = models.TextField(blank=True, default="")
    # The `Command(resume=...)` value, JSON; null for runs without one.
    resume = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    checkpoints_written = models.IntegerField(default=0)
    error = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["thread_id", "-id"], name="tt_run_thread")]
        permissions = [
            ("can_fork", "Can fork, replay and continue threads"),
            ("can_approve", "Can decide interrupts"),
            ("can_delete_thread", "Can delete threads"),
        ]

    def __str__(self):
        return f"{self.kind} {self.thread_id} ({self.state})"


class ThreadLock(models.Model):
    """At most one run per thread: the row exists while a run holds the thread.

    A lease, not a session lock, so it works across processes and hosts on SQLite and
    behind PgBouncer alike; a crashed worker's lease expires and the next run takes it
    over (and marks the lost run failed).
    """

    thread_id = models.TextField(primary_key=True)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    owner = models.TextField()
    acquired_at = models.DateTimeField()
    expires_at = models.DateTimeField()


class Approval(models.Model):
    """The decision on one interrupt: pending -> claimed -> decided -> resumed | failed.

    Every transition is a compare-and-set `UPDATE ... WHERE state = <expected>`, so two
    people deciding at once, a double click or a replayed request resume exactly once.
    The row is created when someone first claims the interrupt; an interrupt without a
    row is pending.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        CLAIMED = "claimed"
        DECIDED = "decided"
        RESUMED = "resumed"
        FAILED = "failed"

    thread_id = models.TextField()
    checkpoint_id = models.TextField()
    interrupt_id = models.TextField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    value = models.JSONField(null=True, blank=True)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # `{"type": accept|edit|response|ignore|resolve|json, "args": ...}`
    decision = models.JSONField(null=True, blank=True)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="approvals")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["thread_id", "checkpoint_id", "interrupt_id"], name="tt_approval_unique"
            )
        ]

    def __str__(self):
        return f"{self.thread_id}/{self.interrupt_id} ({self.state})"


class AuditEntry(models.Model):
    """Append-only: who did what to which thread, and with which arguments."""

    class Action(models.TextChoices):
        FORK = "fork"
        REPLAY = "replay"
        CLAIM = "claim"
        APPROVE = "approve"
        EDIT = "edit"
        RESPOND = "respond"
        IGNORE = "ignore"
        RESOLVE = "resolve"
        RESUME = "resume"
        DELETE = "delete"
        RUN_FAILED = "run_failed"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as text too, so the record survives the user's deletion.
    username = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=16, choices=Action.choices)
    thread_id = models.TextField(blank=True, default="")
    checkpoint_id = models.TextField(blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["thread_id", "-id"], name="tt_audit_thread")]
        verbose_name_plural = "audit entries"

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.thread_id}"
