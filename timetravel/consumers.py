"""Websocket consumers: join a group, relay its typed events, leave.

The socket is staff-only: `AuthMiddlewareStack` puts the session's user in the scope
and `AllowedHostsOriginValidator` (in `config.asgi`) refuses foreign origins before the
consumer runs.
"""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from . import events

REFUSED = 4403


class _StaffConsumer(AsyncJsonWebsocketConsumer):
    group = ""

    def group_name(self) -> str:
        raise NotImplementedError

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active or not user.is_staff:
            await self.close(code=REFUSED)
            return
        self.group = self.group_name()
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        # The page only listens; a ping keeps proxies from closing an idle socket.
        if content == {"type": "ping"}:
            await self.send_json({"type": "pong"})

    async def relay(self, message):
        await self.send_json({"type": message["event"], "data": message["data"]})


class ThreadConsumer(_StaffConsumer):
    """New checkpoints and run states of one thread."""

    def group_name(self) -> str:
        return events.thread_group(self.scope["url_route"]["kwargs"]["thread_id"])


class InboxConsumer(_StaffConsumer):
    """Interrupts appearing and being decided, across threads."""

    def group_name(self) -> str:
        return events.INBOX_GROUP
