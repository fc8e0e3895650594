"""Fixtures of the console's tests: users with and without the console permissions,
graphs registered on the database under test, and demo threads."""

import pytest
from django.contrib.auth.models import Permission, User

from timetravel import graphs
from timetravel.demo import user_message

GRAPHS = {
    "demo": "timetravel.demo:build_graph",
    "pair": "tests.timetravel.graphs:build_pair",
    "single": "tests.timetravel.graphs:build_single",
    "nested": "tests.timetravel.graphs:build_nested",
}
REFUND = "My kettle arrived broken. Refund order #1234 please ($42.50)"


@pytest.fixture
def console(settings, db_alias):
    """The console on `db_alias` (threads there; its own tables on `default`)."""
    settings.TIMETRAVEL_DATABASE = db_alias
    settings.TIMETRAVEL_GRAPHS = GRAPHS
    settings.TIMETRAVEL_LOCK_WAIT_SECONDS = 2
    graphs.cache_clear()
    yield db_alias
    graphs.cache_clear()


@pytest.fixture
def sqlite_console(settings):
    settings.TIMETRAVEL_DATABASE = "default"
    settings.TIMETRAVEL_GRAPHS = GRAPHS
    settings.TIMETRAVEL_LOCK_WAIT_SECONDS = 2
    graphs.cache_clear()
    yield "default"
    graphs.cache_clear()


def _user(username, *, staff=True, perms=()):
    user = User.objects.create_user(username, password="pw", is_staff=staff)
    if perms:
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="timetravel", codename__in=perms))
    return User.objects.get(pk=user.pk)  # fresh permission cache


@pytest.fixture
def operator_user():
    return _user("olivia", perms=("can_fork", "can_approve", "can_delete_thread"))


@pytest.fixture
def second_operator():
    return _user("sam", perms=("can_fork", "can_approve"))


@pytest.fixture
def viewer():
    return _user("vera")


@pytest.fixture
def outsider():
    return _user("oscar", staff=False)


def graph_config(thread_id, graph_id="demo", **metadata):
    return {"configurable": {"thread_id": thread_id}, "metadata": {"graph_id": graph_id, **metadata}}


@pytest.fixture
def run_graph():
    """`run_graph(graph_id, thread_id, input)` on the console's saver."""

    def run(graph_id, thread_id, graph_input, **metadata):
        graph = graphs.graph_get(graph_id)
        return graph.invoke(graph_input, graph_config(thread_id, graph_id, **metadata))

    return run


@pytest.fixture
def refund_thread(run_graph):
    """A demo thread paused on its approval step."""
    run_graph("demo", "refund-1", user_message(REFUND, customer="Ada"), customer="Ada")
    return "refund-1"
