from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/operations/migrations/<int:migration_id>/", consumers.MigrationConsumer.as_asgi()),
]
