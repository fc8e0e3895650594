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
                DATABASES={"default": database_settings(url)},
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
                connections.settings[alias] = connections.configure_settings({alias: config})[alias]
        if (url, alias) not in _migrated:
            from django.core.management import call_command

            call_command("migrate", "checkpoints", database=alias, verbosity=0)
            _migrated.add((url, alias))
        return alias
