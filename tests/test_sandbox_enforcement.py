"""The sandbox enforces the configuration it serves: each setting broken through the Management API
(as a tenant admin would, by mistake), the Auth0 error a user then meets, the setting restored, and
the feature working again."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from test_sandbox_auth import REDIRECT, authorize_url, code_for, password_login, pkce, query_of, token
from test_sandbox_configuration import CONFIG_SCOPES

from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.connections import DATABASE
from linking_toolkit.sandbox.defaults import DEVICE_CODE


@pytest.fixture
def admin_api(sandbox: Sandbox, mint) -> httpx2.Client:
    with httpx2.Client(base_url=sandbox.base_url + "/api/v2", timeout=30,
                       headers={"Authorization": f"Bearer {mint(CONFIG_SCOPES)}"}) as client:
        yield client


def set_client(api: httpx2.Client, client_id: str, **settings: Any) -> dict[str, Any]:
    response = api.patch(f"/clients/{client_id}", json=settings)
    assert response.status_code == 200, response.text
    return response.json()


def without(grant_types: list[str], grant_type: str) -> list[str]:
    assert grant_type in grant_types
    return [g for g in grant_types if g != grant_type]


def not_allowed(grant_type: str) -> dict[str, str]:
    return {"error": "unauthorized_client",
            "error_description": f"Grant type '{grant_type}' not allowed for the client."}


def test_device_code_needs_the_grant_type(sandbox: Sandbox, admin_api: httpx2.Client) -> None:
    grants = admin_api.get(f"/clients/{sandbox.client_id}").json()["grant_types"]
    set_client(admin_api, sandbox.client_id, grant_types=without(grants, DEVICE_CODE))
    refused = httpx2.post(f"{sandbox.base_url}/oauth/device/code",
                          data={"client_id": sandbox.client_id, "scope": "openid"})
    assert refused.status_code == 403 and refused.json() == not_allowed(DEVICE_CODE)
    set_client(admin_api, sandbox.client_id, grant_types=grants)
    started = httpx2.post(f"{sandbox.base_url}/oauth/device/code",
                          data={"client_id": sandbox.client_id, "scope": "openid"})
    assert started.status_code == 200 and started.json()["user_code"]


def test_refresh_needs_the_grant_type(sandbox: Sandbox, admin_api: httpx2.Client) -> None:
    first = password_login(sandbox).json()
    grants = admin_api.get(f"/clients/{sandbox.client_id}").json()["grant_types"]
    set_client(admin_api, sandbox.client_id, grant_types=without(grants, "refresh_token"))
    refused = token(sandbox, grant_type="refresh_token", client_id=sandbox.client_id,
                    refresh_token=first["refresh_token"])
    assert refused.status_code == 403 and refused.json() == not_allowed("refresh_token")
    assert "refresh_token" not in password_login(sandbox).json()  # a new login gets none either
    set_client(admin_api, sandbox.client_id, grant_types=grants)
    renewed = token(sandbox, grant_type="refresh_token", client_id=sandbox.client_id,
                    refresh_token=first["refresh_token"])
    assert renewed.status_code == 200 and renewed.json()["refresh_token"]


def test_authorization_code_needs_the_grant_type(sandbox: Sandbox, admin_api: httpx2.Client) -> None:
    verifier, challenge = pkce()
    code = code_for(sandbox, challenge)
    grants = admin_api.get(f"/clients/{sandbox.client_id}").json()["grant_types"]
    set_client(admin_api, sandbox.client_id, grant_types=without(grants, "authorization_code"))
    form = {"grant_type": "authorization_code", "client_id": sandbox.client_id, "code": code,
            "code_verifier": verifier, "redirect_uri": REDIRECT}
    refused = token(sandbox, **form)
    assert refused.status_code == 403 and refused.json() == not_allowed("authorization_code")
    start = httpx2.get(authorize_url(sandbox, code_challenge=challenge, code_challenge_method="S256"))
    assert start.status_code == 302
    assert {k: v for k, v in query_of(start.headers["location"]).items() if k != "state"} == \
        not_allowed("authorization_code")
    set_client(admin_api, sandbox.client_id, grant_types=grants)
    verifier, challenge = pkce()
    form.update(code=code_for(sandbox, challenge), code_verifier=verifier)
    assert token(sandbox, **form).status_code == 200


def test_client_credentials_needs_the_grant_type(sandbox: Sandbox, api: httpx2.Client) -> None:
    form = {"grant_type": "client_credentials", "client_id": sandbox.m2m_client_id,
            "client_secret": sandbox.m2m_client_secret, "audience": sandbox.management_audience}
    set_client(api, sandbox.m2m_client_id, grant_types=[])
    refused = token(sandbox, **form)
    assert refused.status_code == 403 and refused.json() == not_allowed("client_credentials")
    set_client(api, sandbox.m2m_client_id, grant_types=["client_credentials"])
    assert token(sandbox, **form).json()["token_type"] == "Bearer"


def test_no_refresh_token_for_an_api_without_offline_access(sandbox: Sandbox, api: httpx2.Client) -> None:
    server = api.get("/resource-servers").json()[0]
    path = f"/resource-servers/{server['id']}"
    assert api.patch(path, json={"allow_offline_access": False}).status_code == 201
    login = password_login(sandbox, audience=sandbox.management_audience).json()
    assert "refresh_token" not in login and "offline_access" not in login["scope"].split()
    assert login["access_token"] and login["id_token"]
    assert api.patch(path, json={"allow_offline_access": True}).status_code == 201
    login = password_login(sandbox, audience=sandbox.management_audience).json()
    assert login["refresh_token"] and "offline_access" in login["scope"].split()


def test_a_connection_not_enabled_for_the_app_cannot_log_in(sandbox: Sandbox,
                                                            admin_api: httpx2.Client) -> None:
    github, database = sandbox.connections["github"], sandbox.connections[DATABASE]
    for connection in (github, database):
        assert admin_api.patch(f"/connections/{connection}/clients", json=[
            {"client_id": sandbox.client_id, "status": False}]).status_code == 204
    _, challenge = pkce()
    start = httpx2.get(authorize_url(sandbox, connection="github", code_challenge=challenge,
                                     code_challenge_method="S256"))
    assert start.status_code == 302
    assert query_of(start.headers["location"])["error"] == "invalid_request"
    assert query_of(start.headers["location"])["error_description"] == "the connection is not enabled"
    page = httpx2.get(authorize_url(sandbox, code_challenge=challenge, code_challenge_method="S256"),
                      follow_redirects=True)
    assert page.status_code == 200 and "google-oauth2" in page.text
    assert "simulated/github" not in page.text and DATABASE not in page.text
    refused = password_login(sandbox)
    assert refused.status_code == 400
    assert refused.json() == {"error": "invalid_request",
                              "error_description": "the connection is not enabled"}
    for connection in (github, database):
        assert admin_api.patch(f"/connections/{connection}/clients", json=[
            {"client_id": sandbox.client_id, "status": True}]).status_code == 204
    verifier, challenge = pkce()
    code = code_for(sandbox, challenge, connection="github", email="grace@example.com")
    assert token(sandbox, grant_type="authorization_code", client_id=sandbox.client_id, code=code,
                 code_verifier=verifier, redirect_uri=REDIRECT).status_code == 200
    assert password_login(sandbox).status_code == 200


def test_a_callback_not_allowed_is_refused(sandbox: Sandbox, admin_api: httpx2.Client) -> None:
    callbacks = admin_api.get(f"/clients/{sandbox.client_id}").json()["callbacks"]
    set_client(admin_api, sandbox.client_id, callbacks=["http://127.0.0.1/elsewhere"])
    _, challenge = pkce()
    refused = httpx2.get(authorize_url(sandbox, code_challenge=challenge, code_challenge_method="S256"))
    assert refused.status_code == 400 and "location" not in refused.headers  # never sent to the app
    assert "Callback URL mismatch. The provided redirect_uri is not in the list of allowed callback URLs." \
        in refused.text
    set_client(admin_api, sandbox.client_id, callbacks=callbacks)
    allowed = httpx2.get(authorize_url(sandbox, code_challenge=challenge, code_challenge_method="S256"))
    assert allowed.status_code == 302 and "/u/login?" in allowed.headers["location"]


def test_a_scope_the_grant_lacks_is_refused(sandbox: Sandbox, admin_api: httpx2.Client) -> None:
    grant = admin_api.get("/client-grants", params={"client_id": sandbox.m2m_client_id}).json()[0]
    form = {"grant_type": "client_credentials", "client_id": sandbox.m2m_client_id,
            "client_secret": sandbox.m2m_client_secret, "audience": sandbox.management_audience}

    def users_with_a_new_token() -> httpx2.Response:
        bearer = token(sandbox, **form).json()["access_token"]
        return httpx2.get(f"{sandbox.base_url}/api/v2/users", headers={"Authorization": f"Bearer {bearer}"})

    narrowed = [s for s in grant["scope"] if s != "read:users"]
    assert admin_api.patch(f"/client-grants/{grant['id']}", json={"scope": narrowed}).status_code == 200
    refused = users_with_a_new_token()
    assert refused.status_code == 403
    assert refused.json() == {"statusCode": 403, "error": "Forbidden", "errorCode": "insufficient_scope",
                              "message": "Insufficient scope, expected any of: read:users."}
    assert admin_api.patch(f"/client-grants/{grant['id']}", json={"scope": grant["scope"]}).status_code == 200
    assert users_with_a_new_token().status_code == 200


def test_spa_logout_urls_come_from_the_client(sandbox: Sandbox, admin_api: httpx2.Client) -> None:
    """The single-page app's Allowed Logout URLs are the ones its client holds now."""
    url = f"{sandbox.base_url}/v2/logout"
    params = {"client_id": sandbox.spa_client_id, "returnTo": "https://app.example.com/bye"}
    assert "location" not in httpx2.get(url, params=params).headers
    set_client(admin_api, sandbox.spa_client_id, allowed_logout_urls=["https://app.example.com/bye"])
    left = httpx2.get(url, params=params)
    assert left.status_code == 302 and left.headers["location"] == "https://app.example.com/bye"
    assert parse_qs(urlsplit(left.headers["location"]).query) == {}
