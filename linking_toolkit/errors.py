"""One exception hierarchy for everything the toolkit can refuse or a tenant can answer.

Every exception is an :class:`Auth0Error`. Those built from a tenant's answer carry Auth0's own
error body (``statusCode``, ``error``, ``message``, ``errorCode``) and use the tenant's message as
their text, so a learner reads exactly what Auth0 said. None of them ever holds a token: messages
are built from error bodies and claim names, never from the values that were sent.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DOCTOR_COMMAND",
    "FIX_HINTS",
    "OFFLINE_ACCESS_HINT",
    "AccessDenied",
    "AlreadyLinked",
    "Auth0Error",
    "BadRequest",
    "ConnectionFailed",
    "Forbidden",
    "InvalidAlgorithm",
    "InvalidAudience",
    "InvalidAuthorizedParty",
    "InvalidIssuer",
    "InvalidNonce",
    "InvalidSignature",
    "InvalidState",
    "InvalidToken",
    "JobFailed",
    "LinkRefused",
    "LoginCancelled",
    "LoginError",
    "LoginExpired",
    "LoginTimeout",
    "MalformedToken",
    "MissingClaim",
    "NotFound",
    "RateLimited",
    "ServerError",
    "SessionExpired",
    "TenantError",
    "TokenExpired",
    "TokenIssuedInFuture",
    "TokenTooOld",
    "TokenVerificationError",
    "UnknownSigningKey",
    "UnsafeLink",
    "error_from_response",
    "fix_hint",
    "with_fix_hint",
]


class Auth0Error(Exception):
    """Base of every error the toolkit raises.

    ``status_code``, ``error``, ``message`` and ``error_code`` mirror Auth0's error body; they are
    ``None`` when the error did not come from a tenant's answer (a refused token, a refused link).

    Examples
    --------
    >>> try:                                             # doctest: +SKIP
    ...     admin.get_user("auth0|nobody")
    ... except Auth0Error as error:
    ...     print(error.status_code, error.error, error.message)
    404 Not Found The user does not exist.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error: str | None = None,
        error_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.error = error
        self.error_code = error_code

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        parts = [repr(self.message)]
        if self.status_code is not None:
            parts.append(f"status_code={self.status_code}")
        if self.error_code is not None:
            parts.append(f"error_code={self.error_code!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


# -- answers of the Management API -----------------------------------------------------------


class BadRequest(Auth0Error):
    """400: the request was refused as malformed (an unknown connection, a bad id, a bad body).

    Examples
    --------
    >>> from linking_toolkit.errors import error_from_response
    >>> error = error_from_response(400, {'statusCode': 400, 'error': 'Bad Request',
    ...     'message': 'Payload validation error: invalid connection.', 'errorCode': 'invalid_body'})
    >>> error
    BadRequest('Payload validation error: invalid connection.', status_code=400, error_code='invalid_body')
    """


class InvalidToken(Auth0Error):
    """401: the bearer token is missing, malformed, expired or from another tenant.

    Examples
    --------
    >>> from linking_toolkit.errors import error_from_response
    >>> error_from_response(401, {'statusCode': 401, 'error': 'Unauthorized', 'message': 'Invalid token'})
    InvalidToken('Invalid token', status_code=401)
    """


class Forbidden(Auth0Error):
    """403: the token lacks a scope, or the user may not act on that account.

    Examples
    --------
    >>> from linking_toolkit.errors import error_from_response
    >>> error = error_from_response(403, {'statusCode': 403, 'error': 'Forbidden',
    ...     'message': 'Insufficient scope, expected any of: read:users', 'errorCode': 'insufficient_scope'})
    >>> type(error).__name__, error.status_code, error.error_code
    ('Forbidden', 403, 'insufficient_scope')
    """


class NotFound(Auth0Error):
    """404: no such user (a linked secondary no longer exists on its own), job or identity.

    Examples
    --------
    >>> from linking_toolkit.errors import error_from_response
    >>> error_from_response(404, {'statusCode': 404, 'error': 'Not Found',
    ...                           'message': 'The user does not exist.', 'errorCode': 'inexistent_user'})
    NotFound('The user does not exist.', status_code=404, error_code='inexistent_user')
    """


class AlreadyLinked(Auth0Error):
    """409: the identity already belongs to another user, or the link would be a duplicate.

    Examples
    --------
    >>> from linking_toolkit.errors import error_from_response
    >>> error_from_response(409, {'statusCode': 409, 'error': 'Conflict',
    ...                           'message': 'The user is already linked to another account.'})
    AlreadyLinked('The user is already linked to another account.', status_code=409)
    """


class RateLimited(Auth0Error):
    """429 after the client's retries ran out; ``reset_at`` is when the tenant said to come back.

    Examples
    --------
    >>> from linking_toolkit.errors import error_from_response
    >>> error = error_from_response(429, {'statusCode': 429, 'error': 'Too Many Requests',
    ...                                   'message': 'Global limit has been reached'}, reset_at=1700000000.0)
    >>> error, error.reset_at
    (RateLimited('Global limit has been reached', status_code=429), 1700000000.0)
    """

    def __init__(self, message: str, *, reset_at: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.reset_at = reset_at


class TenantError(Auth0Error):
    """The tenant answered something that is not Auth0's JSON (HTML, garbage) or dropped the
    connection: nothing can be concluded about what happened.

    Examples
    --------
    >>> from linking_toolkit.errors import ConnectionFailed, ServerError, TenantError
    >>> issubclass(ConnectionFailed, TenantError), issubclass(ServerError, TenantError)
    (True, True)
    >>> try:                                             # doctest: +SKIP
    ...     admin.get_user(user_id)
    ... except TenantError as error:
    ...     print(error)                                # the tenant's answer could not be read
    """


class ConnectionFailed(TenantError):
    """The connection to the tenant failed (refused, reset, timed out): the request may or may not
    have reached it.

    Examples
    --------
    >>> from linking_toolkit import errors
    >>> try:                                             # doctest: +SKIP
    ...     admin.get_user(user_id)
    ... except errors.ConnectionFailed:
    ...     print('the tenant could not be reached: the change may or may not have been made')
    """


class ServerError(TenantError):
    """5xx after the retries that were safe to make.

    Examples
    --------
    >>> from linking_toolkit.errors import error_from_response
    >>> error_from_response(503, {'statusCode': 503, 'error': 'Service Unavailable',
    ...                           'message': 'The service is unavailable.'})
    ServerError('The service is unavailable.', status_code=503)
    """


class JobFailed(Auth0Error):
    """An export job ended as ``failed``, did not finish within the timeout, or has no file.

    Examples
    --------
    >>> from linking_toolkit import audit_tenant, errors
    >>> try:                                             # doctest: +SKIP
    ...     result = audit_tenant(admin)                   # a tenant above the paging limit: an export job
    ... except errors.JobFailed as error:
    ...     print(error)
    """


class SessionExpired(Auth0Error):
    """The session's access token has expired: log in again before linking or unlinking.

    Examples
    --------
    >>> from linking_toolkit import errors, link
    >>> try:                                             # doctest: +SKIP
    ...     link(primary, secondary)
    ... except errors.SessionExpired:
    ...     primary = login(tenant)                        # log in again, then link
    """


# -- logins ---------------------------------------------------------------------------------------


class LoginError(Auth0Error):
    """A login did not end with a session (the tenant's ``error`` and ``error_description``).

    Examples
    --------
    >>> try:                                             # doctest: +SKIP
    ...     session = login(tenant)
    ... except LoginError as error:
    ...     print(error.error, error.message)          # e.g. expired_token: nobody approved the code
    """


class LoginCancelled(LoginError):
    """The login was cancelled from this side (``PendingLogin.cancel()``).

    Examples
    --------
    >>> from linking_toolkit.login_flows import begin_login
    >>> pending = begin_login(tenant, method='device')    # doctest: +SKIP
    >>> pending.cancel()                                  # doctest: +SKIP
    >>> pending.result()                                  # doctest: +SKIP
    Traceback (most recent call last):
        ...
    linking_toolkit.errors.LoginCancelled: ...
    """


class LoginExpired(LoginError):
    """The device code or the login window expired before the user finished (``expired_token``).

    Examples
    --------
    >>> from linking_toolkit import errors, login
    >>> try:                                             # doctest: +SKIP
    ...     primary = login(tenant)
    ... except errors.LoginExpired as error:
    ...     print(error)                                # nobody approved the device code in time
    """


class LoginTimeout(LoginError):
    """No answer came back to the loopback redirect within the timeout.

    Examples
    --------
    >>> from linking_toolkit import errors, login
    >>> try:                                             # doctest: +SKIP
    ...     primary = login(tenant, method='browser', timeout=60)
    ... except errors.LoginTimeout:
    ...     primary = login(tenant, method='paste')      # the browser cannot reach this machine
    """


class AccessDenied(LoginError):
    """The user (or the tenant) refused the login (``access_denied``).

    Examples
    --------
    >>> from linking_toolkit import errors, login
    >>> try:                                             # doctest: +SKIP
    ...     primary = login(tenant)
    ... except errors.AccessDenied as error:
    ...     print(error)                                # the user declined the consent screen
    """


class InvalidState(LoginError):
    """The redirect's ``state`` is not the one this login sent: a forged or mixed-up redirect.

    Examples
    --------
    >>> from linking_toolkit import errors, login
    >>> try:                                             # doctest: +SKIP
    ...     primary = login(tenant)
    ... except errors.InvalidState as error:
    ...     print(error)                                # a redirect of another login was pasted
    """


# -- ID token verification --------------------------------------------------------------------


class TokenVerificationError(Auth0Error):
    """An ID token failed a check; the token is not used.

    Examples
    --------
    >>> try:                                             # doctest: +SKIP
    ...     session = login(tenant)
    ... except TokenVerificationError as error:
    ...     print(type(error).__name__, error)          # InvalidIssuer, TokenExpired, ...
    """


class MalformedToken(TokenVerificationError):
    """Not a compact JWS with a JSON header and payload.

    Examples
    --------
    >>> from linking_toolkit.errors import MalformedToken
    >>> from linking_toolkit.tokens import unverified_claims
    >>> try:
    ...     unverified_claims('not-a-jwt')
    ... except MalformedToken as refused:
    ...     print(refused)
    not a JWT in compact form (three dot-separated parts)
    """


class InvalidAlgorithm(TokenVerificationError):
    """The header's ``alg`` is not RS256 (``none``, HS256 and the like are refused).

    Examples
    --------
    >>> from linking_toolkit import errors
    >>> from linking_toolkit.tokens import verify_id_token
    >>> try:                                             # doctest: +SKIP
    ...     verify_id_token(id_token, tenant, nonce=sent_nonce)
    ... except errors.InvalidAlgorithm as refused:
    ...     print(refused)                              # an HS256 or alg=none token is refused
    """


class UnknownSigningKey(TokenVerificationError):
    """The header's ``kid`` is not in the tenant's JWKS, even after fetching it again.

    Examples
    --------
    >>> from linking_toolkit import errors
    >>> from linking_toolkit.tokens import verify_id_token
    >>> try:                                             # doctest: +SKIP
    ...     verify_id_token(id_token, tenant, nonce=sent_nonce)
    ... except errors.UnknownSigningKey as refused:
    ...     print(refused)                              # a kid the tenant's JWKS does not hold
    """


class InvalidSignature(TokenVerificationError):
    """The signature does not verify against the tenant's key with that ``kid``.

    Examples
    --------
    >>> from linking_toolkit import errors
    >>> from linking_toolkit.tokens import verify_id_token
    >>> try:                                             # doctest: +SKIP
    ...     verify_id_token(id_token, tenant, nonce=sent_nonce)
    ... except errors.InvalidSignature as refused:
    ...     print(refused)                              # a payload changed after signing
    """


class InvalidIssuer(TokenVerificationError):
    """``iss`` is not this tenant's issuer.

    Examples
    --------
    >>> from linking_toolkit import errors
    >>> from linking_toolkit.tokens import verify_id_token
    >>> try:                                             # doctest: +SKIP
    ...     verify_id_token(id_token, tenant, nonce=sent_nonce)
    ... except errors.InvalidIssuer as refused:
    ...     print(refused)                              # a token of another tenant
    """


class InvalidAudience(TokenVerificationError):
    """``aud`` does not contain this application's client id.

    Examples
    --------
    >>> from linking_toolkit import errors
    >>> from linking_toolkit.tokens import verify_id_token
    >>> try:                                             # doctest: +SKIP
    ...     verify_id_token(id_token, tenant, nonce=sent_nonce)
    ... except errors.InvalidAudience as refused:
    ...     print(refused)                              # a token for another application
    """


class InvalidAuthorizedParty(TokenVerificationError):
    """``azp`` is missing although ``aud`` has several values, or is not this client id.

    Examples
    --------
    >>> from linking_toolkit import errors
    >>> from linking_toolkit.tokens import verify_id_token
    >>> try:                                             # doctest: +SKIP
    ...     verify_id_token(id_token, tenant, nonce=sent_nonce)
    ... except errors.InvalidAuthorizedParty as refused:
    ...     print(refused)                              # several audiences and no azp
    """


class TokenExpired(TokenVerificationError):
    """``exp`` is in the past (beyond the leeway).

    Examples
    --------
    >>> from linking_toolkit import errors
    >>> from linking_toolkit.tokens import verify_id_token
    >>> try:                                             # doctest: +SKIP
    ...     verify_id_token(id_token, tenant, nonce=sent_nonce)
    ... except errors.TokenExpired as refused:
    ...     print(refused)                              # exp is in the past
    """


class TokenIssuedInFuture(TokenVerificationError):
    """``iat`` is in the future (beyond the leeway): a wrong clock or a forged token.

    Examples
    --------
    >>> from linking_toolkit import errors
    >>> from linking_toolkit.tokens import verify_id_token
    >>> try:                                             # doctest: +SKIP
    ...     verify_id_token(id_token, tenant, nonce=sent_nonce)
    ... except errors.TokenIssuedInFuture as refused:
    ...     print(refused)                              # this machine's clock is behind
    """


class TokenTooOld(TokenVerificationError):
    """``auth_time`` is older than the ``max_age`` the login asked for.

    Examples
    --------
    >>> from linking_toolkit import errors
    >>> from linking_toolkit.tokens import verify_id_token
    >>> try:                                             # doctest: +SKIP
    ...     verify_id_token(id_token, tenant, nonce=sent_nonce, max_age=300)
    ... except errors.TokenTooOld as refused:
    ...     print(refused)                              # logged in more than 5 minutes ago
    """


class InvalidNonce(TokenVerificationError):
    """``nonce`` is not the one this login sent: a replayed or injected token.

    Examples
    --------
    >>> from linking_toolkit import errors
    >>> from linking_toolkit.tokens import verify_id_token
    >>> try:                                             # doctest: +SKIP
    ...     verify_id_token(id_token, tenant, nonce=sent_nonce)
    ... except errors.InvalidNonce as refused:
    ...     print(refused)                              # a replayed ID token
    """


class MissingClaim(TokenVerificationError):
    """A required claim (``sub``, ``iat``, ``exp``, ``auth_time``...) is absent or of the wrong type.

    Examples
    --------
    >>> from linking_toolkit import errors
    >>> from linking_toolkit.tokens import verify_id_token
    >>> try:                                             # doctest: +SKIP
    ...     verify_id_token(id_token, tenant, nonce=sent_nonce)
    ... except errors.MissingClaim as refused:
    ...     print(refused)                              # no sub, or an exp that is not a number
    """


# -- refusals before any request --------------------------------------------------------------


class LinkRefused(Auth0Error):
    """The toolkit refused a link or unlink before sending anything (see the message).

    Examples
    --------
    >>> try:                                             # doctest: +SKIP
    ...     link(primary, primary)
    ... except LinkRefused as refused:
    ...     print(refused.message)                     # refused before any request
    """


class UnsafeLink(LinkRefused):
    """The link would be unsafe: the same account twice, another tenant, or a session that was
    not logged in for linking.

    Examples
    --------
    >>> from linking_toolkit import errors, link
    >>> try:                                             # doctest: +SKIP
    ...     link(primary, primary)
    ... except errors.UnsafeLink as refused:
    ...     print(refused)
    the secondary session is the primary account itself, the account you are already logged in to: ...
    """


_BY_STATUS: dict[int, type[Auth0Error]] = {
    400: BadRequest,
    401: InvalidToken,
    403: Forbidden,
    404: NotFound,
    409: AlreadyLinked,
    429: RateLimited,
}


# -- the tenant setting behind an error ---------------------------------------------------------

# Auth0 names the symptom, not the setting: each row is (the answer's ``error`` or None for any,
# words of its message, lower case, and the setting that causes it). The first row that matches wins.
_GRANTS = "Applications > Applications > (the Native app) > Settings > Advanced Settings > Grant Types"
_M2M = ("Applications > APIs > Auth0 Management API > Machine To Machine Applications > "
        "(the machine-to-machine app)")
_CONNECTIONS = "enable the connection for the Native app (Applications > Applications > (the Native app) > " \
    "Connections)"
FIX_HINTS: tuple[tuple[str | None, str, str], ...] = (
    ("unauthorized_client", "device_code", f"turn on the Device Code grant ({_GRANTS})"),
    ("unauthorized_client", "refresh_token", f"turn on the Refresh Token grant ({_GRANTS})"),
    ("unauthorized_client", "authorization_code", f"turn on the Authorization Code grant ({_GRANTS})"),
    ("unauthorized_client", "password", f"turn on the Password grant ({_GRANTS})"),
    ("unauthorized_client", "client_credentials",
     "turn on the Client Credentials grant of the machine-to-machine app (Applications > Applications > "
     "(the machine-to-machine app) > Settings > Advanced Settings > Grant Types)"),
    (None, "service not enabled within domain", _CONNECTIONS),
    (None, "connection is not enabled", _CONNECTIONS),
    (None, "insufficient scope", f"grant the machine-to-machine app {{scopes}} ({_M2M} > Permissions)"),
    (None, "is not authorized to access",
     f"authorize the machine-to-machine app for the Management API ({_M2M})"),
)
# What a cached login meets when the tenant answers no refresh token: nothing fails, nothing is kept.
OFFLINE_ACCESS_HINT = ("turn on Allow Offline Access of the Auth0 Management API (Applications > APIs > "
                         "Auth0 Management API > Settings > Access Settings) and the Refresh Token grant of "
                         "the Native app")
DOCTOR_COMMAND = "python -m linking_toolkit doctor"


def _scopes_asked(message: str) -> str:
    """The scopes an "Insufficient scope" message expects, a user's own (``*current_user*``) left out."""
    _, _, listed = message.partition("expected")
    listed = listed.removeprefix(" any of").lstrip(": ").rstrip(". ")
    scopes = [s.strip() for s in listed.split(",") if s.strip() and "current_user" not in s]
    return " or ".join(scopes)


def fix_hint(error: str | None, message: str) -> str | None:
    """The tenant setting to change for this answer of Auth0 (its ``error`` and message), or None.

    Examples
    --------
    >>> fix_hint("unauthorized_client", "Grant type 'refresh_token' not allowed for the client.")[:38]
    'turn on the Refresh Token grant (Appli'
    """
    lowered = message.lower()
    for code, words, hint in FIX_HINTS:
        if (code is None or code == error) and words in lowered:
            if "{scopes}" in hint:
                scopes = _scopes_asked(message)
                if not scopes:  # only a user's own scopes: they come with the login, not a grant
                    return None
                hint = hint.format(scopes=scopes)
            return hint
    return None


def with_fix_hint(message: str, error: str | None) -> str:
    """``message``, and after it in the same line the setting to change when one explains it.

    Examples
    --------
    >>> from linking_toolkit.errors import with_fix_hint
    >>> with_fix_hint('The user does not exist.', None)
    'The user does not exist.'
    >>> import textwrap
    >>> hinted = with_fix_hint("Grant type 'password' not allowed for the client.", 'unauthorized_client')
    >>> print(textwrap.fill(hinted, 90))
    Grant type 'password' not allowed for the client. To fix: turn on the Password grant
    (Applications > Applications > (the Native app) > Settings > Advanced Settings > Grant
    Types); `python -m linking_toolkit doctor` checks it.
    """
    hint = fix_hint(error, message)
    if hint is None or DOCTOR_COMMAND in message:
        return message
    return f"{message.rstrip()} To fix: {hint}; `{DOCTOR_COMMAND}` checks it."


def error_from_response(status_code: int, body: Any, *, reset_at: float | None = None) -> Auth0Error:
    """The exception for an error answer whose JSON body is ``body`` (Auth0's shape, or not).

    Examples
    --------
    >>> from linking_toolkit.errors import error_from_response
    >>> error_from_response(404, {'statusCode': 404, 'error': 'Not Found',
    ...                           'message': 'The user does not exist.', 'errorCode': 'inexistent_user'})
    NotFound('The user does not exist.', status_code=404, error_code='inexistent_user')
    >>> error_from_response(502, '<html>Bad gateway</html>')
    ServerError('HTTP 502', status_code=502)
    """
    if isinstance(body, dict):
        message = str(body.get("message") or body.get("error_description") or body.get("error")
                      or f"HTTP {status_code}")
        error = body.get("error")
        error_code = body.get("errorCode")
    else:
        message, error, error_code = f"HTTP {status_code}", None, None
    message = with_fix_hint(message, error if isinstance(error, str) else None)
    kwargs: dict[str, Any] = {"status_code": status_code, "error": error if isinstance(error, str) else None,
                              "error_code": error_code if isinstance(error_code, str) else None}
    if status_code == 429:
        return RateLimited(message, reset_at=reset_at, **kwargs)
    if status_code >= 500:
        return ServerError(message, **kwargs)
    return _BY_STATUS.get(status_code, Auth0Error)(message, **kwargs)
