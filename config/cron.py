"""Every scheduled job of the project, for one scheduler process:

    python manage.py rqcron config.cron

(each app's module still works on its own). Jobs run on the `default` queue's workers;
each is safe to run twice and from several schedulers.
"""

from rq import cron

import checkpoints.cron  # noqa: F401 - retention, orphaned blobs
import operations.cron  # noqa: F401 - thresholds and alerts
import store.cron  # noqa: F401 - TTL sweep
from timetravel.jobs import runs_reap

cron.register(runs_reap, queue_name="default", interval=60, job_timeout=55)
