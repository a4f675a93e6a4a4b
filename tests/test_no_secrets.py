"""No repr, log record, printed line or exception message of the package holds a token or secret.

The whole learner's path runs with the package's loggers at DEBUG: four logins, link, unlink, a
machine client, and a handful of failures; then every text a person could see is searched for
every token, secret, password, code and verifier that went through. The token cache's path too:
every refresh token it kept, rotated, lost to a replay or forgot.
"""

from __future__ import annotations

import json
import logging
import secrets
import traceback
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from test_client_login import GOOGLE

from linking_toolkit import (
    Auth0Error,
    ManagementClient,
    Tenant,
    identities_frame,
    link,
    login,
    start_login,
    unlink,
)
from linking_toolkit.cache import NOOP, READ_WRITE, REAUTH, CacheWarning
from linking_toolkit.identities import linked_accounts
from linking_toolkit.sandbox import Sandbox
from linking_toolkit.tokens import verify_id_token


@pytest.fixture
def sandbox_options() -> dict[str, int]:
    return {"device_poll_interval": 1}  # keep the device login short


def test_no_token_or_secret_anywhere(sandbox: Sandbox, client_tenant, caplog: pytest.LogCaptureFixture,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG, logger="linking_toolkit")
    sensitive: list[str] = [sandbox.m2m_client_secret] + [u["password"] for u in sandbox.demo_users]
    shown: list[str] = []
    errors: list[BaseException] = []

    def expect_error(call) -> None:
        with pytest.raises(Auth0Error) as caught:
            call()
        errors.append(caught.value)

    ada = sandbox.demo_user("ada@example.com")
    primary = login(client_tenant, method="password", email=ada["email"], password=ada["password"])

    # paste (linking): the code in the redirect is a secret too
    paste = start_login(client_tenant, method="paste", connection=GOOGLE, purpose="linking")
    redirect = sandbox.approve_browser(paste.authorize_url or "", connection=GOOGLE, email=ada["email"])
    sensitive += [parse_qs(urlsplit(redirect).query)["code"][0], paste.authorization_request.code_verifier]
    secondary = paste.complete(redirect)

    # browser, through the loopback redirect
    browser = start_login(client_tenant, method="browser", connection=GOOGLE, open_browser=False, timeout=30)
    back = sandbox.approve_browser(browser.authorize_url or "", connection=GOOGLE, email="alan@example.com")
    sensitive += [parse_qs(urlsplit(back).query)["code"][0], browser.authorization_request.code_verifier]
    httpx2.get(back, timeout=10)
    alan = browser.result(timeout=30)

    # device
    device = start_login(client_tenant, method="device")
    sensitive.append(device.device_authorization.device_code)
    sandbox.approve_device(device.user_code or "", connection="facebook", email="margaret@example.com")
    grace = device.result(timeout=60)

    sessions = [primary, secondary, alan, grace]
    for session in sessions:
        sensitive += [session.access_token, session.id_token]

    identities = link(primary, secondary)
    remaining = unlink(primary, identities[1])

    admin = ManagementClient.from_client_credentials(client_tenant)
    admin.users_by_email(ada["email"])
    sensitive.append(admin.token_source())

    # failures, each with its message
    wrong_password = secrets.token_urlsafe(12)  # not a literal: tracebacks show source lines
    sensitive.append(wrong_password)
    expect_error(lambda: login(client_tenant, method="password", email=ada["email"], password=wrong_password))
    expect_error(lambda: link(primary, primary))
    expect_error(lambda: unlink(primary, remaining[0]))
    expect_error(lambda: admin.get_user("auth0|nobody"))
    expect_error(lambda: verify_id_token(primary.id_token[:-6] + "AAAAAA", client_tenant))
    expect_error(lambda: verify_id_token(secondary.access_token, client_tenant))
    forged = start_login(client_tenant, method="paste")
    expect_error(lambda: forged.complete(redirect))
    wrong_secret = secrets.token_urlsafe(24)
    sensitive.append(wrong_secret)
    bad_client = ManagementClient.from_client_credentials(client_tenant, client_secret=wrong_secret)
    expect_error(lambda: bad_client.get_user(primary.user_id))

    requests = [paste.authorization_request, browser.authorization_request, device.device_authorization]
    for obj in [client_tenant, admin, bad_client, admin.token_source, paste, browser, device, forged,
                *requests, *sessions, *identities, *remaining, admin.stats]:
        shown.append(repr(obj))
        shown.append(str(obj))
    shown += [s._repr_html_() for s in sessions]
    shown.append(identities_frame(primary.profile).to_string())
    shown.append(repr(linked_accounts(primary.profile)))
    for error in errors:
        shown += [str(error), repr(error), "".join(traceback.format_exception(error))]
    shown += [record.getMessage() for record in caplog.records]
    shown += [record.exc_text or "" for record in caplog.records]
    out = capsys.readouterr()
    shown += [out.out, out.err]

    assert caplog.records, "the package logs at DEBUG: the check must see its records"
    text = "\n".join(shown)
    leaks = [s[:12] + "..." for s in sensitive if s and s in text]
    assert not leaks, f"secrets in reprs, logs or messages: {leaks}"
    admin.close()
    bad_client.close()


def test_no_refresh_token_of_the_cache_anywhere(sandbox: Sandbox, tmp_path, caplog: pytest.LogCaptureFixture,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The token cache's path: keep, refresh (rotating), replay, fall back, a corrupt file, forget."""
    caplog.set_level(logging.DEBUG, logger="linking_toolkit")
    path = tmp_path / "tokens.json"
    cache = READ_WRITE.at(path)
    ada = sandbox.demo_user("ada@example.com")
    sensitive: list[str] = [ada["password"]]
    shown: list[str] = []

    def kept() -> list[str]:
        tokens = [entry["refresh_token"] for entry in json.loads(path.read_text())["logins"]]
        sensitive.extend(tokens)
        return tokens

    with Tenant.discover(sandbox.base_url, client_id=sandbox.client_id) as tenant:
        sessions = [login(tenant, method="password", email=ada["email"], password=ada["password"],
                          cache=cache)]
        replayed = kept()[0]
        sessions.append(login(tenant, cache=cache))  # from the cache: the token rotates
        kept()
        refused = httpx2.post(f"{sandbox.base_url}/oauth/token", data={
            "grant_type": "refresh_token", "client_id": sandbox.client_id, "refresh_token": replayed})
        assert refused.status_code == 403  # the replay revokes the family
        shown.append(refused.text)
        pending = start_login(tenant, cache=cache, show=lambda text, url: shown.append(f"{text} {url}"))
        sandbox.approve_device(pending.user_code or "", connection="Username-Password-Authentication",
                               email=ada["email"])
        sessions.append(pending.result(timeout=60))  # fell back to a device login, kept again
        cached = cache.load(tenant, purpose="login", connection=None)
        kept()
        path.write_text(path.read_text()[:-20])  # cut short: corrupt
        with pytest.warns(CacheWarning) as caught:
            assert cache.load(tenant, purpose="login", connection=None) is None
            forgotten = cache.forget(tenant)
        shown += [str(w.message) for w in caught]
        for session in sessions:
            sensitive += [session.access_token, session.id_token]
        for obj in [cache, NOOP, REAUTH, READ_WRITE, cached, pending, *sessions, forgotten]:
            shown += [repr(obj), str(obj)]
    shown += [record.getMessage() for record in caplog.records]
    out = capsys.readouterr()
    shown += [out.out, out.err]

    assert caplog.records and "no longer works" in out.err and "from the token cache" in out.err
    text = "\n".join(shown)
    leaks = [s[:12] + "..." for s in sensitive if s and s in text]
    assert not leaks, f"refresh tokens in reprs, logs or messages: {leaks}"
