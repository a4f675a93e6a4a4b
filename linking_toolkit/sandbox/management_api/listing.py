"""What the configuration routes share: Auth0's offset paging of a list, and the checks of a body's
arrays, enums and strings, with the validator's messages."""

from __future__ import annotations

import re
from typing import Any

from flask import Response, request

from .errors import ApiError, bad_body, bad_query, json_response
from .validation import json_type, project, query_bool, query_int

__all__ = ["check_enum", "check_string", "check_strings", "checkpoint_of", "page_of", "query_enum"]


def page_of(items: list[dict[str, Any]], key: str, *, id_key: str = "id", fields: bool = True,
            min_per_page: int = 0) -> Response:
    """``items`` paged as Auth0 pages them: ``page`` (from 0), ``per_page`` (50, at most 100); with
    ``include_totals`` an object ``{start, limit, total, <key>}``, else the array. With ``take`` or a
    ``from`` (checkpoint paging) ``{<key>, next}`` instead, ``next`` the ``from`` of the next page,
    left out on the last. ``fields`` and ``include_fields`` project each item where the operation
    takes them.

    Examples
    --------
    >>> from flask import Flask
    >>> app = Flask('example')
    >>> from linking_toolkit.sandbox.management_api.listing import page_of
    >>> items = [{'id': f'u{n}'} for n in range(5)]
    >>> with app.test_request_context('/?page=1&per_page=2&include_totals=true'):
    ...     page_of(items, 'users').get_json()
    {'start': 2, 'limit': 2, 'total': 5, 'users': [{'id': 'u2'}, {'id': 'u3'}]}
    """
    page = query_int("page", 0)
    per_page = query_int("per_page", 50, minimum=min_per_page, maximum=100)
    include_totals = query_bool("include_totals", False)
    include_fields = query_bool("include_fields", True)
    if request.args.get("from") or "take" in request.args:
        return checkpoint_of(items, key, id_key=id_key, fields=fields)
    start = page * per_page
    chosen = items[start:start + per_page]
    if fields:
        chosen = [project(item, request.args.get("fields"), include_fields) for item in chosen]
    if include_totals:
        return json_response({"start": start, "limit": per_page, "total": len(items), key: chosen})
    return json_response(chosen)


def checkpoint_of(items: list[dict[str, Any]], key: str, *, id_key: str = "id", fields: bool = True,
                  max_take: int = 100) -> Response:
    """Checkpoint paging: ``take`` items (50) ``from`` the one whose id (``id_key``) is given, as
    the page before gave it in ``next``; an id that names none gives an empty page.

    Examples
    --------
    >>> from flask import Flask
    >>> app = Flask('example')
    >>> from linking_toolkit.sandbox.management_api.listing import checkpoint_of
    >>> items = [{'id': f'u{n}'} for n in range(5)]
    >>> with app.test_request_context('/?take=2&from=u1'):
    ...     checkpoint_of(items, 'users').get_json()
    {'users': [{'id': 'u1'}, {'id': 'u2'}], 'next': 'u3'}
    """
    take = query_int("take", 50, minimum=1, maximum=max_take)
    start_at = request.args.get("from")
    ids = [item[id_key] for item in items]
    start = (ids.index(start_at) if start_at in ids else len(ids)) if start_at else 0
    chosen = items[start:start + take]
    if fields:
        include_fields = query_bool("include_fields", True)
        chosen = [project(item, request.args.get("fields"), include_fields) for item in chosen]
    body: dict[str, Any] = {key: chosen}
    if start + take < len(items):
        body["next"] = ids[start + take]
    return json_response(body)


def query_enum(name: str, allowed: tuple[str, ...]) -> str | None:
    """A query parameter that must be one of ``allowed`` (None when absent).

    Examples
    --------
    >>> from flask import Flask
    >>> app = Flask('example')
    >>> from linking_toolkit.sandbox.management_api.listing import query_enum
    >>> with app.test_request_context('/?format=csv'):
    ...     query_enum('format', ('json', 'csv')), query_enum('sort', ('email:1',))
    ('csv', None)
    """
    value = request.args.get(name)
    if value is not None and value not in allowed:
        bad_query(f"Query validation error: 'No enum match for: \"{value[:60]}\"' on property {name}.")
    return value


def check_enum(body: dict[str, Any], name: str, allowed: tuple[str, ...], where: str = "") -> None:
    """A 400 unless ``body[name]`` (when present) is one of ``allowed``, with Auth0's message.

    Examples
    --------
    >>> from linking_toolkit.sandbox.management_api.errors import ApiError
    >>> from linking_toolkit.sandbox.management_api.listing import check_enum
    >>> check_enum({'format': 'json'}, 'format', ('json', 'csv'))
    >>> try:
    ...     check_enum({'format': 'xml'}, 'format', ('json', 'csv'))
    ... except ApiError as error:
    ...     print(error.message)
    Payload validation error: 'No enum match for: "xml"' on property format.
    """
    if name in body and body[name] not in allowed:
        bad_body(f"Payload validation error: 'No enum match for: \"{str(body[name])[:60]}\"'"
                 f" on property {where}{name}.")


def check_string(value: Any, where: str, *, min_length: int = 0, max_length: int | None = None,
                 pattern: str | None = None, query: bool = False) -> str:
    """A string of the schema's length and pattern, or Auth0's 400 (of the body, or ``query``).

    Examples
    --------
    >>> from linking_toolkit.sandbox.management_api.errors import ApiError
    >>> from linking_toolkit.sandbox.management_api.listing import check_string
    >>> check_string('ada@example.com', 'email', min_length=1)
    'ada@example.com'
    >>> try:
    ...     check_string(5, 'email')
    ... except ApiError as error:
    ...     print(error.message)
    Payload validation error: 'Expected type string but found type integer' on property email.
    """
    if query:
        try:
            return check_string(value, where, min_length=min_length, max_length=max_length, pattern=pattern)
        except ApiError as error:
            bad_query(error.message.replace("Payload validation error", "Query validation error"))
    if not isinstance(value, str):
        bad_body(f"Payload validation error: 'Expected type string but found type "
                 f"{json_type(value)}' on property {where}.")
    if len(value) < min_length:
        bad_body(f"Payload validation error: 'String is too short ({len(value)} chars), minimum "
                 f"{min_length}' on property {where}.")
    if max_length is not None and len(value) > max_length:
        bad_body(f"Payload validation error: 'String is too long ({len(value)} chars), maximum "
                 f"{max_length}' on property {where}.")
    if pattern is not None and not re.search(pattern, value):
        bad_body(f"Payload validation error: 'String does not match pattern {pattern}' on property {where}.")
    return value


def check_strings(values: list[Any], where: str, *, min_length: int = 1,
                  max_length: int | None = None) -> list[str]:
    """An array of strings, each checked as :func:`check_string` (``where[i]`` in the message).

    Examples
    --------
    >>> from linking_toolkit.sandbox.management_api.listing import check_strings
    >>> check_strings(['read:users', 'update:users'], 'scope')
    ['read:users', 'update:users']
    """
    return [check_string(v, f"{where}[{i}]", min_length=min_length, max_length=max_length)
            for i, v in enumerate(values)]
