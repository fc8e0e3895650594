from checkpoints import metrics_store


class MetricsFlushMiddleware:
    """After a response, hand this process's saver metrics over if the last flush is
    older than the interval (the flusher thread does it too; this covers processes
    whose thread has not started or died)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        metrics_store.maybe_flush()
        return response
