"""The sandbox's Authentication API: authlib's authorization server with Auth0's grants and shapes.

authlib does what is easy to get wrong (client authentication, grant dispatch, PKCE verification,
the grants' checks); this module gives it the tenant's clients, codes and users, and builds the
token response itself with ``tokens.py`` so every token is minted in one place. Errors leave as
Auth0 sends them: ``{"error", "error_description"}`` with Auth0's status codes.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Payload
from authlib.oauth2.rfc6749.errors import AccessDeniedError, InvalidRequestError
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    BaseGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc6749.grants.base import TokenEndpointMixin
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc8628 import DeviceCodeGrant
from authlib.oauth2.rfc8628.errors import AuthorizationPendingError, ExpiredTokenError, SlowDownError
from flask import Blueprint, Flask, Response, current_app, jsonify, redirect, render_template, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response as WerkzeugResponse

from . import oauth_state as state
from .context import TenantContext, tenant_of
from .seed import verify_password
from .store import now_iso
from .tokens import ACCESS_TOKEN_SECONDS, mint_access_token, mint_id_token

__all__ = [
    "PASSWORD_REALM",
    "Auth0Error",
    "SandboxClient",
    "active_user",
    "auth",
    "build_token_response",
    "known_audience",
    "loopback_match",
    "oauth_server",
    "printable",
    "query_client",
    "record_login",
    "token_error",
]

PASSWORD_REALM = "http://auth0.com/oauth/grant-type/password-realm"  # noqa: S105 - a grant type URI
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}

# Auth0 answers these token errors with 403 (429 for slow_down), where plain RFC 6749 says 400.
AUTH0_ERROR_STATUS = {
    "invalid_grant": 403,
    "access_denied": 403,
    "authorization_pending": 403,
    "expired_token": 403,
    "unauthorized_client": 403,
    "slow_down": 429,
}

auth = Blueprint("auth", __name__)


def _tenant() -> TenantContext:
    return tenant_of(current_app)


class Auth0Error(OAuth2Error):
    """An error with Auth0's code, message and status (authlib's classes carry RFC wording)."""

    def __init__(self, error: str, description: str, status_code: int = 400) -> None:
        super().__init__(description=printable(description), status_code=status_code)
        self.error = error


def printable(text: str) -> str:
    """RFC 6749 §5.2 allows only printable ASCII but quote and backslash in an error description,
    and authlib enforces it; echoed input (an audience, say) may hold anything."""
    return "".join(c if (" " <= c <= "~" and c not in '"\\') else "?" for c in text)


def token_error(error: str, description: str, status: int | None = None) -> Response:
    """Auth0's Authentication API error body."""
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status or AUTH0_ERROR_STATUS.get(error, 400)
    response.headers["Cache-Control"] = "no-store"
    return response


# -- clients -----------------------------------------------------------------------------------------

def loopback_match(registered: str, given: str) -> bool:
    """RFC 8252 §7.3: a loopback redirect matches whatever port the app listens on."""
    try:
        a, b = urlsplit(registered), urlsplit(given)
        b.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:  # e.g. "http://[::1/callback": not a URL at all
        return False
    if a.scheme != "http" or a.hostname not in LOOPBACK_HOSTS:
        return False
    return (b.scheme, b.hostname, b.path or "/", b.query) == (a.scheme, a.hostname, a.path or "/", a.query)


class SandboxClient(ClientMixin):
    """A client row of the store, seen through authlib's client model."""

    def __init__(self, row: dict[str, Any], native_scopes: str) -> None:
        self.row = row
        self.native_scopes = native_scopes.split()

    @property
    def is_public(self) -> bool:
        return not self.row["client_secret"]

    def get_client_id(self) -> str:
        return self.row["client_id"]

    def get_default_redirect_uri(self) -> str | None:
        return None  # Auth0 needs redirect_uri on every authorize request from these apps

    def get_allowed_scope(self, scope: str | None) -> str:
        asked = (scope or "").split()
        if self.row["app_type"] == "native":
            asked = [s for s in asked if s in self.native_scopes]
        return " ".join(dict.fromkeys(asked))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return any(redirect_uri == uri or loopback_match(uri, redirect_uri)
                   for uri in self.row["redirect_uris"])

    def check_client_secret(self, client_secret: str) -> bool:
        secret = self.row["client_secret"]
        return bool(secret) and hmac.compare_digest(secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.is_public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.row["grant_types"]

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row["grant_types"]


def query_client(client_id: str) -> SandboxClient | None:
    tenant = _tenant()
    row = tenant.store.client(client_id) if isinstance(client_id, str) else None
    if row is None:
        return None
    return SandboxClient(row, tenant.store.get_setting("native_scopes") or "")


# -- requests: form or JSON body ------------------------------------------------------------------

class _BodyPayload(OAuth2Payload):
    def __init__(self, body: MultiDict) -> None:
        self._body = body

    @property
    def data(self) -> MultiDict:
        return self._body

    @property
    def datalist(self) -> dict[str, list[str]]:
        return {k: self._body.getlist(k) for k in self._body}


class BodyRequest(OAuth2Request):
    """The token request read from its body, form-encoded or JSON (auth0-python sends JSON)."""

    def __init__(self, body: MultiDict) -> None:
        super().__init__(method=request.method, uri=request.url, headers=request.headers)
        self._body = body
        self.payload = _BodyPayload(body)

    @property
    def args(self) -> MultiDict:
        return request.args

    @property
    def form(self) -> MultiDict:
        return self._body


def request_body() -> MultiDict:
    """Form fields or a flat JSON object's fields; raises Auth0Error on anything else."""
    if request.mimetype == "application/json":
        try:
            data = json.loads(request.get_data(as_text=True) or "{}")
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            raise Auth0Error("invalid_request", "Invalid JSON body.") from None
        if not isinstance(data, dict):
            raise Auth0Error("invalid_request", "The body must be a JSON object.")
        body: MultiDict = MultiDict()
        for key, value in data.items():
            if value is None:
                continue
            if not isinstance(value, str | int | float | bool):
                raise Auth0Error("invalid_request", f"Parameter '{key}' must be a string.")
            body.add(key, str(value))
        return body
    return MultiDict(request.form)


# -- token response ------------------------------------------------------------------------------

def known_audience(tenant: TenantContext, audience: str | None) -> str | None:
    """The API a user token is for: the Management API or (no audience) userinfo only."""
    if not audience or audience in (tenant.userinfo_url, tenant.management_audience):
        return audience or None
    raise Auth0Error("access_denied", f"Service not found: {audience}", 403)


def build_token_response(
    tenant: TenantContext,
    *,
    client: SandboxClient,
    user: dict[str, Any],
    scope: str,
    audience: str | None,
    gty: str | None = None,
    nonce: str | None = None,
    auth_time: int | None = None,
    refresh_token: bool = True,
) -> dict[str, Any]:
    """Auth0's token response for a user: access token, ID token when ``openid``, refresh token
    when ``offline_access`` was granted to a client allowed to refresh."""
    now = int(time.time())
    auth_time = auth_time or now
    scopes = scope.split()
    body: dict[str, Any] = {
        "access_token": mint_access_token(
            tenant, sub=user["user_id"], client_id=client.get_client_id(), scope=scope,
            audience=audience or tenant.userinfo_url, gty=gty, now=now),
    }
    if "offline_access" in scopes and refresh_token and client.check_grant_type("refresh_token"):
        body["refresh_token"] = state.issue_refresh_token(
            tenant, client_id=client.get_client_id(), user_id=user["user_id"], scope=scope,
            audience=audience, auth_time=auth_time)
    if "openid" in scopes:
        body["id_token"] = mint_id_token(tenant, user=user, client_id=client.get_client_id(),
                                         scope=scope, auth_time=auth_time, nonce=nonce, now=now)
    body.update({"scope": scope, "expires_in": ACCESS_TOKEN_SECONDS, "token_type": "Bearer"})
    return body


def active_user(tenant: TenantContext, user_id: str) -> dict[str, Any]:
    """The user who may get tokens now: a deleted user has none, a blocked one is refused."""
    user = state.user_row(tenant, user_id)
    if user is None:
        raise Auth0Error("invalid_grant", "The user no longer exists.", 403)
    if user["blocked"]:
        raise Auth0Error("unauthorized", "user is blocked", 401)
    return user


def record_login(tenant: TenantContext, user_id: str) -> None:
    """A login counts in the user's ``last_login`` and ``logins_count``, as on Auth0."""
    with tenant.store.transaction() as db:
        db.execute("UPDATE users SET last_login = ?, logins_count = logins_count + 1 WHERE user_id = ?",
                   (now_iso(), user_id))


# -- grants ----------------------------------------------------------------------------------------

class _CodeRecord:
    """An authorization code row as authlib's grant and PKCE extension read it."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row
        self.code_challenge = row["code_challenge"]
        self.code_challenge_method = row["code_challenge_method"]

    def get_redirect_uri(self) -> str:
        return self.row["redirect_uri"]

    def get_scope(self) -> str:
        return self.row["scope"]


class S256Only(CodeChallenge):
    """PKCE as Auth0 runs it for public clients: a challenge is required, and only S256."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: BaseGrant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        client = grant.request.client
        if client is not None and client.is_public and not data.get("code_challenge"):
            raise InvalidRequestError("Missing required parameter: code_challenge")
        if data.get("code_challenge") and data.get("code_challenge_method", "plain") != "S256":
            raise InvalidRequestError("Unsupported code_challenge_method: use S256")
        super().validate_code_challenge(grant, redirect_uri)


class CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post", "none"]

    def query_authorization_code(self, code: str, client: SandboxClient) -> _CodeRecord | None:
        row = state.consume_authorization_code(_tenant(), code, client.get_client_id())
        if row is None:
            raise Auth0Error("invalid_grant", "Invalid authorization code", 403)
        return _CodeRecord(row)

    def delete_authorization_code(self, authorization_code: _CodeRecord) -> None:
        pass  # consumed when read, so a replay fails even if this request fails later

    def authenticate_user(self, authorization_code: _CodeRecord) -> dict[str, Any] | None:
        return state.user_row(_tenant(), authorization_code.row["user_id"])

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        raise NotImplementedError("codes are issued by the login pages (pages.py)")

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        row = self.request.authorization_code.row
        user = active_user(_tenant(), row["user_id"])
        body = build_token_response(_tenant(), client=self.request.client, user=user, scope=row["scope"],
                                    audience=row["audience"], nonce=row["nonce"],
                                    auth_time=row["auth_time"])
        return 200, body, self.TOKEN_RESPONSE_HEADER


class PasswordRealmGrant(BaseGrant, TokenEndpointMixin):
    """Auth0's password-realm extension grant: ``realm`` names the database connection."""

    GRANT_TYPE = PASSWORD_REALM
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post", "none"]

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise Auth0Error("unauthorized_client",
                             f"Grant type '{self.GRANT_TYPE}' not allowed for the client.", 403)
        form = self.request.form
        for name in ("username", "password", "realm"):
            if not form.get(name):
                raise Auth0Error("invalid_request", f"Missing required parameter: {name}")
        tenant = _tenant()
        connection = tenant.store.connection_by_name(form["realm"])
        if connection is None or connection["is_social"]:
            raise Auth0Error("invalid_request", "Unknown realm: the connection does not exist or "
                                                "is not a database connection.")
        identity = tenant.store.database_identity_by_email(form["realm"], form["username"])
        if identity is None or not verify_password(form["password"], identity["password_hash"]):
            raise Auth0Error("invalid_grant", "Wrong email or password.", 403)
        self.request.client = client
        self.request.user = active_user(tenant, identity["owner"])

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        tenant = _tenant()
        form = self.request.form
        audience = known_audience(tenant, form.get("audience"))
        scope = self.request.client.get_allowed_scope(form.get("scope"))
        user = self.request.user
        record_login(tenant, user["user_id"])
        body = build_token_response(tenant, client=self.request.client, user=user, scope=scope,
                                    audience=audience, gty="password")
        return 200, body, self.TOKEN_RESPONSE_HEADER


class MachineGrant(ClientCredentialsGrant):
    """Client credentials for an API the client was granted, with that grant's scopes."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        tenant = _tenant()
        client = self.request.client
        audience = self.request.form.get("audience")
        if not audience:
            raise Auth0Error("access_denied", "No audience parameter was provided, and no default "
                                              "audience has been configured", 403)
        if audience != tenant.management_audience:
            raise Auth0Error("access_denied", f"Service not found: {audience}", 403)
        granted = tenant.store.client_grant(client.get_client_id(), audience)
        if granted is None:
            raise Auth0Error("access_denied",
                             f"Client is not authorized to access \"{audience}\". You need to create "
                             "a \"client-grant\" associated to this API.", 403)
        asked = (self.request.form.get("scope") or "").split()
        scopes = [s for s in asked if s in granted] if asked else granted
        scope = " ".join(scopes)
        token = mint_access_token(tenant, sub=f"{client.get_client_id()}@clients",
                                  client_id=client.get_client_id(), scope=scope, audience=audience,
                                  gty="client-credentials")
        body = {"access_token": token, "scope": scope, "expires_in": ACCESS_TOKEN_SECONDS,
                "token_type": "Bearer"}
        return 200, body, self.TOKEN_RESPONSE_HEADER


class _RefreshRecord:
    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row

    def check_client(self, client: SandboxClient) -> bool:
        return self.row["client_id"] == client.get_client_id()

    def get_scope(self) -> str:
        return self.row["scope"]


class RefreshGrant(RefreshTokenGrant):
    """Refresh without rotation (Auth0's default): the same refresh token keeps working."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post", "none"]

    def authenticate_refresh_token(self, refresh_token: str) -> _RefreshRecord | None:
        row = state.refresh_token_row(_tenant(), refresh_token)
        if row is None:
            raise Auth0Error("invalid_grant", "Unknown or invalid refresh token.", 403)
        return _RefreshRecord(row)

    def authenticate_user(self, refresh_token: _RefreshRecord) -> dict[str, Any] | None:
        return state.user_row(_tenant(), refresh_token.row["user_id"])

    def revoke_old_credential(self, refresh_token: _RefreshRecord) -> None:
        pass

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        record: _RefreshRecord = self.request.refresh_token
        user = active_user(_tenant(), record.row["user_id"])
        scope = self.request.payload.scope or record.get_scope()
        body = build_token_response(_tenant(), client=self.request.client, user=user, scope=scope,
                                    audience=record.row["audience"], auth_time=record.row["auth_time"],
                                    refresh_token=False)
        return 200, body, self.TOKEN_RESPONSE_HEADER


class _DeviceRecord:
    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row

    def get_client_id(self) -> str:
        return self.row["client_id"]

    def get_scope(self) -> str:
        return self.row["scope"]


class DeviceGrant(DeviceCodeGrant):
    """Device polling, each poll decided in one transaction (see ``oauth_state.poll_device_code``)."""

    def query_device_credential(self, device_code: str) -> _DeviceRecord:
        outcome, row = state.poll_device_code(_tenant(), device_code)
        if row is None:
            raise Auth0Error("invalid_grant", "Invalid or expired device code.", 403)
        self.request.device_outcome = outcome
        return _DeviceRecord(row)

    def validate_device_credential(self, credential: _DeviceRecord) -> dict[str, Any]:
        outcome = self.request.device_outcome
        if outcome == "expired":
            raise ExpiredTokenError("The device code has expired. Start the login again.")
        if outcome == "denied":
            raise AccessDeniedError("User cancelled the confirmation prompt or consent page.")
        if outcome == "slow_down":
            raise SlowDownError(f"Polling faster than every {credential.row['interval']} seconds; "
                                "wait longer between requests.")
        if outcome == "pending":
            raise AuthorizationPendingError("User has yet to authorize device code.")
        return active_user(_tenant(), credential.row["user_id"])

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        row = self.request.credential.row
        body = build_token_response(_tenant(), client=self.request.client, user=self.request.user,
                                    scope=row["scope"], audience=row["audience"], auth_time=row["auth_time"])
        return 200, body, self.TOKEN_RESPONSE_HEADER


class SandboxAuthorizationServer(AuthorizationServer):
    """authlib's server reading JSON bodies too, and answering errors in Auth0's shape."""

    def create_oauth2_request(self, req: Any) -> OAuth2Request:
        if isinstance(req, OAuth2Request):
            return req
        if request.method == "POST" and request.path.endswith("/oauth/token"):
            return BodyRequest(request_body())
        return super().create_oauth2_request(req)

    def handle_error_response(self, req: Any, error: OAuth2Error) -> Response:
        if error.error == "invalid_client":  # Auth0 says no more, whatever failed
            return token_error("access_denied", "Unauthorized", 401)
        status = AUTH0_ERROR_STATUS.get(error.error, error.status_code)
        if isinstance(error, Auth0Error):
            status = error.status_code
        return token_error(error.error, error.description or error.error.replace("_", " "), status)

    def generate_token(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("tokens are built by build_token_response (tokens.py mints them)")


def _no_save(token: Any, req: Any) -> None:
    pass  # access tokens are self-contained JWTs; refresh tokens are saved when issued


def oauth_server(app: Flask) -> SandboxAuthorizationServer:
    """The app's authorization server (one per app, so two sandboxes never share one)."""
    server = app.extensions.get("linking_sandbox_oauth")
    if server is None:
        server = SandboxAuthorizationServer(query_client=query_client, save_token=_no_save)
        server.init_app(app)
        server.register_grant(CodeGrant, [S256Only(required=True)])
        server.register_grant(PasswordRealmGrant)
        server.register_grant(MachineGrant)
        server.register_grant(RefreshGrant)
        server.register_grant(DeviceGrant)
        app.extensions["linking_sandbox_oauth"] = server
    return server


@auth.record_once
def _install(setup: Any) -> None:
    oauth_server(setup.app)
    from .pages import pages  # the HTML side: login, simulated providers, activation

    setup.app.register_blueprint(pages)


# -- endpoints ---------------------------------------------------------------------------------------

@auth.errorhandler(RequestEntityTooLarge)
def too_large(error: RequestEntityTooLarge) -> Response:
    return token_error("invalid_request", "The request body is too large.", 413)


@auth.post("/oauth/token")
def token() -> Response:
    try:
        return oauth_server(current_app).create_token_response()
    except Auth0Error as error:
        return token_error(error.error, error.description, error.status_code)
    except ValueError:  # authlib refuses to build an error whose text echoes non-ASCII input
        return token_error("invalid_request", "The request has invalid characters.")


@auth.post("/oauth/device/code")
def device_code() -> Response:
    tenant = _tenant()
    try:
        body = request_body()
        client = query_client(body.get("client_id", ""))
        if client is None:
            return token_error("unauthorized_client", "Unknown client.", 403)
        if not client.check_grant_type(DEVICE_CODE):
            return token_error("unauthorized_client",
                               f"Grant type '{DEVICE_CODE}' not allowed for the client.", 403)
        audience = known_audience(tenant, body.get("audience"))
    except Auth0Error as error:
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
    tenant = _tenant()
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
            or "openid" not in str(claims.get("scope", "")).split()):
        return _unauthorized("invalid_token", "The access token is invalid or lacks the openid scope.")
    user = state.user_row(tenant, str(claims.get("sub")))
    if user is None:
        return _unauthorized("invalid_token", "The user no longer exists.")
    from .tokens import id_token_profile

    return jsonify({"sub": user["user_id"], **id_token_profile(user, claims["scope"])})


def _unauthorized(error: str, description: str) -> Response:
    response = token_error(error, description, 401)
    response.headers["WWW-Authenticate"] = f'Bearer error="{error}", error_description="{description}"'
    return response


@auth.get("/.well-known/openid-configuration")
def discovery() -> Response:
    tenant = _tenant()
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
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials",
                                  PASSWORD_REALM, DEVICE_CODE],
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "claims_supported": ["aud", "auth_time", "email", "email_verified", "exp", "family_name",
                             "given_name", "iat", "iss", "name", "nickname", "picture", "sub"],
        "request_uri_parameter_supported": False,
    })


@auth.get("/.well-known/jwks.json")
def jwks() -> Response:
    return jsonify(_tenant().keys.jwks())


@auth.get("/v2/logout")
def logout() -> WerkzeugResponse | tuple[str, int]:
    """Auth0 redirects to ``returnTo`` only if it is an allowed URL (here: a client's loopback
    callback origin); otherwise it shows a page, never an open redirect."""
    tenant = _tenant()
    return_to = request.args.get("returnTo")
    client_id = request.args.get("client_id") or tenant.client_id
    client = query_client(client_id)
    if return_to and client is not None and _allowed_logout_url(client, return_to):
        return redirect(return_to, code=302)
    return render_template("logged_out.html", refused=bool(return_to)), 200


def _allowed_logout_url(client: SandboxClient, url: str) -> bool:
    try:
        given = urlsplit(url)
        given.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    if given.scheme != "http" or given.hostname not in LOOPBACK_HOSTS:
        return False
    return any(urlsplit(uri).hostname == given.hostname for uri in client.row["redirect_uris"])
