"""The tiers around the database, built once per process from settings."""

from __future__ import annotations

import functools

from django.conf import settings


def setting(name: str, default):
    return getattr(settings, name, default) if settings.configured else default


@functools.lru_cache(maxsize=None)
def hot_tier_for(url: str, size: int, timeout: float, ttl: int):
    from .hot import HotTier

    return HotTier(url, size=size, timeout=timeout, ttl=ttl, secret=setting("SECRET_KEY", ""))


def configured_hot_tier():
    """The hot tier settings ask for (`CHECKPOINTS_HOT_TIER_URL`), or `None`."""
    url = setting("CHECKPOINTS_HOT_TIER_URL", "")
    if not url:
        return None
    return hot_tier_for(
        url,
        int(setting("CHECKPOINTS_HOT_TIER_SIZE", 10)),
        float(setting("CHECKPOINTS_HOT_TIER_TIMEOUT", 0.05)),
        int(setting("CHECKPOINTS_HOT_TIER_TTL", 3600)),
    )


@functools.lru_cache(maxsize=None)
def blob_store_for(url: str):
    from .blobs import blob_store_from_url

    return blob_store_from_url(url)


def configured_blob_store():
    """The blob store settings ask for (`CHECKPOINTS_BLOB_STORE_URL`), or `None`."""
    url = setting("CHECKPOINTS_BLOB_STORE_URL", "")
    return blob_store_for(url) if url else None
