"""The console as an operator sees it, in headless Chromium against daphne."""

import json
import re

from playwright.sync_api import expect

from .conftest import PASSWORD, shot

LIVE = "#live-indicator.on"


def tree_rows(page):
    return page.locator("#tree tr.tree-row")


def test_log_in_and_find_a_thread_by_metadata(page, live_console):
    expect(page.locator("#threads")).to_be_visible()
    expect(page.locator("#threads tbody tr")).to_have_count(6)
    shot(page, "thread-list")
    page.fill("#id_meta_key", "customer")
    page.fill("#id_meta_value", "Grace Hopper")
    page.click("#thread-search button[type=submit]")
    rows = page.locator("#threads tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-thread-id", "demo-02-awaiting-approval")
    expect(rows.first.locator(".badge")).to_have_text("interrupted")
    shot(page, "thread-list-search")
    page.click("text=demo-02-awaiting-approval")
    expect(page.locator("h1.thread-title")).to_contain_text("demo-02-awaiting-approval")


def test_open_the_tree_fork_an_earlier_checkpoint_and_see_the_branch(page, live_console):
    page.goto(live_console + "/threads/demo-01-finished/")
    expect(tree_rows(page)).to_have_count(10)
    expect(page.locator("#tree tr[data-lane='1']")).to_have_count(0)
    expect(page.locator("#conversation .msg")).to_have_count(4)
    shot(page, "thread-detail")

    # The first turn's checkpoint after `classify` (step 1): the next node is `draft`.
    page.click("#tree tr[data-source='loop']:has(td.step:text-is('step 1')) a.cid")
    expect(page.locator("#next-nodes")).to_have_text("draft")
    page.click("#raw-link")
    raw = json.loads(page.locator("#raw-json").inner_text())
    assert raw["order_id"] == "1000" and raw["intent"] == "order_status"
    page.click("#fork-link")

    edited = {**raw, "order_id": "4242"}
    page.fill("#id_values", json.dumps(edited, indent=2))
    page.check("#id_continue_run")
    page.click("#preview-button")
    preview = page.locator("#fork-preview")
    expect(preview).to_contain_text("order_id")
    expect(preview).to_contain_text('"4242"')
    shot(page, "fork-preview")

    page.click("#create-button")
    expect(page.locator(".messagelist")).to_contain_text("continued the run")
    # The fork opened a branch: a second lane, marked as a branch, sourced from an update.
    branch = page.locator("#tree tr:has(.badge.branch)")
    expect(branch).to_have_count(1)
    expect(branch).to_have_attribute("data-source", "update")
    expect(page.locator("#tree tr[data-lane='1']").first).to_be_visible()
    expect(tree_rows(page)).to_have_count(13)  # the fork, then draft and execute of the continued run
    page.goto(live_console + "/threads/demo-01-finished/")
    expect(page.locator("#conversation")).to_contain_text("Order #4242 is on its way")
    shot(page, "thread-fork-branch")


def test_invalid_fork_json_is_shown_on_the_form(page, live_console):
    page.goto(live_console + "/threads/demo-03-approved/")
    page.click("#fork-link")
    page.fill("#id_values", '{"amount": 1,,}')
    page.click("#create-button")
    expect(page.locator(".errorlist")).to_contain_text("Invalid JSON")
    shot(page, "fork-invalid-json")


def test_approve_in_the_inbox_and_watch_the_thread_page_update_live(page, live_console):
    thread_page = page
    thread_page.goto(live_console + "/threads/demo-02-awaiting-approval/")
    expect(thread_page.locator(LIVE)).to_have_text("live")
    expect(tree_rows(thread_page)).to_have_count(4)
    expect(thread_page.locator(".live-status-line .badge")).to_have_text("interrupted")
    thread_page.evaluate("window.__not_reloaded = true")

    watcher = thread_page.context.new_page()  # a second inbox that should drop the item by itself
    watcher.goto(live_console + "/inbox/")
    expect(watcher.locator(LIVE)).to_have_text("live")
    watcher.evaluate("window.__not_reloaded = true")

    inbox = thread_page.context.new_page()
    inbox.goto(live_console + "/inbox/")
    item = inbox.locator("article[data-thread-id='demo-02-awaiting-approval']")
    expect(item).to_contain_text("Refund $39.90 on order #1007")
    expect(item.locator(".badge.action")).to_have_text("issue_refund")
    shot(inbox, "inbox")
    item.locator("button.accept-button").click()
    expect(inbox.locator(".messagelist")).to_contain_text("Accepted the interrupt on demo-02-awaiting-approval: resumed")
    expect(inbox.locator("#inbox-empty")).to_be_visible()

    # Without a reload: the resumed run's checkpoints (approve, execute) and the new status.
    expect(tree_rows(thread_page)).to_have_count(6)
    expect(thread_page.locator(".live-status-line .badge")).to_have_text("idle")
    expect(thread_page.locator("#runs tr[data-run-id] .badge")).to_have_text("succeeded")
    expect(thread_page.locator("#tree tr.fresh")).to_have_count(2)
    assert thread_page.evaluate("window.__not_reloaded") is True
    shot(thread_page, "thread-live-after-approval")

    expect(watcher.locator("article[data-thread-id='demo-02-awaiting-approval']")).to_have_count(0)
    assert watcher.evaluate("window.__not_reloaded") is True

    thread_page.goto(live_console + "/threads/demo-02-awaiting-approval/")
    expect(thread_page.locator("#conversation")).to_contain_text("I have refunded $39.90 for order #1007.")
    thread_page.goto(live_console + "/audit/")
    expect(page.locator("#audit")).to_contain_text("approve")
    shot(thread_page, "audit-log")


def test_the_inbox_shows_a_new_interrupt_live(page, live_console):
    page.goto(live_console + "/inbox/")
    expect(page.locator(LIVE)).to_have_text("live")
    before = page.locator("article.inbox-item").count()
    page.evaluate("window.__not_reloaded = true")
    # Another tab forks a finished refund back to before the approval, then continues:
    # the run pauses again, and the inbox shows it without a reload.
    other = page.context.new_page()
    other.goto(live_console + "/threads/demo-03-approved/")
    other.click("#tree tr:has(td.step:text-is('step 2')) a.cid")
    expect(other.locator("#next-nodes")).to_have_text("approve")
    other.click("#fork-link")
    values = json.loads(other.locator("#id_values").input_value())
    values["proposal"]["args"]["amount"] = 12.5  # the drafted refund, before its approval
    other.fill("#id_values", json.dumps(values))
    other.check("#id_continue_run")
    other.click("#create-button")
    expect(other.locator(".live-status-line .badge")).to_have_text("interrupted")
    expect(page.locator("article.inbox-item")).to_have_count(before + 1)
    expect(page.locator("article[data-thread-id='demo-03-approved']")).to_contain_text("Refund $12.50")
    expect(page.locator("#inbox-count")).to_have_text(str(before + 1))
    assert page.evaluate("window.__not_reloaded") is True
    shot(page, "inbox-live-new-interrupt")


def test_a_user_who_is_not_staff_is_refused(browser, live_console):
    context = browser.new_context()
    page = context.new_page()
    page.goto(live_console + "/threads/")
    page.fill("#id_username", "oscar")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(re.compile(r"/admin/login/"))
    expect(page.locator(".errornote")).to_contain_text("staff account")
    shot(page, "non-staff-refused")
    page.goto(live_console + "/inbox/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/inbox/"))
    refused = page.evaluate(
        """() => new Promise((resolve) => {
            const ws = new WebSocket(`ws://${location.host}/ws/inbox/`);
            ws.onopen = () => resolve("open");
            ws.onclose = (e) => resolve("closed " + e.code);
        })"""
    )
    assert refused.startswith("closed")
    context.close()


def test_browse_the_store(page, live_console):
    page.goto(live_console + "/threads/")
    page.click("nav.console-nav >> text=Store")
    page.click("#store-namespaces >> text=users")
    page.click("#store-namespaces >> text=ada")
    expect(page.locator("#store-namespaces li a")).to_have_text(["‹ up", "▸ facts/", "▸ prefs/"])
    page.click("#store-namespaces >> text=prefs")
    expect(page.locator("#store-items tbody tr")).to_have_count(2)
    shot(page, "store-namespace")
    page.goto(live_console + "/store/?ns=users")
    page.fill("#id_filter", '{"kind": "fact"}')
    page.click("#store-search button")
    expect(page.locator("#store-results tbody tr")).to_have_count(2)
    shot(page, "store-search")
    page.click("#store-results >> text=job")
    expect(page.locator("#item-value")).to_contain_text("wrote the first program")
