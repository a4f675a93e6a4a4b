"""The sandbox's subset of Auth0's Lucene ``q`` user search, turned into an SQL ``WHERE`` clause.

The SQL texts built here with f-strings (marked ``noqa: S608``) interpolate only column names from
fixed whitelists of this module; every value goes as a parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["QueryError", "UserQuery", "connection_filter", "parse_user_query"]


class QueryError(ValueError):
    """A ``q`` search the sandbox cannot run (the API answers 400 ``invalid_query_string``)."""


_TERM = re.compile(
    r'\s*(?P<field>[A-Za-z_][\w.]*):(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^\s"()]+))\s*'
)
_IDENTITY_FIELDS = {"identities.connection": "connection", "identities.provider": "provider",
                    "identities.user_id": "user_id", "identities.isSocial": "is_social"}
_USER_FIELDS = {"email", "user_id", "name", "nickname", "given_name", "family_name", "username",
                "email_verified", "blocked"}
_METADATA_KEY = re.compile(r"^(user_metadata|app_metadata)\.([A-Za-z0-9_]+)$")


@dataclass
class UserQuery:
    """Terms ANDed together: ``(field, value)`` pairs from ``q``."""

    terms: list[tuple[str, str]] = field(default_factory=list)

    def sql(self) -> tuple[str, list[Any]]:
        clauses: list[str] = ["1"]
        params: list[Any] = []
        for name, value in self.terms:
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
    """Parse ``email:"a@b.c" AND identities.connection:"github"``; raises ``QueryError``."""
    query = UserQuery()
    rest = q.strip()
    while rest:
        match = _TERM.match(rest)
        if match is None:
            raise QueryError(f"cannot parse {rest[:40]!r}")
        value = match.group("quoted")
        value = re.sub(r"\\(.)", r"\1", value) if value is not None else match.group("bare")
        query.terms.append((match.group("field"), value))
        rest = rest[match.end():]
        if rest:
            if not rest.startswith("AND "):
                raise QueryError("only AND is supported between terms")
            rest = rest[4:].lstrip()
            if not rest:
                raise QueryError("a term must follow AND")
    return query


def connection_filter(connection: str | None) -> tuple[str, list[Any]]:
    """A ``WHERE`` clause on users ``u`` (and its parameters): those holding an identity of
    ``connection``, or every user for None."""
    if connection is None:
        return "1", []
    return ("EXISTS (SELECT 1 FROM identities i WHERE i.owner = u.user_id AND i.connection = ?)",
            [connection])
