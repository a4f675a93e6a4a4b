"""The sandbox's login pages, driven over HTTP as a person would (``Sandbox.approve_browser`` and
``approve_device``), and what those pages refuse: wrong passwords, forged or replayed forms. The
login page's demo people (a login by hand with no password), and the pages under a proxy's prefix."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx2
import pytest
from test_sandbox_auth import REDIRECT

from linking_toolkit.proxy_links import proxied_link
from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.connections import DATABASE
from linking_toolkit.sandbox.defaults import DEVICE_CODE
from linking_toolkit.sandbox.driver import LoginPageError, approve_browser, approve_device


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
    return claims_of(body["id_token"])


def claims_of(id_token: str) -> dict[str, str]:
    payload = id_token.split(".")[1]
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
    assert first.status_code == 302 and first.headers["location"].startswith("./simulated/google-oauth2/")
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


# -- logins by hand: the demo people on the login page -----------------------------------------------

DATABASE_PEOPLE = ["ada@example.com", "grace@example.com", "katherine@example.com", "linus@example.com"]


def people_on(page: httpx2.Response) -> list[str]:
    return re.findall(r'class="person"[^>]*data-email="([^"]+)"', page.text)


@pytest.mark.parametrize("users", [0, 300])
def test_login_page_lists_the_demo_people_and_no_password(users: int) -> None:
    with Sandbox(seed=7, users=users) as tenant:  # synthetic users are never listed
        url, _ = start(tenant)
        page = httpx2.get(url, follow_redirects=True)
        assert page.status_code == 200
        assert people_on(page) == DATABASE_PEOPLE
        assert "Ada Lovelace &lt;ada@example.com&gt;" in page.text
        assert "Linus Torvalds &lt;linus@example.com&gt; (email not verified)" in page.text
        assert 'id="database-login"' in page.text  # the email and password form is still there
        for user in tenant.demo_users:
            assert user["password"] not in page.text


def test_choosing_a_person_logs_in_as_them(sandbox: Sandbox) -> None:
    ada = sandbox.demo_user("ada@example.com")
    url, verifier = start(sandbox)
    # No password: the driver presses Ada's button on the login page, as a learner would.
    redirected = approve_browser(url, connection=DATABASE, email="ada@example.com")
    claims = finish(sandbox, redirected, verifier)
    assert claims["sub"] == ada["user_id"] and claims["email"] == "ada@example.com"

    started = httpx2.post(f"{sandbox.base_url}/oauth/device/code",
                          data={"client_id": sandbox.client_id, "scope": "openid"}).json()
    approve_device(sandbox.base_url, started["user_code"], connection=DATABASE, email="grace@example.com")
    grace = sandbox.demo_user("grace@example.com")
    tokens = httpx2.post(f"{sandbox.base_url}/oauth/token", data={
        "grant_type": DEVICE_CODE, "client_id": sandbox.client_id, "device_code": started["device_code"]})
    assert tokens.status_code == 200
    assert claims_of(tokens.json()["id_token"])["sub"] == grace["user_id"]


def test_choosing_needs_the_csrf_token_and_a_listed_person(sandbox: Sandbox, api: httpx2.Client) -> None:
    created = api.post("/users", json={"connection": DATABASE, "email": "eve@example.com",
                                       "password": "Correct-Horse-9"})
    assert created.status_code == 201
    choose = {"connection": DATABASE, "action": "choose"}
    with httpx2.Client() as browser:
        page_url, fields = _login_form(browser, sandbox)
        assert "eve@example.com" not in people_on(browser.get(page_url))  # not a demo person
        target = page_url.split("?")[0]
        forged = browser.post(target, data={**choose, "email": "ada@example.com", "tx": fields["tx"],
                                            "csrf": "guess"})
        assert forged.status_code == 403
        cross_site = httpx2.post(target, data={**choose, "email": "ada@example.com", **fields})
        assert cross_site.status_code == 403  # the field without the cookie
        for email in ("eve@example.com", "alan@example.com", ""):  # not listed on this connection
            refused = browser.post(target, data={**choose, "email": email, **fields})
            assert refused.status_code == 400 and "Choose one of the people listed." in refused.text
        done = browser.post(target, data={**choose, "email": "katherine@example.com", **fields})
        assert done.status_code == 302 and done.headers["location"].startswith(REDIRECT + "?code=")


def test_a_deleted_demo_person_is_no_longer_listed(sandbox: Sandbox, api: httpx2.Client) -> None:
    grace = sandbox.demo_user("grace@example.com")
    assert api.delete(f"/users/{grace['user_id']}").status_code == 204
    url, _ = start(sandbox)
    assert people_on(httpx2.get(url, follow_redirects=True)) == [
        email for email in DATABASE_PEOPLE if email != "grace@example.com"]


def test_a_blocked_demo_person_cannot_be_chosen(sandbox: Sandbox, api: httpx2.Client) -> None:
    grace = sandbox.demo_user("grace@example.com")
    assert api.patch(f"/users/{grace['user_id']}", json={"blocked": True}).status_code == 200
    url, _ = start(sandbox)
    with pytest.raises(LoginPageError, match="blocked"):
        approve_browser(url, connection=DATABASE, email="grace@example.com")


# -- under a proxy's prefix (jupyter-server-proxy on a hub) ------------------------------------------

class PrefixProxy:
    """A browser on ``https://hub.example.org{prefix}`` and what jupyter-server-proxy does between
    it and the sandbox: strip the prefix, forward with ``X-Forwarded-Prefix``, pass Location and
    Set-Cookie back unchanged (a relative Location is left alone by every version of it)."""

    def __init__(self, tenant: Sandbox, prefix: str) -> None:
        self.tenant, self.prefix = tenant, prefix
        self.root = f"https://hub.example.org{prefix}/"
        self.cookies: dict[str, str] = {}
        self.http = httpx2.Client(follow_redirects=False)

    def send(self, method: str, url: str, data: dict[str, str] | None = None) -> httpx2.Response:
        assert url.startswith(self.root), f"{url} left the proxy's prefix"
        response = self.http.request(
            method, f"{self.tenant.base_url}/{url[len(self.root):]}", data=data,
            headers={"X-Forwarded-Prefix": self.prefix, "X-Forwarded-Context": self.prefix,
                     "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())})
        for header in response.headers.get_list("set-cookie"):
            name_value, *attributes = [part.strip() for part in header.split(";")]
            assert f"Path={self.prefix}" in attributes, header  # not sent to other users' servers
            name, _, value = name_value.partition("=")
            if "Max-Age=0" in attributes or not value.strip('"'):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return response

    def forms(self, page: httpx2.Response, url: str) -> dict[str, tuple[str, dict[str, str]]]:
        """Each form of ``page`` by id: its action resolved as the browser would, and its fields."""
        found = {}
        for attrs, body in re.findall(r"<form ([^>]*)>(.*?)</form>", page.text, re.S):
            action = urljoin(url, re.search(r'action="([^"]*)"', attrs).group(1))
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', body))
            found[re.search(r'id="([^"]+)"', attrs).group(1)] = (action, fields)
        assert all(action.startswith(self.root) for action, _ in found.values()), found
        assert "href=" not in page.text
        return found

    def follow(self, response: httpx2.Response, url: str) -> tuple[httpx2.Response, str]:
        while response.is_redirect:
            url = urljoin(url, response.headers["location"])
            if url.startswith(REDIRECT):  # the app's own redirect URI: absolute, on loopback
                return response, url
            response = self.send("GET", url)
        return response, url


def test_pages_under_a_proxy_prefix_keep_every_link_under_it(sandbox: Sandbox) -> None:
    proxy = PrefixProxy(sandbox, f"/user/ada/proxy/{sandbox.port}")
    # A device login, as the prompt's link sends a learner through the hub.
    started = httpx2.post(f"{sandbox.base_url}/oauth/device/code",
                          data={"client_id": sandbox.client_id, "scope": "openid"}).json()
    url = proxied_link(started["verification_uri_complete"], "https://hub.example.org/user/ada/")
    assert url == f"{proxy.root}activate?user_code={started['user_code']}"
    action, fields = proxy.forms(proxy.send("GET", url), url)["activate"]
    confirm = proxy.send("POST", action, {**fields, "user_code": started["user_code"]})
    assert confirm.status_code == 200 and proxy.cookies
    action, fields = proxy.forms(confirm, action)["confirm"]
    login, url = proxy.follow(proxy.send("POST", action, {**fields, "action": "confirm"}), action)
    assert login.status_code == 200 and url.startswith(f"{proxy.root}u/login?tx=")
    forms = proxy.forms(login, url)
    action, fields = forms["person-Username-Password-Authentication-ada"]
    done = proxy.send("POST", action, {**fields, "action": "choose"})
    assert done.status_code == 200 and 'data-result="approved"' in done.text and not proxy.cookies

    # A browser login through the social provider's page, back to the app's loopback redirect URI.
    authorize, _ = start(sandbox)
    url = proxied_link(authorize, "https://hub.example.org/user/ada/")
    login, url = proxy.follow(proxy.send("GET", url), url)
    action, fields = proxy.forms(login, url)["connection-github"]
    url = f"{action}?tx={fields['tx']}"
    assert url.startswith(f"{proxy.root}simulated/github/authorize?tx=")
    upstream = proxy.send("GET", url)
    chosen = next(v for k, v in proxy.forms(upstream, url).items() if k.startswith("choose-"))
    _, back = proxy.follow(proxy.send("POST", chosen[0], {**chosen[1], "action": "allow"}), chosen[0])
    assert back.startswith(REDIRECT + "?code=")


def test_a_malformed_forwarded_prefix_is_not_a_cookie_path(sandbox: Sandbox) -> None:
    url, _ = start(sandbox)
    for prefix in ("/a; Domain=evil.example", "no-slash", "/a b"):
        page = httpx2.get(url, headers={"X-Forwarded-Prefix": prefix})
        assert "Path=/;" in page.headers["set-cookie"] or page.headers["set-cookie"].endswith("Path=/")


# -- guessing is limited, as Auth0's brute-force protection limits it ---------------------------------

def test_ten_wrong_passwords_block_that_user_from_this_address_even_with_the_right_one() -> None:
    """Auth0's brute-force protection: 10 consecutive failures for one user from one address, and
    the token endpoint answers 429 too_many_attempts, the right password included; the login page
    says so in words. Another user from the same address is not blocked."""
    with Sandbox(seed=11) as tenant:
        def password_grant(email: str, password: str) -> httpx2.Response:
            return httpx2.post(f"{tenant.base_url}/oauth/token", data={
                "grant_type": "http://auth0.com/oauth/grant-type/password-realm", "realm": DATABASE,
                "client_id": tenant.client_id, "username": email, "password": password, "scope": "openid"})

        right = tenant.demo_user("ada@example.com")["password"]
        assert password_grant("ada@example.com", right).status_code == 200
        for _ in range(10):
            assert password_grant("ada@example.com", "guess").status_code == 403
        blocked = password_grant("ada@example.com", right)
        assert blocked.status_code == 429
        assert blocked.json() == {"error": "too_many_attempts", "error_description":
                                  "Your account has been blocked after multiple consecutive login attempts."}
        url, _ = start(tenant)
        with pytest.raises(LoginPageError, match="Too many wrong passwords"):
            tenant.approve_browser(url, connection=DATABASE, email="ada@example.com", password=right)
        grace = tenant.demo_user("grace@example.com")["password"]
        assert password_grant("grace@example.com", grace).status_code == 200


def test_nine_wrong_passwords_then_the_right_one_start_the_count_again() -> None:
    with Sandbox(seed=12) as tenant:
        form = {"grant_type": "http://auth0.com/oauth/grant-type/password-realm", "realm": DATABASE,
                "client_id": tenant.client_id, "username": "ada@example.com", "scope": "openid"}
        right = tenant.demo_user("ada@example.com")["password"]
        for _ in range(2):
            for _ in range(9):
                assert httpx2.post(f"{tenant.base_url}/oauth/token",
                                   data={**form, "password": "guess"}).status_code == 403
            assert httpx2.post(f"{tenant.base_url}/oauth/token",
                               data={**form, "password": right}).status_code == 200


def test_wrong_user_codes_are_limited_per_address() -> None:
    """RFC 8628 §5.1: an eight-letter user code is safe only if it cannot be guessed at speed."""
    with Sandbox(seed=13) as tenant:
        started = httpx2.post(f"{tenant.base_url}/oauth/device/code",
                              data={"client_id": tenant.client_id, "scope": "openid"}).json()
        for _ in range(10):
            wrong = httpx2.post(f"{tenant.base_url}/activate", data={"user_code": "BBBB-BBBB"})
            assert wrong.status_code == 400
        blocked = httpx2.post(f"{tenant.base_url}/activate", data={"user_code": started["user_code"]})
        assert blocked.status_code == 429 and "Too many wrong codes" in blocked.text  # the right one too
