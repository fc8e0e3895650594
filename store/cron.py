"""The store's scheduled jobs, for RQ's cron scheduler:

    python manage.py rqcron store.cron

sweeps expired items every `STORE_TTL_SWEEP_INTERVAL_MINUTES` on each database in
`STORE_TTL_SWEEP_DATABASES`, through the `default` queue's workers.
"""

from django.conf import settings
from rq import cron

from .jobs import store_sweep_expired

for alias in settings.STORE_TTL_SWEEP_DATABASES:
    cron.register(
        store_sweep_expired,
        queue_name="default",
        kwargs={"using": alias},
        interval=int(settings.STORE_TTL_SWEEP_INTERVAL_MINUTES * 60),
    )
