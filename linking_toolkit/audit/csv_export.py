"""Auth0's CSV users export, as SQL that reads it like the NDJSON one.

Auth0 escapes CSV exports against formula injection (its "Bulk user exports" page, after OWASP):
every string cell is written ``"'value"`` (a leading single quote, inside double quotes, its own
double quotes doubled); its own ISO 8601 dates are not escaped. Reading one undoes exactly that: a
cell that starts with a single quote loses it. Identities come from an ``identities`` column of
JSON text, or from the ``identities[N].connection``-style columns an export's fields name.

Writing a CSV of our own puts the guard back (:func:`guard_formulas`): a cell that a spreadsheet
would run (``=``, ``+``, ``-``, ``@``, tab, carriage return) or that starts with the guard itself
gets a leading ``'``, so reading the file back with :func:`csv_select` gives the real value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["csv_select", "guard_cell", "guard_formulas"]

# OWASP's list of cells a spreadsheet reads as a formula, and the guard itself (so it round-trips).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")

_IDENTITY_FIELD = re.compile(r"identities\[(\d+)\]\.(connection|provider|user_id|isSocial)")
_IDENTITY_TYPES = {"connection": "VARCHAR", "provider": "VARCHAR", "user_id": "VARCHAR",
                   "isSocial": "BOOLEAN"}


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(column: str) -> str:
    """A cell with Auth0's escaping undone (one leading single quote), empty as NULL."""
    name = _identifier(column)
    return f"nullif(if(starts_with({name}, chr(39)), {name}[2:], {name}), '')"


def _typed(column: str, kind: str) -> str:
    return _text(column) if kind == "VARCHAR" else f"try_cast({_text(column)} as {kind})"


def _identities(columns: list[str], kind: str) -> str:
    if "identities" in columns:  # the whole array, as JSON text
        return f"try_cast(try_cast({_text('identities')} as json) as {kind})"
    indexed: dict[int, set[str]] = {}
    for column in columns:
        if match := _IDENTITY_FIELD.fullmatch(column):
            indexed.setdefault(int(match[1]), set()).add(match[2])
    if not indexed:
        return f"null::{kind}"
    structs = []
    for index in sorted(indexed):
        values = [f"'{field}': " + (_typed(f"identities[{index}].{field}", sql_type)
                                    if field in indexed[index] else f"null::{sql_type}")
                  for field, sql_type in _IDENTITY_TYPES.items()]
        structs.append("{" + ", ".join(values) + ", 'profileData': null}")
    present = "lambda i: i.user_id is not null or i.connection is not null"
    return f"cast(list_filter([{', '.join(structs)}], {present}) as {kind})"


def csv_select(columns: list[str], types: Mapping[str, str]) -> str:
    """The select list that turns a CSV export's text columns (``columns``, as its header names
    them) into the audit's ``raw`` columns of ``types``; a field the export lacks is NULL.

    Examples
    --------
    >>> from linking_toolkit.audit.csv_export import csv_select
    >>> print(csv_select(["email"], {"email": "VARCHAR"}))            # Auth0's formula guard taken off
    nullif(if(starts_with("email", chr(39)), "email"[2:], "email"), '') as email
    >>> print(csv_select(["email"], {"name": "VARCHAR"}))              # a field the export lacks
    null::VARCHAR as name
    """
    parts = []
    for name, kind in types.items():
        if name == "identities":
            parts.append(f"{_identities(columns, kind)} as identities")
        elif name in columns:
            parts.append(f"{_typed(name, kind)} as {name}")
        else:
            parts.append(f"null::{kind} as {name}")
    return ", ".join(parts)


def guard_cell(value: Any) -> Any:
    """``value`` with Auth0's guard (a leading ``'``) when it is text a spreadsheet would run.

    Examples
    --------
    >>> guard_cell('=HYPERLINK("http://x")')
    '\\'=HYPERLINK("http://x")'
    >>> guard_cell("ana@example.org"), guard_cell(3)
    ('ana@example.org', 3)
    """
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_STARTS) else value


def guard_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` for a CSV file: every text cell guarded by :func:`guard_cell`, the
    headers too (Parquet and DuckDB keep the real values: write those from ``frame``).

    Examples
    --------
    >>> guard_formulas(pd.DataFrame({"name": ["+cmd|' /C calc'!A0", "Ana"]}))["name"].tolist()
    ["'+cmd|' /C calc'!A0", 'Ana']
    """
    out = frame.rename(columns=guard_cell)
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(guard_cell)
    return out
