"""The Redis hot tier: the last N checkpoints of each `(thread, ns)` with their writes.

The database is the source of truth; Redis is a cache written through after the
database commits. Any Redis error or timeout is counted (`hot.error`), logged, and
opens a short circuit breaker: reads fall through to the database and writes are
remembered as *dirty threads*, whose keys are dropped before this process uses Redis
again, so a write that missed Redis is never hidden behind an older cached entry. A
thread another process wrote while Redis was unreachable from it may stay stale in
Redis until its keys expire (`ttl`), which bounds that window.

Layout, keys repeating the primary key in order (`{prefix}/{thread}/{ns}/...`):
    .../cp/{checkpoint_id}  hash: "c" -> the checkpoint with its blobs,
                            "w/{task_id}/{idx}" -> one pending write
    .../idx                 sorted set (lexicographic) of the cached checkpoint ids
    .../head                the newest checkpoint id; only moves forward
    {prefix}/{thread}/nss   the namespaces cached for the thread
    {prefix}/{thread}/gen   bumped by every invalidation; a cold fill that read the
                            database before an invalidation is dropped

Every field is signed (HMAC-SHA256 with the project's secret): bytes at rest outside
the database are untrusted, and a field whose signature does not match is a miss,
never deserialised. Payloads are msgpack of plain rows (str, bytes, int); channel
values inside them are still the serializer's typed bytes, read through `self.serde`.

Each operation is written once, as a generator of the Redis calls it makes (a Lua
script by name, or a delete), and run by `run` on the synchronous client or by `arun`
on an asyncio client of the running event loop (one per loop: an asyncio connection
belongs to the loop it was opened on). The saver's `a`-methods await `arun`: a
thread hop per call cost the async path half its throughput.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import threading
import time
import weakref
from collections.abc import Generator, Sequence
from typing import Any, TypeVar

import ormsgpack
import redis
import redis.asyncio as aredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from .. import metrics

logger = logging.getLogger("checkpoints.hot")

SIG_LEN = 16

_WRITE_LUA = """
-- KEYS: cp, idx, head, nss, gen, bset
-- ARGV: cid, ns, ttl_ms, size, cp_prefix, blob_prefix, mode, n_fields, n_blobs,
--       then n_fields (field, value) pairs, then n_blobs (suffix, value) pairs.
-- mode "put": write-through of a checkpoint; "writes": write-through of pending writes
-- (ordinary ones never replace: HSETNX; special ones, negative idx, replace);
-- "fill:<gen>:<latest>": a cold fill, which never overwrites and is dropped if an
-- invalidation bumped gen after the database read.
local cid, ns, ttl, size = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local cp_prefix, blob_prefix, mode = ARGV[5], ARGV[6], ARGV[7]
local n_fields, n_blobs = tonumber(ARGV[8]), tonumber(ARGV[9])
local fill = string.sub(mode, 1, 5) == 'fill:'
local latest = false
if fill then
  local g, l = string.match(mode, '^fill:([^:]*):(%d)$')
  if (redis.call('GET', KEYS[5]) or '0') ~= g then return 0 end
  latest = l == '1'
end
local at = 10
for i = 1, n_fields do
  local f, v = ARGV[at], ARGV[at + 1]
  at = at + 2
  if fill or (mode == 'writes' and not string.find(f, '/%-%d+$')) then
    redis.call('HSETNX', KEYS[1], f, v)
  else
    redis.call('HSET', KEYS[1], f, v)
  end
end
for i = 1, n_blobs do
  local k = blob_prefix .. ARGV[at]
  redis.call('SET', k, ARGV[at + 1], 'PX', ttl, 'NX')
  redis.call('SADD', KEYS[6], k)
  at = at + 2
end
redis.call('PEXPIRE', KEYS[1], ttl)
if n_blobs > 0 then redis.call('PEXPIRE', KEYS[6], ttl) end
if mode == 'put' or latest then
  local head = redis.call('GET', KEYS[3])
  if (not head) or head < cid then redis.call('SET', KEYS[3], cid, 'PX', ttl) end
end
redis.call('ZADD', KEYS[2], 0, cid)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('SADD', KEYS[4], ns)
redis.call('PEXPIRE', KEYS[4], ttl)
local count = redis.call('ZCARD', KEYS[2])
if count > size then
  local old = redis.call('ZRANGE', KEYS[2], 0, count - size - 1)
  for _, id in ipairs(old) do redis.call('DEL', cp_prefix .. id) end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, count - size - 1)
end
return 1
"""

_READ_LUA = """
-- KEYS: head, gen   ARGV: cid or '', cp_prefix, blob_prefix
-- One round trip: the entry, and the blobs its "v" field lists (one per line).
local gen = redis.call('GET', KEYS[2]) or '0'
local cid = ARGV[1]
if cid == '' then
  cid = redis.call('GET', KEYS[1])
  if not cid then return {gen} end
end
local key = ARGV[2] .. cid
local fields = redis.call('HGETALL', key)
local v = redis.call('HGET', key, 'v')
local blobs = {}
if v and v ~= '' then
  local keys = {}
  for item in string.gmatch(v, '[^\\n]+') do table.insert(keys, ARGV[3] .. item) end
  blobs = redis.call('MGET', unpack(keys))
end
return {gen, cid, fields, blobs}
"""

_INVALIDATE_LUA = """
-- KEYS: nss, gen   ARGV: thread prefix ("{prefix}/{thread}/")
local p = ARGV[1]
for _, ns in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local idx = p .. ns .. '/idx'
  for _, id in ipairs(redis.call('ZRANGE', idx, 0, -1)) do redis.call('DEL', p .. ns .. '/cp/' .. id) end
  local bset = p .. ns .. '/bset'
  for _, k in ipairs(redis.call('SMEMBERS', bset)) do redis.call('DEL', k) end
  redis.call('DEL', idx, p .. ns .. '/head', bset)
end
redis.call('DEL', KEYS[1])
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], 86400000)
return 1
"""


# An operation: a generator that yields the calls it needs, (script or "delete", keys,
# args), receives each reply (or the RedisError, thrown in) and returns its result.
Call = tuple[str, list, list]
Steps = Generator[Call, Any, "R"]
R = TypeVar("R")
_SCRIPTS = {"write": _WRITE_LUA, "read": _READ_LUA, "invalidate": _INVALIDATE_LUA}


class HotTier:
    """Write-through Redis cache of recent checkpoints; never the source of truth.

    Args:
        url: the Redis URL.
        size: checkpoints kept per `(thread, ns)`.
        timeout: socket timeout in seconds; a slower Redis counts as down.
        ttl: seconds a cached entry lives without being written again.
        cooldown: seconds Redis is left alone after an error.
        secret: key of the HMAC that signs every cached field.
        prefix: key prefix, so several deployments can share one Redis.
    """

    def __init__(
        self,
        url: str,
        *,
        size: int = 10,
        timeout: float = 0.05,
        ttl: int = 3600,
        cooldown: float = 1.0,
        secret: bytes | str = b"",
        prefix: str = "lg",
    ) -> None:
        self.url = url
        self.size = size
        self.timeout = timeout
        self.ttl_ms = int(ttl * 1000)
        self.cooldown = cooldown
        self.prefix = prefix
        self._secret = secret.encode() if isinstance(secret, str) else secret
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
        )
        self._scripts = {name: self.client.register_script(lua) for name, lua in _SCRIPTS.items()}
        self._aclients: dict[int, tuple[weakref.ref, aredis.Redis, dict]] = {}
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._dirty: set[str] = set()

    # -- running operations ------------------------------------------------------------

    def run(self, steps: Steps[R]) -> R:
        """Run an operation on the synchronous client."""
        outcome = _advance(steps)
        while outcome[0] is not _DONE:
            outcome = _advance(steps, *_reply(self._call, self.client, self._scripts, outcome))
        return outcome[1]

    async def arun(self, steps: Steps[R]) -> R:
        """Run an operation on the running event loop's asyncio client."""
        client, scripts = self._aclient()
        outcome = _advance(steps)
        while outcome[0] is not _DONE:
            outcome = _advance(steps, *await _areply(self._call, client, scripts, outcome))
        return outcome[1]

    @staticmethod
    def _call(client, scripts: dict, call: Call) -> Any:
        """The call's reply (sync client) or awaitable (asyncio client)."""
        name, keys, args = call
        if name == "delete":
            return client.delete(*keys)
        return scripts[name](keys=keys, args=args)

    def _aclient(self) -> tuple[aredis.Redis, dict]:
        loop = asyncio.get_running_loop()
        entry = self._aclients.get(id(loop))
        if entry is None or entry[0]() is not loop:
            for key, (ref, _, _) in list(self._aclients.items()):
                if ref() is None or ref().is_closed():  # a finished `asyncio.run()`
                    self._aclients.pop(key, None)  # another thread's loop may purge it too
            client = aredis.Redis.from_url(
                self.url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                retry=AsyncRetry(NoBackoff(), 0),
                retry_on_timeout=False,
            )
            scripts = {name: client.register_script(lua) for name, lua in _SCRIPTS.items()}
            entry = self._aclients[id(loop)] = (weakref.ref(loop), client, scripts)
        return entry[1], entry[2]

    async def aclose(self) -> None:
        """Close the running loop's asyncio client. A client whose loop has ended is
        dropped when another loop's opens, and its sockets close with it."""
        entry = self._aclients.pop(id(asyncio.get_running_loop()), None)
        if entry is not None:
            await entry[1].aclose()

    # -- keys and signatures ------------------------------------------------------

    def _thread_prefix(self, thread_id: str) -> str:
        return f"{self.prefix}/{thread_id}/"

    def _keys(self, thread_id: str, ns: str) -> dict[str, str]:
        t = self._thread_prefix(thread_id)
        return {
            "cp_prefix": f"{t}{ns}/cp/",
            "blob_prefix": f"{t}{ns}/blob/",
            "idx": f"{t}{ns}/idx",
            "head": f"{t}{ns}/head",
            "bset": f"{t}{ns}/bset",
            "nss": f"{t}nss",
            "gen": f"{t}gen",
        }

    def _sign(self, key: str, field: str, payload: bytes) -> bytes:
        mac = hmac.new(self._secret, key.encode() + b"\0" + field.encode() + b"\0" + payload, hashlib.sha256)
        return mac.digest()[:SIG_LEN] + payload

    def _verify(self, key: str, field: str, value: bytes) -> bytes | None:
        sig, payload = value[:SIG_LEN], value[SIG_LEN:]
        expected = hmac.new(self._secret, key.encode() + b"\0" + field.encode() + b"\0" + payload, hashlib.sha256)
        if not hmac.compare_digest(sig, expected.digest()[:SIG_LEN]):
            return None
        return payload

    # -- the breaker --------------------------------------------------------------

    def _available(self) -> Steps[bool]:
        """False while the breaker is open; when it closes, dirty threads are dropped
        first, and Redis is used again only once that worked."""
        with self._lock:
            if time.monotonic() < self._open_until:
                return False
            dirty = list(self._dirty)
        for thread_id in dirty:
            try:
                yield self._invalidate_call(thread_id)
            except redis.RedisError as exc:
                self._failed("repair", exc)
                return False
            with self._lock:
                self._dirty.discard(thread_id)
        return True

    def _failed(self, op: str, exc: Exception, thread_id: str | None = None) -> None:
        metrics.incr("hot.error")
        with self._lock:
            self._open_until = time.monotonic() + self.cooldown
            if thread_id is not None:
                self._dirty.add(thread_id)
        logger.warning("hot tier %s failed, falling back to the database: %s", op, exc)

    # -- reads ----------------------------------------------------------------------

    def get_steps(self, thread_id: str, ns: str, checkpoint_id: str | None) -> Steps[tuple[list | None, str]]:
        """Rows of a cached checkpoint (as `Dialect.select_tuples_sql` returns them), or
        `None`, with the generation to pass to `fill` after a database read."""
        if not (yield from self._available()):
            metrics.incr("hot.miss")
            return None, ""
        keys = self._keys(thread_id, ns)
        try:
            reply = yield (
                "read", [keys["head"], keys["gen"]], [checkpoint_id or "", keys["cp_prefix"], keys["blob_prefix"]]
            )
        except redis.RedisError as exc:
            self._failed("read", exc)
            return None, ""
        gen = reply[0].decode()
        rows = (yield from self._decode(keys, reply)) if len(reply) == 4 and reply[2] else None
        metrics.incr("hot.hit" if rows is not None else "hot.miss")
        return rows, gen

    def get(self, thread_id: str, ns: str, checkpoint_id: str | None) -> tuple[list | None, str]:
        return self.run(self.get_steps(thread_id, ns, checkpoint_id))

    def _decode(self, keys: dict[str, str], reply: list) -> Steps[list | None]:
        cid, fields, blobs = reply[1].decode(), reply[2], reply[3]
        key = keys["cp_prefix"] + cid
        plain_v = None
        head_rows = None
        rows: list = []
        for i in range(0, len(fields), 2):
            field = fields[i].decode()
            if field == "v":
                plain_v = fields[i + 1].decode()
                continue
            payload = self._verify(key, field, fields[i + 1])
            if payload is None:
                return (yield from self._tampered(key))
            if field == "c":
                head_rows = ormsgpack.unpackb(payload)
            else:
                rows.append(tuple(ormsgpack.unpackb(payload)))
        if head_rows is None:
            return None  # only writes cached so far
        c_row, v_list = head_rows
        if plain_v is not None and plain_v != v_list:
            return (yield from self._tampered(key))
        suffixes = v_list.split("\n") if v_list else []
        if len(blobs) != len(suffixes):
            return None
        rows.append(tuple(c_row))
        for suffix, value in zip(suffixes, blobs):
            if value is None:
                return None  # a blob expired or was evicted: read the database
            payload = self._verify(keys["blob_prefix"] + suffix, "", value)
            if payload is None:
                return (yield from self._tampered(keys["blob_prefix"] + suffix))
            row = ormsgpack.unpackb(payload)
            rows.append(("b", c_row[1], c_row[2], c_row[3], *row))
        return rows

    def _tampered(self, key: str) -> Steps[None]:
        metrics.incr("hot.tampered")
        logger.error("hot tier entry %s failed its signature; ignored and dropped", key)
        try:
            yield ("delete", [key], [])
        except redis.RedisError as exc:
            self._failed("drop", exc)
        return None

    # -- writes (after the database committed) ----------------------------------------

    def _write(
        self,
        thread_id: str,
        ns: str,
        checkpoint_id: str,
        fields: list[tuple[str, Any]],
        blobs: list[tuple[str, Any]],
        mode: str,
    ) -> Steps[None]:
        fill = mode.startswith("fill")
        if not (yield from self._available()):
            if not fill:
                with self._lock:
                    self._dirty.add(thread_id)
            return
        keys = self._keys(thread_id, ns)
        key = keys["cp_prefix"] + checkpoint_id
        args: list[Any] = [
            checkpoint_id, ns, self.ttl_ms, self.size, keys["cp_prefix"], keys["blob_prefix"],
            mode, len(fields), len(blobs),
        ]
        for field, value in fields:
            args += [field, value if field == "v" else self._sign(key, field, ormsgpack.packb(value))]
        for suffix, value in blobs:
            args += [suffix, self._sign(keys["blob_prefix"] + suffix, "", ormsgpack.packb(value))]
        try:
            yield ("write", [key, keys["idx"], keys["head"], keys["nss"], keys["gen"], keys["bset"]], args)
        except redis.RedisError as exc:
            self._failed(mode, exc, None if fill else thread_id)

    @staticmethod
    def _checkpoint_fields(c_row: Sequence[Any], present: Sequence[tuple[str, str]]) -> list:
        v_list = "\n".join(f"{channel}/{version}" for channel, version in present)
        return [("c", [_plain(c_row), v_list]), ("v", v_list)]

    @staticmethod
    def _blob(row: Sequence[Any]) -> tuple[str, list]:
        # A `b` row: (kind, thread, ns, cid, channel, type, data, blob_key, version, _)
        return f"{row[4]}/{row[8]}", _plain(row[4:])

    def put_steps(
        self,
        thread_id: str,
        ns: str,
        checkpoint_id: str,
        c_row: Sequence[Any],
        present: Sequence[tuple[str, str]],
        blob_rows: Sequence[Sequence[Any]],
    ) -> Steps[None]:
        """Write through a checkpoint the database just stored: its row, the
        `(channel, version)` of every value it holds, and the blobs this put wrote."""
        fields = self._checkpoint_fields(c_row, present)
        return self._write(thread_id, ns, checkpoint_id, fields, [self._blob(r) for r in blob_rows], "put")

    def put_writes_steps(
        self, thread_id: str, ns: str, checkpoint_id: str, rows: Sequence[Sequence[Any]]
    ) -> Steps[None]:
        """Write through pending writes (`w` rows): ordinary ones never replace, special
        ones do."""
        fields = [(f"w/{r[8]}/{r[9]}", _plain(r)) for r in rows]
        return self._write(thread_id, ns, checkpoint_id, fields, [], "writes")

    def fill_steps(self, rows: Sequence[Sequence[Any]], *, gen: str, latest: bool) -> Steps[None]:
        """Cache a checkpoint read from the database (its `c`, `b` and `w` rows), unless
        an invalidation happened since `gen` was read."""
        c_rows = [r for r in rows if r[0] == "c"]
        if len(c_rows) != 1:
            return _done()
        c_row = c_rows[0]
        b_rows = [r for r in rows if r[0] == "b"]
        present = [(r[4], r[8]) for r in b_rows]
        fields = self._checkpoint_fields(c_row, present)
        fields += [(f"w/{r[8]}/{r[9]}", _plain(r)) for r in rows if r[0] == "w"]
        return self._write(
            c_row[1], c_row[2], c_row[3], fields, [self._blob(r) for r in b_rows],
            f"fill:{gen or '0'}:{int(latest)}",
        )

    def fill(self, rows: Sequence[Sequence[Any]], *, gen: str, latest: bool) -> None:
        self.run(self.fill_steps(rows, gen=gen, latest=latest))

    def invalidate(self, thread_id: str) -> None:
        """Drop every cached entry of a thread (after delete, prune, copy)."""
        self.run(self._invalidate(thread_id))

    def _invalidate(self, thread_id: str) -> Steps[None]:
        if not (yield from self._available()):
            with self._lock:
                self._dirty.add(thread_id)
            return
        try:
            yield self._invalidate_call(thread_id)
        except redis.RedisError as exc:
            self._failed("invalidate", exc, thread_id)

    def _invalidate_call(self, thread_id: str) -> Call:
        t = self._thread_prefix(thread_id)
        return ("invalidate", [f"{t}nss", f"{t}gen"], [t])


_DONE = object()


def _advance(steps: Steps[R], reply: Any = None, error: Exception | None = None) -> Any:
    """Hand an operation the reply to its last call (or throw it the error): its next
    call, or `(_DONE, result)` once it has returned."""
    try:
        return steps.throw(error) if error is not None else steps.send(reply)
    except StopIteration as done:
        return (_DONE, done.value)


def _reply(fn, *args) -> tuple[Any, Exception | None]:
    try:
        return fn(*args), None
    except redis.RedisError as exc:
        return None, exc


async def _areply(fn, *args) -> tuple[Any, Exception | None]:
    try:
        return await fn(*args), None
    except redis.RedisError as exc:
        return None, exc


def _done() -> Steps[None]:
    return None
    yield  # a generator that makes no call


def _plain(row: Sequence[Any]) -> list:
    return [bytes(v) if isinstance(v, memoryview) else v for v in row]
