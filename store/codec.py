"""Ops to a validated plan, values to JSON, rows to items, vectors and scores. No I/O.

`DjangoStore.batch` and `abatch` both call `plan_batch` first: every op of the batch is
validated and every value serialised before any embedding call or database statement,
so a bad op fails the whole batch with nothing written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import orjson
from langgraph.store.base import (
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    SearchItem,
    SearchOp,
    get_text_at_path,
    tokenize_path,
    validate_op_namespace,
)

SEP = "."
# `/` is the character after `.`: every descendant of "a.b" sorts in ["a.b.", "a.b/").
SEP_NEXT = "/"
RESERVED_ROOT = "langgraph"

FILTER_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
RANGE_OPS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
DISTANCES = ("cosine", "inner_product", "l2")

# A JSON string escape of NUL, not preceded by another backslash (which would make it
# the text `\u0000`). PostgreSQL's jsonb and text cannot hold NUL.
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_INT64 = (-(2**63), 2**63 - 1)


class InvalidValueError(ValueError):
    """A value, key, filter or option the store cannot accept as given."""


def now() -> datetime:
    return datetime.now(timezone.utc)


# -- namespaces -------------------------------------------------------------------


def ns_text(namespace: Sequence[str]) -> str:
    return SEP.join(namespace)


def ns_tuple(text: str) -> tuple[str, ...]:
    return tuple(text.split(SEP)) if text else ()


def ns_range(namespace: Sequence[str]) -> tuple[str, str, str] | None:
    """`(low, high, child_low)`: the namespace and its descendants are the rows with
    `low <= namespace < high` and `namespace = low OR namespace >= child_low` (the
    second test drops siblings such as "a.b-c" that sort inside the range)."""
    if not namespace:
        return None
    text = ns_text(namespace)
    return text, text + SEP_NEXT, text + SEP


def validate_put_namespace(namespace: tuple[str, ...]) -> None:
    """`BaseStore.put`'s check, applied to every `PutOp` that writes a value, so ops
    sent straight to `batch` get it too."""
    if not namespace:
        raise InvalidNamespaceError("Namespace cannot be empty.")
    if namespace[0] == RESERVED_ROOT:
        raise InvalidNamespaceError(
            f'Root label for namespace cannot be "{RESERVED_ROOT}". Got: {namespace}'
        )


def validate_key(key: Any) -> str:
    if not isinstance(key, str):
        raise InvalidValueError(f"Store keys must be strings, got {type(key).__name__}")
    if "\x00" in key:
        raise InvalidValueError("Store keys cannot contain NUL characters")
    return key


# -- values -----------------------------------------------------------------------


def dump_json(value: Any, *, what: str) -> str:
    """Canonical JSON: sorted keys and no spaces, so SQLite can compare a stored object
    with a filter's object as text. NaN, infinities, NUL and lone surrogates are
    refused here rather than by the database halfway through a batch."""
    try:
        text = json.dumps(
            value, ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
        )
        text.encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise InvalidValueError(f"{what} must be JSON-serialisable: {exc}") from exc
    if "\\u0000" in text and _JSON_NUL.search(text):
        raise InvalidValueError(f"{what} cannot contain NUL characters")
    return text


def dump_value(value: Any, namespace: tuple[str, ...], key: str) -> str:
    if not isinstance(value, Mapping):
        raise InvalidValueError(
            f"Store values must be dicts, got {type(value).__name__} for {namespace}/{key!r}"
        )
    return dump_json(dict(value), what=f"The value of {namespace}/{key!r}")


def load_value(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, memoryview):
        raw = bytes(raw)
    return orjson.loads(raw)


# -- filters ----------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One test on a top-level field of the value: `value[key] <op> operand`.

    `kind` is the operand's JSON type (null, bool, number, string, array, object);
    `operand_json` its canonical JSON. The dialects turn it into SQL with the key and
    the operand as parameters only.
    """

    key: str
    op: str
    operand: Any
    kind: str
    operand_json: str


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    raise InvalidValueError(f"Filter values must be JSON values, got {type(value).__name__}")


def parse_filter(filter: Mapping[str, Any] | None) -> list[Condition]:
    """Validate a search filter and return its conditions.

    `{"k": v}` and `{"k": {"$eq": v}}` test equality of JSON values; `$ne` is true when
    the field exists and differs; `$gt $gte $lt $lte` compare numbers with numbers and
    strings with strings (byte order), and are false for a field of another type.
    Raises:
        InvalidValueError: a key that is not a string, an unknown operator, or an
            operand that is not JSON (or not a number or string for a range).
    """
    if not filter:
        return []
    if not isinstance(filter, Mapping):
        raise InvalidValueError(f"filter must be a dict, got {type(filter).__name__}")
    conditions = []
    for key, spec in filter.items():
        if not isinstance(key, str):
            raise InvalidValueError(f"Filter keys must be strings, got {key!r}")
        if "\x00" in key:
            raise InvalidValueError("Filter keys cannot contain NUL characters")
        pairs = spec.items() if isinstance(spec, Mapping) else [("$eq", spec)]
        for op, operand in pairs:
            if op not in FILTER_OPS:
                raise InvalidValueError(
                    f"Unsupported filter operator {op!r} for key {key!r}; "
                    f"use a value or one of {', '.join(FILTER_OPS)}"
                )
            kind = _kind(operand)
            if op in RANGE_OPS and kind not in ("number", "string"):
                raise InvalidValueError(
                    f"{op} on {key!r} compares numbers or strings, got {type(operand).__name__}"
                )
            if kind == "number" and isinstance(operand, int) and not _INT64[0] <= operand <= _INT64[1]:
                operand = float(operand)
            conditions.append(
                Condition(key, op, operand, kind, dump_json(operand, what=f"The filter on {key!r}"))
            )
    return conditions


# -- list_namespaces --------------------------------------------------------------


def literal_prefix(conditions: Sequence[MatchCondition] | None) -> tuple[str, ...]:
    """The longest run of literal leading labels any prefix condition pins down: the
    database narrows to that range, and `match_namespace` does the rest."""
    best: tuple[str, ...] = ()
    for condition in conditions or ():
        if condition.match_type != "prefix":
            continue
        labels = []
        for label in condition.path:
            if label == "*":
                break
            labels.append(label)
        if len(labels) > len(best):
            best = tuple(labels)
    return best


def match_namespace(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    """Label-wise match, `*` standing for exactly one label (PostgresStore's regex and
    InMemoryStore's loop agree on this); an empty path matches everything."""
    path = tuple(condition.path)
    if not path:
        return True
    if len(namespace) < len(path):
        return False
    part = namespace[: len(path)] if condition.match_type == "prefix" else namespace[-len(path):]
    return all(p == "*" or p == label for p, label in zip(path, part, strict=True))


def select_namespaces(texts: Iterable[str], op: ListNamespacesOp) -> list[tuple[str, ...]]:
    """Match, truncate to `max_depth`, dedupe, order by the joined text (byte order,
    as PostgresStore's `ORDER BY` in a C collation), then page."""
    seen: set[tuple[str, ...]] = set()
    conditions = op.match_conditions or ()
    for text in texts:
        namespace = ns_tuple(text)
        if all(match_namespace(c, namespace) for c in conditions):
            seen.add(namespace if op.max_depth is None else namespace[: op.max_depth])
    ordered = sorted(seen, key=ns_text)
    return ordered[op.offset : op.offset + op.limit]


# -- the plan of a batch ----------------------------------------------------------


@dataclass
class Write:
    """A deduplicated put (value is None for a delete)."""

    namespace: str
    key: str
    value_json: str | None
    ttl_minutes: float | None
    texts: list[str] | None  # None: not indexed; []: indexed, but nothing to embed


@dataclass
class Search:
    index: int
    op: SearchOp
    conditions: list[Condition]
    semantic: bool


@dataclass
class Plan:
    size: int
    gets: list[tuple[int, GetOp]] = field(default_factory=list)
    searches: list[Search] = field(default_factory=list)
    lists: list[tuple[int, ListNamespacesOp]] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # unique texts to embed for puts
    queries: list[str] = field(default_factory=list)  # unique search queries


def _non_negative(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def _index_paths(index: Any, default: list[tuple[str, Any]]) -> list[tuple[str, Any]] | None:
    if index is False:
        return None
    if index is None:
        return default
    if isinstance(index, str):
        index = [index]
    if not isinstance(index, (list, tuple)) or not all(isinstance(p, str) for p in index):
        raise InvalidValueError(f"index must be False, None or a list of paths, got {index!r}")
    return [(p, "$" if p == "$" else tokenize_path(p)) for p in index]


def texts_to_embed(value: Mapping[str, Any], paths: list[tuple[str, Any]]) -> list[str]:
    """The texts PostgresStore would embed for `value`: one per path, or one per match
    of a `[*]` path; fields missing from the value are skipped."""
    texts: list[str] = []
    for _, tokens in paths:
        texts.extend(get_text_at_path(value, tokens))
    return texts


def plan_batch(ops: Iterable[Op], index_config: Mapping[str, Any] | None) -> Plan:
    """Validate every op and prepare the batch, in PostgresStore's order of effect:
    reads (gets, searches, namespace listings) see the store as it was before the
    batch; puts are deduplicated per `(namespace, key)`, the last one winning.

    Raises:
        InvalidNamespaceError: a label that is empty, not a string or contains a dot;
            a put to an empty namespace or under the reserved root "langgraph".
        InvalidValueError: a value that is not a JSON object, a bad key, filter, limit
            or offset.
    """
    ops = list(ops)
    plan = Plan(size=len(ops))
    default_paths = (index_config or {}).get("__tokenized_fields") or []
    puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
    queries: dict[str, None] = {}
    for i, op in enumerate(ops):
        if not isinstance(op, (GetOp, PutOp, SearchOp, ListNamespacesOp)):
            raise InvalidValueError(f"Unknown operation type: {type(op).__name__}")
        validate_op_namespace(op)
        if isinstance(op, GetOp):
            validate_key(op.key)
            plan.gets.append((i, op))
        elif isinstance(op, SearchOp):
            conditions = parse_filter(op.filter)
            _non_negative("limit", op.limit)
            _non_negative("offset", op.offset)
            if op.query is not None and not isinstance(op.query, str):
                raise InvalidValueError(f"query must be a string, got {type(op.query).__name__}")
            semantic = bool(op.query) and index_config is not None
            if semantic:
                queries[op.query] = None
            plan.searches.append(Search(i, op, conditions, semantic))
        elif isinstance(op, ListNamespacesOp):
            for condition in op.match_conditions or ():
                if condition.match_type not in ("prefix", "suffix"):
                    raise InvalidValueError(f"Unknown match_type {condition.match_type!r}")
            if op.max_depth is not None:
                _non_negative("max_depth", op.max_depth)
            _non_negative("limit", op.limit)
            _non_negative("offset", op.offset)
            plan.lists.append((i, op))
        else:
            validate_key(op.key)
            puts[(op.namespace, op.key)] = op

    unique_texts: dict[str, None] = {}
    for (namespace, key), op in puts.items():
        if op.value is None:
            plan.writes.append(Write(ns_text(namespace), key, None, None, None))
            continue
        validate_put_namespace(namespace)
        value_json = dump_value(op.value, namespace, key)
        ttl = op.ttl
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float))):
            raise InvalidValueError(f"ttl must be a number of minutes or None, got {ttl!r}")
        texts = None
        if index_config is not None:
            paths = _index_paths(op.index, default_paths)
            if paths is not None:
                texts = texts_to_embed(op.value, paths)
                unique_texts.update(dict.fromkeys(texts))
        plan.writes.append(
            Write(ns_text(namespace), key, value_json, None if ttl is None else float(ttl), texts)
        )
    plan.texts = list(unique_texts)
    plan.queries = list(queries)
    return plan


def expires_at(start: datetime, ttl_minutes: float | None) -> datetime | None:
    return None if ttl_minutes is None else start + timedelta(minutes=ttl_minutes)


# -- index config and vectors -----------------------------------------------------


def prepare_index_config(index: Mapping[str, Any]) -> dict[str, Any]:
    """Copy an `IndexConfig` with its fields tokenised once, as PostgresStore does."""
    config = dict(index)
    dims = config.get("dims")
    if isinstance(dims, bool) or not isinstance(dims, int) or dims <= 0:
        raise InvalidValueError(f"index['dims'] must be a positive integer, got {dims!r}")
    distance = config.get("distance_type", "cosine")
    if distance not in DISTANCES:
        raise InvalidValueError(f"index['distance_type'] must be one of {DISTANCES}, got {distance!r}")
    fields = config.get("fields") or ["$"]
    if isinstance(fields, str):
        fields = [fields]
    if not isinstance(fields, list):
        raise InvalidValueError(f"Text fields must be a list or a string. Got {fields}")
    config["__tokenized_fields"] = [(p, "$" if p == "$" else tokenize_path(p)) for p in fields]
    return config


def as_matrix(vectors: Sequence[Sequence[float]], dims: int, *, what: str) -> np.ndarray:
    matrix = np.asarray(vectors, dtype="<f4")
    if matrix.ndim != 2 or matrix.shape[1] != dims:
        raise InvalidValueError(
            f"The embedding function returned {what} of shape {matrix.shape}; "
            f"the index expects {dims} dimensions"
        )
    if not np.isfinite(matrix).all():
        raise InvalidValueError(f"The embedding function returned non-finite {what}")
    return matrix


def pack_vectors(texts: list[str] | None, vectors: Mapping[str, np.ndarray]) -> bytes | None:
    if not texts:
        return None
    return np.stack([vectors[t] for t in texts]).astype("<f4", copy=False).tobytes()


def score_items(
    query: np.ndarray, blobs: Sequence[bytes | memoryview], dims: int, distance: str
) -> np.ndarray:
    """Each item's score: the best over its vectors, as PostgresStore's `DISTINCT ON`
    keeps an item's nearest vector. Cosine similarity (0 against a zero vector, where
    pgvector gives NaN), inner product, or negated L2 distance: higher is nearer."""
    if not blobs:
        return np.empty(0, dtype="f4")
    counts = np.fromiter((len(b) // (4 * dims) for b in blobs), dtype=np.int64, count=len(blobs))
    matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(-1, dims)
    q = np.asarray(query, dtype="<f4")
    if distance == "l2":
        sims = -np.linalg.norm(matrix - q, axis=1)
    else:
        sims = matrix @ q
        if distance == "cosine":
            norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix)) * np.linalg.norm(q)
            sims = np.divide(sims, norms, out=np.zeros_like(sims), where=norms > 0)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return np.maximum.reduceat(sims, starts)


def top_k(scores: np.ndarray, offset: int, limit: int) -> list[int]:
    """Indices of the page `[offset, offset + limit)` by descending score; equal scores
    keep the candidates' order (namespace, key). Exact at any offset."""
    k = offset + limit
    n = len(scores)
    if k == 0 or n == 0:
        return []
    neg = -scores
    if k < n:
        cut = np.partition(neg, k - 1)[k - 1]
        chosen = np.flatnonzero(neg <= cut)
        order = chosen[np.argsort(neg[chosen], kind="stable")]
    else:
        order = np.argsort(neg, kind="stable")
    return order[offset:k].tolist()


# -- rows to items ----------------------------------------------------------------


def make_item(namespace: str, key: str, value: Any, created: datetime, updated: datetime) -> Item:
    return Item(
        value=load_value(value),
        key=key,
        namespace=ns_tuple(namespace),
        created_at=created,
        updated_at=updated,
    )


def make_search_item(
    namespace: str, key: str, value: Any, created: datetime, updated: datetime,
    score: float | None = None,
) -> SearchItem:
    return SearchItem(
        namespace=ns_tuple(namespace),
        key=key,
        value=load_value(value),
        created_at=created,
        updated_at=updated,
        score=score,
    )
