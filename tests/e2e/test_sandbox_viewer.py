"""The mail viewer in a real headless browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Running

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: scripts/bootstrap installs Debian's chromium"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_FLAGS)
        try:
            yield browser.new_page(viewport={"width": 1200, "height": 1400})
        finally:
            browser.close()


def test_the_viewer_shows_sent_mail_safely_and_dead_letters_with_reasons(
    dev_sandbox: Running, page: Any, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    # GIVEN the viewer open before anything is sent: what follows arrives by its refresh
    page.goto(dev_sandbox.env["SANDBOX_VIEWER_URL"])
    page.wait_for_selector("#summary:not(:has-text('loading'))")
    hostile_html = (
        "<h1 id='greeting'>Welcome, Ada</h1>"
        "<script>parent.document.title = 'pwned'; document.title = 'pwned';</script>"
        "<img src='x' onerror=\"parent.document.title = 'pwned'\">"
    )
    good = {
        "id": f"viewer-{run}",
        "to": "Ada <ada@example.org>",
        "subject": f"Welcome {run}",
        "html": hostile_html,
        "text": f"Welcome, Ada ({run})",
        "tags": {"kind": "welcome"},
        "headers": {"X-Campaign": f"spring-{run}"},
    }
    status, body = dev_sandbox.post_worker("/send", good)
    assert status == 202, body
    dev_sandbox.enqueue(
        {
            "id": f"viewer-bad-{run}",
            "to": "x@example.org",
            "from": "a@evil.example",
            "subject": "s",
            "text": "t",
        }
    )
    # WHEN the page refreshes by itself
    mail = page.locator(f".mail[data-message-id='viewer-{run}']")
    mail.wait_for(timeout=120_000)
    dead = page.locator(f".dead-letter[data-message-id='viewer-bad-{run}']")
    dead.wait_for(timeout=120_000)
    # THEN the sent mail shows its from, to, subject, tags, headers and text
    meta = mail.locator(".meta").inner_text()
    assert "From: Example Dev <no-reply@dev-mail.example.com>" in meta
    assert "Ada <ada@example.org>" in meta
    assert f"Subject: Welcome {run}" in meta
    assert '"kind":"welcome"' in meta
    assert f'"X-Campaign":"spring-{run}"' in meta
    assert mail.locator("pre.text").inner_text() == good["text"]
    # and its HTML rendered in a sandboxed frame that runs no script
    frame = mail.locator("iframe")
    assert frame.get_attribute("sandbox") == ""
    assert frame.get_attribute("srcdoc") == hostile_html
    assert (
        page.frame_locator(f".mail[data-message-id='viewer-{run}'] iframe")
        .locator("#greeting")
        .inner_text()
        == "Welcome, Ada"
    )
    assert page.title() == "serverless-mail sandbox"
    # and the dead letter with its reason, and each message's status
    assert "not-on-domain" in dead.inner_text()
    assert (
        page.locator(f"#status tr[data-message-id='viewer-{run}'] td").nth(1).inner_text() == "sent"
    )
    assert (
        page.locator(f"#status tr[data-message-id='viewer-bad-{run}'] td")
        .nth(1)
        .inner_text()
        .startswith("dead-lettered")
    )
    page.screenshot(path=str(tmp_path / "viewer.png"), full_page=True)
    # The README's screenshot is made here on demand: SANDBOX_SCREENSHOT=docs/sandbox-viewer.png.
    if target := os.environ.get("SANDBOX_SCREENSHOT"):
        page.screenshot(path=target, full_page=False)
