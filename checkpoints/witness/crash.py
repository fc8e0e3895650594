"""A run that dies mid-step, for real: the fault-tolerance half of `witness`.

Two sibling nodes start in the same super-step. `fast` returns at once; `slow` blocks
forever in the child process. Once `fast`'s pending writes are in the database the
parent kills the child with SIGKILL (no `finally`, no atexit, nothing flushed), then
resumes the thread in its own process with a fresh saver. LangGraph must reuse the
saved writes, so `fast` runs once in total while `slow` runs twice. Every run of a node
appends a line to a file in `tally_dir`: the proof lives outside both processes.

The child is `python -m checkpoints.witness.crash URL THREAD_ID TALLY_DIR`; it uses
`DjangoSaver.from_conn_string`, so it needs no project settings.
"""

from __future__ import annotations

import operator
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict
from urllib.parse import quote, urlencode

from langgraph.graph import END, START, StateGraph

PROJECT_DIR = Path(__file__).resolve().parents[2]
# Child start-up (Python, Django, LangGraph, migrate check) takes about a second; the
# deadline only matters when something is broken.
READY_TIMEOUT_S = 60.0
POLL_S = 0.05


class CrashState(TypedDict, total=False):
    done: Annotated[list[str], operator.add]


def tally(tally_dir: str | Path, node: str) -> None:
    # One short O_APPEND write per run: it is in the kernel before the node goes on,
    # so a SIGKILL right after cannot lose it.
    with open(Path(tally_dir) / node, "a") as f:
        f.write("ran\n")


def tallies(tally_dir: str | Path) -> dict[str, int]:
    """How many times each node started, across every process."""
    counts = {}
    for node in ("fast", "slow", "join"):
        path = Path(tally_dir) / node
        counts[node] = len(path.read_text().splitlines()) if path.exists() else 0
    return counts


def build_crash_graph(checkpointer, tally_dir: str | Path, *, block: bool):
    """`START -> (fast, slow) -> join -> END`; with `block`, `slow` never returns."""

    def fast(state: CrashState) -> dict[str, Any]:
        tally(tally_dir, "fast")
        return {"done": ["fast"]}

    def slow(state: CrashState) -> dict[str, Any]:
        tally(tally_dir, "slow")
        while block:
            time.sleep(1)
        return {"done": ["slow"]}

    def join(state: CrashState) -> dict[str, Any]:
        tally(tally_dir, "join")
        return {"done": ["join"]}

    builder = StateGraph(CrashState)
    builder.add_node("fast", fast)
    builder.add_node("slow", slow)
    builder.add_node("join", join)
    builder.add_edge(START, "fast")
    builder.add_edge(START, "slow")
    builder.add_edge(["fast", "slow"], "join")
    builder.add_edge("join", END)
    return builder.compile(checkpointer=checkpointer)


def database_url(alias: str) -> str:
    """The URL of a configured database alias, for a process that has no settings.

    Reads `settings.DATABASES` when called, so under pytest-django it names the test
    database.

    Raises:
        ValueError: an in-memory SQLite database or an unsupported engine.
    """
    from django.conf import settings

    db = settings.DATABASES[alias]
    engine, name = db["ENGINE"], str(db["NAME"])
    if engine == "django.db.backends.sqlite3":
        if name == ":memory:" or "mode=memory" in name:
            raise ValueError(f"Database {alias!r} is in memory: another process cannot open it")
        return "sqlite:///" + str(Path(name).resolve())
    if engine == "django.db.backends.postgresql":
        user = quote(db.get("USER") or "", safe="")
        password = quote(str(db.get("PASSWORD") or ""), safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = quote(db.get("HOST") or "", safe="")
        port = f":{db['PORT']}" if db.get("PORT") else ""
        options = {
            k: v for k, v in (db.get("OPTIONS") or {}).items() if isinstance(v, (str, int))
        }
        query = f"?{urlencode(options)}" if options else ""
        return f"postgresql://{auth}{host}{port}/{quote(name, safe='')}{query}"
    raise ValueError(f"Unsupported engine for a child process: {engine}")


def start_doomed_run(url: str, thread_id: str, tally_dir: str | Path) -> subprocess.Popen:
    """Start the child that runs the crash graph on `thread_id` and blocks in `slow`."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_DIR), env.get("PYTHONPATH")]))
    log = open(Path(tally_dir) / "child.log", "wb")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "checkpoints.witness.crash", url, thread_id, str(tally_dir)],
            cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    finally:
        log.close()


def fast_write_saved(saver, config) -> bool:
    """Whether `fast`'s pending write is stored against the thread's latest checkpoint."""
    tup = saver.get_tuple(config)
    return tup is not None and any(
        channel == "done" and value == ["fast"] for _, channel, value in tup.pending_writes or ()
    )


def wait_until_killable(proc: subprocess.Popen, saver, config, tally_dir: str | Path) -> None:
    """Wait until `slow` is blocked and `fast`'s write is in the database.

    Raises:
        RuntimeError: the child exited or the deadline passed; the child is killed.
    """
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"child exited early ({proc.returncode}): {child_log(tally_dir)}")
        counts = tallies(tally_dir)
        if counts["fast"] == 1 and counts["slow"] == 1 and fast_write_saved(saver, config):
            return
        time.sleep(POLL_S)
    kill(proc)
    raise RuntimeError(f"child not ready after {READY_TIMEOUT_S:.0f} s: {child_log(tally_dir)}")


def kill(proc: subprocess.Popen) -> int:
    """SIGKILL the child and reap it; returns its exit status (-9)."""
    proc.send_signal(signal.SIGKILL)
    return proc.wait(timeout=30)


def child_log(tally_dir: str | Path) -> str:
    path = Path(tally_dir) / "child.log"
    return path.read_text(errors="replace")[-2000:] if path.exists() else ""


def main(argv: list[str]) -> None:
    from checkpoints.saver import DjangoSaver

    url, thread_id, tally_dir = argv
    graph = build_crash_graph(DjangoSaver.from_conn_string(url), tally_dir, block=True)
    graph.invoke({"done": []}, {"configurable": {"thread_id": thread_id}})


if __name__ == "__main__":
    main(sys.argv[1:])
