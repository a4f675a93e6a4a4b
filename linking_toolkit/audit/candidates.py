"""Link candidates: separate users whose normalised emails are equal, the proposed primary of each
group, and why a group is not safe to link.

The grouping is SQL on the audit's engine (:func:`~.engine.candidates_sql`). Grouping uses each
user's own (root) email: an export does not carry the profiles of identities already linked, and
those are already one user anyway. The same rules are applied once more, on the live profiles, just
before a link (``risk_now``): a plan may be old or made by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from .engine import DATABASE_PROVIDER, DEFAULT_PRIMARY_RANK, RISKS, Engine, candidates_sql, system_allocator
from .frames import Audit, normalise_email

__all__ = [
    "DATABASE_PROVIDER",
    "DEFAULT_PRIMARY_RANK",
    "RISKS",
    "link_candidates",
    "risk_now",
]


def link_candidates(result: Audit, *,
                    rank: Sequence[tuple[str, bool]] = DEFAULT_PRIMARY_RANK) -> pd.DataFrame:
    """Groups of separate users whose normalised emails are equal: one row per group.

    Columns: ``email`` (normalised), ``users`` (how many), ``primary_id`` (the proposed primary:
    the first user when the group is sorted by ``rank``, missing values last; edit the column to
    choose another), ``user_ids`` (all of the group, primary first), ``connections`` and
    ``providers`` (as ``a, b``), ``all_verified``, ``unverified`` (the user ids whose email is not
    verified), ``last_login`` (latest in the group), ``primary_last_login``, ``risk`` (``safe`` only
    when every email in the group is verified and nothing else below applies; otherwise the first
    reason of ``RISKS``) and ``reasons`` (every reason that applies).
    """
    known = {*result.users.columns, "is_database"}
    unknown = [column for column, _ in rank if column not in known]
    if unknown:
        raise ValueError(f"rank names no column of the users frame: {', '.join(map(str, unknown))}")
    needed = sorted(_CANDIDATE_COLUMNS | {column for column, _ in rank} - {"is_database"})
    with Engine() as engine, system_allocator():
        # As Arrow (text without a copy, categories as dictionaries): DuckDB scans it fastest.
        engine.connection.register("users", pa.Table.from_pandas(result.users[needed], preserve_index=False))
        return _typed(engine.arrow(candidates_sql(rank)))


# What the grouping reads of the users frame, besides the rank's columns.
_CANDIDATE_COLUMNS = {"email", "user_id", "connection", "provider", "email_verified", "blocked", "identities",
                      "last_login"}


def _lists(column: pa.ChunkedArray) -> pd.Series:
    # object columns of lists, also when empty (pandas would make an empty list column float)
    return pd.Series(column.to_pylist(), dtype=object)


def _typed(table: pa.Table) -> pd.DataFrame:
    """The engine's groups in the documented dtypes."""
    def text(name: str) -> pd.api.extensions.ExtensionArray:
        return pd.StringDtype("pyarrow").__from_arrow__(table.column(name).cast(pa.large_string()))

    def times(name: str) -> pd.Series:
        return pd.Series(table.column(name).to_pandas()).astype("datetime64[ms, UTC]")

    return pd.DataFrame({
        "email": text("email"),
        "users": table.column("users").to_numpy().astype("int64"),
        "primary_id": text("primary_id"),
        "user_ids": _lists(table.column("user_ids")),
        "connections": text("connections"),
        "providers": text("providers"),
        "all_verified": pd.BooleanDtype().__from_arrow__(table.column("all_verified")),
        "unverified": _lists(table.column("unverified")),
        "last_login": times("last_login"),
        "primary_last_login": times("primary_last_login"),
        "risk": pd.Categorical(table.column("risk").to_numpy(zero_copy_only=False), categories=RISKS),
        "reasons": text("reasons"),
    })


def risk_now(primary: Mapping[str, Any], secondary: Mapping[str, Any]) -> str | None:
    """Why linking these two users as they are now is unsafe, or None: the rules of
    ``link_candidates`` on two live profiles (``GET /users/{id}``)."""
    if primary.get("email_verified") is not True or secondary.get("email_verified") is not True:
        return "unverified email now"
    if normalise_email(primary.get("email")) != normalise_email(secondary.get("email")):
        return "emails differ now"
    if primary.get("blocked") or secondary.get("blocked"):
        return "blocked user now"
    return None
