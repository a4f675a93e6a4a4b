"""Auth0's Management API error shape ``{statusCode, error, message, errorCode}``, raised anywhere
in a handler as ``ApiError`` and rendered by the blueprint; and the JSON answer every route gives."""

from __future__ import annotations

import json
from typing import Any, NoReturn

from flask import Response

__all__ = ["NOT_FOUND_USER", "STATUS_NAMES", "ApiError", "bad_body", "bad_query", "json_response",
           "unauthorized"]

STATUS_NAMES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
                415: "Unsupported Media Type", 429: "Too Many Requests",
                500: "Internal Server Error"}

NOT_FOUND_USER = "The user does not exist."


class ApiError(Exception):
    """An answer in Auth0's error shape; raised anywhere in a handler, rendered by the blueprint.

    Examples
    --------
    >>> from linking_toolkit.sandbox.management_api.errors import ApiError
    >>> body = ApiError(404, 'The user does not exist.', 'inexistent_user').response().get_json()
    >>> body['statusCode'], body['error'], body['errorCode']
    (404, 'Not Found', 'inexistent_user')
    """

    def __init__(self, status: int, message: str, error_code: str | None = None,
                 *, attributes: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.attributes = attributes

    def response(self) -> Response:
        body: dict[str, Any] = {"statusCode": self.status, "error": STATUS_NAMES.get(self.status, "Error"),
                                "message": self.message}
        if self.error_code:
            body["errorCode"] = self.error_code
        if self.attributes:  # Auth0's 401s repeat the message under attributes.error
            body["attributes"] = {"error": self.message}
        return json_response(body, self.status)


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON answer with Auth0's compact body and ``charset=utf-8`` content type.

    Examples
    --------
    >>> from linking_toolkit.sandbox.management_api.errors import json_response
    >>> answer = json_response({'user_id': 'auth0|1'}, 201)
    >>> answer.status_code, answer.headers['Content-Type'], answer.get_data(as_text=True)
    (201, 'application/json', '{"user_id":"auth0|1"}')
    """
    return Response(json.dumps(body, separators=(",", ":")), status=status, mimetype="application/json",
                    headers={"Content-Type": "application/json; charset=utf-8"})


def unauthorized(message: str) -> NoReturn:
    """Raise Auth0's 401 with ``message``, repeated under ``attributes.error`` as Auth0 does.

    Examples
    --------
    >>> from linking_toolkit.sandbox.management_api.errors import ApiError, unauthorized
    >>> try:
    ...     unauthorized('Invalid token')
    ... except ApiError as error:
    ...     print(error.response().get_json()['attributes'])
    {'error': 'Invalid token'}
    """
    raise ApiError(401, message, attributes=True)


def bad_body(message: str) -> NoReturn:
    """Raise Auth0's 400 ``invalid_body`` with ``message``.

    Examples
    --------
    >>> from linking_toolkit.sandbox.management_api.errors import ApiError, bad_body
    >>> try:
    ...     bad_body("Payload validation error: 'Missing required property: connection'.")
    ... except ApiError as error:
    ...     print(error.status, error.error_code)
    400 invalid_body
    """
    raise ApiError(400, message, "invalid_body")


def bad_query(message: str) -> NoReturn:
    """Raise Auth0's 400 ``invalid_query_string`` with ``message``.

    Examples
    --------
    >>> from linking_toolkit.sandbox.management_api.errors import ApiError, bad_query
    >>> try:
    ...     bad_query("Query validation error: 'page' must be an integer.")
    ... except ApiError as error:
    ...     print(error.status, error.error_code)
    400 invalid_query_string
    """
    raise ApiError(400, message, "invalid_query_string")
