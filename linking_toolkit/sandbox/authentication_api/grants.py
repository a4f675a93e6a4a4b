"""The grants of the sandbox's token endpoint, as authlib runs them with Auth0's rules.

Authorization code with PKCE (S256 only, required of public clients), Auth0's password-realm,
client credentials for a granted API, refresh token (rotating, with reuse detection) and
device code (each poll decided in one transaction, see ``Store.poll_device_code``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from authlib.oauth2 import OAuth2Request
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
from flask import Flask, request

from ..attempts import BLOCKED_DESCRIPTION, login_key
from ..context import current_tenant
from ..passwords import verify_password
from . import oauth_state as state
from .authserver import (
    NOT_ENABLED,
    PASSWORD_REALM,
    SERVER_EXTENSION,
    TOKEN_ENDPOINT_AUTH_METHODS,
    OAuthError,
    SandboxAuthorizationServer,
    SandboxClient,
    active_user,
    build_token_response,
    known_audience,
    query_client,
)
from .tokens import ACCESS_TOKEN_SECONDS, mint_access_token

__all__ = [
    "REFRESH_REFUSED",
    "CodeGrant",
    "DeviceGrant",
    "MachineGrant",
    "PasswordRealmGrant",
    "RefreshGrant",
    "S256Only",
    "install_oauth_server",
]

# What Auth0 answers for a refresh token it will not honour: unknown, reused, expired or revoked.
REFRESH_REFUSED = "Unknown or invalid refresh token."


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
    """PKCE as Auth0 runs it for public clients: a challenge is required, and only S256.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> import httpx2    # doctest: +SKIP
    >>> query = {'client_id': sandbox.client_id, 'response_type': 'code', 'redirect_uri': 'http://127.0.0.1/callback',
    ...          'code_challenge': 'x' * 43, 'code_challenge_method': 'plain', 'state': 's'}  # doctest: +SKIP
    >>> answer = httpx2.get(f'{sandbox.base_url}/authorize', params=query)    # doctest: +SKIP
    >>> from urllib.parse import parse_qs, urlsplit    # doctest: +SKIP
    >>> parse_qs(urlsplit(answer.headers['location']).query)['error_description']    # doctest: +SKIP
    ['Unsupported code_challenge_method: use S256']
    """

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
    """The authorization code grant (with PKCE for public clients), as Auth0 runs it.

    Examples
    --------
    >>> from linking_toolkit import connect, login
    >>> primary = login(connect(sandbox=sandbox), method='browser')    # doctest: +SKIP
    """
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = TOKEN_ENDPOINT_AUTH_METHODS

    def query_authorization_code(self, code: str, client: SandboxClient) -> _CodeRecord | None:
        row = state.consume_authorization_code(current_tenant(), code, client.get_client_id())
        if row is None:
            raise OAuthError("invalid_grant", "Invalid authorization code", 403)
        return _CodeRecord(row)

    def delete_authorization_code(self, authorization_code: _CodeRecord) -> None:
        pass  # consumed when read, so a replay fails even if this request fails later

    def authenticate_user(self, authorization_code: _CodeRecord) -> dict[str, Any] | None:
        return current_tenant().store.user_row(authorization_code.row["user_id"])

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        raise NotImplementedError("codes are issued by the login pages (pages.py)")

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        row = self.request.authorization_code.row
        user = active_user(current_tenant(), row["user_id"])
        body = build_token_response(current_tenant(), client=self.request.client, user=user,
                                    scope=row["scope"], audience=row["audience"], nonce=row["nonce"],
                                    auth_time=row["auth_time"], grant=row["grant_id"])
        return 200, body, self.TOKEN_RESPONSE_HEADER


class PasswordRealmGrant(BaseGrant, TokenEndpointMixin):
    """Auth0's password-realm extension grant: ``realm`` names the database connection.

    Examples
    --------
    >>> from linking_toolkit import connect, login
    >>> ada = sandbox.demo_users[0]                                  # doctest: +SKIP
    >>> primary = login(connect(sandbox=sandbox), method='password', email=ada['email'],  # doctest: +SKIP
    ...                 password=ada['password'])
    """

    GRANT_TYPE = PASSWORD_REALM
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = TOKEN_ENDPOINT_AUTH_METHODS

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise OAuthError("unauthorized_client",
                             f"Grant type '{self.GRANT_TYPE}' not allowed for the client.", 403)
        form = self.request.form
        for name in ("username", "password", "realm"):
            if not form.get(name):
                raise OAuthError("invalid_request", f"Missing required parameter: {name}")
        tenant = current_tenant()
        connection = tenant.store.connection_by_name(form["realm"])
        if connection is None or connection["is_social"]:
            raise OAuthError("invalid_request", "Unknown realm: the connection does not exist or "
                                                "is not a database connection.")
        if not tenant.store.connection_enabled(form["realm"], client.get_client_id()):
            raise OAuthError("invalid_request", NOT_ENABLED)
        attempt = login_key(form["realm"], form["username"], request.remote_addr)
        if tenant.failed_logins.blocked(attempt):  # even the right password: that is the block
            raise OAuthError("too_many_attempts", BLOCKED_DESCRIPTION, 429)
        identity = tenant.store.database_identity_by_email(form["realm"], form["username"])
        if identity is None or not verify_password(form["password"], identity["password_hash"]):
            tenant.failed_logins.failed(attempt)
            raise OAuthError("invalid_grant", "Wrong email or password.", 403)
        tenant.failed_logins.succeeded(attempt)
        self.request.client = client
        self.request.user = active_user(tenant, identity["owner"])

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        tenant = current_tenant()
        form = self.request.form
        audience = known_audience(tenant, form.get("audience"))
        scope = self.request.client.get_allowed_scope(form.get("scope"))
        user = self.request.user
        tenant.store.record_login(user["user_id"])
        body = build_token_response(tenant, client=self.request.client, user=user, scope=scope,
                                    audience=audience, gty="password")
        return 200, body, self.TOKEN_RESPONSE_HEADER


class MachineGrant(ClientCredentialsGrant):
    """Client credentials for an API the client was granted, with that grant's scopes.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> import httpx2    # doctest: +SKIP
    >>> body = {'grant_type': 'client_credentials', 'client_id': sandbox.m2m_client_id,  # doctest: +SKIP
    ...         'client_secret': sandbox.m2m_client_secret,
    ...         'audience': sandbox.management_audience}
    >>> sorted(httpx2.post(f'{sandbox.base_url}/oauth/token', json=body).json())    # doctest: +SKIP
    ['access_token', 'expires_in', 'scope', 'token_type']
    """

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post"]

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        tenant = current_tenant()
        client = self.request.client
        audience = self.request.form.get("audience")
        if not audience:
            raise OAuthError("access_denied", "No audience parameter was provided, and no default "
                                              "audience has been configured", 403)
        if audience not in tenant.management_audiences:
            raise OAuthError("access_denied", f"Service not found: {audience}", 403)
        # Grants name the API by its identifier; the token keeps the audience asked for.
        granted = tenant.store.client_grant(client.get_client_id(), tenant.management_audience)
        if granted is None:
            raise OAuthError("access_denied",
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
    """Rotating refresh tokens with reuse detection, as Auth0's with rotation on.

    Each use answers a new refresh token of the same family and retires the one used; a retired
    token presented again is refused and revokes its whole family, the newest token included, since
    the tenant cannot tell the thief's copy from the owner's. Refusals are Auth0's 403
    ``invalid_grant`` "Unknown or invalid refresh token.", whatever the reason.

    Examples
    --------
    >>> from linking_toolkit import cache, connect, login
    >>> primary = login(connect(sandbox=sandbox), cache=cache.READ_WRITE)    # doctest: +SKIP
    >>> again = login(connect(sandbox=sandbox), cache=cache.READ_WRITE)      # doctest: +SKIP
    """

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = TOKEN_ENDPOINT_AUTH_METHODS

    def authenticate_refresh_token(self, refresh_token: str) -> _RefreshRecord | None:
        outcome, row = state.check_refresh_token(current_tenant(), refresh_token)
        if outcome != "valid" or row is None:
            raise OAuthError("invalid_grant", REFRESH_REFUSED, 403)
        return _RefreshRecord(row)

    def authenticate_user(self, refresh_token: _RefreshRecord) -> dict[str, Any] | None:
        return current_tenant().store.user_row(refresh_token.row["user_id"])

    def revoke_old_credential(self, refresh_token: _RefreshRecord) -> None:
        pass  # rotate_refresh_token retires it, in the transaction that issues its successor

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        tenant = current_tenant()
        record: _RefreshRecord = self.request.refresh_token
        user = active_user(tenant, record.row["user_id"])  # before rotating: a refusal keeps the token
        # Checked again in one transaction: of two requests racing with one token, one gets here first.
        _outcome, successor = state.rotate_refresh_token(tenant, self.request.form["refresh_token"])
        if successor is None:
            raise OAuthError("invalid_grant", REFRESH_REFUSED, 403)
        scope = self.request.payload.scope or record.get_scope()
        body = build_token_response(tenant, client=self.request.client, user=user, scope=scope,
                                    audience=record.row["audience"], auth_time=record.row["auth_time"],
                                    refresh_token=False, grant=record.row["family"])
        body["refresh_token"] = successor
        return 200, body, self.TOKEN_RESPONSE_HEADER


class _DeviceRecord:
    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row

    def get_client_id(self) -> str:
        return self.row["client_id"]

    def get_scope(self) -> str:
        return self.row["scope"]


class DeviceGrant(DeviceCodeGrant):
    """Device polling, each poll decided in one transaction (see ``oauth_state.poll_device_code``).

    Examples
    --------
    >>> from linking_toolkit import connect, login
    >>> primary = login(connect(sandbox=sandbox), method='device')    # doctest: +SKIP
    """

    def query_device_credential(self, device_code: str) -> _DeviceRecord:
        outcome, row = state.poll_device_code(current_tenant(), device_code)
        if row is None:
            raise OAuthError("invalid_grant", "Invalid or expired device code.", 403)
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
        return active_user(current_tenant(), credential.row["user_id"])

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        row = self.request.credential.row
        body = build_token_response(current_tenant(), client=self.request.client, user=self.request.user,
                                    scope=row["scope"], audience=row["audience"], auth_time=row["auth_time"])
        return 200, body, self.TOKEN_RESPONSE_HEADER


def _no_save(token: Any, req: Any) -> None:
    pass  # access tokens are self-contained JWTs; refresh tokens are saved when issued


def install_oauth_server(app: Flask) -> SandboxAuthorizationServer:
    """Make the app's authorization server with the sandbox's grants (``create_app`` calls it).

    Examples
    --------
    >>> from linking_toolkit.sandbox.app import create_app
    >>> app = create_app(sandbox.context)    # doctest: +SKIP
    """
    server = SandboxAuthorizationServer(query_client=query_client, save_token=_no_save)
    server.init_app(app)
    server.register_grant(CodeGrant, [S256Only(required=True)])
    server.register_grant(PasswordRealmGrant)
    server.register_grant(MachineGrant)
    server.register_grant(RefreshGrant)
    server.register_grant(DeviceGrant)
    app.extensions[SERVER_EXTENSION] = server
    return server
