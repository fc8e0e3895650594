"""Minimal Django for apps that are not Django projects (`DjangoSaver.from_conn_string`)."""

from __future__ import annotations

import threading

from .dbconfig import database_settings

_lock = threading.Lock()
_migrated: set[str] = set()


def configure_alias(url: str) -> str:
    """Make `url` a Django database alias, configuring Django if needed, and migrate it.

    Returns:
        The alias: `default` when this call configured Django, else one named for the URL.
    """
    import django
    from django.conf import settings
    from django.db import connections

    from .saver import alias_for_url

    with _lock:
        if not settings.configured:
            settings.configure(
                INSTALLED_APPS=["django.contrib.contenttypes", "checkpoints"],
                DATABASES={"default": {**database_settings(url), "_LG_URL": url}},
                USE_TZ=True,
                DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
            )
            django.setup()
            alias = "default"
        else:
            alias = next(
                (a for a, s in settings.DATABASES.items() if s.get("_LG_URL") == url),
                None,
            ) or alias_for_url(url)
            if alias not in settings.DATABASES:
                config = {**database_settings(url), "_LG_URL": url}
                settings.DATABASES[alias] = config
                # configure_settings fills Django's defaults; it insists on a default alias.
                filled = connections.configure_settings({"default": settings.DATABASES["default"], alias: config})
                connections.settings[alias] = filled[alias]
        if (url, alias) not in _migrated:
            _outside_event_loop(_migrate, alias)
            _migrated.add((url, alias))
        return alias


def _migrate(alias: str) -> None:
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", "checkpoints", database=alias, verbosity=0)
    connections[alias].close()


def _outside_event_loop(fn, *args) -> None:
    """Run `fn` here, or on a thread when an event loop runs here (`async with
    DjangoSaver.from_conn_string(...)`), where Django refuses synchronous queries."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        fn(*args)
        return
    errors: list[BaseException] = []

    def target():
        try:
            fn(*args)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
