"""The websockets: staff sessions only, same-origin only, and the events a run sends."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from config.asgi import application
from timetravel import events, graphs, services

from .conftest import graph_config

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")
ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


async def connect(path, *headers):
    communicator = WebsocketCommunicator(application, path, headers=list(headers))
    connected, code = await communicator.connect(timeout=3)
    return communicator, connected, code


async def test_anonymous_is_refused(sqlite_console):
    communicator, connected, code = await connect("/ws/inbox/", ORIGIN)
    assert not connected and code == 4403
    await communicator.disconnect()


async def test_a_user_who_is_not_staff_is_refused(sqlite_console, outsider):
    cookie = await sync_to_async(session_cookie)(outsider)
    communicator, connected, code = await connect("/ws/threads/t/", ORIGIN, (b"cookie", cookie))
    assert not connected and code == 4403
    await communicator.disconnect()


async def test_a_foreign_origin_is_refused(sqlite_console, operator_user):
    cookie = await sync_to_async(session_cookie)(operator_user)
    communicator, connected, _ = await connect("/ws/inbox/", (b"origin", b"http://evil.example"), (b"cookie", cookie))
    assert not connected
    await communicator.disconnect()


async def test_staff_get_the_events_of_a_run(sqlite_console, operator_user, refund_thread):
    cookie = await sync_to_async(session_cookie)(operator_user)
    thread_ws, connected, _ = await connect(f"/ws/threads/{refund_thread}/", ORIGIN, (b"cookie", cookie))
    assert connected
    inbox_ws, connected, _ = await connect("/ws/inbox/", ORIGIN, (b"cookie", cookie))
    assert connected
    await thread_ws.send_json_to({"type": "ping"})
    assert await thread_ws.receive_json_from() == {"type": "pong"}

    state = await sync_to_async(graphs.graph_get("demo").get_state)(graph_config(refund_thread))
    await sync_to_async(services.interrupt_decide)(
        user=operator_user, thread_id=refund_thread, interrupt_id=state.interrupts[0].id, decision={"type": "accept"})

    resolved = await inbox_ws.receive_json_from(timeout=3)
    assert resolved == {"type": "interrupt.resolved",
                        "data": {"thread_id": refund_thread, "interrupt_id": state.interrupts[0].id, "state": "decided"}}
    received = []
    while not await thread_ws.receive_nothing(timeout=0.3):
        received.append(await thread_ws.receive_json_from())
    kinds = [e["type"] for e in received]
    assert kinds[0] == "run.updated" and received[0]["data"]["state"] == "running"
    assert kinds[-1] == "run.updated" and received[-1]["data"]["state"] == "succeeded"
    created = [e["data"] for e in received if e["type"] == "checkpoint.created"]
    assert len(created) == 2  # approve, then execute
    assert created[-1]["next"] == [] and created[0]["parent_checkpoint_id"] == state.config["configurable"]["checkpoint_id"]
    assert [c["source"] for c in created] == ["loop", "loop"]
    await thread_ws.disconnect()
    await inbox_ws.disconnect()


async def test_other_threads_events_do_not_leak(sqlite_console, operator_user):
    cookie = await sync_to_async(session_cookie)(operator_user)
    ws, connected, _ = await connect("/ws/threads/mine/", ORIGIN, (b"cookie", cookie))
    assert connected
    await sync_to_async(events.checkpoint_created_event)(thread_id="theirs", checkpoint_id="x", parent_checkpoint_id=None,
                                                         source="loop", step=1, next=[])
    assert await ws.receive_nothing(timeout=0.2)
    await sync_to_async(events.checkpoint_created_event)(thread_id="mine", checkpoint_id="y", parent_checkpoint_id=None,
                                                         source="loop", step=1, next=[])
    assert (await ws.receive_json_from())["data"]["checkpoint_id"] == "y"
    await ws.disconnect()


async def test_events_cross_processes_through_redis(sqlite_console, operator_user, settings):
    """With REDIS_URL the layer is channels-redis: a job in a worker process reaches a
    socket held by another process. Here the sender runs in another thread with its own
    event loop, as an RQ worker would."""
    import redis

    try:
        redis.Redis.from_url(settings.TEST_REDIS_URL, socket_timeout=1).ping()
    except redis.RedisError:
        if settings.CI:
            raise
        pytest.skip("no Redis")
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": [settings.TEST_REDIS_URL],
                                                      "prefix": "timetravel-test"}}}
    from channels.layers import get_channel_layer

    assert type(get_channel_layer()).__name__ == "RedisChannelLayer"
    cookie = await sync_to_async(session_cookie)(operator_user)
    ws, connected, _ = await connect("/ws/inbox/", ORIGIN, (b"cookie", cookie))
    assert connected
    await sync_to_async(events.interrupt_created_event, thread_sensitive=False)(thread_id="t", interrupt_ids=["i"])
    assert await ws.receive_json_from(timeout=3) == {"type": "interrupt.created",
                                                     "data": {"thread_id": "t", "interrupt_ids": ["i"]}}
    await ws.disconnect()


async def test_checkpoints_written_by_another_process_show_up(sqlite_console, operator_user, refund_thread, settings):
    """An agent outside the console writes through the saver alone: the thread page's
    socket still hears of its new head."""
    from checkpoints.saver import DjangoSaver
    from timetravel.demo import build_graph, user_message

    settings.TIMETRAVEL_WATCH_SECONDS = 0.2
    cookie = await sync_to_async(session_cookie)(operator_user)
    ws, connected, _ = await connect(f"/ws/threads/{refund_thread}/", ORIGIN, (b"cookie", cookie))
    assert connected
    assert await ws.receive_nothing(timeout=0.5)  # nothing changed, nothing said

    agent = build_graph(checkpointer=DjangoSaver(using=sqlite_console))
    await agent.ainvoke(user_message("Where is order #555?", customer="Ada"), graph_config(refund_thread))
    head = (await DjangoSaver(using=sqlite_console).aget_tuple(graph_config(refund_thread))).checkpoint["id"]
    event = await ws.receive_json_from(timeout=3)
    while event["data"]["head"] != head:
        event = await ws.receive_json_from(timeout=3)
    assert event["type"] == "thread.changed" and event["data"]["thread_id"] == refund_thread
    await ws.disconnect()
