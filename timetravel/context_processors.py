def console(request):
    """The inbox badge on every page that extends the base layout; evaluated only when
    a template shows it, and only for staff."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_staff:
        return {}
    from .selectors import inbox_count

    return {"inbox_count": inbox_count}
