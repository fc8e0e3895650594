from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations"

    def ready(self):
        from checkpoints import metrics, metrics_store

        # Each process hands its measurements over from its first one on.
        metrics.on_first_record(metrics_store.start_flusher)
