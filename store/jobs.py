"""django-rq jobs of the store: thin shells over `store.services`."""

from __future__ import annotations

from django_rq import job

from . import services


@job("default")
def store_sweep_expired(using: str = "default") -> int:
    """Delete expired store items (safe to run twice, or from several workers)."""
    return services.store_sweep_expired(using=using)
