from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/threads/<str:thread_id>/", consumers.ThreadConsumer.as_asgi()),
    path("ws/inbox/", consumers.InboxConsumer.as_asgi()),
]
