"""The original tutorial as a single-page app (``examples/spa-linking``), on Auth0's own SPA SDK
(``@auth0/auth0-spa-js`` from npm, unchanged), in headless Debian Chromium against a sandbox.

The page is served by a static server of its own (another origin than the sandbox, as an SPA and
Auth0 are), which the sandbox lists as the app's Allowed Web Origin and Callback URL. The test logs
in as Ada on the database connection with the email-and-password form, reloads the page (the SDK
gets its tokens back silently: a hidden iframe, ``prompt=none``, ``response_mode=web_message``
and the SSO cookie), links Ada's Google account from a popup, sees it listed, unlinks it and sees
the list empty; then logs out.

The SDK comes from ``examples/spa-linking/node_modules`` (``make test`` runs ``npm ci`` there first).
In CI (``CI=true``) a missing Chromium or node_modules fails this test; elsewhere it is skipped.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2
import pytest
from test_browser import headless_chromium

from linking_toolkit.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "spa-linking"
SDK = EXAMPLE / "node_modules" / "@auth0" / "auth0-spa-js" / "dist" / "auth0-spa-js.production.esm.js"
DATABASE = "Username-Password-Authentication"
WAIT_MS = 60_000  # an upper bound for a slow, shared machine, never a timing under test


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run the browser test: {reason}")
    pytest.skip(reason)


def sdk_installed() -> None:
    if not SDK.is_file():
        _missing("examples/spa-linking/node_modules is missing: run `make test` (it runs npm ci there)")


class _ExampleHandler(SimpleHTTPRequestHandler):
    """The example's files, with ``config.json`` naming the sandbox under test."""

    config: bytes = b"{}"

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/config.json":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(self.config)))
            self.end_headers()
            self.wfile.write(self.config)
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def example_server() -> Iterator[tuple[str, type[_ExampleHandler]]]:
    handler = type("Handler", (_ExampleHandler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(EXAMPLE)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def app_and_tenant() -> Iterator[tuple[str, Sandbox]]:
    sdk_installed()
    with example_server() as (origin, handler):
        with Sandbox(seed=3, spa_callback_urls=[origin + "/"], spa_logout_urls=[origin + "/"],
                     spa_web_origins=[origin]) as tenant:
            handler.config = json.dumps({"domain": tenant.base_url, "clientId": tenant.spa_client_id,
                                         "audience": tenant.management_audience}).encode()
            yield origin, tenant


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with headless_chromium() as chromium:
        yield chromium


def test_in_ci_a_missing_node_modules_fails_instead_of_skipping(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setitem(globals(), "SDK", tmp_path / "missing.js")
    with pytest.raises(pytest.fail.Exception, match="node_modules is missing"):
        sdk_installed()


def test_the_tutorial_in_chromium_logs_in_links_lists_and_unlinks(browser, app_and_tenant) -> None:
    origin, tenant = app_and_tenant
    ada = tenant.demo_user("ada@example.com")
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        # No session yet: the SDK's silent login says login_required, the page offers a login.
        page.goto(origin + "/")
        page.wait_for_selector("#login", state="visible")
        assert page.text_content("#message") == "You are not logged in."

        # Log in on the sandbox's page with Ada's email and password, and come back.
        page.click("#login")
        page.wait_for_url(f"{tenant.base_url}/u/login*")
        page.fill("#email", ada["email"])
        page.fill("#password", ada["password"])
        page.click("#database-login button[type=submit]")
        page.wait_for_selector("#logged-in", state="visible")
        assert page.text_content("#user") == "ada@example.com"
        assert page.text_content("#user-id") == ada["user_id"]
        assert page.text_content("#how") == "(logged in)"
        assert page.url == origin + "/"  # the code and state are gone from the address bar
        page.wait_for_selector("#no-identities", state="visible")

        # A reload: the SDK's tokens were in memory only; the SSO session gives them back, silently.
        login_pages: list[str] = []
        page.on("framenavigated", lambda frame: login_pages.append(frame.url)
                if "/u/login" in frame.url else None)
        page.reload()
        page.wait_for_selector("#logged-in", state="visible")
        assert page.text_content("#how") == "(session restored silently)"
        assert page.text_content("#user-id") == ada["user_id"]
        assert login_pages == []

        # Link Ada's Google account: a second login in a popup, then the link request.
        with page.expect_popup() as popup_info:
            page.click("#link")
        popup = popup_info.value
        popup.wait_for_url(f"{tenant.base_url}/u/login*")  # prompt=login: the session does not answer
        popup.click("#connection-google-oauth2 button")
        # The answer page posts to the app, which closes the popup: no waiting on the popup after this.
        popup.click('form.account[data-email="ada@example.com"] button', no_wait_after=True)
        row = page.wait_for_selector("#identities tr[data-identity^='google-oauth2|']")
        assert popup.is_closed()
        cells = [c.text_content() for c in row.query_selector_all("td")]
        assert cells[:2] == ["google-oauth2", "google-oauth2"] and cells[3] == "ada@example.com"
        assert page.text_content("#message") == "Linked ada@example.com."
        assert page.is_hidden("#no-identities")

        # At the tenant too: Ada's user holds the Google identity.
        admin = _admin_token(tenant)
        held = httpx2.get(f"{tenant.base_url}/api/v2/users/{ada['user_id']}",
                          headers={"Authorization": f"Bearer {admin}"}).json()
        assert [i["provider"] for i in held["identities"]] == ["auth0", "google-oauth2"]

        # Unlink it from its row: the list is empty again, on the page and at the tenant.
        row.query_selector("button").click()
        page.wait_for_selector("#no-identities", state="visible")
        assert page.query_selector_all("#identities tr") == []
        assert page.text_content("#message").startswith("Unlinked google-oauth2|")
        held = httpx2.get(f"{tenant.base_url}/api/v2/users/{ada['user_id']}",
                          headers={"Authorization": f"Bearer {admin}"}).json()
        assert [i["provider"] for i in held["identities"]] == ["auth0"]

        # Log out: back on the page, and the next load finds no session.
        page.click("#logout")
        page.wait_for_url(origin + "/")
        page.wait_for_selector("#login", state="visible")
        assert page.text_content("#message") == "You are not logged in."
    except BaseException:
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        page.screenshot(path=str(ROOT / "test-artifacts" / "spa-failure.png"))
        raise
    finally:
        context.close()


def _admin_token(tenant: Sandbox) -> str:
    answer = httpx2.post(f"{tenant.base_url}/oauth/token", data={
        "grant_type": "client_credentials", "client_id": tenant.m2m_client_id,
        "client_secret": tenant.m2m_client_secret, "audience": tenant.management_audience})
    return str(answer.json()["access_token"])
