"""The Management API's blueprint: its routes' decorator, the rate limit every request takes, and
how errors answer. Nothing under ``/api/v2`` ever answers HTML or a 500 for bad input: the
blueprint handles its own errors, and a catch-all route (in ``__init__``) answers 404 for unknown
paths."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.routing import PathConverter

from ..context import current_tenant
from .errors import STATUS_NAMES, ApiError

__all__ = ["AnyPathConverter", "management", "route"]

management = Blueprint("management", __name__)


class AnyPathConverter(PathConverter):
    """werkzeug's ``path`` converter, but matching every character: its ``.`` stops at a newline,
    so an id holding ``%0A`` fell through to the catch-all's 404 instead of reaching its route.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> api.get('users/auth0%7Cno%0Aone').json()['message']    # doctest: +SKIP
    'The user does not exist.'
    """

    regex = "(?s:[^/].*?)"


@management.record_once
def _register_converter(state: Any) -> None:
    # Recorded before any route, so the converter exists when the routes' rules are compiled.
    state.app.url_map.converters.setdefault("anypath", AnyPathConverter)


def route(rule: str, **options: Any) -> Any:
    """A blueprint route that never answers werkzeug's HTML: no redirect merging ``//`` (and no
    trailing-slash redirect on the catch-all), no automatic OPTIONS page; those go to the JSON 404.
    A ``<path:...>`` part matches any character, newlines included (see ``AnyPathConverter``).

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> api.get('no/such/route//').json()    # doctest: +SKIP
    {'statusCode': 404, 'error': 'Not Found', 'message': 'Not Found'}
    """
    rule = rule.replace("<path:", "<anypath:")
    return management.route(rule, merge_slashes=False, provide_automatic_options=False, **options)


# -- rate limiting and errors ---------------------------------------------------------------------

@management.before_request
def take_rate_limit_token() -> ResponseReturnValue | None:
    limiter = current_tenant().rate_limiter
    if limiter is None:
        return None
    allowed, headers = limiter.take()
    g.rate_limit_headers = headers
    if not allowed:
        return ApiError(429, "Global limit has been reached", "too_many_requests").response()
    return None


@management.after_request
def add_rate_limit_headers(response: Response) -> Response:
    for name, value in getattr(g, "rate_limit_headers", {}).items():
        response.headers[name] = value
    return response


@management.errorhandler(ApiError)
def render_api_error(error: ApiError) -> Response:
    return error.response()


@management.errorhandler(HTTPException)
def render_http_error(error: HTTPException) -> Response:
    status = error.code or 400
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return ApiError(413, f"Payload content length greater than maximum allowed: {limit}").response()
    if status == 400:
        return ApiError(400, "Invalid request payload JSON format", "invalid_body").response()
    return ApiError(status, STATUS_NAMES.get(status, error.name)).response()


@management.app_errorhandler(404)
@management.app_errorhandler(405)
def render_unrouted(error: HTTPException) -> ResponseReturnValue:
    """A path under /api/v2 that matched no rule at all (e.g. ``//users``): JSON, throttled like
    the rest. Any other path keeps Flask's own answer."""
    if not (request.path == "/api/v2" or request.path.startswith("/api/v2/")):
        return error
    refused = take_rate_limit_token()
    response = refused if isinstance(refused, Response) else ApiError(404, "Not Found").response()
    return add_rate_limit_headers(response)


@management.errorhandler(Exception)
def render_unexpected(error: Exception) -> Response:
    # A bug, not bad input: still Auth0's shape, never werkzeug's HTML page.
    current_app.logger.exception("management API error")
    return ApiError(500, "Internal Server Error").response()
