"""Copy every thread from a saver into this project's PostgreSQL database, then verify.

    python manage.py migrate_checkpoints --source-kind sqlite --source checkpoints.sqlite --target postgres
    python manage.py migrate_checkpoints --source-kind django --source default \\
        --target postgresql://user@host/db --batch-size 100
    python manage.py migrate_checkpoints --resume 7      # after a crash: continue after its cursor
    python manage.py migrate_checkpoints ... --dry-run   # report what would be copied

Exit status 0 when the verification reports zero loss (or a dry run finished), 1 otherwise.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from operations import services
from operations.models import Migration
from operations.selectors import migration_json


class Command(BaseCommand):
    help = "Copy checkpoints, writes, blobs and store items from a saver into PostgreSQL, resumably, and verify."

    def add_arguments(self, parser):
        parser.add_argument("--source-kind", choices=[c for c, _ in Migration.Source.choices])
        parser.add_argument("--source", help="database alias, SQLite file path, or postgresql:// URL")
        parser.add_argument("--target", help="database alias or postgresql:// URL of this project's database")
        parser.add_argument("--batch-size", type=int, default=50, help="threads per transaction")
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument("--no-store", action="store_true", help="leave the store items")
        parser.add_argument("--throttle", type=float, default=0.0, help="seconds to pause between batches")
        parser.add_argument("--resume", type=int, metavar="ID", help="resume migration ID after its cursor")
        parser.add_argument("--json", action="store_true", help="print the final state as JSON")

    def handle(self, *args, **options):
        if options["resume"]:
            if not Migration.objects.filter(pk=options["resume"]).exists():
                raise CommandError(f"No migration {options['resume']}")
            migration_id = options["resume"]
        else:
            if not (options["source_kind"] and options["source"] and options["target"]):
                raise CommandError("--source-kind, --source and --target are required (or --resume ID)")
            try:
                migration = services.migration_create(
                    user=None, source_kind=options["source_kind"], source=options["source"],
                    target=options["target"], dry_run=options["dry_run"], copy_store=not options["no_store"],
                    batch_size=options["batch_size"],
                )
            except services.MigrationError as exc:
                raise CommandError(str(exc)) from None
            migration_id = migration.pk
            self.stdout.write(f"migration {migration_id} started", ending="\n")
            self.stdout.flush()
        migration = services.migration_execute(migration_id=migration_id, throttle=options["throttle"],
                                               force=bool(options["resume"]))
        data = migration_json(migration)
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2, default=str))
        else:
            self.stdout.write(
                f"migration {migration.pk}: {migration.state}; {migration.threads_done}/{migration.threads_total} "
                f"threads, {migration.checkpoints_copied} checkpoints, {migration.writes_copied} writes, "
                f"{migration.store_items_copied} store items"
            )
            report = migration.report or {}
            if migration.dry_run:
                self.stdout.write(json.dumps(report, indent=2))
            elif report:
                verdict = "zero loss" if report.get("ok") else (
                    f"{report['differences_total']} differences, {report['blocked']} blocked values")
                self.stdout.write(f"verification: {verdict}")
                for d in report.get("differences", [])[:50]:
                    self.stdout.write(f"  {d}")
            if migration.error:
                self.stderr.write(migration.error)
        if migration.state != Migration.State.SUCCEEDED:
            raise SystemExit(1)
