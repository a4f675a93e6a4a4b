"""ID-token verification against the tenant's JWKS, and the ``Session`` a login returns.

Every ID token is verified before anything uses it; a failed check raises its own exception and
the token is dropped. The JWKS is cached by its owner, the :class:`~linking_toolkit.tenant.Tenant`.
Tokens live only in a session's private fields: reprs show who is logged in, never a token.
"""

from __future__ import annotations

import hmac
import html
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from .errors import (
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
from .identities import Identity, identities_of

if TYPE_CHECKING:
    from .tenant import Tenant

__all__ = ["LEEWAY_SECONDS", "Purpose", "Session", "SessionClient", "unverified_claims", "verify_id_token"]

# Clocks of laptops and tenants differ a little; a minute is what OIDC libraries commonly allow.
LEEWAY_SECONDS = 60

Purpose = Literal["login", "linking"]


def _signing_key(tenant: Tenant, kid: str) -> RSAKey:
    """The RSA key named ``kid`` in the tenant's JWKS (which the tenant caches and refetches)."""
    entry = tenant.signing_jwk(kid)
    # Only RSA signing keys can verify RS256; anything else in the set is no key for an ID token.
    if entry is not None and entry.get("kty") == "RSA" and entry.get("use", "sig") == "sig":
        try:
            return RSAKey.import_key(entry)
        except (JoseError, ValueError, TypeError):
            pass
    raise UnknownSigningKey("the ID token's kid is not in the tenant's JWKS")


def _split(token: str) -> jws.CompactSignature:
    if not isinstance(token, str) or token.count(".") != 2:
        raise MalformedToken("not a JWT in compact form (three dot-separated parts)")
    try:
        return jws.extract_compact(token.encode("ascii"))
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise MalformedToken("the JWT's header or payload is not valid base64url JSON") from None


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, NOT verified: only for deciding what to look up, never to trust.

    Examples
    --------
    >>> from linking_toolkit.tokens import unverified_claims
    >>> unverified_claims('eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhdXRoMHwxIn0.c2lnbmF0dXJl')
    {'sub': 'auth0|1'}
    """
    try:
        payload = json.loads(_split(token).payload)
    except ValueError:
        raise MalformedToken("the JWT's payload is not JSON") from None
    if not isinstance(payload, dict):
        raise MalformedToken("the JWT's payload is not a JSON object")
    return payload


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MissingClaim(f"the ID token has no numeric {name!r} claim")
    return float(value)


def verify_id_token(
    token: str,
    tenant: Tenant,
    *,
    nonce: str | None = None,
    max_age: int | None = None,
    leeway: int = LEEWAY_SECONDS,
    now: float | None = None,
) -> dict[str, Any]:
    """Check an ID token as OIDC Core 3.1.3.7 asks and return its claims.

    The signature must verify with the tenant's RS256 key named by ``kid`` (the JWKS is cached and
    fetched again once for an unknown kid), ``iss`` must be the tenant's issuer, ``aud`` must hold
    the tenant's client id (and ``azp`` must equal it whenever present, and be present when ``aud``
    has several values), ``exp`` must be ahead and ``iat`` not ahead (both within ``leeway``
    seconds), ``sub`` must be a non-empty string, ``nonce`` must equal the one the login sent, and
    with ``max_age`` the ``auth_time`` must be recent enough. Each failure raises its own
    :class:`~linking_toolkit.errors.TokenVerificationError` subclass; there is no warning mode.

    Examples
    --------
    >>> claims = verify_id_token(session.id_token, tenant, nonce=sent_nonce)   # doctest: +SKIP
    """
    claims = _signed_claims(token, tenant)
    _check_parties(claims, tenant)
    moment = time.time() if now is None else now
    _check_lifetime(claims, leeway=leeway, moment=moment)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise MissingClaim("the ID token has no sub claim")
    if nonce is not None:
        got = claims.get("nonce")
        if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
            raise InvalidNonce("the ID token's nonce is not the one this login sent")
    if max_age is not None and _number(claims, "auth_time") + max_age + leeway < moment:
        raise TokenTooOld("the user authenticated longer ago than max_age allows")
    return claims


def _signed_claims(token: str, tenant: Tenant) -> dict[str, Any]:
    """The payload of an ID token whose RS256 signature verifies with the tenant's key."""
    obj = _split(token)
    header = obj.headers()
    # RS256 only: "none", HS256 signed with the public key and friends never reach a verifier.
    if header.get("alg") != "RS256":
        raise InvalidAlgorithm(f"the ID token is signed with {header.get('alg')!r}; only RS256 is accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise UnknownSigningKey("the ID token's header has no kid")
    key = _signing_key(tenant, kid)
    try:
        valid = jws.validate_compact(obj, key, algorithms=["RS256"])
    except JoseError:
        valid = False
    if not valid:
        raise InvalidSignature("the ID token's signature does not verify with the tenant's key")
    try:
        claims = json.loads(obj.payload)
    except ValueError:
        raise MalformedToken("the ID token's payload is not JSON") from None
    if not isinstance(claims, dict):
        raise MalformedToken("the ID token's payload is not a JSON object")
    return claims


def _check_parties(claims: Mapping[str, Any], tenant: Tenant) -> None:
    """``iss`` is the tenant, ``aud`` holds our client id, ``azp`` (when needed) is us."""
    if claims.get("iss") != tenant.issuer:
        raise InvalidIssuer(f"the ID token was issued by {claims.get('iss')!r}, not {tenant.issuer!r}")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if tenant.client_id not in audiences:
        raise InvalidAudience("the ID token is not meant for this application (aud)")
    azp = claims.get("azp")
    if len(audiences) > 1 and azp is None:
        raise InvalidAuthorizedParty("the ID token has several audiences and no azp")
    if azp is not None and azp != tenant.client_id:
        raise InvalidAuthorizedParty("the ID token's azp is another application")


def _check_lifetime(claims: Mapping[str, Any], *, leeway: int, moment: float) -> None:
    """``exp`` ahead and ``iat`` not ahead of ``moment``, give or take ``leeway`` seconds."""
    if _number(claims, "exp") + leeway < moment:
        raise TokenExpired("the ID token has expired")
    if _number(claims, "iat") - leeway > moment:
        raise TokenIssuedInFuture("the ID token was issued in the future")


class SessionClient(Protocol):
    """What a session needs of its own Management API client (made in ``linking_toolkit.management``).

    Examples
    --------
    >>> primary = login(tenant)                          # doctest: +SKIP
    >>> primary.close()                                  # doctest: +SKIP
    """

    @property
    def closed(self) -> bool: ...

    def close(self) -> None: ...


@dataclass(init=False, repr=False, eq=False)
class Session:
    """A verified login: who (``claims``, ``profile``), why (``purpose``) and until when.

    ``purpose`` is ``"login"`` for the main account and ``"linking"`` for the account to link in;
    only a ``"linking"`` session can be the secondary of ``link()``, so the two are never confused.
    The tokens are private; ``access_token`` and ``id_token`` give them to the package's own calls.
    ``management`` is the session's own Management API client (one connection pool per session),
    set by the login that made the session or on first use by ``ManagementClient.for_session``.

    Examples
    --------
    >>> primary = login(tenant)                          # doctest: +SKIP
    >>> primary.user_id, primary.profile["email"]
    >>> primary.identities                             # the profile's identities, as Identity values
    """

    tenant: Tenant
    purpose: Purpose
    claims: dict[str, Any]
    profile: dict[str, Any]
    expires_at: datetime
    scope: str
    management: SessionClient | None
    _access_token: str
    _id_token: str

    def __init__(
        self,
        tenant: Tenant,
        purpose: Purpose,
        claims: dict[str, Any],
        profile: dict[str, Any],
        expires_at: datetime,
        scope: str = "",
        *,
        access_token: str = "",
        id_token: str = "",
        management: SessionClient | None = None,
    ) -> None:
        self.tenant = tenant
        self.purpose = purpose
        self.claims = claims
        self.profile = profile
        self.expires_at = expires_at
        self.scope = scope
        self.management = management
        self._access_token = access_token
        self._id_token = id_token

    @property
    def user_id(self) -> str:
        return str(self.claims["sub"])

    @property
    def identities(self) -> list[Identity]:
        """The user's identities as the last Management API answer gave them (main one first)."""
        return identities_of(self.profile)

    @property
    def expired(self) -> bool:
        return datetime.now(UTC) >= self.expires_at

    @property
    def access_token(self) -> str:
        """The Management API access token (sensitive: send it, never show it)."""
        if self.expired:
            raise SessionExpired(f"the session of {self.user_id} has expired: log in again")
        return self._access_token

    @property
    def id_token(self) -> str:
        """The verified ID token (sensitive: it is what ``link_with`` sends for a linking session)."""
        return self._id_token

    def close(self) -> None:
        """Close the session's Management API connection pool (``Tenant.close()`` does it too)."""
        if self.management is not None:
            self.management.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _who(self) -> tuple[str, str | None, str | None]:
        email = self.profile.get("email") or self.claims.get("email")
        name = self.profile.get("name") or self.claims.get("name")
        return self.user_id, email, name

    def __repr__(self) -> str:
        user_id, email, _ = self._who()
        state = "expired" if self.expired else f"expires {self.expires_at:%Y-%m-%d %H:%M} UTC"
        return (f"<Session {self.purpose} user_id={user_id!r} email={email!r} "
                f"identities={len(self.identities)} {state}>")

    def _repr_html_(self) -> str:
        user_id, email, name = self._who()
        rows = [("user", name or ""), ("email", email or ""), ("user_id", user_id),
                ("purpose", self.purpose),
                ("identities", ", ".join(i.connection for i in self.identities)),
                ("expires", "expired" if self.expired else f"{self.expires_at:%Y-%m-%d %H:%M} UTC")]
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>" for k, v in rows)
        return f"<table>{body}</table>"
