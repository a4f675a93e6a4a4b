"""ID-token verification: every forged or foreign token is refused with its own exception."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from linking_toolkit import Session, Tenant
from linking_toolkit.errors import (
    InvalidAlgorithm,
    InvalidAudience,
    InvalidAuthorizedParty,
    InvalidIssuer,
    InvalidNonce,
    InvalidSignature,
    MalformedToken,
    MissingClaim,
    SessionExpired,
    TokenExpired,
    TokenIssuedInFuture,
    TokenTooOld,
    UnknownSigningKey,
)
from linking_toolkit.sandbox import Sandbox
from linking_toolkit.tenant import JWKS_REFETCHES_PER_MINUTE
from linking_toolkit.tokens import verify_id_token


class CountingTransport(httpx2.HTTPTransport):
    """The real transport, counting the paths it sends (to see when the JWKS is fetched)."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_for(tenant: Tenant, **changes: object) -> dict:
    now = int(time.time())
    claims = {"iss": tenant.issuer, "sub": "auth0|abc", "aud": tenant.client_id, "azp": tenant.client_id,
              "iat": now, "exp": now + 3600, "auth_time": now, "nonce": "n-1"}
    for key, value in changes.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


def signed(sandbox: Sandbox, claims: dict, key: RSAKey | None = None, kid: str | None = None) -> str:
    assert sandbox.context is not None
    signing = key or sandbox.context.keys.current
    header = {"alg": "RS256", "typ": "JWT", "kid": kid or sandbox.context.keys.current.kid}
    return jwt.encode(header, claims, signing, algorithms=["RS256"])


def test_a_valid_token_gives_its_claims(sandbox: Sandbox, client_tenant: Tenant) -> None:
    token = signed(sandbox, claims_for(client_tenant))
    claims = verify_id_token(token, client_tenant, nonce="n-1", max_age=60)
    assert claims["sub"] == "auth0|abc"


def test_a_forged_signature_is_refused(sandbox: Sandbox, client_tenant: Tenant) -> None:
    header, payload, signature = signed(sandbox, claims_for(client_tenant)).split(".")
    other = b64(json.dumps(claims_for(client_tenant, sub="auth0|admin")).encode())
    with pytest.raises(InvalidSignature):
        verify_id_token(f"{header}.{other}.{signature}", client_tenant)
    flipped = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    with pytest.raises(InvalidSignature):
        verify_id_token(f"{header}.{payload}.{flipped}", client_tenant)


def test_another_key_with_the_same_kid_is_refused(sandbox: Sandbox, client_tenant: Tenant) -> None:
    assert sandbox.context is not None
    impostor = RSAKey.generate_key(2048, parameters={"kid": sandbox.context.keys.current.kid}, private=True)
    with pytest.raises(InvalidSignature):
        verify_id_token(signed(sandbox, claims_for(client_tenant), key=impostor), client_tenant)


def test_alg_none_is_refused(sandbox: Sandbox, client_tenant: Tenant) -> None:
    assert sandbox.context is not None
    header = b64(json.dumps({"alg": "none", "kid": sandbox.context.keys.current.kid}).encode())
    token = f"{header}.{b64(json.dumps(claims_for(client_tenant)).encode())}."
    with pytest.raises(InvalidAlgorithm):
        verify_id_token(token, client_tenant)


def test_hs256_signed_with_the_public_key_is_refused(sandbox: Sandbox, client_tenant: Tenant) -> None:
    assert sandbox.context is not None
    public_pem = sandbox.context.keys.current.as_pem(private=False)
    header = b64(json.dumps({"alg": "HS256", "kid": sandbox.context.keys.current.kid}).encode())
    payload = b64(json.dumps(claims_for(client_tenant)).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidAlgorithm):
        verify_id_token(f"{header}.{payload}.{b64(mac)}", client_tenant)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"iss": "https://evil.example.com/"}, InvalidIssuer),
        ({"aud": "another-client"}, InvalidAudience),
        ({"exp": int(time.time()) - 3600}, TokenExpired),
        ({"iat": int(time.time()) + 3600}, TokenIssuedInFuture),
        ({"sub": None}, MissingClaim),
        ({"sub": ""}, MissingClaim),
        ({"exp": None}, MissingClaim),
        ({"iat": "yesterday"}, MissingClaim),
        ({"nonce": "n-2"}, InvalidNonce),
        ({"nonce": None}, InvalidNonce),
        ({"aud": ["CLIENT", "another-client"], "azp": "another-client"}, InvalidAuthorizedParty),
        ({"aud": ["CLIENT", "another-client"], "azp": None}, InvalidAuthorizedParty),
        ({"azp": "another-client"}, InvalidAuthorizedParty),
    ],
)
def test_wrong_claims_with_a_valid_signature_are_refused(
    sandbox: Sandbox, client_tenant: Tenant, changes: dict, error: type[Exception]
) -> None:
    if isinstance(changes.get("aud"), list):
        ours = client_tenant.client_id
        changes = {**changes, "aud": [ours if a == "CLIENT" else a for a in changes["aud"]]}
    with pytest.raises(error):
        verify_id_token(signed(sandbox, claims_for(client_tenant, **changes)), client_tenant, nonce="n-1")


def test_several_audiences_with_our_azp_pass(sandbox: Sandbox, client_tenant: Tenant) -> None:
    token = signed(sandbox, claims_for(client_tenant, aud=[client_tenant.client_id, "x"]))
    assert verify_id_token(token, client_tenant)["azp"] == client_tenant.client_id


def test_leeway_and_max_age(sandbox: Sandbox, client_tenant: Tenant) -> None:
    now = int(time.time())
    # Within the minute of leeway: a laptop's clock a little behind the tenant's.
    near = signed(sandbox, claims_for(client_tenant, exp=now - 30, iat=now + 30))
    assert verify_id_token(near, client_tenant)
    old = signed(sandbox, claims_for(client_tenant, auth_time=now - 7200))
    assert verify_id_token(old, client_tenant, max_age=86_400)
    with pytest.raises(TokenTooOld):
        verify_id_token(old, client_tenant, max_age=600)
    with pytest.raises(MissingClaim):
        no_auth_time = signed(sandbox, claims_for(client_tenant, auth_time=None))
        verify_id_token(no_auth_time, client_tenant, max_age=600)


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c", "e30.e30.", "e30.W10.sig", "ü.ü.ü"])
def test_malformed_tokens_are_refused(client_tenant: Tenant, token: str) -> None:
    with pytest.raises((MalformedToken, InvalidAlgorithm)):
        verify_id_token(token, client_tenant)


def test_unknown_kid_refetches_the_jwks_once(sandbox: Sandbox) -> None:
    transport = CountingTransport()
    tenant = Tenant.from_sandbox(sandbox, transport=transport)
    try:
        verify_id_token(signed(sandbox, claims_for(tenant)), tenant)
        verify_id_token(signed(sandbox, claims_for(tenant)), tenant)
        assert transport.paths.count("/.well-known/jwks.json") == 1  # cached
        with pytest.raises(UnknownSigningKey):
            verify_id_token(signed(sandbox, claims_for(tenant), kid="no-such-kid"), tenant)
        assert transport.paths.count("/.well-known/jwks.json") == 2  # fetched again, once
        assert sandbox.context is not None
        sandbox.context.keys.rotate()  # the tenant rotates its key: the new kid is found on refetch
        assert verify_id_token(signed(sandbox, claims_for(tenant)), tenant)["sub"] == "auth0|abc"
        assert transport.paths.count("/.well-known/jwks.json") == 3
    finally:
        tenant.close()


def test_session_repr_shows_who_and_never_a_token(sandbox: Sandbox, client_tenant: Tenant) -> None:
    id_token = signed(sandbox, claims_for(client_tenant))
    claims = verify_id_token(id_token, client_tenant)
    session = Session(tenant=client_tenant, purpose="login", claims=claims,
                      profile={"user_id": "auth0|abc", "email": "ada@example.com",
                               "identities": [{"provider": "auth0", "user_id": "abc", "connection": "db"}]},
                      expires_at=datetime.now(UTC) + timedelta(hours=1),
                      access_token="ACCESS-TOKEN-VALUE", id_token=id_token)
    for text in (repr(session), session._repr_html_(), str(session)):
        assert "auth0|abc" in text and "ada@example.com" in text
        assert "ACCESS-TOKEN-VALUE" not in text and id_token not in text
    assert session.user_id == "auth0|abc" and not session.expired
    assert [i.full_id for i in session.identities] == ["auth0|abc"]
    assert session.access_token == "ACCESS-TOKEN-VALUE"
    session.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    assert session.expired and "expired" in repr(session)
    with pytest.raises(SessionExpired):
        _ = session.access_token


def test_a_flood_of_unknown_kids_does_not_become_a_flood_of_jwks_requests(sandbox: Sandbox) -> None:
    transport = CountingTransport()
    tenant = Tenant.from_sandbox(sandbox, transport=transport)
    try:
        verify_id_token(signed(sandbox, claims_for(tenant)), tenant)
        for n in range(40):
            with pytest.raises(UnknownSigningKey):
                verify_id_token(signed(sandbox, claims_for(tenant), kid=f"made-up-{n}"), tenant)
        assert transport.paths.count("/.well-known/jwks.json") == 1 + JWKS_REFETCHES_PER_MINUTE
        assert verify_id_token(signed(sandbox, claims_for(tenant)), tenant)["sub"] == "auth0|abc"
    finally:
        tenant.close()
