"""The store browser: the namespace tree, a namespace's items, search, one item."""

import pytest
from django.urls import reverse

from timetravel import graphs

from .test_views import client_for, count_page

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture
def items(console):
    store = graphs.store()
    store.put(("users", "ada", "prefs"), "theme", {"kind": "preference", "value": "dark"})
    store.put(("users", "ada", "prefs"), "lang", {"kind": "preference", "value": "en"})
    store.put(("users", "ada", "facts"), "job", {"kind": "fact", "value": "mathematician"})
    store.put(("users", "grace"), "ship", {"kind": "fact", "value": "COBOL"})
    store.put(("docs",), "readme", {"kind": "doc", "value": "<script>alert(1)</script>"})
    return store


def test_the_namespace_tree_and_a_namespaces_items(items, operator_user):
    client = client_for(operator_user)
    url = reverse("timetravel:store_browser")
    top = client.get(url, {"format": "json"}).json()
    assert top["namespaces"] == [["docs"], ["users"]] and top["items"] == []
    users = client.get(url, {"ns": "users", "format": "json"}).json()
    assert users["namespaces"] == [["users", "ada"], ["users", "grace"]]
    prefs = client.get(url, {"ns": "users.ada.prefs", "format": "json"}).json()
    assert [i["key"] for i in prefs["items"]] == ["lang", "theme"]
    assert prefs["items"][1]["namespace"] == ["users", "ada", "prefs"]
    assert prefs["items"][1]["value"] == {"kind": "preference", "value": "dark"}
    page = client.get(url, {"ns": "users.ada"}).content.decode()
    assert "prefs" in page and "facts" in page and "No item in this namespace" in page


def test_search_with_a_filter_under_a_namespace(items, operator_user):
    client = client_for(operator_user)
    url = reverse("timetravel:store_browser")
    found = client.get(url, {"ns": "users", "filter": '{"kind": "fact"}', "format": "json"}).json()["search"]
    assert sorted(i["key"] for i in found) == ["job", "ship"]
    page = client.get(url, {"ns": "users", "filter": '{"kind": "fact"}'}).content.decode()
    assert 'id="store-results"' in page and "COBOL" in page
    bad = client.get(url, {"filter": "[1]"})
    assert "Expected a JSON object" in bad.content.decode()


def test_an_item_page_escapes_and_renders_the_value(items, operator_user):
    client = client_for(operator_user)
    url = reverse("timetravel:store_item")
    page = client.get(url, {"ns": "docs", "key": "readme"}).content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert client.get(url, {"ns": "docs", "key": "readme", "format": "json"}).json()["value"]["kind"] == "doc"
    assert client.get(url, {"ns": "docs", "key": "nope"}).status_code == 404


def test_browsing_never_refreshes_a_ttl(items, operator_user):
    from store.models import StoreItem

    items.put(("tmp",), "soon", {"v": 1}, ttl=5)
    before = StoreItem.objects.using(items.using).get(namespace="tmp", key="soon").expires_at
    client = client_for(operator_user)
    client.get(reverse("timetravel:store_item"), {"ns": "tmp", "key": "soon"})
    client.get(reverse("timetravel:store_browser"), {"ns": "tmp", "filter": '{"v": 1}'})
    assert StoreItem.objects.using(items.using).get(namespace="tmp", key="soon").expires_at == before


def test_store_pages_queries_do_not_grow_with_items(items, operator_user):
    client = client_for(operator_user)
    url = reverse("timetravel:store_browser") + "?ns=users.ada.prefs"
    small = count_page(client, url)
    for i in range(120):
        items.put(("users", "ada", "prefs"), f"k{i:03d}", {"kind": "preference", "i": i})
    assert count_page(client, url) == small


def test_store_pages_are_staff_only(sqlite_console, client, outsider):
    for name in ("timetravel:store_browser", "timetravel:store_item"):
        assert client.get(reverse(name)).status_code == 302
        assert client_for(outsider).get(reverse(name)).status_code == 302
