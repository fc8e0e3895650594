from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations"

    def ready(self):
        from checkpoints import metrics, metrics_store

        from . import services

        # Each process hands its measurements over from its first one on; without Redis
        # (no RQ cron) it also evaluates the thresholds itself.
        metrics.on_first_record(metrics_store.start_flusher)
        metrics.on_first_record(services.evaluator_start)
