"""The dashboard in headless Chromium: sign in, open an at-risk account, open a citation, see it highlighted.

Uses the system Chromium (Debian package ``chromium``, installed by the project's setup step: ``make test``
runs ``make browser``) driven by playwright-python; a test body never installs anything, so without Chromium
the test skips. It never downloads a browser. The app runs in uvicorn on a free port.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import httpx
import pytest

from api.app import create_app
from api.testing import make_settings, seed_tenant

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _ensure_chromium() -> str:
    found = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not found:
        pytest.skip(f"{CHROMIUM} is missing (`make browser` installs it with apt-get when run as root)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(tmp_path):
    import uvicorn

    app = create_app(make_settings(home=tmp_path / "home"), webhooks=False, index_vectors=False)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            st = app.state.ht
            seeded = seed_tenant(client, st.store, st.service, "acme")
            # a healthy account beside it, so "at risk" is a choice the test makes
            from datetime import timedelta

            from api.service import today

            client.put("/v1/accounts", headers=seeded.write, json={"accounts": [{"account_id": "fine-1",
                                                                                 "name": "Fine Ltd"}]})
            pts = [{"account_id": "fine-1", "date": (today() - timedelta(days=d)).isoformat(),
                    "metric": m, "value": v}
                   for d in range(0, 90, 7) for m, v in (("active_users", 118 - d / 10), ("seats_contracted", 120),
                                                         ("nps", 60))]
            assert client.post("/v1/usage", headers=seeded.write, json={"points": pts}).status_code == 201
            yield base, seeded, client
    finally:
        server.should_exit = True
        thread.join(10)


def test_open_at_risk_account_and_see_highlighted_citation(live_server):
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = _ensure_chromium()
    base, seeded, client = live_server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
                       else route.abort())  # prove there is no CDN: anything off-host fails

            # sign in through the login field
            page.goto(f"{base}/dashboard/")
            page.wait_for_selector("#login:not([hidden])")
            page.fill("#key-input", seeded.read_token)
            page.click("#login-form button[type=submit]")
            page.wait_for_selector("a.account-link")
            assert page.locator("#tier-chart svg rect").count() == 4
            assert "tenant acme" in page.inner_text("#who")

            risky = page.locator("tr[data-tier='At Risk'] a.account-link, tr[data-tier='Critical'] a.account-link")
            assert risky.count() >= 1
            assert page.locator("tr[data-tier='At Risk'], tr[data-tier='Critical']").first \
                .locator("a.account-link").inner_text() == "Acme Corp"
            risky.first.click()

            page.wait_for_selector("#account:not([hidden])")
            page.wait_for_function("document.querySelector('#acct-name').textContent === 'Acme Corp'")
            page.wait_for_selector("#history-chart svg circle")
            history = client.get(f"/v1/accounts/{seeded.account_id}/history", headers=seeded.read).json()
            assert page.locator("#history-chart svg circle").count() == len(history["points"])
            assert page.locator("#contributions .contrib").count() >= 3

            button = page.locator("#changes button.citation").first
            button.wait_for()
            source_id = button.get_attribute("data-source")
            start, end = int(button.get_attribute("data-start")), int(button.get_attribute("data-end"))
            button.click()
            mark = page.locator("#source-text mark")
            mark.wait_for(state="visible")
            doc = client.get(f"/v1/documents/{source_id}", headers=seeded.read).json()
            quote = doc["text"][start:end]
            assert mark.text_content() == quote
            assert quote.strip()
            assert " ".join(quote.split())[:40] in " ".join(button.inner_text().split())
            full = page.locator("#source-text").text_content()
            assert full == doc["text"]  # the whole source, with the quote highlighted in place
        finally:
            browser.close()


def test_dashboard_link_with_key_in_fragment_signs_in(live_server):
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = _ensure_chromium()
    base, seeded, _ = live_server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{base}/dashboard/#key={seeded.read_token}")  # what `healthtrace serve` prints
            page.wait_for_selector("a.account-link")
            assert "key=" not in page.url  # the key does not linger in the address bar
            page.click("#logout")
            page.wait_for_selector("#login:not([hidden])")
        finally:
            browser.close()
