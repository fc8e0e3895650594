"""Fixtures shared by the whole suite.

`db_alias` runs a test once per database: SQLite (always) and PostgreSQL (whenever it
answers; `config.test_settings` makes it mandatory under CI=true).
"""

import pytest
from django.conf import settings

from checkpoints.saver import DjangoSaver

DB_ALIASES = [a for a in ("default", "postgres") if a in settings.DATABASES]
ALL_DATABASES = set(settings.DATABASES)


@pytest.fixture(params=DB_ALIASES, ids=lambda a: "sqlite" if a == "default" else "postgres")
def db_alias(request):
    return request.param


@pytest.fixture
def saver(db_alias):
    """A `DjangoSaver` on each database; transactional because LangGraph calls the
    saver from worker threads, which do not see a test's open transaction."""
    return DjangoSaver(using=db_alias)


def pytest_collection_modifyitems(items):
    # A test on `db_alias` reaches every database, through threads: transactional.
    for item in items:
        if "db_alias" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("django_db"):
            item.add_marker(pytest.mark.django_db(transaction=True, databases="__all__"))
