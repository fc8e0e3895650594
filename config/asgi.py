"""ASGI entry point: HTTP through Django, websockets through Channels.

The websocket stack checks the Origin against ALLOWED_HOSTS, then loads the session's
user; the consumers refuse anyone who is not active staff.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402 - needs the apps loaded
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from operations.routing import websocket_urlpatterns as operations_websockets  # noqa: E402
from timetravel.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns + operations_websockets))),
    }
)
