"""`manage.py seed_demo [--database ALIAS] [--count N]`: demo threads for the console;
running it again creates only the threads that are missing."""

from django.core.management.base import BaseCommand

from checkpoints.saver import DjangoSaver
from timetravel.seed import SCENARIOS, seed_demo


class Command(BaseCommand):
    help = "Create the demo graph's threads (finished, awaiting approval, forked, ...) if missing."

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default", help="Database alias (default: default).")
        parser.add_argument("--count", type=int, default=len(SCENARIOS), help="How many demo threads.")

    def handle(self, *args, database, count, **options):
        result = seed_demo(DjangoSaver(using=database), n=count)
        for thread_id in result.created:
            self.stdout.write(f"created {thread_id}")
        if result.skipped:
            self.stdout.write(f"{len(result.skipped)} demo threads already existed; left as they were")
        self.stdout.write(self.style.SUCCESS(f"{len(result.created)} demo threads created"))
