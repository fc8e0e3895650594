from django.core.management.base import BaseCommand

from checkpoints.jobs import collect_orphan_blobs


class Command(BaseCommand):
    help = "Delete blob-storage objects that no checkpoint references (after a grace period)."

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default")
        parser.add_argument("--grace", type=float, default=None, help="seconds; default from settings")

    def handle(self, *args, database, grace, **options):
        deleted = collect_orphan_blobs(using=database, grace=grace)
        self.stdout.write(f"deleted {deleted} orphaned blob(s)")
