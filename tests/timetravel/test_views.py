"""Console pages: staff only, CSRF on every state change, bounded query counts at any
size, JSON in the LangGraph Server shapes, forms that show errors and write nothing."""

import contextlib
import json
from datetime import timedelta

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from checkpoints.models import Checkpoint, Thread
from timetravel import graphs
from timetravel.demo import user_message
from timetravel.models import Approval, AuditEntry, Run

from .conftest import graph_config

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

PAGES = [
    ("timetravel:thread_list", ()),
    ("timetravel:thread_detail", ("t",)),
    ("timetravel:thread_delete", ("t",)),
    ("timetravel:checkpoint_fork", ("t", "c")),
    ("timetravel:checkpoint_replay", ("t", "c")),
    ("timetravel:interrupt_decide", ("t", "i")),
    ("timetravel:interrupt_claim", ("t", "i")),
    ("timetravel:inbox", ()),
    ("timetravel:audit_log", ()),
    ("timetravel:graph_list", ()),
]
POSTS = [
    ("timetravel:thread_delete", ("t",)),
    ("timetravel:checkpoint_fork", ("t", "c")),
    ("timetravel:checkpoint_replay", ("t", "c")),
    ("timetravel:interrupt_decide", ("t", "i")),
    ("timetravel:interrupt_claim", ("t", "i")),
]


def client_for(user, **kwargs):
    client = Client(**kwargs)
    client.force_login(user)
    return client


@contextlib.contextmanager
def queries():
    """Statements on every database (the console's own tables and the saver's may
    differ). An execute wrapper rather than the query log, which a pooled PostgreSQL
    connection and the per-request reset would hide."""
    counter = type("Counter", (), {"count": 0})()

    def count(execute, sql, params, many, context):
        counter.count += 1
        return execute(sql, params, many, context)

    with contextlib.ExitStack() as stack:
        for alias in connections:
            stack.enter_context(connections[alias].execute_wrapper(count))
        yield counter


@pytest.mark.parametrize(("name", "args"), PAGES)
def test_anonymous_is_sent_to_login(sqlite_console, client, name, args):
    url = reverse(name, args=args)
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login")) and "next=" in response.url
    assert client.post(url).status_code == 302


@pytest.mark.parametrize(("name", "args"), PAGES)
def test_a_user_who_is_not_staff_is_refused(sqlite_console, outsider, name, args):
    response = client_for(outsider).get(reverse(name, args=args))
    assert response.status_code == 302 and response.url.startswith(reverse("admin:login"))


def test_the_websocket_and_json_urls_are_staff_only_too(sqlite_console, client):
    response = client.get(reverse("timetravel:thread_list") + "?format=json")
    assert response.status_code == 302


@pytest.mark.parametrize(("name", "args"), POSTS)
def test_a_post_without_csrf_is_refused(sqlite_console, operator_user, refund_thread, name, args):
    checkpoint_id = Thread.objects.get(thread_id=refund_thread).head_checkpoint_id
    interrupt_id = graphs.graph_get("demo").get_state(graph_config(refund_thread)).interrupts[0].id
    real = {"t": refund_thread, "c": checkpoint_id, "i": interrupt_id}
    url = reverse(name, args=[real[a] for a in args])
    client = client_for(operator_user, enforce_csrf_checks=True)
    checkpoints = Checkpoint.objects.filter(thread_id=refund_thread).count()
    response = client.post(url, {"type": "accept", "values": "{}", "action": "create"})
    assert response.status_code == 403
    assert b"CSRF" in response.content
    assert Checkpoint.objects.filter(thread_id=refund_thread).count() == checkpoints
    assert not Run.objects.exists() and not Approval.objects.exists() and not AuditEntry.objects.exists()
    assert Thread.objects.filter(thread_id=refund_thread).exists()


def test_a_post_with_the_csrf_token_is_accepted(sqlite_console, operator_user, refund_thread):
    client = client_for(operator_user, enforce_csrf_checks=True)
    interrupt_id = graphs.graph_get("demo").get_state(graph_config(refund_thread)).interrupts[0].id
    url = reverse("timetravel:interrupt_decide", args=[refund_thread, interrupt_id])
    client.get(url)
    response = client.post(url, {"type": "accept", "csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    assert response.status_code == 302
    assert Approval.objects.get().state == "resumed"


def test_viewers_without_permissions_see_but_cannot_act(sqlite_console, viewer, refund_thread):
    client = client_for(viewer)
    checkpoint_id = Thread.objects.get(thread_id=refund_thread).head_checkpoint_id
    detail = client.get(reverse("timetravel:thread_detail", args=[refund_thread]))
    assert detail.status_code == 200 and b"Fork from here" not in detail.content
    assert client.get(reverse("timetravel:checkpoint_fork", args=[refund_thread, checkpoint_id])).status_code == 403
    response = client.post(reverse("timetravel:checkpoint_fork", args=[refund_thread, checkpoint_id]),
                           {"values": '{"amount": 1}', "mode": "state", "action": "create"})
    assert response.status_code == 403
    assert client.post(reverse("timetravel:thread_delete", args=[refund_thread])).status_code == 403
    assert Thread.objects.filter(thread_id=refund_thread).exists()


# -- query counts ------------------------------------------------------------------


def make_threads(alias, n, *, status="idle", prefix="bulk"):
    now = timezone.now()
    Thread.objects.using(alias).bulk_create([
        Thread(thread_id=f"{prefix}-{i:05d}", status=status, graph_id="demo", metadata={"customer": f"c{i % 7}", "n": i},
               head_checkpoint_id="", checkpoint_count=i, bytes_stored=100 * i, created_at=now,
               updated_at=now - timedelta(seconds=i))
        for i in range(n)
    ])


def count_page(client, url):
    with queries() as q:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return q.count


def test_thread_list_queries_do_not_grow_with_threads(console, operator_user):
    client = client_for(operator_user)
    make_threads(console, 3)
    urls = [
        reverse("timetravel:thread_list"),
        reverse("timetravel:thread_list") + "?status=idle&graph=demo&sort=-bytes_stored",
        reverse("timetravel:thread_list") + "?meta_key=customer&meta_value=c3",
        reverse("timetravel:thread_list") + "?q=bulk-0&sort=thread_id",
    ]
    small = [count_page(client, u) for u in urls]
    make_threads(console, 400, prefix="more")
    large = [count_page(client, u) for u in urls]
    assert small == large
    # session, user, the page of threads, the inbox badge, the row estimate (PostgreSQL),
    # and whatever the project's context processors read (the operations alerts).
    assert 3 <= min(large) and max(large) <= 8  # session, user, threads page, inbox badge (+ estimate on PostgreSQL)


def test_thread_detail_queries_do_not_grow_with_checkpoints(console, operator_user, run_graph):
    client = client_for(operator_user)
    run_graph("demo", "short", user_message("Where is my order #1001?"))
    for i in range(32):
        run_graph("demo", "long", user_message(f"Where is my order #{1000 + i}?"))
    assert Checkpoint.objects.using(console).filter(thread_id="long").count() > 120
    counts = {}
    for thread_id in ("short", "long"):
        url = reverse("timetravel:thread_detail", args=[thread_id])
        counts[thread_id] = count_page(client, url)
    assert counts["short"] == counts["long"], counts
    assert 8 <= counts["long"] <= 16, counts


def test_inbox_queries_do_not_grow_with_interrupts(sqlite_console, operator_user, run_graph):
    client = client_for(operator_user)
    url = reverse("timetravel:inbox")
    run_graph("demo", "wait-0", user_message("Refund order #1000 ($5), it is broken"))
    one = count_page(client, url)
    for i in range(1, 12):
        run_graph("demo", f"wait-{i}", user_message(f"Refund order #{1000 + i} ($5), it is broken"))
    many = count_page(client, url)
    # session, user, badge, threads, interrupt writes, approvals, permissions (2), alerts
    assert 4 <= one == many <= 10


# -- list: search, filter, sort, pages ---------------------------------------------------


def rows(response):
    return [t["thread_id"] for t in response.json()["threads"]]


def test_search_by_metadata_and_id(console, operator_user, run_graph):
    client = client_for(operator_user)
    run_graph("demo", "alpha-1", user_message("Where is my order #1001?"), customer="Ada Byron", tier=3)
    run_graph("demo", "alpha-2", user_message("Where is my order #1002?"), customer="Grace Hopper")
    run_graph("demo", "beta-1", user_message("Refund order #1003 ($5), broken"), customer="Ada Byron")
    url = reverse("timetravel:thread_list")
    assert sorted(rows(client.get(url, {"meta_key": "customer", "meta_value": "Ada Byron", "format": "json"}))) == [
        "alpha-1", "beta-1"]
    assert rows(client.get(url, {"meta_key": "tier", "meta_value": "3", "format": "json"})) == ["alpha-1"]
    assert rows(client.get(url, {"meta_key": "tier", "format": "json"})) == ["alpha-1"]
    assert sorted(rows(client.get(url, {"q": "alpha-", "format": "json"}))) == ["alpha-1", "alpha-2"]
    assert rows(client.get(url, {"status": "interrupted", "format": "json"})) == ["beta-1"]
    refused = client.get(url, {"meta_key": "customer') OR 1=1 --", "meta_value": "x", "format": "json"})
    assert refused.status_code == 400
    assert client.get(url, {"meta_key": "a__b", "meta_value": "x", "format": "json"}).status_code == 400
    page = client.get(url, {"meta_key": "customer", "meta_value": "Ada Byron"})
    assert b"alpha-1" in page.content and b"alpha-2" not in page.content


@pytest.mark.parametrize("sort", ["-updated_at", "updated_at", "thread_id", "-thread_id", "-checkpoint_count",
                                  "-created_at", "-bytes_stored"])
def test_keyset_pages_cover_every_thread_once_both_ways(sqlite_console, operator_user, sort):
    client = client_for(operator_user)
    make_threads("default", 120)
    # Ties on the sort key: the thread id breaks them.
    Thread.objects.filter(thread_id__lt="bulk-00030").update(updated_at=timezone.now(), checkpoint_count=7)
    url = reverse("timetravel:thread_list")
    seen, pages, cursor = [], [], ""
    while True:
        data = client.get(url, {"sort": sort, "after": cursor, "format": "json"}).json()
        pages.append([t["thread_id"] for t in data["threads"]])
        seen += pages[-1]
        cursor = data["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 120 and len(set(seen)) == 120
    assert len(pages) == 3
    # Walking back from the last page gives the same pages.
    data = client.get(url, {"sort": sort, "after": "", "format": "json"}).json()
    second = client.get(url, {"sort": sort, "after": data["next_cursor"], "format": "json"}).json()
    back = client.get(url, {"sort": sort, "before": second["prev_cursor"], "format": "json"}).json()
    assert [t["thread_id"] for t in back["threads"]] == pages[0]
    assert client.get(url, {"after": "garbage!", "format": "json"}).status_code == 400


# -- detail, JSON ---------------------------------------------------------------------


def test_thread_json_has_the_langgraph_server_fields(sqlite_console, operator_user, refund_thread):
    client = client_for(operator_user)
    data = client.get(reverse("timetravel:thread_detail", args=[refund_thread]), {"format": "json"}).json()
    thread, state = data["thread"], data["state"]
    assert {"thread_id", "created_at", "updated_at", "state_updated_at", "metadata", "status", "values",
            "interrupts"} <= set(thread)
    assert thread["status"] == "interrupted" and thread["metadata"]["customer"] == "Ada"
    assert {"values", "next", "tasks", "checkpoint", "metadata", "created_at", "parent_checkpoint",
            "interrupts"} <= set(state)
    assert state["next"] == ["approve"]
    (interrupt,) = state["interrupts"]
    assert set(interrupt) == {"value", "id"}
    assert interrupt["value"]["action_request"]["action"] == "issue_refund"
    assert list(thread["interrupts"].values()) == [[interrupt]]
    assert state["checkpoint"]["checkpoint_id"] == Thread.objects.get(thread_id=refund_thread).head_checkpoint_id
    assert len(data["history"]) == 4 and data["history"][-1]["metadata"]["source"] == "input"
    assert [c["path"] for c in data["diff"]["changes"]] == ["proposal"]
    listing = client.get(reverse("timetravel:thread_list"), {"format": "json"}).json()
    assert listing["threads"][0]["thread_id"] == refund_thread and "values" not in listing["threads"][0]
    inbox = client.get(reverse("timetravel:inbox"), {"format": "json"}).json()
    assert inbox["interrupts"][0]["interrupt"] == interrupt


def test_thread_page_shows_state_messages_diff_and_writes(sqlite_console, operator_user, refund_thread):
    client = client_for(operator_user)
    url = reverse("timetravel:thread_detail", args=[refund_thread])
    page = client.get(url).content.decode()
    assert "Conversation" in page and "My kettle arrived broken" in page
    assert 'id="next-nodes"' in page and ">approve<" in page
    assert "__interrupt__" in page  # the pending write
    assert "Decide…" in page
    first = Checkpoint.objects.filter(thread_id=refund_thread).order_by("checkpoint_id").first().checkpoint_id
    compared = client.get(url, {"against": first}).content.decode()
    assert "messages[0]" not in compared or "added" in compared
    raw = client.get(url, {"view": "raw"}).content.decode()
    assert "&quot;issue_refund&quot;" in raw
    assert client.get(url, {"checkpoint": "nope"}).status_code == 404


def test_a_failed_run_shows_on_the_thread_page(sqlite_console, operator_user, run_graph):
    from timetravel import services

    run_graph("single", "single-1", {"log": []})
    interrupt_id = graphs.graph_get("single").get_state(graph_config("single-1", "single")).interrupts[0].id
    services.interrupt_decide(user=operator_user, thread_id="single-1", interrupt_id=interrupt_id,
                              decision={"type": "json", "args": "boom"})
    page = client_for(operator_user).get(reverse("timetravel:thread_detail", args=["single-1"])).content.decode()
    assert "status-error" in page
    assert "RuntimeError: the node exploded on &#x27;boom&#x27;" in page
    assert "Traceback" in page


# -- fork and decide forms -------------------------------------------------------------


def fork_url(thread_id, step_next=("draft",)):
    state = next(s for s in graphs.graph_get("demo").get_state_history(graph_config(thread_id)) if s.next == step_next)
    return reverse("timetravel:checkpoint_fork", args=[thread_id, state.config["configurable"]["checkpoint_id"]]), state


def test_fork_form_invalid_json_is_an_error_and_writes_nothing(sqlite_console, operator_user, refund_thread):
    client = client_for(operator_user)
    url, _ = fork_url(refund_thread)
    before = Checkpoint.objects.count()
    response = client.post(url, {"values": '{"amount": 1,}', "mode": "state", "action": "create"})
    assert response.status_code == 400
    assert "Invalid JSON" in response.content.decode()
    response = client.post(url, {"values": '{"messages": 5}', "mode": "update", "as_node": "draft", "action": "create"})
    assert response.status_code == 400 and "The graph rejects this update" in response.content.decode()
    assert Checkpoint.objects.count() == before and not AuditEntry.objects.exists()


def test_fork_form_previews_then_creates(sqlite_console, operator_user, refund_thread):
    client = client_for(operator_user)
    url, state = fork_url(refund_thread)
    form = client.get(url)
    assert form.status_code == 200 and "&quot;amount&quot;: 42.5" in form.content.decode()
    edited = json.dumps({**state.values, "amount": 5.0})
    before = Checkpoint.objects.count()
    preview = client.post(url, {"values": edited, "mode": "state", "action": "preview"})
    assert preview.status_code == 200 and 'id="fork-preview"' in preview.content.decode()
    assert Checkpoint.objects.count() == before
    created = client.post(url, {"values": edited, "mode": "state", "action": "create"})
    assert created.status_code == 302
    new_id = created.url.split("checkpoint=")[1]
    new = Checkpoint.objects.get(thread_id=refund_thread, checkpoint_id=new_id)
    assert new.parent_checkpoint_id == state.config["configurable"]["checkpoint_id"]
    page = client.get(created.url).content.decode()
    assert "branch" in page and f'data-checkpoint-id="{new_id}"' in page


def test_decide_form_accepts_and_redirects(sqlite_console, operator_user, refund_thread):
    client = client_for(operator_user)
    interrupt_id = graphs.graph_get("demo").get_state(graph_config(refund_thread)).interrupts[0].id
    url = reverse("timetravel:interrupt_decide", args=[refund_thread, interrupt_id])
    page = client.get(url).content.decode()
    assert "issue_refund" in page and "Refund $42.50" in page
    bad = client.post(url, {"type": "edit", "args": "[1]"})
    assert bad.status_code == 400 and not Approval.objects.exists()
    done = client.post(url, {"type": "edit", "args": '{"order_id": "1234", "amount": 9}'}, follow=True)
    assert "Edited the interrupt on refund-1: resumed." in done.content.decode()
    again = client.post(url, {"type": "accept"}, follow=True)
    assert "Already resumed by olivia" in again.content.decode()
    assert Run.objects.count() == 1
    audit = client.get(reverse("timetravel:audit_log"), {"format": "json"}).json()["entries"]
    assert [e["action"] for e in audit] == ["edit", "claim"]
    assert audit[0]["detail"]["decision"]["args"] == {"order_id": "1234", "amount": 9}


def test_graph_registry_page(sqlite_console, operator_user):
    data = client_for(operator_user).get(reverse("timetravel:graph_list"), {"format": "json"}).json()
    demo = next(g for g in data["graphs"] if g["graph_id"] == "demo")
    assert demo["factory"] == "timetravel.demo:build_graph"
    assert demo["nodes"] == ["classify", "draft", "approve", "execute"]


def test_subgraph_namespaces_are_listed_and_browsable(sqlite_console, operator_user, run_graph):
    run_graph("nested", "nested-1", {"log": []})
    namespaces = list(Checkpoint.objects.filter(thread_id="nested-1").values_list("checkpoint_ns", flat=True).distinct())
    inner = next(ns for ns in namespaces if ns)
    client = client_for(operator_user)
    url = reverse("timetravel:thread_detail", args=["nested-1"])
    page = client.get(url).content.decode()
    assert "namespaces:" in page and inner in page
    sub = client.get(url, {"ns": inner})
    assert sub.status_code == 200
    assert "inside" in sub.content.decode()
    assert client.get(url, {"ns": inner, "format": "json"}).json()["state"]["checkpoint"]["checkpoint_ns"] == inner


def test_graph_filter_takes_any_graph_name(sqlite_console, operator_user):
    make_threads("default", 3)
    Thread.objects.filter(thread_id="bulk-00001").update(graph_id="elsewhere")
    data = client_for(operator_user).get(reverse("timetravel:thread_list"), {"graph": "elsewhere", "format": "json"})
    assert rows(data) == ["bulk-00001"]


def test_page_queries_with_pytest_djangos_guard(sqlite_console, operator_user, run_graph,
                                                django_assert_max_num_queries):
    """The same bounds through pytest-django's own fixture (SQLite: one connection)."""
    client = client_for(operator_user)
    run_graph("demo", "long", user_message("Where is my order #1001?"))
    for many in (False, True):
        if many:
            make_threads("default", 300)
            for i in range(25):
                run_graph("demo", "long", user_message(f"Where is my order #{1000 + i}?"))
        with django_assert_max_num_queries(8):
            assert client.get(reverse("timetravel:thread_list")).status_code == 200
        with django_assert_max_num_queries(16):
            assert client.get(reverse("timetravel:thread_detail", args=["long"])).status_code == 200
        with django_assert_max_num_queries(10):
            assert client.get(reverse("timetravel:inbox")).status_code == 200
