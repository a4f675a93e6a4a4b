"""Management API v2 of the sandbox: users, link, unlink, users-by-email, users-export jobs, and the
tenant's configuration (clients, client grants, resource servers, connections).

Faithful to Auth0's ``management-api-v2.linking-subset.oas.json`` and its recorded exchanges
(kept in the repository's ``tests/reference``): the same status codes, bodies and error messages,
every error in Auth0's shape. The blueprint, its rate limit and error handling are in
``blueprint.py``; the routes in ``users.py``, ``identities.py``, ``jobs.py``, ``clients.py`` and
``resources.py`` (the configuration's, after ``management-api-v2.configuration-subset.oas.json``).
"""

from flask import Response

from . import clients, jobs, resources, users
from .blueprint import management, route
from .errors import ApiError

__all__ = ["ApiError", "management"]

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
ROUTE_MODULES = (users, jobs, clients, resources)  # imported for their routes, registered on ``management``


# Registered after every other route: unknown paths under /api/v2 answer JSON, never HTML.
@route("/", methods=ALL_METHODS, strict_slashes=False)
@route("/<path:_rest>", methods=ALL_METHODS, strict_slashes=False)
def not_found(_rest: str = "") -> Response:
    raise ApiError(404, "Not Found")
