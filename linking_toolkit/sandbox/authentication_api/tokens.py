"""The tokens a sandbox tenant issues, in Auth0's shapes. The one place that mints them.

- Access token for an API: RS256 JWT with ``iss``, ``sub`` (a user id, or ``{client_id}@clients``
  for client credentials), ``aud`` (the API audience; a list with ``{issuer}userinfo`` added when
  ``openid`` was asked), ``iat``, ``exp``, ``azp`` (the client), ``scope``, and ``gty`` for
  ``client-credentials`` / ``password``.
- ID token: RS256 JWT with ``iss``, ``sub``, ``aud`` = the client id, ``iat``, ``exp``, ``azp``,
  ``auth_time``, ``nonce`` when one was sent, ``sid``, and the profile claims the scope allows.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from typing import Any

from ..context import TenantContext
from ..defaults import ACCESS_TOKEN_SECONDS

__all__ = [
    "ACCESS_TOKEN_SECONDS",
    "ID_TOKEN_SECONDS",
    "id_token_profile",
    "mint_access_token",
    "mint_id_token",
]

ID_TOKEN_SECONDS = 36_000  # Auth0's default ID token lifetime


def mint_access_token(
    tenant: TenantContext,
    *,
    sub: str,
    client_id: str,
    scope: str,
    audience: str,
    gty: str | None = None,
    expires_in: int = ACCESS_TOKEN_SECONDS,
    now: int | None = None,
    grant: str | None = None,
) -> str:
    """A signed access token; ``grant`` (the grant it was issued under) prefixes its ``jti``, so a
    replayed code can revoke it.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api.tokens import mint_access_token
    >>> from linking_toolkit.tokens import unverified_claims
    >>> token = mint_access_token(tenant, sub=ada, client_id=sandbox.client_id,  # doctest: +SKIP
    ...                           scope='read:current_user',
    ...                           audience=sandbox.management_audience)
    >>> unverified_claims(token)['scope']    # doctest: +SKIP
    'read:current_user'
    """
    now = int(time.time()) if now is None else now
    scopes = scope.split()
    aud: str | list[str] = audience
    if "openid" in scopes and audience != tenant.userinfo_url:
        aud = [audience, tenant.userinfo_url]
    claims: dict[str, Any] = {
        "iss": tenant.issuer,
        "sub": sub,
        "aud": aud,
        "iat": now,
        "exp": now + expires_in,
        "azp": client_id,
        "scope": " ".join(scopes),
        "jti": f"{grant}.{secrets.token_urlsafe(12)}" if grant else secrets.token_urlsafe(12),
    }
    if gty:
        claims["gty"] = gty
    return tenant.keys.sign(claims)


def id_token_profile(user: sqlite3.Row | dict[str, Any], scope: str) -> dict[str, Any]:
    """The profile claims an ID token carries for ``scope`` (OIDC's profile and email scopes).

    Examples
    --------
    >>> from linking_toolkit.sandbox.authentication_api.tokens import id_token_profile
    >>> user = {'email': 'ada@example.com', 'email_verified': 1, 'name': 'Ada Lovelace', 'nickname': 'ada'}
    >>> id_token_profile(user, 'openid email')
    {'email': 'ada@example.com', 'email_verified': True}
    """
    scopes = scope.split()
    claims: dict[str, Any] = {}
    if "profile" in scopes:
        for key in ("name", "nickname", "given_name", "family_name", "picture", "updated_at"):
            if user[key] is not None:
                claims[key] = user[key]
    if "email" in scopes and user["email"] is not None:
        claims["email"] = user["email"]
        claims["email_verified"] = bool(user["email_verified"])
    return claims


def mint_id_token(
    tenant: TenantContext,
    *,
    user: sqlite3.Row | dict[str, Any],
    client_id: str,
    scope: str,
    auth_time: int,
    nonce: str | None = None,
    now: int | None = None,
) -> str:
    """A signed ID token for ``user`` and ``client_id``: the profile claims of ``scope``,
    ``auth_time`` and ``nonce``.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api.tokens import mint_id_token
    >>> from linking_toolkit.tokens import unverified_claims
    >>> token = mint_id_token(tenant, user=tenant.store.user_row(ada),  # doctest: +SKIP
    ...                       client_id=sandbox.client_id,
    ...                       scope='openid email', auth_time=0, nonce='n-1')
    >>> claims = unverified_claims(token)    # doctest: +SKIP
    >>> claims['email'], claims['nonce'], claims['aud'] == sandbox.client_id    # doctest: +SKIP
    ('ada@example.com', 'n-1', True)
    """
    now = int(time.time()) if now is None else now
    claims: dict[str, Any] = id_token_profile(user, scope)
    claims.update({
        "iss": tenant.issuer,
        "sub": user["user_id"],
        "aud": client_id,
        "iat": now,
        "exp": now + ID_TOKEN_SECONDS,
        "azp": client_id,
        "auth_time": auth_time,
        "sid": secrets.token_urlsafe(16),
    })
    if nonce is not None:
        claims["nonce"] = nonce
    return tenant.keys.sign(claims)
