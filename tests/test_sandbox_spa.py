"""The sandbox for a single-page application, over HTTP: the SPA client and its Allowed Callback
URLs, Logout URLs and Web Origins; CORS (preflight included) for those origins only; the SSO
session; ``prompt=none`` with ``response_mode=query`` and ``web_message``; unframeable login pages;
and the options' checks. The same flows in Chromium with Auth0's SDK: ``test_browser_spa.py``."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from linking_toolkit.sandbox import Sandbox

APP = "http://127.0.0.1:5555"  # the app's origin (nothing listens there: the browser is httpx)
CALLBACK = APP + "/callback"
LOGOUT = APP + "/bye"
FRAMED_ELSEWHERE = "http://localhost:7777/cb"  # an allowed callback whose origin is no web origin
OTHER = "http://evil.example:8080"
DATABASE = "Username-Password-Authentication"
HIDDEN = re.compile(r'name="(tx|csrf)" value="([^"]+)"')


@pytest.fixture(scope="module")
def tenant() -> Iterator[Sandbox]:
    with Sandbox(seed=7, spa_callback_urls=[CALLBACK, FRAMED_ELSEWHERE], spa_logout_urls=[LOGOUT],
                 spa_web_origins=[APP]) as sandbox:
        yield sandbox


@pytest.fixture
def browser(tenant: Sandbox) -> Iterator[httpx2.Client]:
    """A browser of its own (its own cookie jar) that does not follow redirects."""
    with httpx2.Client(base_url=tenant.base_url, follow_redirects=False) as client:
        yield client


def authorize_params(tenant: Sandbox, **extra: str) -> dict[str, str]:
    verifier = secrets.token_urlsafe(40)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return {"client_id": tenant.spa_client_id, "redirect_uri": CALLBACK, "response_type": "code",
            "scope": "openid profile email read:current_user", "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8), "audience": tenant.management_audience,
            "code_challenge": challenge, "code_challenge_method": "S256", "verifier": verifier,
            **extra}


def authorize(browser: httpx2.Client, params: dict[str, str]) -> httpx2.Response:
    return browser.get("/authorize", params={k: v for k, v in params.items() if k != "verifier"})


def query_of(response: httpx2.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


def log_in(tenant: Sandbox, browser: httpx2.Client, params: dict[str, str]) -> httpx2.Response:
    """Through the login page with Ada's email and password; the answer to the app."""
    to_login = authorize(browser, params)
    assert to_login.status_code == 302 and "u/login?tx=" in to_login.headers["location"]
    page = browser.get("/u/login", params=parse_qs(urlsplit(to_login.headers["location"]).query))
    fields = dict(HIDDEN.findall(page.text))
    ada = tenant.demo_user("ada@example.com")
    return browser.post("/u/login", data={**fields, "connection": DATABASE, "action": "login",
                                          "email": ada["email"], "password": ada["password"]})


def posted(page: httpx2.Response) -> tuple[str, dict[str, object]]:
    """The origin a web_message page posts to, and the message."""
    origin = re.search(r"var targetOrigin = (\".*?\");", page.text)
    message = re.search(r"response: (\{.*?\})\};", page.text)
    assert origin and message, page.text
    return json.loads(origin.group(1)), json.loads(message.group(1))


# -- the client and its settings -------------------------------------------------------------------

def test_the_spa_client_is_in_info_and_takes_only_its_exact_callbacks(tenant: Sandbox, browser) -> None:
    assert tenant.info()["spa_client_id"] == tenant.spa_client_id != tenant.client_id
    to_login = authorize(browser, authorize_params(tenant))
    assert to_login.status_code == 302 and "u/login?tx=" in to_login.headers["location"]
    # Another port of the same loopback host: fine for a native app (RFC 8252), not for a browser app.
    refused = authorize(browser, authorize_params(tenant, redirect_uri="http://127.0.0.1:5556/callback"))
    assert refused.status_code == 400 and "location" not in refused.headers


@pytest.mark.parametrize(("option", "value", "says"), [
    ("spa_web_origins", ["http://localhost:3000/app"], "with no path"),
    ("spa_web_origins", ["localhost:3000"], "absolute http or https URL"),
    ("spa_web_origins", ["http://localhost:3000?x=1"], "with no path"),
    ("spa_callback_urls", ["ftp://localhost/cb"], "absolute http or https URL"),
    ("spa_callback_urls", ["http://localhost:3000/#done"], "fragment"),
    ("spa_callback_urls", ["http://localhost:99999/"], "not a valid URL"),
    ("spa_logout_urls", ["http://*.example.com/"], "wildcards"),
    ("spa_logout_urls", [42], "must be a URL string"),
])
def test_bad_option_values_are_refused_in_one_line(option: str, value: list[object], says: str) -> None:
    with pytest.raises(ValueError, match=says) as raised:
        Sandbox(**{option: value})
    assert "\n" not in str(raised.value)


def test_the_cli_refuses_a_bad_origin_as_a_usage_error() -> None:
    done = subprocess.run([sys.executable, "-m", "linking_toolkit.sandbox",
                           "--spa-web-origin", "http://127.0.0.1:3000/path"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    error = done.stderr.strip().splitlines()[-1]
    assert error.endswith("--spa-web-origin: spa_web_origin 'http://127.0.0.1:3000/path' must be "
                          "scheme://host[:port], with no path")


# -- CORS -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "method"), [
    ("/oauth/token", "POST"),
    ("/userinfo", "GET"),
    ("/.well-known/openid-configuration", "GET"),
    ("/.well-known/jwks.json", "GET"),
    ("/api/v2/users/auth0%7C123/identities", "POST"),
    ("/api/v2/users/auth0%7C123/identities/google-oauth2/456", "DELETE"),
])
def test_a_preflight_from_the_web_origin_is_allowed_and_from_another_gets_nothing(
        tenant: Sandbox, browser, path: str, method: str) -> None:
    asked = {"Access-Control-Request-Method": method,
             "Access-Control-Request-Headers": "authorization, content-type, auth0-client"}
    allowed = browser.options(path, headers={"Origin": APP, **asked})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == APP
    assert method in allowed.headers["access-control-allow-methods"]
    assert set(allowed.headers["access-control-allow-headers"].split(", ")) == {
        "authorization", "content-type", "auth0-client"}
    assert "access-control-allow-credentials" not in allowed.headers
    other = browser.options(path, headers={"Origin": OTHER, **asked})
    assert not [h for h in other.headers if h.lower().startswith("access-control-")]


def test_answers_carry_cors_for_the_web_origin_only(tenant: Sandbox, browser) -> None:
    discovery = browser.get("/.well-known/openid-configuration", headers={"Origin": APP})
    assert discovery.headers["access-control-allow-origin"] == APP
    assert "web_message" in discovery.json()["response_modes_supported"]
    api = browser.get("/api/v2/users/auth0%7C123", headers={"Origin": APP})
    assert api.status_code == 401 and api.headers["access-control-allow-origin"] == APP
    assert "Origin" in api.headers["vary"]
    exposed = api.headers["access-control-expose-headers"].lower().split(", ")
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(exposed)
    token = browser.post("/oauth/token", data={"grant_type": "authorization_code", "code": "nope",
                                               "client_id": tenant.spa_client_id, "redirect_uri": CALLBACK},
                         headers={"Origin": APP})
    assert token.status_code == 403 and token.headers["access-control-allow-origin"] == APP
    for response in (browser.get("/.well-known/jwks.json", headers={"Origin": OTHER}),
                     browser.get("/api/v2/users/auth0%7C123", headers={"Origin": OTHER})):
        assert not [h for h in response.headers if h.lower().startswith("access-control-")]


def test_login_pages_logout_and_export_links_get_no_cors(tenant: Sandbox, browser) -> None:
    to_login = authorize(browser, authorize_params(tenant))
    page = browser.get(to_login.headers["location"].replace(tenant.base_url, ""), headers={"Origin": APP})
    export = browser.get("/exports/anything", headers={"Origin": APP})
    for response in (browser.get("/authorize", headers={"Origin": APP}), page, export,
                     browser.options("/u/login", headers={"Origin": APP,
                                                          "Access-Control-Request-Method": "POST"}),
                     browser.get("/v2/logout", headers={"Origin": APP})):
        assert "access-control-allow-origin" not in response.headers, response.request.url


# -- the SSO session ------------------------------------------------------------------------------

def test_a_second_authorize_skips_the_login_and_its_code_gives_tokens(tenant: Sandbox, browser) -> None:
    first = query_of(log_in(tenant, browser, authorize_params(tenant)))
    assert "code" in first
    cookie = next(c for c in browser.cookies.jar if c.name.startswith("sbx_sso_"))
    assert cookie.has_nonstandard_attr("HttpOnly") and not cookie.secure
    assert cookie.get_nonstandard_attr("SameSite") == "Lax"
    assert len(cookie.value) >= 40 and "ada" not in cookie.value.lower()

    params = authorize_params(tenant)
    again = query_of(authorize(browser, params))
    assert set(again) == {"code", "state"} and again["state"] == params["state"]
    tokens = browser.post("/oauth/token", headers={"Origin": APP}, data={
        "grant_type": "authorization_code", "code": again["code"], "client_id": tenant.spa_client_id,
        "redirect_uri": CALLBACK, "code_verifier": params["verifier"]})
    assert tokens.status_code == 200 and tokens.headers["access-control-allow-origin"] == APP
    assert tokens.json()["scope"] == "openid profile email read:current_user"
    me = browser.get("/userinfo", headers={"Authorization": f"Bearer {tokens.json()['access_token']}",
                                           "Origin": APP})
    assert me.headers["access-control-allow-origin"] == APP
    assert me.json()["sub"] == tenant.demo_user("ada@example.com")["user_id"]


def test_prompt_login_and_another_connection_show_the_login_page(tenant: Sandbox, browser) -> None:
    query_of(log_in(tenant, browser, authorize_params(tenant)))
    forced = authorize(browser, authorize_params(tenant, prompt="login"))
    assert forced.status_code == 302 and "u/login?tx=" in forced.headers["location"]
    google = authorize(browser, authorize_params(tenant, connection="google-oauth2"))
    assert google.status_code == 302 and "simulated/google-oauth2/authorize" in google.headers["location"]


def test_max_age_older_than_the_session_asks_for_a_login_again(tenant: Sandbox, browser) -> None:
    """OIDC Core 3.1.2.1: max_age bounds how long ago the person logged in; max_age=0 always logs in.
    A fresh enough session still answers at once, and the ID token says when the login was."""
    query_of(log_in(tenant, browser, authorize_params(tenant)))
    stale = authorize(browser, authorize_params(tenant, max_age="0"))
    assert stale.status_code == 302 and "u/login?tx=" in stale.headers["location"]
    silent = query_of(authorize(browser, authorize_params(tenant, max_age="0", prompt="none")))
    assert silent["error"] == "login_required"
    params = authorize_params(tenant, max_age="3600")
    fresh = query_of(authorize(browser, params))
    tokens = browser.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": fresh["code"], "client_id": tenant.spa_client_id,
        "redirect_uri": CALLBACK, "code_verifier": params["verifier"]}).json()
    keys = KeySet.import_key_set(browser.get("/.well-known/jwks.json").json())
    claims = jwt.decode(tokens["id_token"], keys)
    assert 0 <= time.time() - claims.claims["auth_time"] < 3600
    bad = query_of(authorize(browser, authorize_params(tenant, max_age="soon")))
    assert bad["error"] == "invalid_request"


def test_logout_ends_the_session_and_redirects_to_an_allowed_url_only(tenant: Sandbox, browser) -> None:
    query_of(log_in(tenant, browser, authorize_params(tenant)))
    refused = browser.get("/v2/logout", params={"client_id": tenant.spa_client_id,
                                                 "returnTo": "http://127.0.0.1:5555/elsewhere"})
    assert refused.status_code == 200 and "location" not in refused.headers
    assert "not an allowed logout URL" in refused.text
    assert "code" in query_of(authorize(browser, authorize_params(tenant, prompt="none")))  # still on

    out = browser.get("/v2/logout", params={"client_id": tenant.spa_client_id, "returnTo": LOGOUT})
    assert out.status_code == 302 and out.headers["location"] == LOGOUT
    assert not [c for c in browser.cookies.jar if c.name.startswith("sbx_sso_")]
    after = query_of(authorize(browser, authorize_params(tenant, prompt="none")))
    assert after["error"] == "login_required"


def test_a_session_cookie_from_another_browser_or_tenant_means_nothing(tenant: Sandbox, browser) -> None:
    query_of(log_in(tenant, browser, authorize_params(tenant)))
    name = next(c.name for c in browser.cookies.jar if c.name.startswith("sbx_sso_"))
    with httpx2.Client(base_url=tenant.base_url, cookies={name: secrets.token_urlsafe(32)}) as forged:
        answer = query_of(authorize(forged, authorize_params(tenant, prompt="none")))
    assert answer["error"] == "login_required"


# -- prompt=none ----------------------------------------------------------------------------------

def test_prompt_none_with_query_answers_login_required_or_a_code_never_a_page(tenant: Sandbox,
                                                                               browser) -> None:
    params = authorize_params(tenant, prompt="none")
    none = query_of(authorize(browser, params))
    assert none == {"error": "login_required", "error_description": "Login required",
                    "state": params["state"]}
    query_of(log_in(tenant, browser, authorize_params(tenant)))
    params = authorize_params(tenant, prompt="none", response_mode="query")
    assert set(query_of(authorize(browser, params))) == {"code", "state"}


def test_prompt_none_with_web_message_posts_to_the_web_origin_only(tenant: Sandbox, browser) -> None:
    params = authorize_params(tenant, prompt="none", response_mode="web_message")
    page = authorize(browser, params)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert f"frame-ancestors {APP}" in csp and "x-frame-options" not in page.headers
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce and f'<script nonce="{nonce.group(1)}">' in page.text
    origin, message = posted(page)
    assert origin == APP
    assert message == {"error": "login_required", "error_description": "Login required",
                       "state": params["state"]}
    assert '{type: "authorization_response", response: ' in page.text

    query_of(log_in(tenant, browser, authorize_params(tenant)))
    params = authorize_params(tenant, prompt="none", response_mode="web_message")
    origin, message = posted(authorize(browser, params))
    assert origin == APP and set(message) == {"code", "state"} and message["state"] == params["state"]


def test_web_message_to_an_origin_that_is_no_web_origin_posts_nothing(tenant: Sandbox, browser) -> None:
    query_of(log_in(tenant, browser, authorize_params(tenant)))
    page = authorize(browser, authorize_params(tenant, prompt="none", response_mode="web_message",
                                               redirect_uri=FRAMED_ELSEWHERE))
    assert page.status_code == 400 and "postMessage" not in page.text
    assert "Allowed Web Origins" in page.text
    assert page.headers["x-frame-options"] == "DENY"


def test_the_login_pages_are_unframeable(tenant: Sandbox, browser) -> None:
    to_login = authorize(browser, authorize_params(tenant))
    page = browser.get(to_login.headers["location"].replace(tenant.base_url, ""))
    social = browser.get(authorize(browser, authorize_params(tenant, connection="github"))
                         .headers["location"].replace(tenant.base_url, ""))
    for response in (page, social, browser.get("/activate")):
        assert response.status_code == 200
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["content-security-policy"] == "frame-ancestors 'none'"


def test_on_https_the_session_cookie_is_samesite_none_and_secure() -> None:
    with Sandbox(seed=7, tls=True, spa_callback_urls=[CALLBACK], spa_web_origins=[APP]) as tenant:
        assert tenant.ca_file is not None
        trust = ssl.create_default_context(cafile=tenant.ca_file)
        with httpx2.Client(base_url=tenant.base_url, verify=trust) as browser:
            query_of(log_in(tenant, browser, authorize_params(tenant)))
            cookie = next(c for c in browser.cookies.jar if c.name.startswith("sbx_sso_"))
            assert cookie.secure and cookie.get_nonstandard_attr("SameSite") == "None"
            # The login page's CSRF cookie is never sent over plain http either.
            page = authorize(browser, authorize_params(tenant, prompt="login"))
            csrf = [c for c in browser.cookies.jar if c.name.startswith("sbx_") and "_sso_" not in c.name]
            assert page.status_code == 302 and csrf and all(c.secure for c in csrf)


def test_two_sandboxes_in_one_process_each_allow_their_own_origin_only() -> None:
    other_app = "http://127.0.0.1:6666"
    with Sandbox(spa_web_origins=[APP]) as one, Sandbox(spa_web_origins=[other_app]) as two:
        for tenant, mine, theirs in ((one, APP, other_app), (two, other_app, APP)):
            url = f"{tenant.base_url}/.well-known/jwks.json"
            assert httpx2.get(url, headers={"Origin": mine}).headers["access-control-allow-origin"] == mine
            assert "access-control-allow-origin" not in httpx2.get(url, headers={"Origin": theirs}).headers


def test_a_preflight_takes_no_rate_limit_token() -> None:
    with Sandbox(rate_limit="1/0.01", spa_web_origins=[APP]) as tenant:
        for _ in range(3):
            preflight = httpx2.options(f"{tenant.base_url}/api/v2/users", headers={
                "Origin": APP, "Access-Control-Request-Method": "GET"})
            assert preflight.status_code == 204
        answer = httpx2.get(f"{tenant.base_url}/api/v2/users", headers={"Origin": APP})
        assert answer.status_code == 401  # no bearer; not 429: the bucket's one token was still there
        assert answer.headers["x-ratelimit-remaining"] == "0"


def test_a_reopened_file_keeps_the_spa_client_with_this_runs_callbacks(tmp_path) -> None:
    db = str(tmp_path / "tenant.sqlite")
    with Sandbox(db=db, spa_callback_urls=[CALLBACK], spa_web_origins=[APP]) as first:
        client_id = first.spa_client_id
    moved = "http://127.0.0.1:5555/elsewhere"
    with Sandbox(db=db, spa_callback_urls=[moved], spa_web_origins=[APP]) as again:
        assert again.spa_client_id == client_id
        with httpx2.Client(base_url=again.base_url) as browser:
            assert authorize(browser, authorize_params(again, redirect_uri=CALLBACK)).status_code == 400
            to_login = authorize(browser, authorize_params(again, redirect_uri=moved))
            assert to_login.status_code == 302 and "u/login?tx=" in to_login.headers["location"]
