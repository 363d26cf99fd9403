"""Real-browser fixtures: the app served on loopback, and Debian's Chromium driven by Playwright.

Chromium is `/usr/bin/chromium` (installed by scripts/install-system-packages.sh), never a
downloaded browser. The microphone is Chromium's fake device, so the level meter moves.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from werkzeug.serving import make_server

import store
from app import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--use-fake-device-for-media-stream",
]
FAKE_MEDIA_UI = "--use-fake-ui-for-media-stream"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEST_OUTPUT = PROJECT_ROOT / "test-output"
AXE_SCRIPT = PROJECT_ROOT / "node_modules" / "axe-core" / "axe.min.js"


class LiveServer:
    """A Flask app served by Werkzeug in a thread on 127.0.0.1 (an OS-chosen port)."""

    def __init__(self, app) -> None:
        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._server.shutdown()
        self._thread.join(10)

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest.fixture
def browser_app(tmp_path):
    """A local-mode app on its own SQLite database, for pages seen in the browser."""
    database_url = f"sqlite:///{tmp_path / 'browser.db'}"
    migration_store = store.Store(database_url)
    migration_store.upgrade()
    migration_store.dispose()
    flask_app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "INSTANCE_PATH": tmp_path / "instance",
            "SECRET_KEY": "browser-test-secret",
            "KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "AUTH_MODE": "local",
            "RATELIMIT_ENABLED": False,
        }
    )
    yield flask_app
    flask_app.extensions["store"].dispose()


@pytest.fixture
def live_server(browser_app) -> Iterator[LiveServer]:
    with LiveServer(browser_app) as server:
        yield server


# Module scope, not session: Playwright's sync API keeps an event loop running in the main thread
# while it is open, and the asyncio tests of other modules could not start theirs.
@pytest.fixture(scope="module")
def playwright_instance():
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_instance) -> Iterator[Browser]:
    """Chromium that grants the (fake) microphone without asking."""
    chromium = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, FAKE_MEDIA_UI])
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def browser_without_microphone_consent(playwright_instance) -> Iterator[Browser]:
    """Chromium with no automatic media consent: a microphone request is denied."""
    chromium = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def context(browser) -> Iterator[BrowserContext]:
    browser_context = browser.new_context(viewport={"width": 1280, "height": 800})
    yield browser_context
    browser_context.close()


@pytest.fixture
def page(context) -> Page:
    return context.new_page()


def run_axe(page: Page) -> list[dict]:
    """axe-core's serious and critical violations on the current page (axe-core pinned in package.json)."""
    # Evaluated through DevTools: the page's CSP (rightly) refuses injected script tags.
    page.evaluate(AXE_SCRIPT.read_text(encoding="utf-8"))
    results = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": violation["id"], "impact": violation["impact"], "nodes": [n["target"] for n in violation["nodes"]]}
        for violation in results["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


def save_screenshot(page: Page, name: str) -> Path:
    """Write a screenshot under test-output/ for review."""
    TEST_OUTPUT.mkdir(exist_ok=True)
    path = TEST_OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
