"""Management API routes on identities: link (``POST /users/{id}/identities``) and unlink
(``DELETE /users/{id}/identities/{provider}/{user_id}``), with Auth0's checks of the secondary."""

from __future__ import annotations

import time
from typing import Any

from flask import Response
from joserfc.errors import JoseError

from ..context import current_tenant
from ..store import LinkConflict, full_user_id, split_user_id
from .auth import Caller, authorized_caller, token_header
from .errors import NOT_FOUND_USER, ApiError, bad_body, json_response
from .validation import PROVIDERS, check_connection_id, read_body

__all__ = ["LINK_MESSAGES", "link_identity", "unlink_identity"]

# Link and unlink errors, word for word from the OAS's x-description-N entries.
LINK_MESSAGES = {
    "not_configured": "The provider/connection is not configured.",
    "same": "Main identity and the new one are the same.",
    "invalid_token": "Invalid token (link_with).",
    "invalid_aud": "JWT (link_with) contains an invalid aud claim.",
    "missing_sub": "JWT (link_with) must contains sub claim.",
    "invalid_sub": "JWT (link_with) contains an invalid sub claim.",
    "alg": "JWT (link_with) must have an alg of RS256.",
    "issuer": "JWT (link_with) must have the same issuer as the calling user.",
    "aud_azp": "JWT (link_with) must have an aud claim that matches that of the calling token's azp.",
    "needs_connection": "Linking to an inexistent identity requires a connection.",
    "inexistent": "Linking to an inexistent identity is not allowed.",
    "unable": "Unable to link with the secondary account.",
    "secondary_missing": "Provided secondary account not found.",
    "already_linked": "Specified identity already exists.",
    "main_identity": "Main identity cannot be removed.",
}


LINK_SCHEMA: dict[str, tuple[str, ...]] = {
    "provider": ("string",), "connection_id": ("string",), "user_id": ("string", "integer"),
    "link_with": ("string",),
}


def link_identity(primary_id: str) -> Response:
    """``POST /users/{id}/identities``: ``link_with`` (a secondary ID token) or
    ``provider``/``user_id``/``connection_id``. 201 with the primary's identities.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> body = {'provider': 'auth0', 'user_id': grace.split('|')[1]}    # doctest: +SKIP
    >>> [i['provider'] for i in api.post(f'users/{ada}/identities', json=body).json()]    # doctest: +SKIP
    ['auth0', 'auth0']
    """
    caller = authorized_caller("identities", any_user=("update:users",),
                               own_user=("update:current_user_identities",), target=primary_id)
    body = read_body(LINK_SCHEMA)
    if not body:
        bad_body("Payload validation error: 'Too few properties defined (0), minimum 1'.")
    store = current_tenant().store
    if "link_with" in body:
        if len(body) > 1:
            bad_body("Payload validation error: 'link_with' must not be sent with "
                     f"{', '.join(sorted(k for k in body if k != 'link_with'))}.")
        provider, short_id = _secondary_from_token(body["link_with"], caller)
        if full_user_id(provider, short_id) == primary_id:
            bad_body(LINK_MESSAGES["same"])
    else:
        if not caller.may("update:users"):
            # update:current_user_identities may link only with a second authenticated account.
            raise ApiError(403, "Insufficient scope; expected: update:users.", "insufficient_scope")
        provider, short_id = _secondary_from_body(body)
    if store.get_user(primary_id) is None:
        raise ApiError(404, NOT_FOUND_USER, "inexistent_user")
    try:
        identities = store.link(primary_id, provider, short_id)
    except LinkConflict as refused:
        raise _link_error(refused.reason, "link_with" in body) from None
    return json_response(identities, 201)


def _link_error(reason: str, by_token: bool) -> ApiError:
    if reason == "primary_missing":
        return ApiError(404, NOT_FOUND_USER, "inexistent_user")
    if reason == "already_linked":
        return ApiError(409, LINK_MESSAGES["already_linked"], "identity_conflict")
    if reason == "secondary_missing":
        if by_token:
            return ApiError(400, LINK_MESSAGES["secondary_missing"], "invalid_body")
        return ApiError(400, LINK_MESSAGES["inexistent"], "invalid_body")
    if reason == "same":
        return ApiError(400, LINK_MESSAGES["same"], "invalid_body")
    return ApiError(400, LINK_MESSAGES["unable"], "invalid_body")  # linked elsewhere, or has links


def _secondary_from_body(body: dict[str, Any]) -> tuple[str, str]:
    """The secondary identity named by ``provider``/``user_id`` (full ``auth0|...`` id or short)."""
    for required in ("provider", "user_id"):
        if required not in body:
            bad_body(f"Payload validation error: 'Missing required property: {required}'.")
    provider = body["provider"]
    if provider not in PROVIDERS:
        bad_body(f"Payload validation error: 'Invalid value \"{provider[:60]}\" for enum'"
                 " on property provider.")
    user_id = str(body["user_id"])
    if not user_id:
        bad_body("Payload validation error: 'String is too short (0 chars), minimum 1' on property user_id.")
    store = current_tenant().store
    connection_id = body.get("connection_id")
    connection: dict[str, Any] | None = None
    if connection_id is not None:
        check_connection_id(connection_id)
        connection = store.connection_by_id(connection_id)
        if connection is None or connection["strategy"] != provider:
            bad_body(LINK_MESSAGES["not_configured"])
    elif not any(c["strategy"] == provider for c in store.connections()):
        bad_body(LINK_MESSAGES["not_configured"])
    candidates = [user_id]
    prefix, sep, rest = user_id.partition("|")
    if sep and prefix == provider and rest:
        candidates.insert(0, rest)  # the recording's form: the full "auth0|..." id
    for short_id in candidates:
        ident = store.find_identity(provider, short_id)
        if ident is not None:
            if connection is not None and ident["connection"] != connection["name"]:
                continue
            return provider, short_id
    bad_body(LINK_MESSAGES["needs_connection" if connection_id is None else "inexistent"])


def _secondary_from_token(link_with: str, caller: Caller) -> tuple[str, str]:
    """Check the secondary account's ID token as Auth0 does; its ``sub`` names the secondary."""
    ctx = current_tenant()
    try:
        header = token_header(link_with)
    except (ValueError, UnicodeError, RecursionError):
        bad_body(LINK_MESSAGES["invalid_token"])
    if header.get("alg") != "RS256":
        bad_body(LINK_MESSAGES["alg"])
    try:
        claims = ctx.keys.decode(link_with)
    except (JoseError, ValueError, UnicodeError, RecursionError):
        bad_body(LINK_MESSAGES["invalid_token"])
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp <= time.time():
        bad_body(LINK_MESSAGES["invalid_token"])
    if claims.get("iss") != caller.issuer:
        bad_body(LINK_MESSAGES["issuer"])
    if "sub" not in claims:
        bad_body(LINK_MESSAGES["missing_sub"])
    sub = claims["sub"]
    if not isinstance(sub, str):
        bad_body(LINK_MESSAGES["invalid_sub"])
    try:
        provider, short_id = split_user_id(sub)
    except ValueError:
        bad_body(LINK_MESSAGES["invalid_sub"])
    aud = claims.get("aud")
    if not (isinstance(aud, str) or (isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud))):
        bad_body(LINK_MESSAGES["invalid_aud"])
    audiences = [aud] if isinstance(aud, str) else aud
    if caller.azp is None or caller.azp not in audiences:
        bad_body(LINK_MESSAGES["aud_azp"])
    return provider, short_id


def unlink_identity(primary_id: str, provider: str, short_id: str) -> Response:
    """``DELETE /users/{id}/identities/{provider}/{user_id}``: 200 with the remaining identities.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> answer = api.delete(f"users/{ada}/identities/auth0/{grace.split('|')[1]}")    # doctest: +SKIP
    >>> [identity['provider'] for identity in answer.json()]    # doctest: +SKIP
    ['auth0']
    """
    authorized_caller("identities", any_user=("update:users",),
                      own_user=("update:current_user_identities",), target=primary_id)
    if provider not in PROVIDERS:
        raise ApiError(400, f"Path validation error: 'Invalid value \"{provider[:60]}\" for enum' on"
                            " property provider (Identity provider name of the secondary linked account"
                            " (e.g. `google-oauth2`)).", "invalid_uri")
    try:
        identities = current_tenant().store.unlink(primary_id, provider, short_id)
    except LinkConflict as refused:
        if refused.reason == "main_identity":
            raise ApiError(400, LINK_MESSAGES["main_identity"], "operation_not_supported") from None
        raise ApiError(404, NOT_FOUND_USER, "inexistent_user") from None
    return json_response(identities)
