"""The sandbox's Authentication API routes: the token endpoint, device authorization, userinfo,
discovery, the JWKS and logout (the HTML pages are in ``pages.py``; ``create_app`` registers both)."""

from __future__ import annotations

import time
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, current_app, jsonify, make_response, redirect, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response as WerkzeugResponse

from ..browser_apps import same_url
from ..context import current_tenant
from . import oauth_state as state
from .authserver import (
    DEVICE_CODE,
    LOOPBACK_HOSTS,
    PASSWORD_REALM,
    TOKEN_ENDPOINT_AUTH_METHODS,
    OAuthError,
    SandboxClient,
    known_audience,
    oauth_server,
    query_client,
    request_body,
    token_error,
)
from .sessions import clear_session_cookie, cookie_path, end_session
from .tokens import id_token_profile

__all__ = ["auth"]

auth = Blueprint("auth", __name__)


# -- endpoints ---------------------------------------------------------------------------------------

@auth.errorhandler(RequestEntityTooLarge)
def body_too_large(error: RequestEntityTooLarge) -> Response:
    return token_error("invalid_request", "The request body is too large.", 413)


@auth.post("/oauth/token")
def token() -> Response:
    try:
        return oauth_server(current_app).create_token_response()
    except OAuthError as error:
        return token_error(error.error, error.description, error.status_code)
    except ValueError:  # authlib refuses to build an error whose text echoes non-ASCII input
        return token_error("invalid_request", "The request has invalid characters.")


@auth.post("/oauth/device/code")
def device_code() -> Response:
    tenant = current_tenant()
    try:
        body = request_body()
        client = query_client(body.get("client_id", ""))
        if client is None:
            return token_error("unauthorized_client", "Unknown client.", 403)
        if not client.check_grant_type(DEVICE_CODE):
            return token_error("unauthorized_client",
                               f"Grant type '{DEVICE_CODE}' not allowed for the client.", 403)
        audience = known_audience(tenant, body.get("audience"))
    except OAuthError as error:
        return token_error(error.error, error.description, error.status_code)
    scope = client.get_allowed_scope(body.get("scope"))
    issued = state.new_device_code(tenant, client_id=client.get_client_id(), scope=scope,
                                   audience=audience)
    verification_uri = f"{tenant.base_url}/activate"
    response = jsonify({
        "device_code": issued["device_code"],
        "user_code": issued["user_code"],
        "verification_uri": verification_uri,
        "expires_in": issued["expires_in"],
        "interval": issued["interval"],
        "verification_uri_complete": f"{verification_uri}?{urlencode({'user_code': issued['user_code']})}",
    })
    response.headers["Cache-Control"] = "no-store"
    return response


@auth.get("/userinfo")
def userinfo() -> Response:
    tenant = current_tenant()
    header = request.headers.get("Authorization", "")
    scheme, _, token_value = header.partition(" ")
    if scheme.lower() != "bearer" or not token_value.strip():
        return _unauthorized("invalid_request", "Missing bearer access token.")
    try:
        claims = tenant.keys.decode(token_value.strip())
    except Exception:  # any forged, malformed or foreign token: joserfc raises several kinds
        return _unauthorized("invalid_token", "The access token is invalid.")
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if (claims.get("iss") != tenant.issuer or tenant.userinfo_url not in auds
            or not isinstance(claims.get("exp"), int) or claims["exp"] < time.time()
            or "openid" not in str(claims.get("scope", "")).split() or state.grant_revoked(tenant, claims)):
        return _unauthorized("invalid_token", "The access token is invalid or lacks the openid scope.")
    user = tenant.store.user_row(str(claims.get("sub")))
    if user is None:
        return _unauthorized("invalid_token", "The user no longer exists.")
    return jsonify({"sub": user["user_id"], **id_token_profile(user, claims["scope"])})


def _unauthorized(error: str, description: str) -> Response:
    response = token_error(error, description, 401)
    response.headers["WWW-Authenticate"] = f'Bearer error="{error}", error_description="{description}"'
    return response


@auth.get("/.well-known/openid-configuration")
def discovery() -> Response:
    tenant = current_tenant()
    base = tenant.base_url
    return jsonify({
        "issuer": tenant.issuer,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "device_authorization_endpoint": f"{base}/oauth/device/code",
        "userinfo_endpoint": tenant.userinfo_url,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "end_session_endpoint": f"{base}/v2/logout",
        "scopes_supported": ["openid", "profile", "email", "offline_access", "read:current_user",
                             "update:current_user_identities"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "web_message"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials",
                                  PASSWORD_REALM, DEVICE_CODE],
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": TOKEN_ENDPOINT_AUTH_METHODS,
        "claims_supported": ["aud", "auth_time", "email", "email_verified", "exp", "family_name",
                             "given_name", "iat", "iss", "name", "nickname", "picture", "sub"],
        "request_uri_parameter_supported": False,
    })


@auth.get("/.well-known/jwks.json")
def jwks() -> Response:
    return jsonify(current_tenant().keys.jwks())


@auth.get("/v2/logout")
def logout() -> WerkzeugResponse:
    """Auth0's logout: ends this browser's SSO session and redirects to ``returnTo`` if it is one
    of the client's Allowed Logout URLs (a native client: its loopback callbacks' hosts; no
    ``client_id``: the notebook's client). Otherwise a page, never an open redirect, and the
    session stays: the request was not the app's."""
    tenant = current_tenant()
    return_to = request.args.get("returnTo")
    client = query_client(request.args.get("client_id") or tenant.client_id)
    if return_to and (client is None or not _allowed_logout_url(client, return_to)):
        return _logout_page(refused=True)
    end_session(tenant, request.cookies)
    response = redirect(return_to, code=302) if return_to else _logout_page(refused=False)
    clear_session_cookie(response, tenant, cookie_path())
    return response


def _logout_page(*, refused: bool) -> WerkzeugResponse:
    page = make_response(render_template("logged_out.html", refused=refused), 200)
    page.headers["Cache-Control"] = "no-store"
    page.headers["X-Frame-Options"] = "DENY"
    page.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    return page


def _allowed_logout_url(client: SandboxClient, url: str) -> bool:
    if client.is_spa:
        return any(same_url(allowed, url) for allowed in client.logout_urls)
    try:
        given = urlsplit(url)
        given.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    if given.scheme != "http" or given.hostname not in LOOPBACK_HOSTS:
        return False
    return any(urlsplit(uri).hostname == given.hostname for uri in client.row["redirect_uris"])
