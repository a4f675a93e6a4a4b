"""The sandbox's web app: an application factory wiring the Authentication API (its routes and its
HTML pages, on one authorization server) and the Management API."""

from __future__ import annotations

import sys

from flask import Flask, Response, request

from .authentication_api import auth, install_cors, install_oauth_server, login_pages
from .context import TenantContext, install_tenant
from .management_api import management

__all__ = ["MAX_BODY_BYTES", "create_app"]

# Auth0 refuses large bodies with 413; nothing this API takes comes close to 1 MB.
MAX_BODY_BYTES = 1 << 20


def create_app(tenant: TenantContext) -> Flask:
    """A Flask app serving one tenant. Two apps never share state.

    Examples
    --------
    >>> from linking_toolkit.sandbox.app import create_app
    >>> app = create_app(tenant)                          # doctest: +SKIP
    >>> app.test_client().get("/.well-known/openid-configuration").status_code
    200
    """
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    install_tenant(app, tenant)
    install_cors(app, tenant)
    install_oauth_server(app)
    app.register_blueprint(auth)
    app.register_blueprint(login_pages)
    app.register_blueprint(management, url_prefix="/api/v2")

    @app.after_request
    def access_log(response: Response) -> Response:
        # Path only: query strings carry codes and states, which have no place in a log.
        if not tenant.quiet:
            print(f"{request.method} {request.path} {response.status_code}", file=sys.stderr,
                  flush=True)
        return response

    return app
