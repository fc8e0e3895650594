"""Leave room in lg_thread's pages on PostgreSQL, so the thread row's frequent updates
stay HOT (same page, no new index entries)."""

from django.db import migrations


def set_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE lg_thread SET (fillfactor = 70)")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE lg_thread RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("checkpoints", "0003_metric_sample")]
    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]
