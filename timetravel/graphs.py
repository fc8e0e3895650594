"""The graph registry: `TIMETRAVEL_GRAPHS = {"name": "package.module:factory"}`, as in
`langgraph.json`.

A factory takes `checkpointer` and `store` and returns a compiled graph. Factories are
resolved lazily, on first use; the compiled graph over the console's saver is cached
per name. A thread remembers its graph in its metadata (`graph_id`), which the saver
copies to the thread row.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from checkpoints.saver import DjangoSaver


class UnknownGraph(LookupError):
    """No graph of that name is registered, or a thread has none."""


@dataclass(frozen=True)
class GraphInfo:
    name: str
    path: str
    nodes: tuple[str, ...]
    edges: tuple[tuple[str, str, bool], ...]  # (source, target, conditional)


def saver_alias() -> str:
    """The database alias the saver (and so the threads) lives on."""
    return getattr(settings, "TIMETRAVEL_DATABASE", "default")


def graph_names() -> list[str]:
    return list(settings.TIMETRAVEL_GRAPHS)


def _factory(name: str):
    try:
        path = settings.TIMETRAVEL_GRAPHS[name]
    except KeyError:
        raise UnknownGraph(f"No graph named {name!r} in TIMETRAVEL_GRAPHS") from None
    return import_string(path.replace(":", "."))


@cache
def _store() -> Any:
    path = getattr(settings, "TIMETRAVEL_STORE", "")
    return import_string(path)() if path else None


def store() -> Any:
    """The store graphs get (`TIMETRAVEL_STORE`), else a `DjangoStore` on the console's
    database, for the store browser."""
    configured = _store()
    if configured is not None:
        return configured
    from store.store import DjangoStore

    return DjangoStore(using=saver_alias())


def graph_build(name: str, *, checkpointer: Any) -> Any:
    """A freshly compiled graph over `checkpointer` (used for previews)."""
    return _factory(name)(checkpointer=checkpointer, store=store())


@cache
def _saver(alias: str) -> DjangoSaver:
    return DjangoSaver(using=alias)


def saver() -> DjangoSaver:
    """The console's saver (configured from settings: hot tier, blob storage)."""
    return _saver(saver_alias())


@cache
def _graph(name: str, alias: str) -> Any:
    return graph_build(name, checkpointer=_saver(alias))


def graph_get(name: str) -> Any:
    """The compiled graph `name` over the console's saver."""
    return _graph(name, saver_alias())


def graph_for_thread(graph_id: str) -> str:
    """The graph to run a thread with: its own, or the only registered one when the
    thread's writer did not record one.

    Raises:
        UnknownGraph: the thread's graph is not registered, or it has none and several are.
    """
    names = graph_names()
    if graph_id:
        if graph_id not in names:
            raise UnknownGraph(f"This thread's graph {graph_id!r} is not registered in TIMETRAVEL_GRAPHS")
        return graph_id
    if len(names) == 1:
        return names[0]
    raise UnknownGraph("This thread records no graph and several are registered")


def graph_info(name: str) -> GraphInfo:
    graph = graph_get(name)
    drawable = graph.get_graph()
    nodes = tuple(n for n in drawable.nodes if n not in ("__start__", "__end__"))
    edges = tuple((e.source, e.target, bool(e.conditional)) for e in drawable.edges)
    return GraphInfo(name=name, path=settings.TIMETRAVEL_GRAPHS[name], nodes=nodes, edges=edges)


def graph_nodes(name: str) -> list[str]:
    """Nodes a fork may be written `as_node`."""
    return [n for n in graph_get(name).nodes if n != "__start__"]


def cache_clear() -> None:
    """Forget compiled graphs and savers (after a settings change)."""
    _graph.cache_clear()
    _saver.cache_clear()
    _store.cache_clear()
