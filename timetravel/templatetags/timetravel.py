from django import template
from django.utils.html import format_html

from timetravel import values

register = template.Library()

SOURCE_LABELS = {"input": "input", "loop": "loop", "update": "update", "fork": "fork"}


@register.filter
def short_id(value: str | None) -> str:
    """The tail of a checkpoint id: uuid6 ids of one thread share their time prefix."""
    return (value or "")[-12:]


@register.filter
def pretty(value):
    return values.pretty_html(value)


@register.filter
def as_json(value, indent=2):
    return values.dumps(value, indent=int(indent) if indent is not None else None)


@register.simple_tag
def status_badge(status: str):
    return format_html('<span class="badge status-{}">{}</span>', status, status)


@register.simple_tag
def source_badge(source: str):
    source = source or "?"
    return format_html('<span class="badge source-{}">{}</span>', SOURCE_LABELS.get(source, "other"), source)
