"""State values as people and scripts see them: JSON, diffs, conversations, HTML trees.

No I/O. Values come out of the saver's serializer and may be anything the allow-list
admits (LangChain messages, pydantic models, dataclasses, sets, bytes); they are shown,
never revived from what a browser sends.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

MAX_DEPTH = 40
PRETTY_LIST_ITEMS = 100


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """A JSON-compatible copy of `value` (objects become their fields, unknown types
    their `repr`)."""
    if _depth > MAX_DEPTH:
        return "…"
    d = _depth + 1
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else repr(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, d) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if hasattr(value, "_asdict"):
            return to_jsonable(value._asdict(), d)
        return [to_jsonable(v, d) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [to_jsonable(v, d) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, d)
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value[:4096]).decode(), "length": len(value)}
    if type(value).__name__ == "Interrupt" and hasattr(value, "id"):
        return interrupt_json(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return to_jsonable(dump(mode="json"), d)
        except Exception:  # noqa: BLE001 - a model that cannot dump itself is shown by repr
            return repr(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, d)
    return repr(value)


def interrupt_json(interrupt: Any) -> dict[str, Any]:
    """LangGraph Server's `Interrupt{value, id}`."""
    return {"value": to_jsonable(getattr(interrupt, "value", None)), "id": getattr(interrupt, "id", None)}


def dumps(value: Any, *, indent: int | None = 2) -> str:
    return json.dumps(to_jsonable(value), indent=indent, ensure_ascii=False, sort_keys=False)


# -- diffs ------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    path: str
    kind: str  # added | removed | changed
    old: Any = None
    new: Any = None

    @property
    def old_json(self) -> str:
        return json.dumps(self.old, ensure_ascii=False)

    @property
    def new_json(self) -> str:
        return json.dumps(self.new, ensure_ascii=False)


def _path(parent: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


def diff(old: Any, new: Any, path: str = "") -> list[Change]:
    """Changes from `old` to `new` (both JSON-compatible), recursing into dicts and
    lists, so an appended message shows as one added item."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[Change] = []
        for key in list(old) + [k for k in new if k not in old]:
            p = _path(path, key)
            if key not in new:
                out.append(Change(p, "removed", old=old[key]))
            elif key not in old:
                out.append(Change(p, "added", new=new[key]))
            else:
                out += diff(old[key], new[key], p)
        return out
    if isinstance(old, list) and isinstance(new, list):
        out = []
        for i in range(max(len(old), len(new))):
            p = _path(path, i)
            if i >= len(new):
                out.append(Change(p, "removed", old=old[i]))
            elif i >= len(old):
                out.append(Change(p, "added", new=new[i]))
            else:
                out += diff(old[i], new[i], p)
        return out
    if old == new and type(old) is type(new):
        return []
    return [Change(path or "(root)", "changed", old=old, new=new)]


# -- conversations ------------------------------------------------------------------

_ROLE = {"human": "user", "ai": "assistant", "AIMessageChunk": "assistant", "system": "system", "tool": "tool"}


@dataclass(frozen=True)
class Message:
    role: str
    content: str
    name: str = ""
    tool_calls: tuple[str, ...] = ()


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            else:
                parts.append(json.dumps(to_jsonable(part), ensure_ascii=False))
        return "\n".join(parts)
    return json.dumps(to_jsonable(content), ensure_ascii=False)


def conversation(values: Any) -> list[Message]:
    """`values["messages"]` as chat messages: plain `{role, content}` dicts and LangChain
    messages alike; empty when the state has no message list."""
    if not isinstance(values, Mapping):
        return []
    messages = values.get("messages")
    if not isinstance(messages, (list, tuple)):
        return []
    out = []
    for m in messages:
        if isinstance(m, Mapping):
            role = str(m.get("role") or m.get("type") or "message")
            calls = m.get("tool_calls") or ()
            out.append(Message(_ROLE.get(role, role), _text(m.get("content", "")), str(m.get("name") or ""),
                               tuple(_call(c) for c in calls)))
        elif hasattr(m, "content") and hasattr(m, "type"):
            calls = getattr(m, "tool_calls", None) or ()
            out.append(Message(_ROLE.get(m.type, m.type), _text(m.content), str(getattr(m, "name", "") or ""),
                               tuple(_call(c) for c in calls)))
    return out


def _call(call: Any) -> str:
    if isinstance(call, Mapping):
        return f"{call.get('name')}({json.dumps(to_jsonable(call.get('args')), ensure_ascii=False)})"
    return repr(call)


# -- pretty HTML --------------------------------------------------------------------


def pretty_html(value: Any, *, open_depth: int = 2, _depth: int = 0) -> SafeString:
    """A collapsible tree of a JSON-compatible value (every string escaped)."""
    if isinstance(value, dict):
        if not value:
            return mark_safe('<span class="j-empty">{}</span>')
        rows = format_html_join(
            "", '<li><span class="j-key">{}</span>: {}</li>',
            ((k, pretty_html(v, open_depth=open_depth, _depth=_depth + 1)) for k, v in value.items()),
        )
        return _details(f"{{{len(value)}}}", rows, _depth < open_depth)
    if isinstance(value, list):
        if not value:
            return mark_safe('<span class="j-empty">[]</span>')
        # A long list shows its last items (the newest messages); the raw view has all.
        start = max(0, len(value) - PRETTY_LIST_ITEMS)
        rows = format_html_join(
            "", '<li><span class="j-idx">{}</span> {}</li>',
            ((i, pretty_html(value[i], open_depth=open_depth, _depth=_depth + 1)) for i in range(start, len(value))),
        )
        if start:
            rows = format_html('<li class="j-more">… {} earlier items (raw JSON shows them)</li>{}', start, rows)
        return _details(f"[{len(value)}]", rows, _depth < open_depth)
    if isinstance(value, str):
        return format_html('<span class="j-str">"{}"</span>', value)
    if value is None:
        return mark_safe('<span class="j-null">null</span>')
    if isinstance(value, bool):
        return format_html('<span class="j-bool">{}</span>', "true" if value else "false")
    return format_html('<span class="j-num">{}</span>', value)


def _details(summary: str, rows: SafeString, is_open: bool) -> SafeString:
    return format_html(
        '<details class="j"{}><summary>{}</summary><ul>{}</ul></details>',
        mark_safe(" open") if is_open else "", summary, rows,
    )
