"""No repr, log record, printed line or exception message of the package holds a token or secret.

The whole learner's path runs with the package's loggers at DEBUG: four logins, link, unlink, a
machine client, and a handful of failures; then every text a person could see is searched for
every token, secret, password, code and verifier that went through.
"""

from __future__ import annotations

import logging
import secrets
import traceback
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from test_client_login import GOOGLE

from linking_toolkit import Auth0Error, ManagementClient, identities_frame, link, login, start_login, unlink
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
