"""Fixtures shared by the whole suite.

`db_alias` runs a test once per database: SQLite (always) and PostgreSQL (whenever it
answers; `config.test_settings` makes it mandatory under CI=true).

A test that takes `saver` runs once per composition of the saver: SQLite, PostgreSQL,
and on PostgreSQL with the Redis hot tier, with blob offload (threshold lowered so that
values are offloaded), and with both. Redis compositions run whenever Redis answers;
under CI=true Redis must answer.
"""

import inspect
import os
import uuid
from dataclasses import dataclass

import pytest
from django.conf import settings

from checkpoints.saver import DjangoSaver
from checkpoints.tiers.blobs import FileBlobStore
from checkpoints.tiers.hot import HotTier

DB_ALIASES = [a for a in ("default", "postgres") if a in settings.DATABASES]
CI = os.environ.get("CI") == "true"


def _redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(settings.TEST_REDIS_URL, socket_timeout=1).ping())
    except redis.RedisError:
        if CI:
            raise RuntimeError(f"CI=true but Redis does not answer at {settings.TEST_REDIS_URL}")
        return False


REDIS = _redis_answers()


@dataclass(frozen=True)
class SaverSpec:
    alias: str
    hot: bool = False
    blobs: bool = False

    @property
    def id(self) -> str:
        name = "sqlite" if self.alias == "default" else "postgres"
        return "+".join([name] + (["hot"] if self.hot else []) + (["blobs"] if self.blobs else []))

    def build(self, tmp_path, saver_class=DjangoSaver, **kwargs) -> DjangoSaver:
        hot = (
            HotTier(settings.TEST_REDIS_URL, prefix=f"lgtest-{uuid.uuid4().hex[:8]}", timeout=1.0, secret="test")
            if self.hot
            else None
        )
        store = FileBlobStore(tmp_path / "blobs") if self.blobs else None
        return saver_class(
            using=self.alias,
            hot_tier=hot,
            blob_store=store,
            blob_threshold=32 if self.blobs else None,
            **kwargs,
        )


SAVER_SPECS = [SaverSpec(a) for a in DB_ALIASES]
if "postgres" in DB_ALIASES:
    SAVER_SPECS += [SaverSpec("postgres", blobs=True)]
    if REDIS:
        SAVER_SPECS += [SaverSpec("postgres", hot=True), SaverSpec("postgres", hot=True, blobs=True)]


def pytest_generate_tests(metafunc):
    direct = set(inspect.signature(metafunc.function).parameters)
    if direct & {"saver", "saver_spec"}:
        metafunc.parametrize("saver_spec", SAVER_SPECS, ids=[s.id for s in SAVER_SPECS])
    elif "db_alias" in metafunc.fixturenames:
        metafunc.parametrize(
            "db_alias", DB_ALIASES, ids=["sqlite" if a == "default" else "postgres" for a in DB_ALIASES]
        )


@pytest.fixture
def db_alias(saver_spec):
    return saver_spec.alias


@pytest.fixture
def saver_spec():  # parametrized by pytest_generate_tests
    raise RuntimeError("saver_spec is parametrized by pytest_generate_tests")


@pytest.fixture
def saver(saver_spec, tmp_path):
    """A `DjangoSaver` in each composition; transactional because LangGraph calls the
    saver from worker threads, which do not see a test's open transaction."""
    return saver_spec.build(tmp_path)


def pytest_collection_modifyitems(items):
    # A test on `db_alias` reaches every database, through threads: transactional.
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & {"db_alias", "saver_spec"} and not item.get_closest_marker("django_db"):
            item.add_marker(pytest.mark.django_db(transaction=True, databases="__all__"))


@pytest.fixture(scope="session", autouse=True)
def _close_async_connections(django_db_setup):
    """The a-methods' asyncio connections (`checkpoints.aconnection`) of the last test's
    loop stay open until another pool opens; the test database cannot be dropped with
    them connected."""
    yield
    from checkpoints import aconnection

    aconnection.close_all()
