from __future__ import annotations

from django import forms
from django.conf import settings
from django.db import connections

from .models import Migration


def postgres_aliases() -> list[str]:
    return [a for a in settings.DATABASES if connections[a].vendor == "postgresql"]


class MigrationForm(forms.Form):
    source_kind = forms.ChoiceField(choices=Migration.Source.choices, initial=Migration.Source.DJANGO)
    source = forms.CharField(
        max_length=2000, initial="default",
        help_text="A database alias, a SQLite file path, or a postgresql:// URL, by kind.",
    )
    target = forms.ChoiceField(choices=(), help_text="This project's PostgreSQL database (an alias).")
    batch_size = forms.IntegerField(min_value=1, max_value=5000, initial=50, help_text="Threads per transaction.")
    copy_store = forms.BooleanField(required=False, initial=True, label="Copy store items")
    dry_run = forms.BooleanField(required=False, initial=False, label="Dry run (report only, write nothing)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [(a, a) for a in postgres_aliases()]
