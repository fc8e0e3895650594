"""Posting alert events to `OPERATIONS_ALERT_WEBHOOK_URL` (JSON, best effort)."""

from __future__ import annotations

import json
import logging
import urllib.request

from django.conf import settings

logger = logging.getLogger("operations.alerts")


def webhook_post(payload: dict) -> bool:
    """POST `payload` as JSON; a failure is logged and returns False, never raises."""
    url = getattr(settings, "OPERATIONS_ALERT_WEBHOOK_URL", "")
    if not url:
        return False
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "langgraph-django-operations"},
    )
    try:
        with urllib.request.urlopen(request, timeout=getattr(settings, "OPERATIONS_ALERT_WEBHOOK_TIMEOUT", 5.0)) as r:
            return 200 <= r.status < 300
    except Exception as exc:  # noqa: BLE001 - an unreachable webhook never stops the evaluation
        logger.warning("alert webhook %s failed: %s", url, exc)
        return False
