"""Running a test step on a thread of its own, as LangGraph's workers call the saver."""

import threading

from django.db import connections


def in_fresh_thread(fn):
    """Run `fn` on a new thread (as LangGraph's workers call the saver), return its result."""
    out = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as exc:  # re-raised on the test's thread
            out["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]
