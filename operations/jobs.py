"""django-rq jobs of the operations app: thin shells over `services`, safe to run twice.

With `REDIS_URL` they go to the `default` queue; without it they run in-process, as
the console's runs do.
"""

from __future__ import annotations

from django.conf import settings

from . import services

MIGRATION_TIMEOUT_S = 24 * 3600


def alerts_evaluate() -> dict:
    """Compare the thresholds with the last minute (scheduled by `operations.cron`)."""
    return services.alerts_evaluate()


def migration_execute(migration_id: int) -> str:
    return services.migration_execute(migration_id=migration_id).state


def migration_enqueue(migration_id: int) -> None:
    if getattr(settings, "REDIS_URL", ""):
        import django_rq

        django_rq.get_queue("default").enqueue(
            migration_execute, migration_id, job_timeout=MIGRATION_TIMEOUT_S,
        )
    else:
        migration_execute(migration_id)
