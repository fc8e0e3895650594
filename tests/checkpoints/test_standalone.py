"""`DjangoSaver.from_conn_string` in an app that is not a Django project, and inside
one: three lines, migrations applied, sync and async."""

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings


ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, {root!r})
    from checkpoints.saver import DjangoSaver
    from tests.checkpoints.graphs import chat_graph

    say = lambda t: {{"messages": [{{"role": "user", "content": t}}]}}
    cfg = {{"configurable": {{"thread_id": "standalone"}}}}
    with DjangoSaver.from_conn_string({url!r}) as saver:
        graph = chat_graph(saver)
        graph.invoke(say("one"), cfg)

    async def main():
        async with DjangoSaver.from_conn_string({url!r}) as saver:
            graph = chat_graph(saver)
            await graph.ainvoke(say("two"), cfg)
            state = await graph.aget_state(cfg)
            print(state.values["turns"], len(state.values["messages"]))

    asyncio.run(main())
    """
)


def run_script(url, script=SCRIPT, **names):
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": ""}
    out = subprocess.run(
        [sys.executable, "-c", script.format(root=str(ROOT), url=url, **names)],
        capture_output=True, text=True, timeout=120, env=env, cwd="/",
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_outside_django_on_sqlite(tmp_path):
    assert run_script(f"sqlite:///{tmp_path / 'agent.db'}") == "2 4"


TWO_URLS = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    from checkpoints.saver import DjangoSaver
    from tests.checkpoints.graphs import chat_graph

    cfg = {{"configurable": {{"thread_id": "t"}}}}
    first = DjangoSaver.from_conn_string({first!r})
    second = DjangoSaver.from_conn_string({second!r})
    again = DjangoSaver.from_conn_string({first!r})
    chat_graph(first).invoke({{"messages": [{{"role": "user", "content": "one"}}]}}, cfg)
    print(first.using == again.using != second.using, chat_graph(second).get_state(cfg).values)
    """
)


def test_outside_django_two_urls_in_one_process(tmp_path):
    """A second URL becomes its own alias; the same URL again reuses its alias."""
    first, second = (f"sqlite:///{tmp_path / name}" for name in ("a.db", "b.db"))
    assert run_script(first, TWO_URLS, first=first, second=second) == "True {}"


@pytest.mark.skipif("postgres" not in settings.DATABASES, reason="needs PostgreSQL")
def test_outside_django_on_postgres():
    name = f"lg_standalone_{uuid.uuid4().hex[:8]}"
    admin = settings.TEST_POSTGRES_URL
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base = admin.rsplit("/", 1)[0]
        assert run_script(f"{base}/{name}") == "2 4"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


INSIDE = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    import django
    django.setup()
    from django.conf import settings
    from checkpoints.saver import DjangoSaver
    from tests.checkpoints.graphs import chat_graph

    saver = DjangoSaver.from_conn_string({url!r})
    assert saver.using != "default" and saver.using in settings.DATABASES
    assert DjangoSaver.from_conn_string({url!r}).using == saver.using
    cfg = {{"configurable": {{"thread_id": "a"}}}}
    chat_graph(saver).invoke({{"messages": [{{"role": "user", "content": "x"}}]}}, cfg)
    print(chat_graph(saver).get_state(cfg).values["turns"])
    """
)


def test_inside_django_a_url_becomes_an_alias(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", INSIDE.format(root=str(ROOT), url=f"sqlite:///{tmp_path / 'other.db'}")],
        capture_output=True, text=True, timeout=120, env=env, cwd=str(ROOT),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
