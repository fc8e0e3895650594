"""`manage.py witness [--database ALIAS]`: prove session memory, time travel,
human-in-the-loop and crash recovery on a live database; exits 1 if any fails."""

from django.core.management.base import BaseCommand, CommandError

from checkpoints.witness.capabilities import witness_all


class Command(BaseCommand):
    help = "Check the four capabilities of the checkpoint saver against a database."

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default", help="Database alias (default: default).")

    def handle(self, *args, database, **options):
        findings = witness_all(using=database)
        width = max(len(f.capability) for f in findings)
        for f in findings:
            verdict = self.style.SUCCESS("PASS") if f.passed else self.style.ERROR("FAIL")
            self.stdout.write(f"{f.capability:<{width}}  {verdict}  {f.evidence}")
        failed = [f.capability for f in findings if not f.passed]
        if failed:
            raise CommandError(f"{len(failed)} of {len(findings)} capabilities failed: {', '.join(failed)}")
