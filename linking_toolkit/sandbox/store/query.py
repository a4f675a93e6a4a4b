"""The sandbox's subset of Auth0's Lucene ``q`` user search, turned into an SQL ``WHERE`` clause.

Terms are ``field:value``, ``field:"quoted value"``, ``field:prefix*`` and, as Auth0's user search
v3 documents, ranges: ``field:[A TO B]`` (inclusive), ``field:{A TO B}`` (exclusive), the two
brackets mixed (``[A TO B}``), and ``*`` for an open end, on ``created_at``, ``updated_at``,
``last_login`` (ISO 8601 dates or timestamps, compared at Auth0's millisecond precision) and
``logins_count``. Terms are joined with ``AND``.

The SQL texts built here with f-strings (marked ``noqa: S608``) interpolate only column names from
fixed whitelists of this module; every value goes as a parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["QueryError", "Range", "UserQuery", "connection_filter", "parse_user_query"]


class QueryError(ValueError):
    """A ``q`` search the sandbox cannot run (the API answers 400 ``invalid_query_string``).

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import QueryError, parse_user_query
    >>> try:
    ...     parse_user_query('email:')
    ... except QueryError as refused:
    ...     print(refused)
    cannot parse 'email:'
    """


_BOUND = r'(?:"[^"]*"|[^\s"\[\]{}()]+)'
_TERM = re.compile(
    r'\s*(?P<field>[A-Za-z_][\w.]*):(?:"(?P<quoted>(?:[^"\\]|\\.)*)"'
    rf'|(?P<open>[\[{{])\s*(?P<low>{_BOUND})\s+TO\s+(?P<high>{_BOUND})\s*(?P<close>[\]}}])'
    r'|(?P<bare>[^\s"()\[\]{}]+))\s*'
)
_IDENTITY_FIELDS = {"identities.connection": "connection", "identities.provider": "provider",
                    "identities.user_id": "user_id", "identities.isSocial": "is_social"}
_USER_FIELDS = {"email", "user_id", "name", "nickname", "given_name", "family_name", "username",
                "email_verified", "blocked"}
_METADATA_KEY = re.compile(r"^(user_metadata|app_metadata)\.([A-Za-z0-9_]+)$")
_DATE_FIELDS = {"created_at", "updated_at", "last_login"}
_RANGE_FIELDS = _DATE_FIELDS | {"logins_count"}


@dataclass(frozen=True)
class Range:
    """``[low TO high]`` of ``q``: a bound of None is open (``*``); ``*_inclusive`` says which
    bracket closes that end (``[``/``]`` inclusive, ``{``/``}`` exclusive).

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import parse_user_query
    >>> parse_user_query('logins_count:[2 TO *}').terms
    [('logins_count', Range(low='2', high=None, low_inclusive=True, high_inclusive=False))]
    """

    low: str | None
    high: str | None
    low_inclusive: bool = True
    high_inclusive: bool = True

    def clauses(self, name: str) -> tuple[list[str], list[Any]]:
        """SQL conditions on ``u.{name}`` (a whitelisted column) and their parameters. An
        open range on both ends (``[* TO *]``) matches every user holding a value, as in Lucene."""
        if name not in _RANGE_FIELDS:
            raise QueryError(f"field {name!r} cannot be searched by range")
        convert = _timestamp if name in _DATE_FIELDS else _integer
        clauses, params = [f"u.{name} IS NOT NULL"], []
        ends = ((self.low, self.low_inclusive, ">"), (self.high, self.high_inclusive, "<"))
        for bound, inclusive, op in ends:
            if bound is not None:
                clauses.append(f"u.{name} {op}{'=' if inclusive else ''} ?")
                params.append(convert(name, bound))
        return clauses, params


def _timestamp(name: str, text: str) -> str:
    """A date bound in the stored form (``2024-05-01T12:00:00.000Z``): a date alone is its midnight,
    a time without an offset is UTC, and the precision is Auth0's millisecond."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"{name} range bound {text[:40]!r} is not an ISO 8601 date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _integer(name: str, text: str) -> int:
    if not re.fullmatch(r"-?\d{1,18}", text):
        raise QueryError(f"{name} range bound {text[:40]!r} is not an integer")
    return int(text)


@dataclass
class UserQuery:
    """Terms ANDed together: ``(field, value)`` pairs from ``q``; a range's value is a ``Range``.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import parse_user_query
    >>> parse_user_query('email:"ada@example.com"').sql()
    ('1 AND lower(u.email) = ?', ['ada@example.com'])
    """

    terms: list[tuple[str, str | Range]] = field(default_factory=list)

    def sql(self) -> tuple[str, list[Any]]:
        clauses: list[str] = ["1"]
        params: list[Any] = []
        for name, value in self.terms:
            if isinstance(value, Range):
                more, values = value.clauses(name)
                clauses.extend(more)
                params.extend(values)
                continue
            wildcard = value.endswith("*") and not value.endswith("\\*")
            text = value[:-1] if wildcard else value
            if name in _IDENTITY_FIELDS:
                column = _IDENTITY_FIELDS[name]
                if column == "is_social":
                    clauses.append("EXISTS (SELECT 1 FROM identities i WHERE i.owner = u.user_id"
                                   " AND i.is_social = ?)")
                    params.append(_boolean(name, text))
                else:
                    op, arg = _matcher(text, wildcard)
                    clauses.append(f"EXISTS (SELECT 1 FROM identities i WHERE i.owner = u.user_id"  # noqa: S608
                                   f" AND i.{column} {op})")
                    params.append(arg)
            elif name in ("email_verified", "blocked"):
                clauses.append(f"u.{name} = ?")
                params.append(_boolean(name, text))
            elif name == "email":
                # Auth0 stores emails lowercased, so its email search ignores case.
                op, arg = _matcher(text.lower(), wildcard)
                clauses.append(f"lower(u.email) {op}")
                params.append(arg)
            elif name in _USER_FIELDS:
                op, arg = _matcher(text, wildcard)
                clauses.append(f"u.{name} {op}")
                params.append(arg)
            elif match := _METADATA_KEY.match(name):
                clauses.append(f"json_extract(u.{match.group(1)}, ?) = ?")
                params.extend([f"$.{match.group(2)}", text])
            else:
                raise QueryError(f"field {name!r} cannot be searched")
        return " AND ".join(clauses), params


def _matcher(text: str, wildcard: bool) -> tuple[str, str]:
    if not wildcard:
        return "= ?", text
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "LIKE ? ESCAPE '\\'", escaped + "%"


def _boolean(name: str, text: str) -> int:
    if text not in ("true", "false"):
        raise QueryError(f"{name} must be true or false")
    return int(text == "true")


def parse_user_query(q: str) -> UserQuery:
    """Parse ``email:"a@b.c" AND identities.connection:"github"``; raises ``QueryError``.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import parse_user_query
    >>> parse_user_query('email:"ada@example.com" AND identities.connection:"github"')
    UserQuery(terms=[('email', 'ada@example.com'), ('identities.connection', 'github')])
    """
    query = UserQuery()
    rest = q.strip()
    while rest:
        match = _TERM.match(rest)
        if match is None:
            if re.match(r"[\w.]+:[\[{]", rest):
                raise QueryError(f"cannot parse the range {rest[:40]!r}: write [A TO B] (inclusive),"
                                 " {A TO B} (exclusive), * for an open end")
            raise QueryError(f"cannot parse {rest[:40]!r}")
        query.terms.append((match.group("field"), _term_value(match)))
        rest = rest[match.end():]
        if rest:
            if not rest.startswith("AND "):
                raise QueryError("only AND is supported between terms")
            rest = rest[4:].lstrip()
            if not rest:
                raise QueryError("a term must follow AND")
    return query


def _term_value(match: re.Match[str]) -> str | Range:
    if match.group("open"):
        low, high = (None if b == "*" else b.strip('"') for b in (match.group("low"), match.group("high")))
        return Range(low, high, low_inclusive=match.group("open") == "[",
                     high_inclusive=match.group("close") == "]")
    value = match.group("quoted")
    return re.sub(r"\\(.)", r"\1", value) if value is not None else match.group("bare")


def connection_filter(connection: str | None) -> tuple[str, list[Any]]:
    """A ``WHERE`` clause on users ``u`` (and its parameters): those holding an identity of
    ``connection``, or every user for None.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store.query import connection_filter
    >>> connection_filter(None)
    ('1', [])
    >>> connection_filter('github')
    ('EXISTS (SELECT 1 FROM identities i WHERE i.owner = u.user_id AND i.connection = ?)', ['github'])
    """
    if connection is None:
        return "1", []
    return ("EXISTS (SELECT 1 FROM identities i WHERE i.owner = u.user_id AND i.connection = ?)",
            [connection])
