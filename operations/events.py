"""Live progress of migrations over Channels (best effort, after the row is written)."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def migration_group(migration_id: int) -> str:
    return f"operations.migration.{migration_id}"


def migration_progress_event(migration) -> None:
    from .selectors import migration_json

    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(migration_group(migration.pk), {
            "type": "relay", "event": "migration.progress", "data": migration_json(migration)})
    except Exception:  # noqa: BLE001 - the page polls too
        logger.warning("could not publish the progress of migration %s", migration.pk, exc_info=True)
