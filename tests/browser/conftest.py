"""A live console for the browser tests: daphne (ASGI, so websockets work) in a
subprocess on the SQLite test database file, seeded with the demo threads, and
Debian's Chromium driven by Playwright.

pytest-django's `live_server` is WSGI and cannot serve websockets, hence daphne. The
tests are transactional: the seed is committed, so the server process sees it, and the
database is flushed after each test.
"""

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from tests.ports import free_port

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PASSWORD = "console-pw"


def pytest_collection_modifyitems(items):
    browser_items = [item for item in items if "tests/browser" in str(item.fspath)]
    for item in browser_items:
        # Also makes pytest-django create the test database before `live_console` runs.
        item.add_marker(pytest.mark.django_db(transaction=True, databases=["default"]))
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true but there is no Chromium at {CHROMIUM}")
    for item in browser_items:
        item.add_marker(pytest.mark.skip(reason=f"no Chromium at {CHROMIUM}"))




def _seed():
    from django.contrib.auth.models import Permission, User

    from checkpoints.saver import DjangoSaver
    from timetravel.seed import seed_demo

    olivia = User.objects.create_user("olivia", password=PASSWORD, is_staff=True)
    olivia.user_permissions.add(*Permission.objects.filter(content_type__app_label="timetravel"))
    User.objects.create_user("oscar", password=PASSWORD, is_staff=False)
    seed_demo(DjangoSaver(using="default", hot_tier=None, blob_store=None))
    from store.store import DjangoStore

    store = DjangoStore(using="default")
    store.put(("users", "ada", "prefs"), "theme", {"kind": "preference", "value": "dark"})
    store.put(("users", "ada", "prefs"), "language", {"kind": "preference", "value": "en"})
    store.put(("users", "ada", "facts"), "job", {"kind": "fact", "value": "wrote the first program"})
    store.put(("users", "grace"), "ship", {"kind": "fact", "value": "COBOL"})


@pytest.fixture(scope="session")
def live_server_url(django_db_setup, tmp_path_factory):
    db_file = settings.DATABASES["default"]["NAME"]
    port = free_port()
    var_dir = tmp_path_factory.mktemp("console-var")
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("REDIS_", "CHECKPOINTS_", "BLOB_", "TIMETRAVEL_", "PYTEST_"))
    }
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.test_settings",  # same hashers as the test process
        "DATABASE_URL": f"sqlite:///{db_file}",
        "VAR_DIR": str(var_dir),
        "DEBUG": "1",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    })
    daphne = shutil.which("daphne", path=str(Path(sys.executable).parent)) or "daphne"
    log = open(var_dir / "daphne.log", "wb")
    server = subprocess.Popen(
        [daphne, "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base_url + "/admin/login/", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("daphne did not start:\n" + (var_dir / "daphne.log").read_text()) from None
                time.sleep(0.2)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture
def live_console(live_server_url, transactional_db):
    """The server's URL, with users and demo threads committed for this test."""
    _seed()
    return live_server_url


@pytest.fixture(scope="module")
def browser(live_server_url):
    """Chromium for one module. Playwright's sync API keeps an event loop set on the
    main thread, which Django's async-safety check takes for async code: the check is
    lifted while the browser is open, and only then."""
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield from _chromium(sync_playwright)
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _chromium(sync_playwright):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def login(page, base_url, username="olivia"):
    page.goto(base_url + "/threads/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")


@pytest.fixture
def page(browser, live_console):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(10_000)
    page = context.new_page()
    login(page, live_console)
    yield page
    context.close()


def shot(page, name):
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
