"""The sandbox's authorization server: authlib's server, the client model, the token response,
and the sandbox's OAuth error.

authlib does what is easy to get wrong (client authentication, grant dispatch, PKCE verification,
the grants' checks); this module gives it the tenant's clients and users, and builds the token
response itself with ``tokens.py`` so every token is minted in one place. Errors leave as Auth0
sends them: ``{"error", "error_description"}`` with Auth0's status codes. The grants are in
``grants.py``; the routes that use this server in ``oauth.py`` and ``pages.py``.
"""

from __future__ import annotations

import hmac
import json
import re
import time
from typing import Any
from urllib.parse import urlsplit

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Payload
from flask import Flask, Response, jsonify, request
from werkzeug.datastructures import MultiDict

from ..browser_apps import same_url
from ..context import TenantContext, current_tenant
from ..defaults import DEVICE_CODE, PASSWORD_REALM
from . import oauth_state as state
from .tokens import ACCESS_TOKEN_SECONDS, mint_access_token, mint_id_token

__all__ = [
    "AUTH0_ERROR_STATUS",
    "CALLBACK_MISMATCH",
    "DEVICE_CODE",
    "LOOPBACK_HOSTS",
    "NOT_ENABLED",
    "PASSWORD_REALM",
    "SERVER_EXTENSION",
    "TOKEN_ENDPOINT_AUTH_METHODS",
    "OAuthError",
    "SandboxAuthorizationServer",
    "SandboxClient",
    "active_user",
    "auth0_wording",
    "build_token_response",
    "known_audience",
    "loopback_match",
    "oauth_server",
    "printable",
    "query_client",
    "request_body",
    "token_error",
]

TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
SERVER_EXTENSION = "linking_sandbox_oauth"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
# Auth0's answer to a login through a connection that is not enabled for the application.
NOT_ENABLED = "the connection is not enabled"
# Auth0's error page for a redirect_uri that is not an Allowed Callback URL.
CALLBACK_MISMATCH = ("Callback URL mismatch. The provided redirect_uri is not in the list of allowed "
                     "callback URLs.")
_AUTHLIB_NOT_ALLOWED = re.compile(r"The client is not authorized to use '(?:grant|response)_type=([^']+)'")

# Auth0 answers these token errors with 403 (429 for slow_down), where plain RFC 6749 says 400.
AUTH0_ERROR_STATUS = {
    "invalid_grant": 403,
    "access_denied": 403,
    "authorization_pending": 403,
    "expired_token": 403,
    "unauthorized_client": 403,
    "slow_down": 429,
}


class OAuthError(OAuth2Error):
    """An error with Auth0's code, message and status (authlib's classes carry RFC wording).

    Examples
    --------
    >>> from linking_toolkit.sandbox.authentication_api import authserver
    >>> error = authserver.OAuthError('invalid_request', 'Missing required parameter: grant_type', 400)
    >>> error.error, error.status_code
    ('invalid_request', 400)
    """

    def __init__(self, error: str, description: str, status_code: int = 400) -> None:
        super().__init__(description=printable(description), status_code=status_code)
        self.error = error


def printable(text: str) -> str:
    """RFC 6749 §5.2 allows only printable ASCII but quote and backslash in an error description,
    and authlib enforces it; echoed input (an audience, say) may hold anything.

    Examples
    --------
    >>> from linking_toolkit.sandbox.authentication_api import authserver
    >>> authserver.printable('audience "café" is unknown')
    'audience ?caf?? is unknown'
    """
    return "".join(c if (" " <= c <= "~" and c not in '"\\') else "?" for c in text)


def auth0_wording(error: OAuth2Error) -> None:
    """authlib's refusals in Auth0's words (and status): a grant type the client does not have, a
    redirect URI that is not one of its Allowed Callback URLs.

    Examples
    --------
    >>> import httpx2
    >>> body = {'grant_type': 'implicit', 'client_id': sandbox.client_id}  # doctest: +SKIP
    >>> answer = httpx2.post(f'{sandbox.base_url}/oauth/token', json=body)  # doctest: +SKIP
    >>> answer.json()    # doctest: +SKIP
    {'error': 'unsupported_grant_type', 'error_description': 'unsupported grant type'}
    """
    if (error.description or "").endswith("is not supported by client."):
        error.description = CALLBACK_MISMATCH
    match = _AUTHLIB_NOT_ALLOWED.fullmatch(error.description or "")
    if error.error == "unauthorized_client" and match:
        grant_type = "authorization_code" if match[1] == "code" else match[1]
        error.description = f"Grant type '{grant_type}' not allowed for the client."
        error.status_code = 403


def token_error(error: str, description: str, status: int | None = None) -> Response:
    """Auth0's Authentication API error body.

    Examples
    --------
    >>> from flask import Flask
    >>> app = Flask('example')
    >>> from linking_toolkit.sandbox.authentication_api.authserver import token_error
    >>> with app.app_context():
    ...     answer = token_error('invalid_grant', 'Wrong email or password.', 403)
    >>> answer.status_code, answer.get_json()
    (403, {'error': 'invalid_grant', 'error_description': 'Wrong email or password.'})
    """
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status or AUTH0_ERROR_STATUS.get(error, 400)
    response.headers["Cache-Control"] = "no-store"
    return response


# -- clients -----------------------------------------------------------------------------------------

def loopback_match(registered: str, given: str) -> bool:
    """RFC 8252 §7.3: a loopback redirect matches whatever port the app listens on.

    Examples
    --------
    >>> from linking_toolkit.sandbox.authentication_api import authserver
    >>> authserver.loopback_match('http://127.0.0.1/callback', 'http://127.0.0.1:53817/callback')
    True
    >>> authserver.loopback_match('http://127.0.0.1/callback', 'http://127.0.0.1:53817/other')
    False
    """
    try:
        a, b = urlsplit(registered), urlsplit(given)
        b.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:  # e.g. "http://[::1/callback": not a URL at all
        return False
    if a.scheme != "http" or a.hostname not in LOOPBACK_HOSTS:
        return False
    # Exact but for the port: no userinfo ("http://evil@127.0.0.1:PORT/"), no fragment (RFC 6749 §3.1.2),
    # the host written as registered.
    if "#" in given or "@" in b.netloc or b.netloc.rsplit(":", 1)[0] != a.netloc.rsplit(":", 1)[0]:
        return False
    return (b.scheme, b.hostname, b.path or "/", b.query) == (a.scheme, a.hostname, a.path or "/", a.query)


class SandboxClient(ClientMixin):
    """A client row of the store, seen through authlib's client model. ``web_origins`` and
    ``logout_urls`` are a single-page app's Allowed Web Origins and Allowed Logout URLs.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import authserver
    >>> with sandbox._server.app.test_request_context():    # doctest: +SKIP
    ...     client = authserver.query_client(sandbox.client_id)
    >>> client.get_client_id() == sandbox.client_id, client.check_grant_type('password')    # doctest: +SKIP
    (True, False)
    """

    def __init__(self, row: dict[str, Any], native_scopes: str, *, web_origins: tuple[str, ...] = (),
                 logout_urls: tuple[str, ...] = ()) -> None:
        self.row = row
        self.native_scopes = native_scopes.split()
        self.web_origins = web_origins
        self.logout_urls = logout_urls

    @property
    def is_spa(self) -> bool:
        return self.row["app_type"] == "spa"

    @property
    def is_public(self) -> bool:
        return not self.row["client_secret"]

    def get_client_id(self) -> str:
        return self.row["client_id"]

    def get_default_redirect_uri(self) -> str | None:
        return None  # Auth0 needs redirect_uri on every authorize request from these apps

    def get_allowed_scope(self, scope: str | None) -> str:
        asked = (scope or "").split()
        if self.row["app_type"] in ("native", "spa"):  # a user's app: the users' own scopes only
            asked = [s for s in asked if s in self.native_scopes]
        return " ".join(dict.fromkeys(asked))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        if self.is_spa:  # a browser app: exactly an Allowed Callback URL, any port is not
            return any(same_url(uri, redirect_uri) for uri in self.row["redirect_uris"])
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
    """The client of the current request's tenant with that id, as authlib asks for it (None for none).

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import authserver
    >>> with sandbox._server.app.test_request_context():    # doctest: +SKIP
    ...     print(authserver.query_client(sandbox.client_id).row['name'], authserver.query_client('nobody'))
    Notebook (native) None
    """
    tenant = current_tenant()
    row = tenant.store.client(client_id) if isinstance(client_id, str) else None
    if row is None:
        return None
    spa = row["app_type"] == "spa"
    return SandboxClient(row, tenant.store.get_setting("native_scopes") or "",
                         web_origins=tuple(row["web_origins"]) if spa else (),
                         logout_urls=tuple(row["allowed_logout_urls"]) if spa else ())


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


class _BodyRequest(OAuth2Request):
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
    """Form fields or a flat JSON object's fields; raises OAuthError on anything else.

    Examples
    --------
    >>> from flask import Flask
    >>> app = Flask('example')
    >>> from linking_toolkit.sandbox.authentication_api.authserver import request_body
    >>> with app.test_request_context('/oauth/token', method='POST', json={'grant_type': 'password'}):
    ...     request_body().to_dict()
    {'grant_type': 'password'}
    """
    if request.mimetype == "application/json":
        try:
            data = json.loads(request.get_data(as_text=True) or "{}")
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            raise OAuthError("invalid_request", "Invalid JSON body.") from None
        if not isinstance(data, dict):
            raise OAuthError("invalid_request", "The body must be a JSON object.")
        body: MultiDict = MultiDict()
        for key, value in data.items():
            if value is None:
                continue
            if not isinstance(value, str | int | float | bool):
                raise OAuthError("invalid_request", f"Parameter '{key}' must be a string.")
            body.add(key, str(value))
        return body
    return MultiDict(request.form)


# -- token response ------------------------------------------------------------------------------

def known_audience(tenant: TenantContext, audience: str | None) -> str | None:
    """The API a user token is for: the Management API or (no audience) userinfo only.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import authserver
    >>> authserver.known_audience(tenant,  # doctest: +SKIP
    ...                           sandbox.management_audience) == sandbox.management_audience
    True
    >>> print(authserver.known_audience(tenant, None))    # doctest: +SKIP
    None
    """
    if not audience or audience == tenant.userinfo_url or audience in tenant.management_audiences:
        return audience or None
    raise OAuthError("access_denied", f"Service not found: {audience}", 403)


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
    grant: str | None = None,
) -> dict[str, Any]:
    """Auth0's token response for a user: access token, ID token when ``openid``, refresh token
    when ``offline_access`` was granted to a client allowed to refresh, for an API (if any) that
    allows offline access.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import authserver
    >>> with sandbox._server.app.test_request_context():    # doctest: +SKIP
    ...     client = authserver.query_client(sandbox.client_id)
    ...     answer = authserver.build_token_response(tenant, client=client,
    ...                                              user=authserver.active_user(tenant, ada),
    ...                                              scope='openid email', audience=None)
    >>> sorted(answer)    # doctest: +SKIP
    ['access_token', 'expires_in', 'id_token', 'scope', 'token_type']
    """
    now = int(time.time())
    auth_time = auth_time or now
    api = tenant.management_audience if audience in tenant.management_audiences else audience
    if api and not tenant.store.allows_offline_access(api):  # the API's "Allow Offline Access" is off
        scope = " ".join(s for s in scope.split() if s != "offline_access")
    scopes = scope.split()
    body: dict[str, Any] = {
        "access_token": mint_access_token(
            tenant, sub=user["user_id"], client_id=client.get_client_id(), scope=scope,
            audience=audience or tenant.userinfo_url, gty=gty, now=now, grant=grant),
    }
    if "offline_access" in scopes and refresh_token and client.check_grant_type("refresh_token"):
        body["refresh_token"] = state.issue_refresh_token(
            tenant, client_id=client.get_client_id(), user_id=user["user_id"], scope=scope,
            audience=audience, auth_time=auth_time, family=grant)
    if "openid" in scopes:
        body["id_token"] = mint_id_token(tenant, user=user, client_id=client.get_client_id(),
                                         scope=scope, auth_time=auth_time, nonce=nonce, now=now)
    body.update({"scope": scope, "expires_in": ACCESS_TOKEN_SECONDS, "token_type": "Bearer"})
    return body


def active_user(tenant: TenantContext, user_id: str) -> dict[str, Any]:
    """The user who may get tokens now: a deleted user has none, a blocked one is refused.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import authserver
    >>> authserver.active_user(tenant, ada)['email']    # doctest: +SKIP
    'ada@example.com'
    """
    user = tenant.store.user_row(user_id)
    if user is None:
        raise OAuthError("invalid_grant", "The user no longer exists.", 403)
    if user["blocked"]:
        raise OAuthError("unauthorized", "user is blocked", 401)
    return user


class SandboxAuthorizationServer(AuthorizationServer):
    """authlib's server reading JSON bodies too, and answering errors in Auth0's shape.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api.authserver import oauth_server    # doctest: +SKIP
    >>> type(oauth_server(sandbox._server.app)).__name__    # doctest: +SKIP
    'SandboxAuthorizationServer'
    """

    def create_oauth2_request(self, req: Any) -> OAuth2Request:
        if isinstance(req, OAuth2Request):
            return req
        if request.method == "POST" and request.path.endswith("/oauth/token"):
            return _BodyRequest(request_body())
        return super().create_oauth2_request(req)

    def handle_error_response(self, req: Any, error: OAuth2Error) -> Response:
        if error.error == "invalid_client":  # Auth0 says no more, whatever failed
            return token_error("access_denied", "Unauthorized", 401)
        auth0_wording(error)
        status = AUTH0_ERROR_STATUS.get(error.error, error.status_code)
        if isinstance(error, OAuthError):
            status = error.status_code
        return token_error(error.error, error.description or error.error.replace("_", " "), status)

    def generate_token(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("tokens are built by build_token_response (tokens.py mints them)")


def oauth_server(app: Flask) -> SandboxAuthorizationServer:
    """The app's authorization server, made with its grants by ``grants.install_oauth_server``
    when the app was created (one per app, so two sandboxes never share one).

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import authserver
    >>> server = authserver.oauth_server(sandbox._server.app)    # doctest: +SKIP
    >>> server is authserver.oauth_server(sandbox._server.app)    # doctest: +SKIP
    True
    """
    server: SandboxAuthorizationServer = app.extensions[SERVER_EXTENSION]
    return server
