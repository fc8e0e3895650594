"""Rows <-> checkpoint tuples, keys, versions and validation. No I/O.

Both the sync and the async paths of the saver, and the copier, call these.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import orjson

from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    PendingWrite,
    get_serializable_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.types import ERROR, INTERRUPT, RESUME

# Keys go into a JSON path on SQLite and must never reach an ORM lookup: letters,
# digits, `_ . -`, and no `__` (Django's lookup separator). CVE-2025-67644.
FILTER_KEY_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def valid_filter_key(key: Any) -> bool:
    """Whether `key` may name a metadata key in a filter (the saver's and the console's)."""
    return isinstance(key, str) and bool(FILTER_KEY_RE.match(key)) and "__" not in key

# Metadata keys LangGraph writes itself; the rest describe the thread.
RUN_METADATA_KEYS = frozenset(
    {"source", "step", "parents", "run_id", "writes", "counters_since_delta_snapshot"}
)


class InvalidConfig(ValueError):
    """A config the saver cannot act on (no thread_id, a bad id)."""


def thread_key(config: Mapping[str, Any] | None) -> tuple[str, str, str | None]:
    """Return `(thread_id, checkpoint_ns, checkpoint_id)` of a config, validated."""
    configurable = (config or {}).get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None or thread_id == "":
        raise InvalidConfig(
            "The checkpoint saver needs config['configurable']['thread_id']; got "
            f"{sorted(configurable)!r}"
        )
    thread_id = valid_id("thread_id", thread_id)
    ns = valid_id("checkpoint_ns", configurable.get("checkpoint_ns") or "", empty=True)
    checkpoint_id = configurable.get("checkpoint_id")
    if checkpoint_id is not None:
        checkpoint_id = valid_id("checkpoint_id", checkpoint_id) or None
    return thread_id, ns, checkpoint_id


def valid_id(name: str, value: Any, *, empty: bool = False) -> str:
    if isinstance(value, bytes) or not isinstance(value, (str, int)) or isinstance(value, bool):
        if type(value).__name__ != "UUID":
            raise InvalidConfig(f"{name} must be a string, got {type(value).__name__}")
    text = str(value)
    if "\x00" in text:
        raise InvalidConfig(f"{name} must not contain NUL characters")
    if len(text) > 1024:
        raise InvalidConfig(f"{name} is longer than 1024 characters")
    if not text and not empty:
        raise InvalidConfig(f"{name} must not be empty")
    return text


def validate_filter(filter: Mapping[str, Any] | None) -> dict[str, Any]:
    if not filter:
        return {}
    if not isinstance(filter, Mapping):
        raise ValueError(f"filter must be a dict, got {type(filter).__name__}")
    for key in filter:
        if not valid_filter_key(key):
            raise ValueError(
                f"Invalid metadata filter key {key!r}: use letters, digits, '_', '.', '-' "
                "(and no '__')"
            )
    try:
        json.dumps(dict(filter))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Metadata filter values must be JSON: {exc}") from None
    return dict(filter)


def next_version(current: str | int | float | None) -> str:
    """Versions as `langgraph-checkpoint-postgres` writes them, so data moves both ways."""
    if current is None:
        current_v = 0
    elif isinstance(current, (int, float)):
        current_v = int(current)
    else:
        current_v = int(current.split(".")[0])
    return f"{current_v + 1:032}.{random.random():016}"


def now() -> datetime:
    return datetime.now(timezone.utc)


def json_text(value: Any) -> str:
    """JSON for a JSON column. orjson is 5-7x quicker than `json` on a put's metadata and
    versions; `json` takes what orjson refuses (integers past 64 bits) and raises the
    `TypeError`/`ValueError` for what neither can encode. NUL is dropped: PostgreSQL's
    jsonb refuses it."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        text = json.dumps(value, ensure_ascii=False)
    return text.replace("\\u0000", "")


def dump_metadata(config: Mapping[str, Any], metadata: CheckpointMetadata) -> tuple[str, dict]:
    meta = get_serializable_checkpoint_metadata(config, metadata)
    try:
        return json_text(meta), meta
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Checkpoint metadata must be JSON-serialisable: {exc}") from None


def thread_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k not in RUN_METADATA_KEYS}


# Small scalars stay in the checkpoint body, as `langgraph-checkpoint-postgres` keeps
# them in its row: a blob row per trigger (None) or counter (int) cost a heap tuple and
# an index entry each, ~3 rows per step where one will do.
INLINE_STR_MAX = 128


def is_inline(value: Any) -> bool:
    if value is None or type(value) in (bool, float):
        return True
    if type(value) is int:
        return -(2**63) <= value < 2**63
    return type(value) is str and len(value) <= INLINE_STR_MAX


def split_checkpoint(
    serde: SerializerProtocol,
    checkpoint: Checkpoint,
    new_versions: ChannelVersions,
) -> tuple[tuple[str, bytes], dict[str, tuple[str, bytes]]]:
    """Serialise a checkpoint into its body and the blobs of the channels that changed.

    Small scalars travel in the body (`channel_values` there holds only them); every
    other value lives in the blob table keyed by its version, so a step stores only
    what changed.
    Raises:
        ValueError: a value the serializer cannot encode; nothing has been written yet.
    """
    values = checkpoint.get("channel_values") or {}
    inline = {k: v for k, v in values.items() if is_inline(v)}
    body = {
        k: v
        for k, v in checkpoint.items()
        if k not in ("channel_values", "channel_versions")
    }
    body["channel_values"] = inline
    blobs: dict[str, tuple[str, bytes]] = {}
    try:
        for channel in new_versions:
            if channel in values and channel not in inline:
                blobs[channel] = serde.dumps_typed(values[channel])
        typed_body = serde.dumps_typed(body)
    except Exception as exc:  # the serializer raises TypeError, ValueError, msgpack errors
        raise ValueError(
            f"Checkpoint {checkpoint.get('id')!r} holds a value that cannot be serialised: {exc}"
        ) from exc
    return typed_body, blobs


def dump_versions(versions: ChannelVersions) -> str:
    return json_text(versions)


def dump_writes(
    serde: SerializerProtocol,
    writes: Sequence[tuple[str, Any]],
) -> list[tuple[int, str, str, bytes]]:
    """`(idx, channel, type, blob)` per write; special channels take their fixed index."""
    out = []
    try:
        for idx, (channel, value) in enumerate(writes):
            out.append((WRITES_IDX_MAP.get(channel, idx), channel, *serde.dumps_typed(value)))
    except Exception as exc:
        raise ValueError(f"A pending write cannot be serialised: {exc}") from exc
    return out


def writes_status(writes: Iterable[tuple[str, Any]]) -> str:
    """The thread status a batch of writes implies, or '' for no change."""
    channels = {channel for channel, _ in writes}
    if ERROR in channels:
        return "error"
    if INTERRUPT in channels:
        return "interrupted"
    if RESUME in channels:
        return "busy"
    return ""


def _newer(version: Any, seen: Any) -> bool:
    if seen is None:
        return True
    try:
        return version > seen
    except TypeError:
        return str(version) > str(seen)


def checkpoint_status(checkpoint: Checkpoint) -> str:
    """`busy` while a node is triggered and has not run, else `idle`.

    StateGraph triggers node X through the channel `branch:to:X` (and the start node
    through `__start__`); a trigger whose version the node has not seen is a task
    still to run. A trigger is emptied (and its version bumped) once consumed, so only
    a trigger that holds a value counts.
    """
    seen_by_node = checkpoint.get("versions_seen") or {}
    values = checkpoint.get("channel_values") or {}
    for channel, version in (checkpoint.get("channel_versions") or {}).items():
        if channel not in values:
            continue
        if channel.startswith("branch:to:"):
            node = channel[len("branch:to:") :]
        elif channel == "__start__":
            node = "__start__"
        else:
            continue
        if _newer(version, (seen_by_node.get(node) or {}).get(channel)):
            return "busy"
    return "idle"


def sort_writes(rows: Iterable[tuple[str, str, Any, str, int]]) -> list[PendingWrite]:
    """`(task_id, channel, value, task_path, idx)` rows in `writes_sort_key` order."""
    ordered = sorted(rows, key=lambda r: writes_sort_key(r[3] or "", r[0], r[4]))
    return [(task_id, channel, value) for task_id, channel, value, _, _ in ordered]


def make_config(thread_id: str, ns: str, checkpoint_id: str) -> dict:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
        }
    }


def load_json(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return value
    if isinstance(value, (bytes, memoryview)):
        value = bytes(value).decode()
    # Not orjson: it reads an integer past 64 bits as a float, silently.
    return json.loads(value)


def rows_to_tuples(serde: SerializerProtocol, rows: Iterable[Sequence[Any]]) -> list[CheckpointTuple]:
    """Assemble tuples from `Dialect.select_tuples_sql` rows, newest first."""
    heads: dict[tuple[str, str, str], Sequence[Any]] = {}
    values: dict[tuple[str, str, str], dict[str, Any]] = {}
    writes: dict[tuple[str, str, str], list] = {}
    for row in rows:
        kind, thread_id, ns, checkpoint_id = row[0], row[1], row[2], row[3]
        key = (thread_id, ns, checkpoint_id)
        if kind == "c":
            heads[key] = row
        elif kind == "b":
            if row[5] != "empty":
                values.setdefault(key, {})[row[4]] = serde.loads_typed((row[5], bytes(row[6])))
        else:
            writes.setdefault(key, []).append(
                (row[8], row[4], serde.loads_typed((row[5], bytes(row[6]))), row[7], row[9])
            )
    out = []
    for key in sorted(heads, key=lambda k: (k[2], k[0], k[1]), reverse=True):
        row = heads[key]
        thread_id, ns, checkpoint_id = key
        body = serde.loads_typed((row[5], bytes(row[6])))
        checkpoint = {
            **body,
            "channel_values": {**(body.get("channel_values") or {}), **values.get(key, {})},
            "channel_versions": load_json(row[7]) or {},
        }
        parent = row[4]
        out.append(
            CheckpointTuple(
                config=make_config(thread_id, ns, checkpoint_id),
                checkpoint=checkpoint,
                metadata=load_json(row[8]) or {},
                parent_config=make_config(thread_id, ns, parent) if parent else None,
                pending_writes=sort_writes(writes.get(key, [])),
            )
        )
    return out


def walk_chain(
    chain: Sequence[tuple[str, Mapping[str, Any]]],
    channels: Sequence[str],
    stored: set[tuple[str, str]],
    inline_of: Callable[[int], Mapping[str, Any]] | None = None,
) -> tuple[dict[str, list[str]], dict[str, tuple[str, Any]]]:
    """Walk a parent chain (nearest first) once for all channels.

    A channel's walk stops at the nearest checkpoint holding a stored value for it: a
    blob (`(channel, version)` in `stored`) or a small scalar kept in that checkpoint's
    body (`inline_of(position)`, read only when asked). Returns, per channel, the
    checkpoint ids walked (nearest first, the seed's included) and the seed found:
    `("blob", version)` or `("inline", value)`.
    """
    walked: dict[str, list[str]] = {ch: [] for ch in channels}
    seeds: dict[str, tuple[str, Any]] = {}
    remaining = set(channels)
    for position, (checkpoint_id, versions) in enumerate(chain):
        if not remaining:
            break
        for ch in list(remaining):
            walked[ch].append(checkpoint_id)
            version = versions.get(ch)
            if version is None:
                continue
            if (ch, str(version)) in stored:
                seeds[ch] = ("blob", str(version))
                remaining.discard(ch)
            elif inline_of is not None and ch in (inline := inline_of(position)):
                seeds[ch] = ("inline", inline[ch])
                remaining.discard(ch)
    return walked, seeds


def delta_histories(
    serde: SerializerProtocol,
    channels: Sequence[str],
    walked: Mapping[str, list[str]],
    seeds: Mapping[str, tuple[str, Any]],
    rows: Iterable[Sequence[Any]],
) -> dict[str, DeltaChannelHistory]:
    """Build `DeltaChannelHistory` per channel from `history_rows_sql` rows."""
    seed_blobs: dict[tuple[str, str], tuple[str, bytes]] = {}
    writes_by: dict[tuple[str, str], list] = {}
    for kind, checkpoint_id, channel, type_, blob, task_id, extra, idx in rows:
        if kind == "b":
            seed_blobs[(channel, extra)] = (type_, bytes(blob))
        else:
            writes_by.setdefault((channel, checkpoint_id), []).append(
                (task_id, channel, (type_, bytes(blob)), extra, idx)
            )
    result: dict[str, DeltaChannelHistory] = {}
    for ch in channels:
        collected: list[PendingWrite] = []
        for checkpoint_id in reversed(walked.get(ch, [])):
            for task_id, channel, typed, _, _ in sorted(
                writes_by.get((ch, checkpoint_id), []),
                key=lambda w: writes_sort_key(w[3] or "", w[0], w[4]),
            ):
                collected.append((task_id, channel, serde.loads_typed(typed)))
        entry: DeltaChannelHistory = {"writes": collected}
        kind, seed = seeds.get(ch, (None, None))
        if kind == "inline":
            entry["seed"] = seed
        elif kind == "blob" and (ch, seed) in seed_blobs:
            entry["seed"] = serde.loads_typed(seed_blobs[(ch, seed)])
        result[ch] = entry
    return result


def garbage_blobs(
    freed: Iterable[tuple[str, Any]], referenced: Iterable[tuple[str, Any]]
) -> dict[str, list[str]]:
    """Blob versions a deleted checkpoint used and no kept one does, by channel."""
    kept = {(c, str(v)) for c, v in referenced}
    garbage: dict[str, list[str]] = {}
    for channel, version in freed:
        if (channel, str(version)) not in kept:
            garbage.setdefault(channel, [])
            if str(version) not in garbage[channel]:
                garbage[channel].append(str(version))
    return garbage
