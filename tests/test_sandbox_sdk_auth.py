"""Auth0's own Python SDK (auth0-python), unchanged, as a client of the sandbox's Authentication API.

The SDK talks ``https://{domain}`` by default; its documented ``protocol`` option points it at the
sandbox's plain-HTTP loopback address, and the verifier is given the JWKS URL and issuer directly.
"""

from __future__ import annotations

import pytest
from auth0.authentication import GetToken
from auth0.authentication.exceptions import Auth0Error
from auth0.authentication.token_verifier import (
    AsymmetricSignatureVerifier,
    TokenValidationError,
    TokenVerifier,
)

from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.connections import DATABASE


def sdk(tenant: Sandbox, **kwargs: str) -> GetToken:
    return GetToken(tenant.domain, kwargs.pop("client_id", tenant.client_id), protocol="http",
                    telemetry=False, **kwargs)


def verifier(tenant: Sandbox, audience: str | None = None) -> TokenVerifier:
    signatures = AsymmetricSignatureVerifier(f"{tenant.base_url}/.well-known/jwks.json")
    return TokenVerifier(signature_verifier=signatures, issuer=tenant.issuer,
                         audience=audience or tenant.client_id)


def test_sdk_password_realm_login_and_id_token_verification(sandbox: Sandbox) -> None:
    ada = sandbox.demo_user("ada@example.com")
    tokens = sdk(sandbox).login(username=ada["email"], password=ada["password"], realm=DATABASE,
                                scope="openid profile email offline_access",
                                audience=sandbox.management_audience)
    assert tokens["token_type"] == "Bearer" and "refresh_token" in tokens
    claims = verifier(sandbox).verify(tokens["id_token"])
    assert claims["sub"] == ada["user_id"] and claims["email"] == ada["email"]

    refreshed = sdk(sandbox).refresh_token(tokens["refresh_token"])
    assert verifier(sandbox).verify(refreshed["id_token"])["sub"] == ada["user_id"]


def test_sdk_verifier_refuses_a_token_for_another_client_or_issuer(sandbox: Sandbox) -> None:
    ada = sandbox.demo_user("ada@example.com")
    id_token = sdk(sandbox).login(username=ada["email"], password=ada["password"], realm=DATABASE,
                                  scope="openid")["id_token"]
    with pytest.raises(TokenValidationError, match="Audience"):
        verifier(sandbox, audience="another-client").verify(id_token)
    wrong_issuer = TokenVerifier(
        signature_verifier=AsymmetricSignatureVerifier(f"{sandbox.base_url}/.well-known/jwks.json"),
        issuer="https://other.example/", audience=sandbox.client_id)
    with pytest.raises(TokenValidationError, match="Issuer"):
        wrong_issuer.verify(id_token)
    with pytest.raises(TokenValidationError, match="Nonce"):
        verifier(sandbox).verify(id_token, nonce="expected-a-nonce")


def test_sdk_sees_auth0_errors(sandbox: Sandbox) -> None:
    with pytest.raises(Auth0Error) as wrong:
        sdk(sandbox).login(username="ada@example.com", password="wrong", realm=DATABASE, scope="openid")
    assert wrong.value.status_code == 403
    assert wrong.value.error_code == "invalid_grant" and wrong.value.message == "Wrong email or password."


def test_sdk_client_credentials(sandbox: Sandbox) -> None:
    machine = sdk(sandbox, client_id=sandbox.m2m_client_id, client_secret=sandbox.m2m_client_secret)
    tokens = machine.client_credentials(audience=sandbox.management_audience)
    assert "read:users" in tokens["scope"].split()
    with pytest.raises(Auth0Error) as refused:
        sdk(sandbox, client_id=sandbox.m2m_client_id, client_secret="wrong").client_credentials(
            audience=sandbox.management_audience)
    assert refused.value.status_code == 401 and refused.value.error_code == "access_denied"
