def alerts(request):
    """Active alerts for the console's banner (staff only; one query, when shown)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_staff:
        return {}
    from .selectors import alerts_active

    return {"operations_alerts": alerts_active}
