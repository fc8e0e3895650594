"""django-rq jobs: thin shells over `services`, taking ids, safe to run twice.

With `REDIS_URL` a run goes to the `default` queue (`python manage.py rqworker`);
without it, it runs in-process at once. RQ's own synchronous mode still needs a Redis
server, which the embedded default does not have, so it is not used.
"""

from __future__ import annotations

from django.conf import settings

from . import services

JOB_TIMEOUT_S = 3600


def run_execute(run_id: int) -> str:
    """Execute a console run (resume, resolve, replay, continue)."""
    return services.run_execute(run_id=run_id).state


def runs_reap() -> dict:
    """Fail runs whose worker died and re-enqueue lost ones; schedule it every few
    minutes (`rqscheduler`, cron, or the operations scheduler)."""
    return services.runs_reap()


def run_enqueue(run_id: int) -> None:
    if getattr(settings, "REDIS_URL", ""):
        import django_rq

        django_rq.get_queue(getattr(settings, "TIMETRAVEL_QUEUE", "default")).enqueue(
            run_execute, run_id, job_timeout=JOB_TIMEOUT_S, job_id=f"timetravel-run-{run_id}"
        )
    else:
        run_execute(run_id)
