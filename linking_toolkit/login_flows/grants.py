"""What the login flows send to the Authentication API, and how its tokens become a Session.

The device authorization request, the authorization request (state, nonce, PKCE), the token
endpoint and the verified :class:`~linking_toolkit.tokens.Session` made from its answer. The
secrets of a flow (``device_code``, ``state``, ``nonce``, ``code_verifier``) are fields hidden from
every repr: they are sent, never shown.
"""

from __future__ import annotations

import logging
import secrets
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import httpx2
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from ..cache import TokenCache
from ..errors import (
    DOCTOR_COMMAND,
    OFFLINE_ACCESS_HINT,
    AccessDenied,
    LoginError,
    LoginExpired,
    TenantError,
    with_fix_hint,
)
from ..management import ManagementClient
from ..tenant import Tenant
from ..tokens import Purpose, Session, verify_id_token

__all__ = [
    "DATABASE_CONNECTION",
    "DEVICE_GRANT",
    "OFFLINE_SCOPE",
    "PASSWORD_REALM_GRANT",
    "SCOPE",
    "AuthorizationRequest",
    "DeviceAuthorization",
    "Method",
    "check_connection",
    "login_error",
    "session_from_tokens",
    "token_request",
]

logger = logging.getLogger("linking_toolkit.login_flows")

SCOPE = "openid profile email read:current_user update:current_user_identities"
# What a login that may be cached asks for besides: the tenant answers a refresh token only then.
OFFLINE_SCOPE = SCOPE + " offline_access"
DATABASE_CONNECTION = "Username-Password-Authentication"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
PASSWORD_REALM_GRANT = "http://auth0.com/oauth/grant-type/password-realm"  # noqa: S105 - a grant name

Method = Literal["device", "browser", "paste", "password"]

_LOGIN_ERRORS: dict[str, type[LoginError]] = {
    "access_denied": AccessDenied,
    "expired_token": LoginExpired,
}


def login_error(error: str, message: str, status_code: int | None = None) -> LoginError:
    """The exception for an OAuth ``error`` code (``access_denied``, ``expired_token``, ...).

    Examples
    --------
    >>> from linking_toolkit.login_flows.grants import login_error
    >>> login_error("access_denied", "User did not authorize the request")
    AccessDenied('User did not authorize the request')
    >>> login_error("expired_token", "The device code has expired", 400)
    LoginExpired('The device code has expired', status_code=400)
    """
    return _LOGIN_ERRORS.get(error, LoginError)(with_fix_hint(message, error), status_code=status_code,
                                                error=error)


def _post_form(tenant: Tenant, endpoint: str, data: dict[str, str], expect: str) -> dict[str, Any]:
    """POST a form to an Authentication API endpoint and return the JSON answer holding
    ``expect``; an OAuth error answer becomes a LoginError in the tenant's words."""
    try:
        response = tenant.http.post(tenant.endpoint(endpoint), data=data)
    except httpx2.HTTPError as exc:
        raise TenantError(f"the {endpoint} could not be reached ({type(exc).__name__})") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise TenantError(f"the {endpoint} answered HTTP {response.status_code}, not JSON",
                          status_code=response.status_code)
    if response.status_code == 200 and expect in body:
        return body
    error = str(body.get("error") or "login_failed")
    raise login_error(error, str(body.get("error_description") or body.get("message") or error),
                      response.status_code)


def token_request(tenant: Tenant, data: dict[str, str]) -> dict[str, Any]:
    """POST to the token endpoint: the tokens, or the tenant's refusal as a LoginError.

    Examples
    --------
    >>> from linking_toolkit.login_flows.grants import token_request
    >>> tokens = token_request(tenant, {"grant_type": "refresh_token",    # doctest: +SKIP
    ...                                 "client_id": tenant.client_id, "refresh_token": refresh_token})
    >>> tokens["expires_in"]               # a refused grant raises a LoginError instead
    """
    return _post_form(tenant, "token_endpoint", data, "access_token")


def session_from_tokens(tenant: Tenant, tokens: dict[str, Any], purpose: Purpose, nonce: str | None, *,
                        cache: TokenCache | None = None, connection: str | None = None,
                        user_id: str | None = None) -> Session:
    """Verify the ID token, then read the user's profile with the session's own access token.

    ``user_id`` is whom the tokens must be for (a refresh of a cached login); ``cache`` keeps the
    refresh token, if the tenant answered one, once the session is verified.

    Examples
    --------
    >>> from linking_toolkit.login_flows.grants import session_from_tokens, token_request
    >>> tokens = token_request(tenant, {"grant_type": "refresh_token",    # doctest: +SKIP
    ...                                 "client_id": tenant.client_id, "refresh_token": refresh_token})
    >>> session = session_from_tokens(tenant, tokens, "login", nonce=None)
    """
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise LoginError("the tenant returned no ID token (was 'openid' refused?)")
    claims = verify_id_token(id_token, tenant, nonce=nonce)
    if user_id is not None and claims["sub"] != user_id:
        raise LoginError(f"the tenant answered the cached login of {user_id} with another user's ID token")
    try:
        expires_in = float(tokens.get("expires_in") or 0) or 86_400.0
    except (TypeError, ValueError):
        raise TenantError("the token_endpoint's expires_in is not a number of seconds") from None
    session = Session(
        tenant=tenant,
        purpose=purpose,
        claims=claims,
        profile={},
        expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
        scope=str(tokens.get("scope") or SCOPE),
        access_token=str(tokens["access_token"]),
        id_token=id_token,
    )
    session.profile = ManagementClient.for_session(session).get_user(session.user_id)
    if connection:
        check_connection(session, connection)
    refresh_token = tokens.get("refresh_token")
    if cache is not None and isinstance(refresh_token, str) and refresh_token:
        cache.save(tenant, purpose=purpose, connection=connection, user_id=session.user_id,
                   refresh_token=refresh_token)
    elif cache is not None and cache.writes:  # offline_access was asked for, and nothing came
        print(f"The tenant answered no refresh token, so this login is not cached. To fix: "
              f"{OFFLINE_ACCESS_HINT}; `{DOCTOR_COMMAND}` checks it.", file=sys.stderr)
    logger.debug("logged in %s for %s", session.user_id, purpose)
    return session


def check_connection(session: Session, connection: str) -> None:
    """Raise a :class:`LoginError` naming both connections when the person logged in with another
    one than ``connection``, the one asked for. The device flow cannot ask Auth0 for a connection
    (``/oauth/device/code`` takes none), so its page offers every account: the login itself must
    be checked, or the wrong account passes as the one to link and only ``link()`` fails, later and
    for another reason.

    Examples
    --------
    >>> from linking_toolkit.login_flows.grants import check_connection
    >>> check_connection(secondary, "google-oauth2")     # doctest: +SKIP
    >>> # returns if the person logged in with google-oauth2; else a LoginError names both
    """
    identities = [i for i in session.profile.get("identities") or [] if isinstance(i, dict)]
    if any(i.get("connection") == connection for i in identities):
        return
    used = next((i for i in identities if f"{i.get('provider')}|{i.get('user_id')}" == session.user_id),
                identities[0] if identities else {})
    who = session.profile.get("email") or session.user_id
    session.close()
    raise LoginError(f"this login asked for {connection}, but you logged in with "
                     f"{used.get('connection', 'another connection')} as {who}: log in again and choose "
                     f"{connection} on the login page")


@dataclass(frozen=True)
class DeviceAuthorization:
    """The tenant's answer to a device authorization request (RFC 8628 3.2).

    ``device_code`` is the secret the poller sends (sensitive: never shown); the person sees
    ``verification_uri_complete`` (or ``verification_uri``) and checks ``user_code`` there.

    Examples
    --------
    >>> from linking_toolkit.login_flows.grants import DeviceAuthorization
    >>> answer = DeviceAuthorization("a-device-code", "BCDF-GHJK", "https://example.eu.auth0.com/activate",
    ...                              "https://example.eu.auth0.com/activate?user_code=BCDF-GHJK", 900, 5.0)
    >>> "a-device-code" in repr(answer)                 # the poller's secret is never shown
    False
    >>> answer.user_code
    'BCDF-GHJK'
    """

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: float

    @classmethod
    def request(cls, tenant: Tenant, *, timeout: float, scope: str = SCOPE) -> DeviceAuthorization:
        """Ask the tenant for a device code (``expires_in`` defaults to ``timeout``)."""
        body = _post_form(tenant, "device_authorization_endpoint", {
            "client_id": tenant.client_id, "scope": scope, "audience": tenant.management_audience},
            "device_code")
        try:
            complete = body.get("verification_uri_complete")
            for uri in (body["verification_uri"], complete):
                if uri is not None and not _openable(str(uri)):
                    raise TenantError(f"the tenant's verification_uri is not an https link "
                                      f"({str(uri)[:60]!r}): not shown, as it could run or lead anywhere")
            return cls(
                device_code=str(body["device_code"]),
                user_code=str(body["user_code"]),
                verification_uri=str(body["verification_uri"]),
                verification_uri_complete=complete if isinstance(complete, str) else None,
                expires_in=int(body.get("expires_in") or timeout),
                interval=float(body["interval"]) if body.get("interval") is not None else 5.0,
            )
        except (KeyError, TypeError, ValueError):
            # RFC 8628 3.2 requires these fields: without them there is nothing to show or poll.
            raise TenantError("the device_authorization_endpoint's answer lacks user_code, "
                              "verification_uri, or a numeric expires_in/interval") from None


def _openable(uri: str) -> bool:
    """A link fit to show a person: https, or http on this machine's loopback (the sandbox); never
    ``javascript:``, ``data:`` or a link with credentials in it."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    return bool(parts.hostname) and "@" not in parts.netloc and (
        parts.scheme == "https" or (parts.scheme == "http" and loopback))


@dataclass(frozen=True)
class AuthorizationRequest:
    """An authorization code request with PKCE (S256): the URL to open and the secrets to check
    the redirect against (``state``, ``nonce``, ``code_verifier``: sensitive, never shown).

    Examples
    --------
    >>> from linking_toolkit.login_flows.grants import AuthorizationRequest
    >>> request = AuthorizationRequest("https://example.eu.auth0.com/authorize?client_id=abc",
    ...                                "http://127.0.0.1:8765/callback", "a-state", "a-nonce", "a-verifier")
    >>> request
    AuthorizationRequest(url='https://example.eu.auth0.com/authorize?client_id=abc', redirect_uri=...)
    >>> "a-verifier" in repr(request)                    # the secrets are never shown
    False
    """

    url: str
    redirect_uri: str
    state: str = field(repr=False)
    nonce: str = field(repr=False)
    code_verifier: str = field(repr=False)

    @classmethod
    def new(cls, tenant: Tenant, purpose: Purpose, redirect_uri: str,
            connection: str | None = None, scope: str = SCOPE) -> AuthorizationRequest:
        """Fresh secrets, and the tenant's ``/authorize`` URL asking for the Management audience."""
        # The state names the purpose, as the seed's second Lock's state: "linking" did.
        state = f"{purpose}.{secrets.token_urlsafe(24)}"
        nonce = secrets.token_urlsafe(24)
        code_verifier = generate_token(64)
        params = {
            "response_type": "code",
            "client_id": tenant.client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "audience": tenant.management_audience,
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(code_verifier),
            "code_challenge_method": "S256",
        }
        if connection:
            params["connection"] = connection
        if purpose == "linking":  # the other account's login: never the browser's SSO session, which
            params["prompt"] = "login"  # would answer at once with the account already logged in
        url = f"{tenant.endpoint('authorization_endpoint')}?{urlencode(params)}"
        return cls(url=url, redirect_uri=redirect_uri, state=state, nonce=nonce, code_verifier=code_verifier)
