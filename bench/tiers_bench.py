"""The tiers: `get_tuple` with and without the Redis hot tier beside `PostgresSaver`,
steps per second of 1 and 16 asyncio tasks with and without the hot tier beside
`AsyncPostgresSaver`, and `put` of a state holding a 5 MB value with blob offload.

    python -m bench.tiers_bench [--iterations N] [--quick]

Interleaves the savers call by call (so machine load hits them alike) and prints P50/P99
in ms. Needs PostgreSQL (BENCH_PG_URL) and Redis (BENCH_REDIS_URL).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

from psycopg.rows import dict_row

from bench.saver_bench import PG_BASE_URL, POOL_SIZE, configure_django, fresh_database, p50_p99
from bench.workload import ChatThread

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
BIG = "x" * (5 * 1024 * 1024)


def timed(fn) -> int:
    start = time.perf_counter_ns()
    fn()
    return time.perf_counter_ns() - start


def fill(saver, thread_id: str, steps: int) -> ChatThread:
    from bench.saver_bench import sync_step

    chat = ChatThread(saver, thread_id)
    for _ in range(steps):
        sync_step(saver, chat)
    return chat


def bench_get_tuple(savers: dict, iterations: int, steps: int) -> dict[str, list[int]]:
    chats = {label: fill(s, f"get-{label}-{uuid.uuid4().hex[:6]}", steps) for label, s in savers.items()}
    samples: dict[str, list[int]] = {f"{label} {kind}": [] for label in savers for kind in ("latest", "by id")}
    for _ in range(iterations):
        for label, saver in savers.items():
            chat = chats[label]
            samples[f"{label} latest"].append(timed(lambda: saver.get_tuple(chat.latest)))
            samples[f"{label} by id"].append(timed(lambda: saver.get_tuple(chat.by_id())))
    return samples


def bench_big_put(saver, iterations: int) -> dict[str, list[int]]:
    """A thread whose state holds a 5 MB document: the first put uploads it, later steps
    change only small channels and must not move it again."""
    from langgraph.checkpoint.base import empty_checkpoint

    thread = f"big-{uuid.uuid4().hex[:6]}"
    checkpoint = empty_checkpoint()
    versions = checkpoint["channel_versions"]
    for ch in ("document", "notes", "step"):
        versions[ch] = saver.get_next_version(None, None)
    checkpoint["channel_values"] = {"document": BIG, "notes": ["start"], "step": 0}
    config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    first = [timed(lambda: saver.put(config, checkpoint, {"source": "input", "step": -1}, dict(versions)))]
    parent = {"configurable": {"thread_id": thread, "checkpoint_ns": "", "checkpoint_id": checkpoint["id"]}}
    later = []
    from langgraph.checkpoint.base.id import uuid6

    for i in range(iterations):
        nxt = {**checkpoint, "id": str(uuid6(clock_seq=i)), "channel_values": dict(checkpoint["channel_values"])}
        nxt["channel_versions"] = dict(checkpoint["channel_versions"])
        nxt["channel_values"]["notes"] = [f"note {i}"]
        nxt["channel_values"]["step"] = i + 1
        changed = {}
        for ch in ("notes", "step"):
            nxt["channel_versions"][ch] = changed[ch] = saver.get_next_version(nxt["channel_versions"][ch], None)
        later.append(timed(lambda: saver.put(parent, nxt, {"source": "loop", "step": i}, changed)))
        parent = {"configurable": {"thread_id": thread, "checkpoint_ns": "", "checkpoint_id": nxt["id"]}}
        checkpoint = nxt
    read = [timed(lambda: saver.get_tuple({"configurable": {"thread_id": thread, "checkpoint_ns": ""}})) for _ in range(5)]
    return {"put, first (uploads 5 MB)": first, "put, document unchanged": later, "get_tuple (reads 5 MB)": read}


def bench_async_throughput(ours: dict, anchor_url: str, window_s: float) -> dict[str, dict[int, float]]:
    """Steps/s of 1 and 16 asyncio tasks per saver on one event loop, savers in turn,
    beside `AsyncPostgresSaver` on a pool of the same size."""
    import asyncio

    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg_pool import AsyncConnectionPool

    from bench.saver_bench import throughput_async

    async def runs() -> dict[str, dict[int, float]]:
        kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
        async with AsyncConnectionPool(anchor_url, min_size=1, max_size=POOL_SIZE, kwargs=kwargs, open=False) as pool:
            anchor = AsyncPostgresSaver(pool)
            await anchor.setup()
            savers = {**ours, "AsyncPostgresSaver": anchor}
            out: dict[str, dict[int, float]] = {label: {} for label in savers}
            for writers in (1, 16):
                for label, saver in savers.items():
                    prefix = f"tp-{label}-{writers}-{uuid.uuid4().hex[:6]}"
                    out[label][writers] = await throughput_async(saver, prefix, writers, window_s)
            for saver in ours.values():
                async with saver:  # this loop's connections and Redis client
                    pass
            return out

    return asyncio.run(runs())


def row_sizes(using: str, thread_prefix: str) -> tuple[int, int]:
    from checkpoints.models import Checkpoint

    sizes = list(Checkpoint.objects.using(using).filter(thread_id__startswith=thread_prefix).values_list("size", flat=True))
    return max(sizes), len(sizes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    iterations = 100 if args.quick else args.iterations
    steps = 20

    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg_pool import ConnectionPool

    urls = {
        "default": fresh_database("bench_tiers_django"),
        "anchor": fresh_database("bench_tiers_postgres"),
        "async_anchor": fresh_database("bench_tiers_async_postgres"),
    }
    configure_django({"default": urls["default"]})
    import redis

    from checkpoints.saver import DjangoSaver
    from checkpoints.tiers.blobs import FileBlobStore
    from checkpoints.tiers.hot import HotTier

    redis.Redis.from_url(REDIS_URL).flushdb()
    db_only = DjangoSaver("default", hot_tier=None, blob_store=None, max_checkpoint_bytes=10**9)
    db_only.setup()
    hot = DjangoSaver(
        "default", hot_tier=HotTier(REDIS_URL, secret="bench"), blob_store=None, max_checkpoint_bytes=10**9
    )
    pool = ConnectionPool(
        urls["anchor"], min_size=1, max_size=POOL_SIZE, open=True,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
    )
    anchor = PostgresSaver(pool)
    anchor.setup()
    try:
        print(f"Tiers benchmark: {iterations} calls per op, threads of {steps} steps; P50 / P99 ms")
        samples = bench_get_tuple(
            {"DjangoSaver": db_only, "DjangoSaver+hot": hot, "PostgresSaver": anchor}, iterations, steps
        )
        print(f"\n{'get_tuple':<28} {'P50':>8} {'P99':>8}")
        for label, values in samples.items():
            p50, p99 = p50_p99(values)
            print(f"{label:<28} {p50:8.3f} {p99:8.3f}")
        hot_p99 = p50_p99(samples["DjangoSaver+hot latest"])[1]
        anchor_p99 = p50_p99(samples["PostgresSaver latest"])[1]
        print(f"target hot-tier get_tuple(latest) P99 < PostgresSaver's: {hot_p99:.3f} vs {anchor_p99:.3f} "
              f"-> {'PASS' if hot_p99 < anchor_p99 else 'MISS'}")

        throughput = bench_async_throughput(
            {"DjangoSaver a*": db_only, "DjangoSaver+hot a*": hot}, urls["async_anchor"], 0.5 if args.quick else 1.5
        )
        print(f"\n{'asyncio tasks, steps/s':<28} {'1':>8} {'16':>8}")
        for label, by_writers in throughput.items():
            print(f"{label:<28} {by_writers[1]:8.0f} {by_writers[16]:8.0f}")
        ratio = throughput["DjangoSaver+hot a*"][16] / throughput["AsyncPostgresSaver"][16]
        print(f"target 16-task throughput with the hot tier >= 1.5x AsyncPostgresSaver: {ratio:.2f}x "
              f"-> {'PASS' if ratio >= 1.5 else 'MISS'}")

        with tempfile.TemporaryDirectory() as tmp:
            offload = DjangoSaver("default", hot_tier=None, blob_store=FileBlobStore(tmp))
            big = bench_big_put(offload, max(20, iterations // 5))
            print(f"\n{'5 MB value, blob offload (folder)':<28} {'P50':>8} {'P99':>8}")
            for label, values in big.items():
                p50, p99 = p50_p99(values)
                print(f"{label:<28} {p50:8.3f} {p99:8.3f}")
            largest, count = row_sizes("default", "big-")
            print(f"largest checkpoint row of the 5 MB thread: {largest} bytes over {count} checkpoints")
            p50 = p50_p99(big["put, document unchanged"])[0]
            print(f"target put P50 < 10 ms when the 5 MB value is unchanged: {p50:.3f} -> {'PASS' if p50 < 10 else 'MISS'}")
            print(f"target checkpoint row < 1 KB: {largest} -> {'PASS' if largest < 1024 else 'MISS'}")
    finally:
        pool.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
