"""Websocket consumers: join a group, relay its typed events, leave.

The socket is staff-only: `AuthMiddlewareStack` puts the session's user in the scope
and `AllowedHostsOriginValidator` (in `config.asgi`) refuses foreign origins before the
consumer runs.
"""

from __future__ import annotations

import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from checkpoints.models import Thread

from . import events, graphs

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


@database_sync_to_async
def _thread_head(thread_id: str) -> tuple[str, str] | None:
    row = (
        Thread.objects.using(graphs.saver_alias())
        .filter(thread_id=thread_id)
        .values_list("head_checkpoint_id", "status")
        .first()
    )
    return tuple(row) if row else None


class ThreadConsumer(_StaffConsumer):
    """New checkpoints and run states of one thread.

    Runs the console starts announce their checkpoints; an agent in another process
    writes through the saver alone, so the consumer also watches the thread row (one
    primary-key read every `TIMETRAVEL_WATCH_SECONDS`) and announces a head or status
    it has not relayed (`thread.changed`).
    """

    watcher: asyncio.Task | None = None
    seen: tuple[str, str] | None = None

    def group_name(self) -> str:
        return events.thread_group(self.thread_id)

    @property
    def thread_id(self) -> str:
        return self.scope["url_route"]["kwargs"]["thread_id"]

    async def connect(self):
        await super().connect()
        interval = float(getattr(settings, "TIMETRAVEL_WATCH_SECONDS", 2.0))
        if self.group and interval > 0:
            self.seen = await _thread_head(self.thread_id)
            self.watcher = asyncio.ensure_future(self.watch(interval))

    async def disconnect(self, code):
        if self.watcher is not None:
            self.watcher.cancel()
        await super().disconnect(code)

    async def relay(self, message):
        if message["event"] == "checkpoint.created":
            self.seen = (message["data"]["checkpoint_id"], self.seen[1] if self.seen else "")
        await super().relay(message)

    async def watch(self, interval: float):
        while True:
            await asyncio.sleep(interval)
            current = await _thread_head(self.thread_id)
            if current is not None and current != self.seen:
                self.seen = current
                await self.send_json({
                    "type": "thread.changed",
                    "data": {"thread_id": self.thread_id, "head": current[0], "status": current[1]},
                })


class InboxConsumer(_StaffConsumer):
    """Interrupts appearing and being decided, across threads."""

    def group_name(self) -> str:
        return events.INBOX_GROUP
