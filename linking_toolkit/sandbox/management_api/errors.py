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
    """An answer in Auth0's error shape; raised anywhere in a handler, rendered by the blueprint."""

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
    return Response(json.dumps(body, separators=(",", ":")), status=status, mimetype="application/json",
                    headers={"Content-Type": "application/json; charset=utf-8"})


def unauthorized(message: str) -> NoReturn:
    raise ApiError(401, message, attributes=True)


def bad_body(message: str) -> NoReturn:
    raise ApiError(400, message, "invalid_body")


def bad_query(message: str) -> NoReturn:
    raise ApiError(400, message, "invalid_query_string")
