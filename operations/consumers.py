"""Websocket consumer of a migration's progress: staff only, joins one group, relays."""

from __future__ import annotations

from timetravel.consumers import _StaffConsumer

from . import events


class MigrationConsumer(_StaffConsumer):
    def group_name(self) -> str:
        return events.migration_group(int(self.scope["url_route"]["kwargs"]["migration_id"]))
