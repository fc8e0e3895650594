"""The saver's upkeep, for RQ's cron scheduler (see `config/cron.py`): retention every
hour and orphaned-blob collection every hour."""

from rq import cron

from .jobs import apply_retention, collect_orphan_blobs

cron.register(apply_retention, queue_name="default", interval=3600, job_timeout=1800)
cron.register(collect_orphan_blobs, queue_name="default", interval=3600, job_timeout=1800)
