"""The sandbox's login pages, driven over HTTP as a person would (``Sandbox.approve_browser`` and
``approve_device``), and what those pages refuse: wrong passwords, forged or replayed forms."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
from test_sandbox_auth import REDIRECT

from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.connections import DATABASE
from linking_toolkit.sandbox.driver import LoginPageError


def start(tenant: Sandbox, **extra: str) -> tuple[str, str]:
    """An authorize URL for the native client, and its PKCE verifier."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"response_type": "code", "client_id": tenant.client_id, "redirect_uri": REDIRECT,
              "scope": "openid profile email", "state": secrets.token_urlsafe(8), "nonce": "n-1",
              "code_challenge": challenge, "code_challenge_method": "S256", **extra}
    return f"{tenant.base_url}/authorize?{urlencode(params)}", verifier


def finish(tenant: Sandbox, redirected: str, verifier: str) -> dict[str, str]:
    """Exchange the code in ``redirected`` and return the ID token's claims (unverified here: the
    signature checks live in test_sandbox_auth.py)."""
    code = parse_qs(urlsplit(redirected).query)["code"][0]
    body = httpx2.post(f"{tenant.base_url}/oauth/token", data={
        "grant_type": "authorization_code", "client_id": tenant.client_id, "code": code,
        "code_verifier": verifier, "redirect_uri": REDIRECT}).json()
    payload = body["id_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.mark.parametrize(("connection", "email", "existing"), [
    (DATABASE, "grace@example.com", True),
    ("google-oauth2", "alan@example.com", True),
    ("facebook", "margaret@example.com", True),
    ("github", "grace@example.com", True),
    ("github", "margaret@example.com", False),  # known to GitHub, never logged in to this tenant
])
def test_browser_login_on_each_connection(sandbox: Sandbox, connection: str, email: str,
                                          existing: bool) -> None:
    url, verifier = start(sandbox)
    state = parse_qs(urlsplit(url).query)["state"][0]
    redirected = sandbox.approve_browser(url, connection=connection, email=email)
    assert redirected.startswith(REDIRECT + "?")
    assert parse_qs(urlsplit(redirected).query)["state"] == [state]
    claims = finish(sandbox, redirected, verifier)
    provider = "auth0" if connection == DATABASE else connection
    assert claims["sub"].startswith(provider + "|")
    assert claims["email"] == email and claims["nonce"] == "n-1"

    # A second login is the same user (the first social login created it, like Auth0).
    url2, verifier2 = start(sandbox)
    again = finish(sandbox, sandbox.approve_browser(url2, connection=connection, email=email), verifier2)
    assert again["sub"] == claims["sub"]


def test_connection_parameter_skips_the_chooser(sandbox: Sandbox) -> None:
    url, _ = start(sandbox, connection="google-oauth2")
    first = httpx2.get(url)
    assert first.status_code == 302 and first.headers["location"].startswith("/simulated/google-oauth2/")
    url, _ = start(sandbox, connection=DATABASE)
    page = httpx2.get(url, follow_redirects=True)
    assert 'id="database-login"' in page.text and "Continue with" not in page.text


def test_login_page_lists_every_connection(sandbox: Sandbox) -> None:
    url, _ = start(sandbox)
    page = httpx2.get(url, follow_redirects=True)
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    for social in ("google-oauth2", "facebook", "github"):
        assert f'id="connection-{social}"' in page.text
    assert 'name="password"' in page.text and 'name="csrf"' in page.text


def test_wrong_password_shows_an_error(sandbox: Sandbox) -> None:
    url, _ = start(sandbox)
    with pytest.raises(LoginPageError, match=r"Wrong email or password\."):
        sandbox.approve_browser(url, connection=DATABASE, email="ada@example.com", password="nope")
    with pytest.raises(LoginPageError, match=r"Wrong email or password\."):
        sandbox.approve_browser(url, connection=DATABASE, email="nobody@example.com", password="nope")


@pytest.mark.parametrize("connection", [DATABASE, "google-oauth2"])
def test_deny_sends_access_denied(sandbox: Sandbox, connection: str) -> None:
    url, _ = start(sandbox)
    state = parse_qs(urlsplit(url).query)["state"][0]
    redirected = sandbox.approve_browser(url, connection=connection, email="alan@example.com", deny=True)
    params = parse_qs(urlsplit(redirected).query)
    assert params["error"] == ["access_denied"] and params["state"] == [state]
    assert "code" not in params


def test_unknown_account_on_the_provider_page(sandbox: Sandbox) -> None:
    url, _ = start(sandbox)
    with pytest.raises(LoginPageError, match="account"):
        sandbox.approve_browser(url, connection="facebook", email="ada@example.com")


def _login_form(client: httpx2.Client, tenant: Sandbox) -> tuple[str, dict[str, str]]:
    url, _ = start(tenant)
    page = client.get(url, follow_redirects=True)
    fields = dict(re.findall(r'name="(tx|csrf)" value="([^"]+)"', page.text))
    return str(page.url), fields


def test_forms_need_the_csrf_token_and_its_cookie(sandbox: Sandbox) -> None:
    ada = sandbox.demo_user("ada@example.com")
    login = {"connection": DATABASE, "email": ada["email"], "password": ada["password"]}
    with httpx2.Client() as browser:
        page_url, fields = _login_form(browser, sandbox)
        forged = browser.post(page_url.split("?")[0], data={**login, "tx": fields["tx"], "csrf": "guess"})
        assert forged.status_code == 403 and "did not come from this page" in forged.text
    # Another site's form carries the field it saw but never the victim's cookie.
    cross_site = httpx2.post(f"{sandbox.base_url}/u/login", data={**login, **fields})
    assert cross_site.status_code == 403
    with httpx2.Client() as browser:
        page_url, fields = _login_form(browser, sandbox)
        done = browser.post(page_url.split("?")[0], data={**login, **fields})
        assert done.status_code == 302 and done.headers["location"].startswith(REDIRECT)
        replay = browser.post(page_url.split("?")[0], data={**login, **fields})
        assert replay.status_code == 403  # a finished login cannot be finished twice


def test_pages_refuse_bad_input_without_a_500(sandbox: Sandbox) -> None:
    base = sandbox.base_url
    assert httpx2.get(f"{base}/u/login").status_code == 400
    assert httpx2.get(f"{base}/u/login", params={"tx": "nope"}).status_code == 400
    assert httpx2.get(f"{base}/simulated/myspace/authorize", params={"tx": "x"}).status_code == 404
    assert httpx2.get(f"{base}/simulated/{DATABASE}/authorize", params={"tx": "x"}).status_code == 404
    assert httpx2.get(f"{base}/simulated/github/authorize", params={"tx": "x"}).status_code == 400
    assert httpx2.post(f"{base}/simulated/github/authorize", data={}).status_code == 403
    assert httpx2.post(f"{base}/u/login", data={"tx": "x", "csrf": "y"}).status_code == 403
    assert httpx2.post(f"{base}/activate/confirm", data={}).status_code == 403
    assert httpx2.get(f"{base}/authorize").status_code == 400
    with httpx2.Client() as browser:
        page_url, fields = _login_form(browser, sandbox)
        other = browser.post(page_url.split("?")[0], data={**fields, "connection": "google-oauth2",
                                                          "email": "a@b.c", "password": "x"})
        assert other.status_code == 400
        empty = browser.post(page_url.split("?")[0], data={**fields, "connection": DATABASE})
        assert empty.status_code == 400 and "Enter your email and password." in empty.text
        sub = browser.get(f"{base}/simulated/github/authorize", params={"tx": fields["tx"]})
        assert sub.status_code == 200
        wrong_sub = browser.post(f"{base}/simulated/github/authorize", data={**fields, "sub": "123"})
        assert wrong_sub.status_code == 400


def test_activation_page(sandbox: Sandbox) -> None:
    base = sandbox.base_url
    started = httpx2.post(f"{base}/oauth/device/code", data={"client_id": sandbox.client_id,
                                                             "scope": "openid"}).json()
    page = httpx2.get(started["verification_uri_complete"])
    assert page.status_code == 200 and started["user_code"] in page.text
    wrong = httpx2.post(f"{base}/activate", data={"user_code": "BBBB-BBBB"})
    assert wrong.status_code == 400 and "invalid or has expired" in wrong.text
    # A person may type the code in lower case and without the dash.
    typed = started["user_code"].replace("-", "").lower()
    confirm = httpx2.post(f"{base}/activate", data={"user_code": typed})
    assert confirm.status_code == 200 and started["user_code"] in confirm.text
    with pytest.raises(LoginPageError, match="invalid or has expired"):
        sandbox.approve_device("ZZZZ-ZZZZ", connection="github", email="grace@example.com")
