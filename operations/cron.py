"""The scheduled evaluation of the thresholds, for RQ's cron scheduler:

    python manage.py rqcron operations.cron

evaluates every `OPERATIONS_EVALUATE_SECONDS` (30 s by default), so a crossing raises
its alert within a minute. Any number of schedulers and workers may run it: raising
and clearing are compare-and-set.
"""

from django.conf import settings
from rq import cron

from .jobs import alerts_evaluate

cron.register(
    alerts_evaluate,
    queue_name="default",
    interval=int(getattr(settings, "OPERATIONS_EVALUATE_SECONDS", 30)),
    job_timeout=55,
)
