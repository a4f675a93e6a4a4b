"""CORS for browser apps, as Auth0 gives it: on the token endpoint, userinfo, discovery and the
JWKS, and the Management API, for the Allowed Web Origins only (flask-cors does the headers).

The origins are the tenant's (``TenantContext.spa_web_origins``), given to the app that serves
that tenant alone: two sandboxes in one process each allow their own. A request from any other
origin gets no CORS header at all, so the browser keeps its answer from the page. The login pages
and the export download link get none either: no resource below matches them.

A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) on one of these paths is answered
here, before the Management API's bearer check and rate limit, which a browser never passes one.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask_cors import CORS

from ..context import TenantContext

__all__ = ["CORS_PATHS", "EXPOSED_HEADERS", "install_cors"]

# Regular expressions (flask-cors matches them on the whole path).
CORS_PATHS = (r"/oauth/token", r"/userinfo", r"/\.well-known/.*", r"/api/v2/.*")
# What a browser app may read of an answer besides the simple headers: Auth0's rate-limit headers
# (to pace itself) and the bearer error.
EXPOSED_HEADERS = ["WWW-Authenticate", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"]
ALLOWED_HEADERS = ["Authorization", "Content-Type", "Auth0-Client", "DPoP"]
PREFLIGHT_MAX_AGE = 600


def _is_cors_path(path: str) -> bool:
    return (path in ("/oauth/token", "/userinfo") or path.startswith("/.well-known/")
            or path.startswith("/api/v2/"))


def install_cors(app: Flask, tenant: TenantContext) -> None:
    """CORS on ``app`` for ``tenant``'s web origins (``create_app`` calls it before the blueprints,
    so its preflight answer comes first).

    Examples
    --------
    >>> import httpx2
    >>> answer = httpx2.options(f'{sandbox.base_url}/oauth/token', headers={    # doctest: +SKIP
    ...     'Origin': 'http://localhost:3000', 'Access-Control-Request-Method': 'POST'})
    >>> answer.headers['access-control-allow-origin']    # doctest: +SKIP
    'http://localhost:3000'
    """
    origins = list(tenant.spa_web_origins)
    options = {"origins": origins, "expose_headers": EXPOSED_HEADERS,
               "allow_headers": ALLOWED_HEADERS, "max_age": PREFLIGHT_MAX_AGE,
               "supports_credentials": False, "vary_header": True}
    CORS(app, resources={path: options for path in CORS_PATHS})

    @app.before_request
    def answer_preflight() -> Response | None:
        if (request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
                and _is_cors_path(request.path)):
            return Response(status=204)
        return None

    @app.after_request
    def vary_on_origin(response: Response) -> Response:
        # The answer depends on Origin even with one allowed origin (flask-cors says so only for
        # several): a shared cache must not hand one origin's answer to another.
        if _is_cors_path(request.path):
            response.vary.add("Origin")
        return response
