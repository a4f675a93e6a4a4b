"""How ``/authorize`` answers the app: a redirect (``response_mode=query``) or Auth0's web_message
page (``response_mode=web_message``), which hands the response to the window that opened it (a
popup) or framed it (the hidden iframe of silent authentication) with ``postMessage``.

The page posts to one origin only, the redirect URI's, which must be one of the client's Allowed
Web Origins (``/authorize`` refuses the request otherwise, with a page that posts nothing); the
browser drops the message if the window around it is at any other origin. The page may be framed
by that origin alone (CSP ``frame-ancestors``), and runs no script but its own (a nonce).
"""

from __future__ import annotations

import secrets
from typing import Any

from authlib.common.urls import add_params_to_uri
from flask import make_response, redirect, render_template
from werkzeug.wrappers import Response

from ..browser_apps import origin_of

__all__ = ["RESPONSE_MODES", "authorization_response", "web_message_page"]

RESPONSE_MODES = ("query", "web_message")


def web_message_page(origin: str, response: dict[str, Any]) -> Response:
    """The page that posts ``{type: "authorization_response", response}`` to ``origin``.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and
    ``tenant = sandbox.context``:

    >>> from linking_toolkit.sandbox.authentication_api.web_message import web_message_page
    >>> with sandbox._server.app.test_request_context():    # doctest: +SKIP
    ...     page = web_message_page('http://localhost:3000', {'code': 'c1', 'state': 's'})
    >>> page.mimetype, 'authorization_response' in page.get_data(as_text=True)    # doctest: +SKIP
    ('text/html', True)
    """
    nonce = secrets.token_urlsafe(16)
    page = make_response(render_template("web_message.html", origin=origin, response=response,
                                         nonce=nonce))
    page.headers["Cache-Control"] = "no-store"
    page.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; frame-ancestors {origin}")
    page.headers["Referrer-Policy"] = "no-referrer"
    return page


def authorization_response(params: dict[str, Any], out: list[tuple[str, str]]) -> Response:
    """The answer to the app of an authorization request (``params``: its checked parameters):
    ``out`` (``code`` or ``error``..., and ``state``) in the redirect URI's query or posted.

    Examples
    --------
    >>> from flask import Flask
    >>> app = Flask('example')
    >>> from linking_toolkit.sandbox.authentication_api.web_message import authorization_response
    >>> with app.test_request_context():
    ...     answer = authorization_response({'redirect_uri': 'http://127.0.0.1/cb'}, [('code',
    ...                                     'c1'), ('state', 's')])
    >>> answer.status_code, answer.headers['Location']
    (302, 'http://127.0.0.1/cb?code=c1&state=s')
    """
    if params.get("response_mode") == "web_message":
        origin = origin_of(params["redirect_uri"])
        assert origin is not None  # checked by /authorize against the Allowed Web Origins
        return web_message_page(origin, dict(out))
    return redirect(add_params_to_uri(params["redirect_uri"], out), code=302)
