"""The sandbox's Authentication API over real HTTP: each grant, its errors, and the token shapes.

Tokens are checked the way a client must check them: signature against the published JWKS with
joserfc, then the claims.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import httpx2
import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError
from joserfc.jwk import KeySet

from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.connections import DATABASE
from linking_toolkit.sandbox.defaults import DEVICE_CODE, PASSWORD_REALM
from linking_toolkit.sandbox.driver import LoginPageError

REDIRECT = "http://127.0.0.1:8765/callback"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_url(tenant: Sandbox, **overrides: str | None) -> str:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": tenant.client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid profile email offline_access update:current_user_identities",
        "state": "state-123",
        "nonce": "nonce-456",
        "audience": tenant.management_audience,
    }
    params.update(overrides)
    return f"{tenant.base_url}/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def token(tenant: Sandbox, **form: str) -> httpx2.Response:
    return httpx2.post(f"{tenant.base_url}/oauth/token", data=form)


def verify(tenant: Sandbox, token_value: str) -> dict[str, Any]:
    """Verify a token's signature against the tenant's published JWKS and return its claims."""
    keys = KeySet.import_key_set(httpx2.get(f"{tenant.base_url}/.well-known/jwks.json").json())
    claims = dict(jwt.decode(token_value, keys, algorithms=["RS256"]).claims)
    registry = jwt.JWTClaimsRegistry(iss={"essential": True, "value": tenant.issuer},
                                     exp={"essential": True}, iat={"essential": True})
    registry.validate(claims)
    return claims


def password_login(tenant: Sandbox, email: str = "ada@example.com", **extra: str) -> httpx2.Response:
    form = {"grant_type": PASSWORD_REALM, "client_id": tenant.client_id, "username": email,
            "password": tenant.demo_user(email)["password"], "realm": DATABASE,
            "scope": "openid profile email offline_access"}
    form.update(extra)
    return token(tenant, **form)


def code_for(tenant: Sandbox, challenge: str, connection: str = DATABASE, email: str = "ada@example.com",
             **overrides: str | None) -> str:
    url = authorize_url(tenant, code_challenge=challenge, code_challenge_method="S256", **overrides)
    redirected = tenant.approve_browser(url, connection=connection, email=email)
    return query_of(redirected)["code"]


# -- authorization code + PKCE --------------------------------------------------------------------

def test_authorization_code_with_pkce_gives_verified_tokens_with_nonce(sandbox: Sandbox) -> None:
    verifier, challenge = pkce()
    url = authorize_url(sandbox, code_challenge=challenge, code_challenge_method="S256")
    redirected = sandbox.approve_browser(url, connection=DATABASE, email="ada@example.com")
    assert redirected.startswith(REDIRECT + "?")
    params = query_of(redirected)
    assert params["state"] == "state-123"

    response = token(sandbox, grant_type="authorization_code", client_id=sandbox.client_id,
                     code=params["code"], code_verifier=verifier, redirect_uri=REDIRECT)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 86400
    assert set(body) == {"access_token", "id_token", "refresh_token", "token_type", "expires_in", "scope"}
    id_claims = verify(sandbox, body["id_token"])
    ada = sandbox.demo_user("ada@example.com")
    assert id_claims["sub"] == ada["user_id"]
    assert id_claims["aud"] == sandbox.client_id and id_claims["azp"] == sandbox.client_id
    assert id_claims["nonce"] == "nonce-456"
    assert id_claims["email"] == "ada@example.com" and id_claims["email_verified"] is True
    access = verify(sandbox, body["access_token"])
    assert access["aud"] == [sandbox.management_audience, f"{sandbox.base_url}/userinfo"]
    assert access["azp"] == sandbox.client_id
    assert "update:current_user_identities" in access["scope"].split()


def test_code_works_once(sandbox: Sandbox) -> None:
    verifier, challenge = pkce()
    code = code_for(sandbox, challenge)
    form = {"grant_type": "authorization_code", "client_id": sandbox.client_id, "code": code,
            "code_verifier": verifier, "redirect_uri": REDIRECT}
    assert token(sandbox, **form).status_code == 200
    again = token(sandbox, **form)
    assert again.status_code == 403
    assert again.json() == {"error": "invalid_grant", "error_description": "Invalid authorization code"}


def test_a_replayed_code_revokes_every_token_issued_from_it(sandbox: Sandbox) -> None:
    """RFC 6749 §4.1.2 and RFC 9700 §4.2.1: a code presented twice was stolen or leaked, so what its
    first use issued stops working: the refresh token (and its successors), and the access tokens at
    the APIs the tenant serves (the Management API and /userinfo). Another login keeps working."""
    verifier, challenge = pkce()
    code = code_for(sandbox, challenge, scope="openid profile email offline_access read:current_user")
    form = {"grant_type": "authorization_code", "client_id": sandbox.client_id, "code": code,
            "code_verifier": verifier, "redirect_uri": REDIRECT}
    first = token(sandbox, **form).json()
    rotated = refresh(sandbox, first["refresh_token"]).json()
    other = password_login(sandbox, audience=sandbox.management_audience,
                           scope="openid profile email offline_access read:current_user").json()
    me = f"{sandbox.base_url}/api/v2/users/{quote(verify(sandbox, first['id_token'])['sub'], safe='')}"

    def works(access_token: str) -> tuple[int, int]:
        bearer = {"Authorization": f"Bearer {access_token}"}
        return (httpx2.get(me, headers=bearer).status_code,
                httpx2.get(f"{sandbox.base_url}/userinfo", headers=bearer).status_code)

    assert works(first["access_token"]) == (200, 200) and works(rotated["access_token"]) == (200, 200)
    replay = token(sandbox, **form)
    assert replay.status_code == 403 and replay.json()["error"] == "invalid_grant"
    assert works(first["access_token"]) == (401, 401)
    assert works(rotated["access_token"]) == (401, 401)  # issued from the code's refresh token
    assert refresh(sandbox, rotated["refresh_token"]).json() == REFUSED
    assert works(other["access_token"]) == (200, 200)


@pytest.mark.parametrize("verifier", [None, "wrong-" + "x" * 50])
def test_code_needs_the_right_verifier(sandbox: Sandbox, verifier: str | None) -> None:
    _, challenge = pkce()
    code = code_for(sandbox, challenge)
    form = {"grant_type": "authorization_code", "client_id": sandbox.client_id, "code": code,
            "redirect_uri": REDIRECT}
    if verifier:
        form["code_verifier"] = verifier
    response = token(sandbox, **form)
    assert response.status_code in (400, 403)
    assert response.json()["error"] in ("invalid_request", "invalid_grant")
    assert "access_token" not in response.json()


def test_code_redirect_uri_must_match(sandbox: Sandbox) -> None:
    verifier, challenge = pkce()
    code = code_for(sandbox, challenge)
    response = token(sandbox, grant_type="authorization_code", client_id=sandbox.client_id, code=code,
                     code_verifier=verifier, redirect_uri="http://127.0.0.1:9999/other")
    assert response.status_code == 403
    assert response.json()["error"] == "invalid_grant"


def test_loopback_redirect_matches_any_port_but_not_another_path(sandbox: Sandbox) -> None:
    _, challenge = pkce()
    for port in (1234, 54321):
        ok = httpx2.get(authorize_url(sandbox, redirect_uri=f"http://localhost:{port}/callback",
                                      code_challenge=challenge, code_challenge_method="S256"))
        assert ok.status_code == 302 and "/u/login?" in ok.headers["location"]
    bad = httpx2.get(authorize_url(sandbox, redirect_uri="http://127.0.0.1:1234/elsewhere",
                                   code_challenge=challenge, code_challenge_method="S256"))
    assert bad.status_code == 400 and "redirect" in bad.text.lower()
    evil = httpx2.get(authorize_url(sandbox, redirect_uri="http://evil.example/callback",
                                    code_challenge=challenge, code_challenge_method="S256"))
    assert evil.status_code == 400 and "location" not in evil.headers


def test_public_client_must_send_an_s256_challenge(sandbox: Sandbox) -> None:
    missing = httpx2.get(authorize_url(sandbox))
    assert missing.status_code == 302
    assert query_of(missing.headers["location"])["error"] == "invalid_request"
    assert query_of(missing.headers["location"])["state"] == "state-123"
    plain = httpx2.get(authorize_url(sandbox, code_challenge="a" * 50, code_challenge_method="plain"))
    assert plain.status_code == 302
    error = query_of(plain.headers["location"])
    assert error["error"] == "invalid_request" and "S256" in error["error_description"]


def test_authorize_refuses_bad_requests_without_a_500(sandbox: Sandbox) -> None:
    _, challenge = pkce()
    base = {"code_challenge": challenge, "code_challenge_method": "S256"}
    unknown_client = httpx2.get(authorize_url(sandbox, client_id="nope", **base))
    assert unknown_client.status_code == 400 and "location" not in unknown_client.headers
    m2m = httpx2.get(authorize_url(sandbox, client_id=sandbox.m2m_client_id, **base))
    assert m2m.status_code == 400 and "location" not in m2m.headers
    for response_type in (None, "token"):  # the redirect URI is valid: the app hears of it (RFC 6749)
        refused = httpx2.get(authorize_url(sandbox, response_type=response_type, **base))
        assert refused.status_code == 302
        assert query_of(refused.headers["location"])["error"] == "unsupported_response_type"
    unknown_api = httpx2.get(authorize_url(sandbox, audience="https://api.example/", **base))
    assert query_of(unknown_api.headers["location"])["error"] == "access_denied"
    unknown_connection = httpx2.get(authorize_url(sandbox, connection="myspace", **base))
    assert query_of(unknown_connection.headers["location"])["error"] == "invalid_request"


def test_native_scope_is_limited_to_what_the_client_may_have(sandbox: Sandbox) -> None:
    verifier, challenge = pkce()
    code = code_for(sandbox, challenge, scope="openid email read:users delete:users")
    body = token(sandbox, grant_type="authorization_code", client_id=sandbox.client_id, code=code,
                 code_verifier=verifier, redirect_uri=REDIRECT).json()
    assert body["scope"] == "openid email"
    assert verify(sandbox, body["access_token"])["scope"] == "openid email"
    assert "refresh_token" not in body


# -- password realm --------------------------------------------------------------------------------

def test_password_realm_login(sandbox: Sandbox) -> None:
    response = password_login(sandbox, audience=sandbox.management_audience)
    assert response.status_code == 200
    body = response.json()
    access = verify(sandbox, body["access_token"])
    assert access["gty"] == "password" and access["azp"] == sandbox.client_id
    assert verify(sandbox, body["id_token"])["sub"] == sandbox.demo_user("ada@example.com")["user_id"]
    assert "nonce" not in verify(sandbox, body["id_token"])


def test_password_realm_accepts_a_json_body(sandbox: Sandbox) -> None:
    response = httpx2.post(f"{sandbox.base_url}/oauth/token", json={
        "grant_type": PASSWORD_REALM, "client_id": sandbox.client_id, "username": "grace@example.com",
        "password": sandbox.demo_user("grace@example.com")["password"], "realm": DATABASE,
        "scope": "openid", "audience": None})
    assert response.status_code == 200 and "id_token" in response.json()


def test_password_realm_wrong_password(sandbox: Sandbox) -> None:
    response = password_login(sandbox, password="not-the-password")
    assert response.status_code == 403
    assert response.json() == {"error": "invalid_grant", "error_description": "Wrong email or password."}
    unknown = password_login(sandbox, username="nobody@example.com")
    assert unknown.json() == response.json()


def test_password_realm_unknown_or_social_realm(sandbox: Sandbox) -> None:
    for realm in ("Nope", "google-oauth2"):
        response = password_login(sandbox, realm=realm)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"


def test_password_realm_missing_field_and_m2m_client(sandbox: Sandbox) -> None:
    missing = token(sandbox, grant_type=PASSWORD_REALM, client_id=sandbox.client_id, username="a@b.c",
                    realm=DATABASE)
    assert missing.status_code == 400
    assert missing.json() == {"error": "invalid_request",
                              "error_description": "Missing required parameter: password"}
    m2m = token(sandbox, grant_type=PASSWORD_REALM, client_id=sandbox.m2m_client_id,
                client_secret=sandbox.m2m_client_secret, username="ada@example.com", password="x",
                realm=DATABASE)
    assert m2m.status_code == 403 and m2m.json()["error"] == "unauthorized_client"


def test_password_realm_unknown_audience(sandbox: Sandbox) -> None:
    response = password_login(sandbox, audience="https://unknown.example/api")
    assert response.status_code == 403
    assert response.json()["error"] == "access_denied"


# -- client credentials ----------------------------------------------------------------------------

def test_client_credentials(sandbox: Sandbox) -> None:
    response = token(sandbox, grant_type="client_credentials", client_id=sandbox.m2m_client_id,
                     client_secret=sandbox.m2m_client_secret, audience=sandbox.management_audience)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "scope", "expires_in", "token_type"}
    claims = verify(sandbox, body["access_token"])
    assert claims["sub"] == f"{sandbox.m2m_client_id}@clients"
    assert claims["aud"] == sandbox.management_audience and claims["gty"] == "client-credentials"
    assert {"read:users", "update:users"} <= set(claims["scope"].split())


def test_client_credentials_with_basic_auth_and_a_narrower_scope(sandbox: Sandbox) -> None:
    response = httpx2.post(f"{sandbox.base_url}/oauth/token",
                           auth=(sandbox.m2m_client_id, sandbox.m2m_client_secret),
                           data={"grant_type": "client_credentials", "audience": sandbox.management_audience,
                                 "scope": "read:users read:secrets"})
    assert response.status_code == 200 and response.json()["scope"] == "read:users"


def test_client_credentials_wrong_secret(sandbox: Sandbox) -> None:
    response = token(sandbox, grant_type="client_credentials", client_id=sandbox.m2m_client_id,
                     client_secret="wrong", audience=sandbox.management_audience)
    assert response.status_code == 401
    assert response.json() == {"error": "access_denied", "error_description": "Unauthorized"}


def test_client_credentials_unknown_or_missing_audience(sandbox: Sandbox) -> None:
    unknown = token(sandbox, grant_type="client_credentials", client_id=sandbox.m2m_client_id,
                    client_secret=sandbox.m2m_client_secret, audience="https://unknown.example/")
    assert unknown.status_code == 403
    assert unknown.json() == {"error": "access_denied",
                              "error_description": "Service not found: https://unknown.example/"}
    missing = token(sandbox, grant_type="client_credentials", client_id=sandbox.m2m_client_id,
                    client_secret=sandbox.m2m_client_secret)
    assert missing.status_code == 403 and missing.json()["error"] == "access_denied"


def test_the_management_api_alias_is_its_audience(sandbox: Sandbox) -> None:
    """Auth0's SDKs ask for ``https://{domain}/api/v2/``, the Management API's identifier on every
    tenant: the sandbox grants it, and the Management API takes the token."""
    alias = f"https://{sandbox.domain}/api/v2/"
    response = token(sandbox, grant_type="client_credentials", client_id=sandbox.m2m_client_id,
                     client_secret=sandbox.m2m_client_secret, audience=alias)
    assert response.status_code == 200, response.text
    access = response.json()["access_token"]
    assert verify(sandbox, access)["aud"] == alias
    users = httpx2.get(f"{sandbox.base_url}/api/v2/users", headers={"Authorization": f"Bearer {access}"})
    assert users.status_code == 200 and len(users.json()) == 10
    # A user's token for the alias, by password: it reads its own profile.
    login = password_login(sandbox, audience=alias, scope="openid read:current_user").json()
    ada = sandbox.demo_user("ada@example.com")["user_id"]
    own = httpx2.get(f"{sandbox.base_url}/api/v2/users/{quote(ada, safe='')}",
                     headers={"Authorization": f"Bearer {login['access_token']}"})
    assert own.status_code == 200 and own.json()["user_id"] == ada
    for near_miss in (alias.rstrip("/"), f"https://{sandbox.domain}/api/v2/users",
                      "https://example.com/api/v2/"):
        refused = token(sandbox, grant_type="client_credentials", client_id=sandbox.m2m_client_id,
                        client_secret=sandbox.m2m_client_secret, audience=near_miss)
        assert refused.status_code == 403
        assert refused.json() == {"error": "access_denied",
                                  "error_description": f"Service not found: {near_miss}"}


def test_public_client_cannot_use_client_credentials(sandbox: Sandbox) -> None:
    response = token(sandbox, grant_type="client_credentials", client_id=sandbox.client_id,
                     audience=sandbox.management_audience)
    assert response.status_code == 401 and response.json()["error"] == "access_denied"


# -- refresh tokens --------------------------------------------------------------------------------

def refresh(tenant: Sandbox, refresh_token: str, **extra: str) -> httpx2.Response:
    return token(tenant, grant_type="refresh_token", client_id=tenant.client_id, refresh_token=refresh_token,
                 **extra)


REFUSED = {"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}


def test_refresh_token_rotates(sandbox: Sandbox) -> None:
    first = password_login(sandbox, audience=sandbox.management_audience).json()
    response = refresh(sandbox, first["refresh_token"])
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "id_token", "refresh_token", "token_type", "expires_in", "scope"}
    assert body["refresh_token"] != first["refresh_token"]  # a new one each time, as Auth0 with rotation
    assert verify(sandbox, body["access_token"])["aud"][0] == sandbox.management_audience
    assert verify(sandbox, body["id_token"])["sub"] == sandbox.demo_user("ada@example.com")["user_id"]
    narrower = refresh(sandbox, body["refresh_token"], scope="openid")
    assert narrower.status_code == 200 and narrower.json()["scope"] == "openid"
    # The token keeps the login's scope: a narrower access token does not narrow what comes next.
    again = refresh(sandbox, narrower.json()["refresh_token"])
    assert again.status_code == 200 and "offline_access" in again.json()["scope"].split()


def test_a_reused_refresh_token_is_refused_and_revokes_its_family(sandbox: Sandbox) -> None:
    first = password_login(sandbox).json()["refresh_token"]
    second = refresh(sandbox, first).json()["refresh_token"]
    third = refresh(sandbox, second).json()["refresh_token"]
    other_login = password_login(sandbox).json()["refresh_token"]  # another family of the same user

    replayed = refresh(sandbox, first)
    assert replayed.status_code == 403 and replayed.json() == REFUSED
    newest = refresh(sandbox, third)  # the family's newest token was valid a moment ago
    assert newest.status_code == 403 and newest.json() == REFUSED
    assert refresh(sandbox, other_login).status_code == 200  # other logins keep working


def test_two_requests_racing_with_one_refresh_token_revoke_its_family(sandbox: Sandbox) -> None:
    first = password_login(sandbox).json()["refresh_token"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: refresh(sandbox, first), range(4)))
    assert sorted(a.status_code for a in answers) == [200, 403, 403, 403]
    winner = next(a for a in answers if a.status_code == 200).json()["refresh_token"]
    assert refresh(sandbox, winner).json() == REFUSED


def test_deleting_a_user_revokes_its_refresh_tokens(sandbox: Sandbox) -> None:
    grace = sandbox.demo_user("grace@example.com")
    kept = password_login(sandbox, email="grace@example.com").json()["refresh_token"]
    deleted = httpx2.delete(f"{sandbox.base_url}/api/v2/users/{grace['user_id']}",
                            headers=management_token(sandbox))
    assert deleted.status_code == 204
    assert refresh(sandbox, kept).json() == REFUSED


def test_an_expired_refresh_token_is_refused(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from linking_toolkit.sandbox.authentication_api import oauth_state

    monkeypatch.setattr(oauth_state, "REFRESH_TOKEN_SECONDS", -1)  # past its lifetime when issued
    expired = password_login(sandbox).json()["refresh_token"]
    answer = refresh(sandbox, expired)
    assert answer.status_code == 403 and answer.json() == REFUSED


def test_refresh_tokens_are_stored_hashed_with_their_family(sandbox: Sandbox) -> None:
    first = password_login(sandbox).json()["refresh_token"]
    second = refresh(sandbox, first).json()["refresh_token"]
    ctx = sandbox.context
    assert ctx is not None
    with ctx.store.read() as db:
        rows = [dict(r) for r in db.execute("SELECT * FROM refresh_tokens")]
    dumped = json.dumps(rows)
    assert first not in dumped and second not in dumped
    assert hashlib.sha256(second.encode()).hexdigest() in {r["token_hash"] for r in rows}
    assert len({r["family"] for r in rows}) == 1
    assert sorted(r["used_at"] is None for r in rows) == [False, True]


def test_refresh_token_errors(sandbox: Sandbox) -> None:
    without_offline = password_login(sandbox, scope="openid").json()
    assert "refresh_token" not in without_offline
    unknown = refresh(sandbox, "v1.nope")
    assert unknown.status_code == 403 and unknown.json() == REFUSED
    first = password_login(sandbox).json()
    wider = refresh(sandbox, first["refresh_token"], scope="openid read:users")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    assert refresh(sandbox, first["refresh_token"]).status_code == 200  # a refusal does not use the token


# -- device flow -------------------------------------------------------------------------------------

def device_start(tenant: Sandbox, **extra: str) -> dict[str, Any]:
    response = httpx2.post(f"{tenant.base_url}/oauth/device/code",
                           data={"client_id": tenant.client_id, "scope": "openid profile email", **extra})
    assert response.status_code == 200
    return response.json()


def poll(tenant: Sandbox, device_code: str) -> httpx2.Response:
    return token(tenant, grant_type=DEVICE_CODE, client_id=tenant.client_id, device_code=device_code)


def test_device_code_response(sandbox: Sandbox) -> None:
    started = device_start(sandbox, audience=sandbox.management_audience)
    assert set(started) == {"device_code", "user_code", "verification_uri", "verification_uri_complete",
                            "expires_in", "interval"}
    assert started["verification_uri"] == f"{sandbox.base_url}/activate"
    code = started["user_code"]
    assert started["verification_uri_complete"] == f"{sandbox.base_url}/activate?user_code={code}"
    assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}", code)
    assert started["expires_in"] == 900 and started["interval"] == 5


def test_device_flow_pending_slow_down_then_tokens(sandbox: Sandbox) -> None:
    started = device_start(sandbox, audience=sandbox.management_audience)
    pending = poll(sandbox, started["device_code"])
    assert pending.status_code == 403 and pending.json()["error"] == "authorization_pending"
    too_fast = poll(sandbox, started["device_code"])
    assert too_fast.status_code == 429 and too_fast.json()["error"] == "slow_down"
    sandbox.approve_device(started["user_code"], connection="google-oauth2", email="alan@example.com")
    done = poll(sandbox, started["device_code"])
    assert done.status_code == 200
    claims = verify(sandbox, done.json()["id_token"])
    assert claims["sub"].startswith("google-oauth2|") and claims["email"] == "alan@example.com"
    assert verify(sandbox, done.json()["access_token"])["aud"][0] == sandbox.management_audience
    used = poll(sandbox, started["device_code"])
    assert used.status_code == 403 and used.json()["error"] == "invalid_grant"


def test_device_flow_database_user(sandbox: Sandbox) -> None:
    started = device_start(sandbox)
    sandbox.approve_device(started["user_code"], connection=DATABASE, email="katherine@example.com")
    done = poll(sandbox, started["device_code"])
    assert done.status_code == 200
    katherine = sandbox.demo_user("katherine@example.com")
    assert verify(sandbox, done.json()["id_token"])["sub"] == katherine["user_id"]


def test_device_flow_denied(sandbox: Sandbox) -> None:
    started = device_start(sandbox)
    sandbox.approve_device(started["user_code"], connection=DATABASE, email="ada@example.com", deny=True)
    denied = poll(sandbox, started["device_code"])
    assert denied.status_code == 403 and denied.json()["error"] == "access_denied"


@pytest.mark.parametrize("sandbox_options", [{"device_code_seconds": -1}],
                         ids=["code_expired_when_issued"])
def test_device_flow_expired_once(sandbox: Sandbox) -> None:
    started = device_start(sandbox)
    assert started["expires_in"] == -1
    expired = poll(sandbox, started["device_code"])
    assert expired.status_code == 403 and expired.json()["error"] == "expired_token"
    after = poll(sandbox, started["device_code"])
    assert after.status_code == 403 and after.json()["error"] == "invalid_grant"
    page = httpx2.post(f"{sandbox.base_url}/activate", data={"user_code": started["user_code"]})
    assert page.status_code == 400 and "invalid or has expired" in page.text


def test_device_code_errors(sandbox: Sandbox) -> None:
    unknown = httpx2.post(f"{sandbox.base_url}/oauth/device/code", data={"client_id": "nope"})
    assert unknown.status_code == 403 and unknown.json()["error"] == "unauthorized_client"
    m2m = httpx2.post(f"{sandbox.base_url}/oauth/device/code", data={"client_id": sandbox.m2m_client_id})
    assert m2m.status_code == 403 and m2m.json()["error"] == "unauthorized_client"
    bad_api = httpx2.post(f"{sandbox.base_url}/oauth/device/code",
                          data={"client_id": sandbox.client_id, "audience": "https://x.example/"})
    assert bad_api.status_code == 403 and bad_api.json()["error"] == "access_denied"
    bogus = poll(sandbox, "not-a-device-code")
    assert bogus.status_code == 403 and bogus.json()["error"] == "invalid_grant"
    missing = token(sandbox, grant_type=DEVICE_CODE, client_id=sandbox.client_id)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


# -- the token endpoint's own errors ---------------------------------------------------------------

def test_token_endpoint_bad_requests(sandbox: Sandbox) -> None:
    url = f"{sandbox.base_url}/oauth/token"
    unsupported = token(sandbox, grant_type="implicit", client_id=sandbox.client_id)
    assert unsupported.status_code == 400 and unsupported.json()["error"] == "unsupported_grant_type"
    none = httpx2.post(url, data={})
    assert none.status_code == 400 and set(none.json()) == {"error", "error_description"}
    not_json = httpx2.post(url, content=b"{nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["error"] == "invalid_request"
    array = httpx2.post(url, json=["grant_type"])
    assert array.status_code == 400 and array.json()["error"] == "invalid_request"
    nested = httpx2.post(url, json={"grant_type": {"a": 1}})
    assert nested.status_code == 400 and nested.json()["error"] == "invalid_request"
    get = httpx2.get(url)
    assert get.status_code == 405


# -- userinfo, discovery, jwks, logout -------------------------------------------------------------

def test_userinfo(sandbox: Sandbox) -> None:
    body = password_login(sandbox, email="grace@example.com").json()
    response = httpx2.get(f"{sandbox.base_url}/userinfo",
                          headers={"Authorization": f"Bearer {body['access_token']}"})
    assert response.status_code == 200
    info = response.json()
    assert info["sub"] == sandbox.demo_user("grace@example.com")["user_id"]
    assert info["email"] == "grace@example.com" and "name" in info


def test_userinfo_refuses_bad_tokens(sandbox: Sandbox) -> None:
    url = f"{sandbox.base_url}/userinfo"
    assert httpx2.get(url).status_code == 401
    assert httpx2.get(url, headers={"Authorization": "Bearer not.a.jwt"}).status_code == 401
    no_openid = password_login(sandbox, scope="email").json()
    no_openid_response = httpx2.get(url, headers={"Authorization": f"Bearer {no_openid['access_token']}"})
    assert no_openid_response.status_code == 401
    machine = token(sandbox, grant_type="client_credentials", client_id=sandbox.m2m_client_id,
                    client_secret=sandbox.m2m_client_secret, audience=sandbox.management_audience).json()
    refused = httpx2.get(url, headers={"Authorization": f"Bearer {machine['access_token']}"})
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
    with Sandbox(seed=7) as other:  # same seed, different keys: its tokens do not verify here
        foreign = password_login(other).json()
    assert httpx2.get(url, headers={"Authorization": f"Bearer {foreign['access_token']}"}).status_code == 401
    with pytest.raises(InvalidKeyIdError):
        verify(sandbox, foreign["access_token"])
    header, payload, signature = password_login(sandbox).json()["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "auth0|someone-else"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{header}.{forged_payload}.{signature}"
    assert httpx2.get(url, headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    with pytest.raises(BadSignatureError):
        verify(sandbox, forged)


def test_discovery_document(shared_sandbox: Sandbox) -> None:
    doc = httpx2.get(f"{shared_sandbox.base_url}/.well-known/openid-configuration").json()
    base = shared_sandbox.base_url
    assert doc["issuer"] == shared_sandbox.issuer and doc["issuer"].endswith("/")
    assert doc["authorization_endpoint"] == f"{base}/authorize"
    assert doc["token_endpoint"] == f"{base}/oauth/token"
    assert doc["device_authorization_endpoint"] == f"{base}/oauth/device/code"
    assert doc["userinfo_endpoint"] == f"{base}/userinfo"
    assert doc["jwks_uri"] == f"{base}/.well-known/jwks.json"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {PASSWORD_REALM, DEVICE_CODE, "authorization_code", "refresh_token",
            "client_credentials"} <= set(doc["grant_types_supported"])


def test_jwks_is_public_only(shared_sandbox: Sandbox) -> None:
    jwks = httpx2.get(f"{shared_sandbox.base_url}/.well-known/jwks.json").json()
    assert len(jwks["keys"]) == 1
    key = jwks["keys"][0]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig" and key["kid"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


def test_logout(shared_sandbox: Sandbox) -> None:
    url = f"{shared_sandbox.base_url}/v2/logout"
    back = httpx2.get(url, params={"client_id": shared_sandbox.client_id,
                                   "returnTo": "http://127.0.0.1:8765/bye"})
    assert back.status_code == 302 and back.headers["location"] == "http://127.0.0.1:8765/bye"
    refused = httpx2.get(url, params={"client_id": shared_sandbox.client_id,
                                      "returnTo": "https://evil.example/"})
    assert refused.status_code == 200 and "location" not in refused.headers
    assert "not an allowed logout URL" in refused.text
    plain = httpx2.get(url)
    assert plain.status_code == 200 and "logged out" in plain.text


def test_repr_never_shows_secrets_but_info_does(sandbox: Sandbox) -> None:
    info = sandbox.info()
    text = repr(sandbox) + str(sandbox)
    assert info["m2m_client_secret"] and info["m2m_client_secret"] not in text
    for user in info["demo_users"]:
        assert user["password"] and user["password"] not in text
    assert sandbox.issuer in text


# -- users whose state changed since they logged in -------------------------------------------------

def management_token(tenant: Sandbox) -> dict[str, str]:
    body = token(tenant, grant_type="client_credentials", client_id=tenant.m2m_client_id,
                 client_secret=tenant.m2m_client_secret, audience=tenant.management_audience).json()
    return {"Authorization": f"Bearer {body['access_token']}"}


def browser_sub(tenant: Sandbox, connection: str, email: str) -> str:
    verifier, challenge = pkce()
    code = code_for(tenant, challenge, connection=connection, email=email)
    body = token(tenant, grant_type="authorization_code", client_id=tenant.client_id, code=code,
                 code_verifier=verifier, redirect_uri=REDIRECT).json()
    return verify(tenant, body["id_token"])["sub"]


def test_a_linked_identity_logs_in_as_its_primary_user(sandbox: Sandbox) -> None:
    google = browser_sub(sandbox, "google-oauth2", "alan@example.com")
    facebook = browser_sub(sandbox, "facebook", "alan@example.com")
    assert google != facebook
    linked = httpx2.post(f"{sandbox.base_url}/api/v2/users/{google}/identities",
                         headers=management_token(sandbox),
                         json={"provider": "facebook", "user_id": facebook.split("|", 1)[1]})
    assert linked.status_code == 201
    assert browser_sub(sandbox, "facebook", "alan@example.com") == google


def test_a_blocked_user_gets_no_tokens(sandbox: Sandbox) -> None:
    grace = sandbox.demo_user("grace@example.com")
    refresh = password_login(sandbox, email="grace@example.com").json()["refresh_token"]
    blocked = httpx2.patch(f"{sandbox.base_url}/api/v2/users/{grace['user_id']}",
                           headers=management_token(sandbox), json={"blocked": True})
    assert blocked.status_code == 200
    refused = password_login(sandbox, email="grace@example.com")
    assert refused.status_code == 401
    assert refused.json() == {"error": "unauthorized", "error_description": "user is blocked"}
    again = token(sandbox, grant_type="refresh_token", client_id=sandbox.client_id, refresh_token=refresh)
    assert again.status_code == 401 and again.json()["error"] == "unauthorized"
    url = authorize_url(sandbox, code_challenge=pkce()[1], code_challenge_method="S256")
    with pytest.raises(LoginPageError, match="blocked"):
        sandbox.approve_browser(url, connection=DATABASE, email="grace@example.com")


def test_a_code_raced_by_two_clients_works_once(sandbox: Sandbox) -> None:
    verifier, challenge = pkce()
    code = code_for(sandbox, challenge)
    form = {"grant_type": "authorization_code", "client_id": sandbox.client_id, "code": code,
            "code_verifier": verifier, "redirect_uri": REDIRECT}
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(r.status_code for r in pool.map(lambda _: token(sandbox, **form), range(6)))
    assert statuses == [200, 403, 403, 403, 403, 403]


def test_an_oversized_token_request_gets_a_json_413(sandbox: Sandbox) -> None:
    response = httpx2.post(f"{sandbox.base_url}/oauth/token",
                           data={"grant_type": "password", "junk": "x" * (2 << 20)})
    assert response.status_code == 413 and response.json()["error"] == "invalid_request"


ODD_AUTHORIZE_VALUES = ["http://[::1/callback", "http://127.0.0.1:abc/callback", "\u2603 snow", "%00\x01",
                        "a" * 3000]


@pytest.mark.parametrize("value", ODD_AUTHORIZE_VALUES)
def test_odd_input_never_gets_a_500(shared_sandbox: Sandbox, value: str) -> None:
    tenant = shared_sandbox
    authorize_keys = ("redirect_uri", "client_id", "audience", "connection", "code_challenge",
                      "code_challenge_method", "response_type")
    with httpx2.Client(base_url=tenant.base_url) as http:
        for key in authorize_keys:
            params = {"code_challenge": "a" * 43, "code_challenge_method": "S256", key: value}
            response = http.get(authorize_url(tenant, **params))
            assert response.status_code in (302, 400), (key, response.status_code)
        for grant_type in ("authorization_code", "refresh_token", "client_credentials", PASSWORD_REALM,
                           DEVICE_CODE, value):
            for key in ("code", "client_id", "refresh_token", "device_code", "realm", "audience",
                        "redirect_uri"):
                form = {"grant_type": grant_type, "client_id": tenant.client_id, "username": "a@b.c",
                        "password": "x", key: value}
                response = http.post("/oauth/token", data=form)
                assert 400 <= response.status_code < 500, (grant_type, key, response.status_code)
                assert set(response.json()) == {"error", "error_description"}
        device = http.post("/oauth/device/code", data={"client_id": tenant.client_id, "audience": value})
        assert device.status_code == 403
        assert http.get("/v2/logout", params={"returnTo": value}).status_code == 200
        assert http.post("/activate", data={"user_code": value}).status_code == 400


BAD_BODIES = [
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, "application/json"),  # nesting deeper than the JSON parser's stack
    (b"[" * 100_000, "application/json"),
    (b"{nope", "application/json"),
    (b"null", "application/json"),
    (b'{"client_id": ["a", "b"]}', "application/json"),
    (b"grant_type=client_credentials", "text/plain"),
    (b"\xff\xfe", "application/x-www-form-urlencoded"),
    (b"--b\r\n", "multipart/form-data; boundary=b"),
]


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/device/code"])
def test_bad_bodies_get_an_oauth_error_and_change_nothing(sandbox: Sandbox, path: str) -> None:
    ctx = sandbox.context
    assert ctx is not None
    tables = ("authorization_codes", "device_codes", "refresh_tokens", "users", "identities")

    def counts() -> list[int]:
        with ctx.store.read() as db:
            return [db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables]  # noqa: S608

    before = counts()
    for body, content_type in BAD_BODIES:
        response = httpx2.post(sandbox.base_url + path, content=body, headers={"Content-Type": content_type})
        assert 400 <= response.status_code < 500, (body[:20], content_type, response.status_code)
        assert set(response.json()) == {"error", "error_description"}, response.text
    assert counts() == before


def test_userinfo_refuses_an_expired_token_and_a_deleted_user(sandbox: Sandbox) -> None:
    from linking_toolkit.sandbox.authentication_api.tokens import mint_access_token

    ctx = sandbox.context
    assert ctx is not None
    ada = sandbox.demo_user("ada@example.com")["user_id"]

    def userinfo(expires_in: int) -> httpx2.Response:
        bearer = mint_access_token(ctx, sub=ada, client_id=sandbox.client_id, scope="openid email",
                                   audience=ctx.userinfo_url, expires_in=expires_in)
        return httpx2.get(f"{sandbox.base_url}/userinfo", headers={"Authorization": f"Bearer {bearer}"})

    expired = userinfo(-10)
    assert expired.status_code == 401 and expired.json()["error"] == "invalid_token"
    assert expired.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert userinfo(600).status_code == 200
    ctx.store.delete_user(ada)
    gone = userinfo(600)
    assert gone.status_code == 401 and gone.json() == {"error": "invalid_token",
                                                        "error_description": "The user no longer exists."}


def test_loopback_redirect_is_exact_but_for_the_port(sandbox: Sandbox) -> None:
    """RFC 8252 §7.3 lets the port vary, and nothing else: no userinfo before the host, and no
    fragment anywhere (RFC 6749 §3.1.2), or a code could land somewhere the app never listens."""
    _, challenge = pkce()
    for uri in ("http://127.0.0.1:8765/callback#frag", "http://127.0.0.1:8765/callback#",
                "http://evil@127.0.0.1:8765/callback", "http://a:b@localhost:8765/callback"):
        refused = httpx2.get(authorize_url(sandbox, redirect_uri=uri, code_challenge=challenge,
                                           code_challenge_method="S256"))
        assert refused.status_code == 400 and "location" not in refused.headers, uri
