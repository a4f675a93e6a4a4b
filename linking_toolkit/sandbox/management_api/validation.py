"""Reading a Management API request: path segments, JSON bodies checked against a schema, query
parameters, and ``fields`` projection, with Auth0's validation messages.

Path ids are read from the raw request URI, because werkzeug decodes ``%2F`` into ``/`` before
routing, and an id like ``samlp|a/b`` must stay one segment.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from flask import request

from .errors import ApiError, bad_body, bad_query

__all__ = ["CONNECTION_ID", "PROVIDERS", "check_body", "check_connection_id", "coerce_form_value",
           "json_type", "path_segments", "project", "query_bool", "query_int", "read_body"]

# The providers the OAS's UserIdentityProviderEnum allows in a path or body.
PROVIDERS = frozenset((
    "ad adfs amazon apple dropbox bitbucket auth0-oidc auth0 baidu bitly box custom daccount dwolla "
    "email evernote-sandbox evernote exact facebook fitbit github google-apps google-oauth2 instagram "
    "ip line linkedin oauth1 oauth2 office365 oidc okta paypal paypal-sandbox pingfederate "
    "planningcenter salesforce-community salesforce-sandbox salesforce samlp sharepoint shopify shop "
    "sms soundcloud thirtysevensignals twitter untappd vkontakte waad weibo windowslive wordpress "
    "yahoo yandex"
).split())

CONNECTION_ID = re.compile(r"^con_[A-Za-z0-9]{16}$")


def check_connection_id(connection_id: str) -> None:
    """A 400 unless ``connection_id`` has the shape of one (``con_`` and 16 letters or digits).

    Examples
    --------
    >>> from linking_toolkit.sandbox.management_api.errors import ApiError
    >>> from linking_toolkit.sandbox.management_api.validation import check_connection_id
    >>> check_connection_id('con_0123456789abcdef')
    >>> try:
    ...     check_connection_id('github')
    ... except ApiError as error:
    ...     print(error.status, error.error_code)
    400 invalid_body
    """
    if not CONNECTION_ID.fullmatch(connection_id):
        bad_body("Payload validation error: 'String does not match pattern ^con_[A-Za-z0-9]{16}$'"
                 " on property connection_id.")


def path_segments() -> list[str]:
    """The segments after ``/api/v2/``, percent-decoded one by one from the raw URI, so that an
    encoded ``/`` stays inside its segment. Invalid UTF-8 is a 400, not a 500.

    Examples
    --------
    >>> from flask import Flask
    >>> app = Flask('example')
    >>> from linking_toolkit.sandbox.management_api.validation import path_segments
    >>> with app.test_request_context('/api/v2/users/auth0%7Cab%2Fc/identities'):
    ...     path_segments()
    ['users', 'auth0|ab/c', 'identities']
    """
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        path_bytes = urlsplit(raw).path.encode("latin-1", "replace")
    else:  # a WSGI server that keeps no raw URI: werkzeug's decoded path is the best there is
        path_bytes = request.path.encode("utf-8")
    prefix = b"/api/v2/"
    if not path_bytes.startswith(prefix):
        raise ApiError(404, "Not Found")
    try:
        return [unquote_to_bytes(seg).decode("utf-8") for seg in path_bytes[len(prefix):].split(b"/")]
    except UnicodeDecodeError:
        raise ApiError(400, "Path validation error: the path is not valid UTF-8.", "invalid_uri") from None


def read_body(schema: dict[str, tuple[str, ...]], *, form_allowed: bool = True) -> dict[str, Any]:
    """The JSON (or form-encoded, as the OAS allows) body as a dict, checked against ``schema``
    (see :func:`check_body`); Auth0's errors otherwise. A form's values are strings: those the
    schema wants as integers, numbers or booleans are read as Auth0 reads them (``limit=5``,
    ``blocked=true``); a value that does not read as its type stays a string and is refused.

    Examples
    --------
    >>> from flask import Flask
    >>> app = Flask('example')
    >>> from linking_toolkit.sandbox.management_api.validation import read_body
    >>> with app.test_request_context('/', method='PATCH', data={'blocked': 'true'}):
    ...     read_body({'blocked': ('boolean',)})
    {'blocked': True}
    """
    _check_custom_domain_header()
    body, is_form = _parse_body(form_allowed)
    check_body(body, schema, form=is_form)
    return body


def _check_custom_domain_header() -> None:
    """The ``auth0-custom-domain`` header of a write, when sent: 3 to 255 characters, as Auth0's
    document declares it (the sandbox has no custom domains, so a valid one changes nothing). The
    message follows Auth0's query validation messages; no recording shows the header refused."""
    value = request.headers.get("auth0-custom-domain")
    if value is None or 3 <= len(value) <= 255:
        return
    limit = f"is too long ({len(value)} chars), maximum 255" if len(value) > 255 else \
        f"is too short ({len(value)} chars), minimum 3"
    raise ApiError(400, f"Header validation error: 'String {limit}' on header auth0-custom-domain.",
                   "invalid_headers")


def _parse_body(form_allowed: bool) -> tuple[dict[str, Any], bool]:
    """The body as a dict, and whether it came form-encoded."""
    mimetype = request.mimetype
    data = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    if mimetype == "application/json" or (not mimetype and data):
        if not data.strip():
            return {}, False
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
            raise ApiError(400, "Invalid request payload JSON format", "invalid_body") from None
        if not isinstance(body, dict):
            bad_body(f"Payload validation error: 'Expected type object but found type {json_type(body)}'.")
        return body, False
    if mimetype == "application/x-www-form-urlencoded" and form_allowed:
        # A repeated key is an array, as Node's querystring (Auth0's form parser) reads it.
        return {name: values[0] if len(values) == 1 else values
                for name, values in request.form.lists()}, True
    if not mimetype and not data:
        return {}, False
    raise ApiError(415, "Unsupported Media Type")


def json_type(value: Any) -> str:
    """The JSON Schema type of a decoded JSON value, as Auth0's validation messages name it.

    Examples
    --------
    >>> from linking_toolkit.sandbox.management_api.validation import json_type
    >>> [json_type(value) for value in (None, True, 1, 1.5, 'a', [], {})]
    ['null', 'boolean', 'integer', 'number', 'string', 'array', 'object']
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def check_body(body: dict[str, Any], schema: dict[str, tuple[str, ...]], *, form: bool = False) -> None:
    """Unknown properties and wrong types, with Auth0's payload validation messages. With
    ``form``, a string is first read as the integer, number or boolean the schema asks for.

    Examples
    --------
    >>> from linking_toolkit.sandbox.management_api.errors import ApiError
    >>> from linking_toolkit.sandbox.management_api.validation import check_body
    >>> check_body({'blocked': True}, {'blocked': ('boolean',)})
    >>> try:
    ...     check_body({'blocked': 'yes'}, {'blocked': ('boolean',)})
    ... except ApiError as error:
    ...     print(error.message)
    Payload validation error: 'Expected type boolean but found type string' on property blocked.
    """
    unknown = [k for k in body if k not in schema]
    if unknown:
        bad_body(f"Payload validation error: 'Additional properties not allowed: {','.join(unknown)}'.")
    for name, value in list(body.items()):
        if form and isinstance(value, str):
            value = body[name] = coerce_form_value(value, schema[name])
        allowed = schema[name]
        found = json_type(value)
        if found not in allowed and not (found == "integer" and "number" in allowed):
            bad_body(f"Payload validation error: 'Expected type {allowed[0]} but found type {found}'"
                     f" on property {name}.")


def coerce_form_value(value: str, allowed: tuple[str, ...]) -> Any:
    """A form value as the type the schema allows, when it is not a string and the text reads as
    one (``"5"`` for an integer, ``"true"``/``"false"`` for a boolean); unchanged otherwise, so
    that :func:`check_body` refuses it with Auth0's message.

    Examples
    --------
    >>> from linking_toolkit.sandbox.management_api.validation import coerce_form_value
    >>> coerce_form_value('5', ('integer',)), coerce_form_value('true', ('boolean',))
    (5, True)
    >>> coerce_form_value('x', ('integer',))                # refused later by check_body
    'x'
    """
    if "string" in allowed:
        return value
    if ("integer" in allowed or "number" in allowed) and re.fullmatch(r"-?\d{1,15}", value):
        return int(value)
    if "number" in allowed and re.fullmatch(r"-?\d{1,15}(\.\d{1,15})?([eE][-+]?\d{1,3})?", value):
        return float(value)
    if "boolean" in allowed and value in ("true", "false"):
        return value == "true"
    return value


def query_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    """An integer query parameter, ``default`` when absent. Present but empty is not an integer
    (the OAS's type), nor is anything but digits; a number of any size is read, then held to its
    bounds with the validator's own messages.

    Examples
    --------
    >>> from flask import Flask
    >>> app = Flask('example')
    >>> from linking_toolkit.sandbox.management_api.validation import query_int
    >>> with app.test_request_context('/?per_page=20'):
    ...     query_int('per_page', 50, maximum=100), query_int('page', 0)
    (20, 0)
    """
    raw = request.args.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"-?\d{1,100}", raw):
        bad_query("Query validation error: 'Expected type integer but found type string'"
                  f" on property {name}.")
    value = int(raw)
    if value < minimum:
        bad_query(f"Query validation error: 'Value {value} is less than minimum {minimum}'"
                  f" on property {name}.")
    if maximum is not None and value > maximum:
        bad_query(f"Query validation error: 'Value {value} is greater than maximum {maximum}'"
                  f" on property {name}.")
    return value


def query_bool(name: str, default: bool) -> bool:
    """A boolean query parameter: ``true`` or ``false``, ``default`` when absent (empty is not
    a boolean).

    Examples
    --------
    >>> from flask import Flask
    >>> app = Flask('example')
    >>> from linking_toolkit.sandbox.management_api.validation import query_bool
    >>> with app.test_request_context('/?include_totals=true'):
    ...     query_bool('include_totals', False), query_bool('include_fields', True)
    (True, True)
    """
    raw = request.args.get(name)
    if raw is None:
        return default
    if raw not in ("true", "false"):
        bad_query("Query validation error: 'Expected type boolean but found type string'"
                  f" on property {name}.")
    return raw == "true"


def project(doc: dict[str, Any], fields: str | None, include: bool) -> dict[str, Any]:
    """Auth0's ``fields``/``include_fields``: keep (or drop) the named top-level attributes.

    Examples
    --------
    >>> from linking_toolkit.sandbox.management_api.validation import project
    >>> user = {'user_id': 'auth0|1', 'email': 'ada@example.com', 'name': 'Ada'}
    >>> project(user, 'email,name', True), project(user, 'email,name', False)
    ({'email': 'ada@example.com', 'name': 'Ada'}, {'user_id': 'auth0|1'})
    """
    if not fields:
        return doc
    names = {f.strip() for f in fields.split(",") if f.strip()}
    if include:
        return {k: v for k, v in doc.items() if k in names}
    return {k: v for k, v in doc.items() if k not in names}
