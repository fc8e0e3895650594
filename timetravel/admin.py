"""The console's tables in the admin, read-only: runs and approvals change only through
the services, and the audit log is append-only."""

from django.contrib import admin

from .models import Approval, AuditEntry, Run, ThreadLock


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Run)
class RunAdmin(ReadOnly):
    list_display = ("id", "thread_id", "kind", "state", "created_by", "created_at", "checkpoints_written")
    list_filter = ("kind", "state")
    search_fields = ("thread_id",)


@admin.register(Approval)
class ApprovalAdmin(ReadOnly):
    list_display = ("id", "thread_id", "interrupt_id", "state", "claimed_by", "decided_by", "updated_at")
    list_filter = ("state",)
    search_fields = ("thread_id", "interrupt_id")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnly):
    list_display = ("created_at", "username", "action", "thread_id", "checkpoint_id")
    list_filter = ("action",)
    search_fields = ("thread_id", "username")


@admin.register(ThreadLock)
class ThreadLockAdmin(ReadOnly):
    list_display = ("thread_id", "run", "owner", "acquired_at", "expires_at")
