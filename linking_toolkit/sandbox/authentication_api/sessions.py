"""SSO sessions: a browser that logged in at the tenant logs in again without a password.

As Auth0 does, a successful login sets a session cookie; the next ``/authorize`` from that browser
(for any client) issues a code at once, ``prompt=none`` answers from it without a page, and
``/v2/logout`` ends it. The cookie holds a random id and nothing else; the session (who, with which
connection, since when) stays in the tenant's memory, keyed by the id's SHA-256, so neither a
cookie nor a memory dump yields another browser's session.

The cookie is HttpOnly. On an https sandbox it is ``SameSite=None; Secure``, so that the hidden
iframe of silent authentication (a page of another site) still sends it. On http, Chromium refuses
``SameSite=None`` without ``Secure``, so it is ``Lax``: an iframe sends a Lax cookie only when the
page around it is of the same site. Site ignores ports, so a page on ``http://127.0.0.1:3000``
framing a sandbox on ``http://127.0.0.1:41234`` is same-site and silent authentication works;
``localhost`` around ``127.0.0.1`` is another site, and there silent authentication says
``login_required`` (serve the page and the sandbox on the same host, or run ``--tls``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time

from flask import request
from werkzeug.wrappers import Response

from ..context import SsoSession, TenantContext

__all__ = [
    "SESSION_SECONDS",
    "clear_session_cookie",
    "cookie_path",
    "end_session",
    "find_session",
    "session_cookie_name",
    "set_session_cookie",
    "start_session",
]

SESSION_SECONDS = 3 * 24 * 3600  # Auth0's default inactivity timeout of a session (3 days)
# A path a cookie may be scoped to: no ';', space or quote that could add an attribute.
SAFE_PATH = re.compile(r"/[A-Za-z0-9._~%@:+,=!$()*/-]*\Z")


def cookie_path() -> str:
    """The path the browser sees the sandbox under: ``X-Forwarded-Prefix`` when a proxy sent a
    well-formed one, else ``/``. A wrong header only narrows the sender's own cookie.

    Examples
    --------
    >>> from flask import Flask
    >>> app = Flask('example')
    >>> from linking_toolkit.sandbox.authentication_api import sessions
    >>> with app.test_request_context('/', headers={'X-Forwarded-Prefix': '/user/ada/proxy/53817'}):
    ...     sessions.cookie_path()
    '/user/ada/proxy/53817'
    >>> with app.test_request_context('/'):
    ...     sessions.cookie_path()
    '/'
    """
    prefix = request.headers.get("X-Forwarded-Prefix", "").rstrip("/")
    return prefix if prefix and SAFE_PATH.match(prefix) else "/"


def _key(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def session_cookie_name(tenant: TenantContext) -> str:
    """The cookie's name, one per tenant: cookies ignore ports, and two sandboxes on one host must
    not overwrite each other's sessions.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import sessions
    >>> sessions.session_cookie_name(tenant)    # doctest: +SKIP
    'sbx_sso_33933819ceee'
    """
    return "sbx_sso_" + hashlib.sha256(tenant.issuer.encode()).hexdigest()[:12]


def start_session(tenant: TenantContext, *, provider: str, identity_id: str, connection: str,
                  auth_time: int | None = None) -> str:
    """A new session for the identity that just logged in; returns the cookie's value.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import sessions
    >>> value = sessions.start_session(tenant, provider='auth0',  # doctest: +SKIP
    ...                                identity_id=ada.split('|')[1],
    ...                                connection='Username-Password-Authentication')
    >>> len(value) > 20    # doctest: +SKIP
    True
    """
    value = secrets.token_urlsafe(32)
    session = SsoSession(provider=provider, identity_id=identity_id, connection=connection,
                         auth_time=auth_time or int(time.time()),
                         expires_at=time.time() + SESSION_SECONDS)
    with tenant.sessions_lock:
        now = time.time()
        for key in [k for k, s in tenant.sso_sessions.items() if s.expires_at < now]:
            del tenant.sso_sessions[key]
        tenant.sso_sessions[_key(value)] = session
    return value


def find_session(tenant: TenantContext, cookies: dict[str, str]) -> tuple[SsoSession, str] | None:
    """The live session the request's cookie names and the user it is now (the identity's owner:
    after a link, the primary), or None. Each use extends it, as Auth0's inactivity timeout.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import sessions
    >>> value = sessions.start_session(tenant, provider='auth0',  # doctest: +SKIP
    ...                                identity_id=ada.split('|')[1],
    ...                                connection='Username-Password-Authentication')
    >>> session, user_id = sessions.find_session(tenant,  # doctest: +SKIP
    ...                                          {sessions.session_cookie_name(tenant): value})
    >>> session.connection, user_id == ada    # doctest: +SKIP
    ('Username-Password-Authentication', True)
    """
    value = cookies.get(session_cookie_name(tenant))
    if not value:
        return None
    with tenant.sessions_lock:
        session = tenant.sso_sessions.get(_key(value))
        if session is None:
            return None
        if session.expires_at < time.time():
            del tenant.sso_sessions[_key(value)]
            return None
        session.expires_at = time.time() + SESSION_SECONDS
    identity = tenant.store.find_identity(session.provider, session.identity_id)
    if identity is None:  # the user was deleted
        return None
    return session, str(identity["owner"])


def end_session(tenant: TenantContext, cookies: dict[str, str]) -> bool:
    """Forget the session the request's cookie names; whether there was one.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import sessions
    >>> value = sessions.start_session(tenant, provider='auth0',  # doctest: +SKIP
    ...                                identity_id=ada.split('|')[1],
    ...                                connection='Username-Password-Authentication')
    >>> cookies = {sessions.session_cookie_name(tenant): value}    # doctest: +SKIP
    >>> sessions.end_session(tenant, cookies), sessions.end_session(tenant, cookies)    # doctest: +SKIP
    (True, False)
    """
    value = cookies.get(session_cookie_name(tenant))
    if not value:
        return False
    with tenant.sessions_lock:
        return tenant.sso_sessions.pop(_key(value), None) is not None


def set_session_cookie(response: Response, tenant: TenantContext, value: str, path: str) -> None:
    """Set the tenant's session cookie on ``response``: HttpOnly, SameSite=Lax, at ``path``.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api import sessions
    >>> from flask import Response
    >>> answer = Response()
    >>> sessions.set_session_cookie(answer, tenant, 'cookie-value', '/')    # doctest: +SKIP
    >>> 'HttpOnly' in answer.headers['Set-Cookie']    # doctest: +SKIP
    True
    """
    secure = tenant.base_url.startswith("https://")
    response.set_cookie(session_cookie_name(tenant), value, max_age=SESSION_SECONDS, path=path,
                        httponly=True, secure=secure, samesite="None" if secure else "Lax")


def clear_session_cookie(response: Response, tenant: TenantContext, path: str) -> None:
    """Expire the tenant's session cookie on ``response`` (at ``path``).

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from flask import Flask
    >>> app = Flask('example')
    >>> from linking_toolkit.sandbox.authentication_api import sessions
    >>> from flask import Response
    >>> answer = Response()
    >>> sessions.clear_session_cookie(answer, tenant, '/')    # doctest: +SKIP
    >>> answer.headers['Set-Cookie'].split(';')[1]    # doctest: +SKIP
    ' Expires=Thu, 01 Jan 1970 00:00:00 GMT'
    """
    secure = tenant.base_url.startswith("https://")
    response.delete_cookie(session_cookie_name(tenant), path=path, httponly=True, secure=secure,
                           samesite="None" if secure else "Lax")
