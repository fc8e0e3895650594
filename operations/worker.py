"""An RQ worker that hands the saver metrics of each job over before the job's forked
work horse exits (it leaves through `os._exit`, so no thread or exit hook would)."""

from __future__ import annotations

from rq import Worker

from checkpoints import metrics_store


class MetricsWorker(Worker):
    def perform_job(self, job, queue):
        try:
            return super().perform_job(job, queue)
        finally:
            metrics_store.flush()
