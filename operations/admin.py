from django.contrib import admin

from .models import Alert, Migration


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("key", "state", "value", "peak", "threshold", "raised_at", "cleared_at")
    list_filter = ("state", "rule")
    readonly_fields = [f.name for f in Alert._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Migration)
class MigrationAdmin(admin.ModelAdmin):
    """Read-only: migrations start and resume from the operations pages (audited)."""

    list_display = ("id", "source_kind", "target", "state", "dry_run", "threads_done", "threads_total",
                    "verified", "created_at")
    list_filter = ("state", "source_kind", "dry_run")
    exclude = ("source",)
    readonly_fields = [f.name for f in Migration._meta.fields if f.name != "source"] + ["source_label"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
