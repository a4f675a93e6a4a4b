"""Who is calling the Management API: the bearer token checked as Auth0 checks it, and its scopes."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

from flask import request
from joserfc.errors import BadSignatureError, JoseError

from ..authentication_api.oauth_state import grant_revoked
from ..context import current_tenant
from .errors import ApiError, unauthorized

__all__ = ["SCOPE_MESSAGES", "Caller", "authenticate", "authorized_caller", "token_header"]

NOT_ME = "User to be acted on does not match subject in bearer token."

# Insufficient-scope messages, word for word as the OAS lists them for each operation.
SCOPE_MESSAGES = {
    "get_users": "Insufficient scope, expected any of: read:users.",
    "post_users": "Insufficient scope, expected any of: create:users.",
    "get_user": "Insufficient scope; expected any of: read:users, read:user_idp_tokens, read:current_user.",
    "delete_user": "Insufficient scope; expected any of: delete:users,delete:current_user.",
    "patch_user": "Insufficient scope; expected any of: "
                  "update:users,update:users_app_metadata,update:current_user_metadata.",
    "identities": "Insufficient scope; expected: update:users, update:current_user_identities.",
    "users_by_email": "Insufficient scope; expected any of: read:users.",
    "post_export": "Insufficient scope; expected any of: read:users.",
    "get_job": "Insufficient scope; expected any of: create:users.",
    "get_clients": "Insufficient scope; expected any of: read:clients, read:client_keys, read:client_summary",
    "get_client": "Insufficient scope; expected any of: read:clients, read:client_keys, "
                  "read:client_credentials, read:client_summary.",
    "patch_client": "Insufficient scope; expected any of: update:clients, update:client_keys.",
    "get_client_grants": "Insufficient scope; expected any of: read:client_grants.",
    "post_client_grants": "Insufficient scope; expected any of: create:client_grants.",
    "get_client_grant": "Insufficient scope; expected any of: read:client_grants.",
    "patch_client_grant": "Insufficient scope; expected any of: update:client_grants.",
    "get_resource_servers": "Insufficient scope, expected any of: read:resource_servers.",
    "get_resource_server": "Insufficient scope; expected any of: read:resource_servers.",
    "patch_resource_server": "Insufficient scope; expected any of: update:resource_servers.",
    "get_connections": "Insufficient scope, expected any of: read:connections",
    "get_connection": "Insufficient scope, expected any of: read:connections",
    "get_connection_clients": "Insufficient scope, expected any of: read:connections",
    "patch_connection_clients": "Insufficient scope, expected any of: update:connections",
}

@dataclass(frozen=True)
class Caller:
    """The bearer of a verified Management API access token.

    Examples
    --------
    >>> from linking_toolkit.sandbox.management_api.auth import Caller
    >>> caller = Caller(sub='abc@clients', azp='abc', scopes=frozenset({'read:users'}),
    ...                 issuer='http://127.0.0.1:5000/')
    >>> caller.may('read:users'), caller.may('update:users')
    (True, False)
    """

    sub: str
    azp: str | None
    scopes: frozenset[str]
    issuer: str

    def may(self, scope: str) -> bool:
        return scope in self.scopes


def token_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWT, or ValueError.

    Examples
    --------
    >>> from linking_toolkit.sandbox.management_api.auth import token_header
    >>> token_header('eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.e30.c2ln')
    {'alg': 'RS256', 'kid': 'k1'}
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWT")
    raw = parts[0] + "=" * (-len(parts[0]) % 4)
    header = json.loads(base64.urlsafe_b64decode(raw.encode("ascii")))
    if not isinstance(header, dict):
        raise ValueError("header is not an object")
    return header


def authenticate() -> Caller:
    """Check the bearer token as Auth0 does: an RS256 JWT signed by this tenant, not expired,
    from this issuer, for the Management API audience. An ID token (aud = a client id) fails the
    audience check: Auth0 no longer accepts ID tokens as bearer.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> answer = api.get('users', headers={'Authorization': 'Bearer not-a-jwt'})    # doctest: +SKIP
    >>> answer.json()['statusCode']    # doctest: +SKIP
    401
    """
    ctx = current_tenant()
    header = request.headers.get("Authorization")
    if not header:
        unauthorized("Missing authentication")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        unauthorized("Bad HTTP authentication header format")
    try:
        if token_header(token).get("alg") != "RS256":
            unauthorized("Invalid token")
        claims = ctx.keys.decode(token)
    except BadSignatureError:
        unauthorized("Invalid signature received for JSON Web Token validation")
    except (JoseError, ValueError, UnicodeError, RecursionError):
        unauthorized("Invalid token")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp <= time.time():
        unauthorized("Expired token received for JSON Web Token validation")
    if claims.get("iss") != ctx.issuer or grant_revoked(ctx, claims):  # revoked: its code was replayed
        unauthorized("Invalid token")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(known in audiences for known in ctx.management_audiences):
        unauthorized(f"Bad audience: {' '.join(str(a) for a in audiences)}")
    sub = claims.get("sub")
    scope = claims.get("scope", "")
    if not isinstance(sub, str) or not sub or not isinstance(scope, str):
        unauthorized("Invalid token")
    azp = claims.get("azp")
    return Caller(sub=sub, azp=azp if isinstance(azp, str) else None,
                  scopes=frozenset(scope.split()), issuer=ctx.issuer)


def authorized_caller(operation: str, *, any_user: tuple[str, ...], own_user: tuple[str, ...] = (),
              target: str | None = None) -> Caller:
    """The caller, if one of ``any_user`` scopes is held, or one of ``own_user`` and ``target``
    is the caller's own ``sub``. 403 otherwise, with Auth0's messages.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> api.delete(f'users/{ada}', headers={'Authorization': 'Bearer x'}).status_code    # doctest: +SKIP
    401
    """
    caller = authenticate()
    if any(caller.may(s) for s in any_user):
        return caller
    if any(caller.may(s) for s in own_user):
        if target is not None and target != caller.sub:
            raise ApiError(403, NOT_ME)
        return caller
    raise ApiError(403, SCOPE_MESSAGES[operation], "insufficient_scope")
