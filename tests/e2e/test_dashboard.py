"""The dashboard in a real headless Chromium (Debian's, driven by Playwright): sign in with an API
key, change the window, open a drill-down — against the real API on a loopback port, backed by a
real PostgreSQL with a seeded dataset. Writes `build/screenshots/dashboard.png` for people to look at.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from doraflow.api import create_app
from doraflow.api.auth import KeyHasher
from doraflow.api.services.organizations import bootstrap_organization
from doraflow.core import migrate
from doraflow.core.bus import MemoryBus
from doraflow.core.cache import RedisCache
from doraflow.core.database import create_engine, create_session_factory
from doraflow.core.settings import Settings
from tests.integration.api.dataset import seed_dataset
from tests.testenv.common import free_port, unavailable

pytestmark = pytest.mark.e2e

CHROMIUM = Path(os.environ.get("DORAFLOW_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_INSTALLED = CHROMIUM.exists()
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


@dataclass
class Served:
    url: str
    admin_key: str


@pytest.fixture
async def served(database_url: str, redis_url: str) -> AsyncIterator[Served]:
    settings = Settings(api_secret_key="e2e-secret", cache_ttl_seconds=60)
    engine = create_engine(settings, url=database_url)
    await migrate.upgrade(engine)
    factory = create_session_factory(engine)
    async with factory() as session:
        registration = await bootstrap_organization(
            session, KeyHasher.from_settings(settings), name="Acme Corp", slug="acme"
        )
    assert registration.admin_key is not None
    await seed_dataset(factory, registration.organization.id, days=200)
    cache = RedisCache(redis_url)
    bus = MemoryBus()
    app = create_app(settings, factory, cache, bus)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", access_log=False)
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield Served(f"http://127.0.0.1:{port}", registration.admin_key.secret)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        await cache.close()
        await engine.dispose()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM_INSTALLED:
        unavailable(f"{CHROMIUM} is missing; run scripts/testenv chromium (apt-get install chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


async def ready(page: Page) -> None:
    await page.wait_for_selector("body[data-state=ready]", timeout=30_000)


async def test_sign_in_change_window_and_drill_down(served: Served, browser: Browser) -> None:
    page = await browser.new_page(viewport={"width": 1600, "height": 1000})
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            problems.append(f"{message.type}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    await page.goto(served.url + "/")
    await page.wait_for_selector("#login:not([hidden])")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "login.png"))

    # A wrong key is refused with a message, and nothing is shown.
    await page.fill("#api-key", "dfk_00000000_not-a-real-key-but-long-enough-0000")
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#login-error:not([hidden])")
    assert "unknown API key" in (await page.text_content("#login-error") or "")
    problems.clear()  # the refused request is logged by the browser as a 401, which is expected

    await page.fill("#api-key", served.admin_key)
    await page.click("#login-form button[type=submit]")
    await ready(page)
    assert await page.is_visible("#app")
    assert await page.evaluate("sessionStorage.getItem('doraflow.key')") == served.admin_key
    assert await page.text_content("#org-name") == "Acme Corp"

    tiles = page.locator("#tiles .tile")
    assert await tiles.count() == 5
    frequency = page.locator('.tile[data-metric="deployment_frequency"] .number')
    assert (await frequency.text_content() or "—") != "—"
    assert await page.locator('.tile[data-metric="lead_time_for_changes"] .tier').count() == 1
    assert "30 days" in (await page.text_content("#scope-subtitle") or "")

    # Change the window: the page re-queries and says so.
    await page.click('#filter-window button[data-window="90d"]')
    await expect(page.locator("#scope-subtitle")).to_contain_text("90 days")
    await ready(page)
    assert "window=90d" in page.url
    assert await page.locator('#filter-window button.active[data-window="90d"]').count() == 1

    # (Playwright evaluates string predicates with eval, which the page's CSP rightly refuses:
    # waits below use locators.)
    # Open a drill-down from a tile: the pull requests behind lead time.
    await page.click('.tile[data-metric="lead_time_for_changes"]')
    await ready(page)
    assert await page.locator('.tabs button.active[data-tab="pull-requests"]').count() == 1
    rows = page.locator("#drill-table tbody tr")
    assert await rows.count() == 25
    assert await page.is_visible("#drill-more")
    await page.click("#drill-more")
    await expect(rows).to_have_count(50)

    # And the deployments tab.
    await page.click('.tabs button[data-tab="deployments"]')
    await ready(page)
    header = await page.locator("#drill-table thead").text_content() or ""
    assert "Revision" in header
    assert await page.locator("#drill-table tbody tr").count() > 0

    # Narrow to a team, back to the default window, and keep a picture for people.
    await page.select_option("#filter-team", label="Payments")
    await ready(page)
    await page.click('#filter-window button[data-window="30d"]')
    await ready(page)
    assert "Payments" in (await page.text_content("#scope-title") or "")
    await page.click('.tabs button[data-tab="pull-requests"]')
    await ready(page)
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    await page.screenshot(path=str(SCREENSHOTS / "dashboard-above-the-fold.png"))

    assert problems == []

    # Signing out forgets the key.
    await page.click("#logout")
    await page.wait_for_selector("#login:not([hidden])")
    assert await page.evaluate("sessionStorage.getItem('doraflow.key')") is None
