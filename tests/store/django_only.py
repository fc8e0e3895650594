"""Fixtures for store tests that concern DjangoStore alone (no PostgresStore reference),
through the sync methods: import them into the module (`from .django_only import impl, mode`)."""

import pytest

from .conftest import HAS_POSTGRES


@pytest.fixture(params=["sqlite", "postgres"])
def impl(request):
    if request.param == "postgres" and not HAS_POSTGRES:
        pytest.skip("needs PostgreSQL")
    return request.param


@pytest.fixture
def mode():
    return "sync"
