"""`manage.py sweep_store`: delete expired store items now."""

from django.conf import settings
from django.core.management.base import BaseCommand

from store.services import store_sweep_expired


class Command(BaseCommand):
    help = "Delete store items whose TTL has run out."

    def add_arguments(self, parser):
        parser.add_argument(
            "--database",
            action="append",
            dest="databases",
            help="Database alias to sweep (repeatable; default: STORE_TTL_SWEEP_DATABASES).",
        )

    def handle(self, *args, databases=None, **options):
        for alias in databases or settings.STORE_TTL_SWEEP_DATABASES:
            deleted = store_sweep_expired(using=alias)
            self.stdout.write(f"{alias}: {deleted} expired item(s) deleted")
