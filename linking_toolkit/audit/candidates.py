"""Link candidates: separate users whose normalised emails are equal, the proposed primary of each
group, and why a group is not safe to link.

Grouping uses each user's own (root) email: an export does not carry the profiles of identities
already linked, and those are already one user anyway. The same rules are applied once more, on
the live profiles, just before a link (``risk_now``): a plan may be old or made by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from .frames import Audit, normalise_email, paused_gc

__all__ = [
    "DATABASE_PROVIDER",
    "DEFAULT_PRIMARY_RANK",
    "RISKS",
    "link_candidates",
    "risk_now",
]

# The provider of a tenant's database connections (users with a password they chose).
DATABASE_PROVIDER = "auth0"
# The reasons a group is not safe, in the order they are reported; "safe" only when none applies.
RISKS = ["safe", "unverified email", "blocked user", "several users hold links", "same connection twice"]
# The proposed primary: the first user of a group sorted by these (column, ascending) keys.
# A user holding links already must stay primary (Auth0 refuses a secondary with links of its own);
# an unverified account never becomes the surviving profile; then the database account (the one
# with a password the person chose), the most used, the oldest; user_id breaks ties.
DEFAULT_PRIMARY_RANK: list[tuple[str, bool]] = [
    ("identities", False),
    ("email_verified", False),
    ("is_database", False),
    ("logins_count", False),
    ("created_at", True),
    ("user_id", True),
]
# Each reason of RISKS[1:] is one bit of a group's risk code: code -> first reason, every reason.
_REASONS = RISKS[1:]
_FIRST_REASON = {c: next((r for i, r in enumerate(_REASONS) if c >> i & 1), "safe")
                 for c in range(1 << len(_REASONS))}
_ALL_REASONS = {c: ", ".join(r for i, r in enumerate(_REASONS) if c >> i & 1) or "safe"
                for c in range(1 << len(_REASONS))}


def link_candidates(result: Audit, *,
                    rank: Sequence[tuple[str, bool]] = DEFAULT_PRIMARY_RANK) -> pd.DataFrame:
    """Groups of separate users whose normalised emails are equal: one row per group.

    Columns: ``email`` (normalised), ``users`` (how many), ``primary_id`` (the proposed primary:
    the first user when the group is sorted by ``rank``; edit the column to choose another),
    ``user_ids`` (all of the group, primary first), ``connections`` and ``providers`` (as
    ``a, b``), ``all_verified``, ``unverified`` (the user ids whose email is not verified),
    ``last_login`` (latest in the group), ``primary_last_login``, ``risk`` (``safe`` only when
    every email in the group is verified and nothing else below applies; otherwise the first
    reason of ``RISKS``) and ``reasons`` (every reason that applies).
    """
    with paused_gc():
        return _candidates(result.users, rank)


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


def _sort_key(column: pd.Series, ascending: bool) -> np.ndarray:
    """A float key that sorts like ``column`` (``ascending`` or not), missing values last."""
    if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(column.dtype):
        values = column.dt.tz_localize(None) if isinstance(column.dtype, pd.DatetimeTZDtype) else column
        key = values.to_numpy().view(np.int64).astype(np.float64)
        missing = values.isna().to_numpy()
    elif pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_numeric_dtype(column.dtype):
        key = column.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(key)
    else:  # text or categories: their sorted order
        key = pd.factorize(column, sort=True)[0].astype(np.float64)
        missing = key < 0
    key = key if ascending else -key
    key[missing] = np.inf
    return key


def _ranked_members(users: pd.DataFrame, rank: Sequence[tuple[str, bool]]) -> pd.DataFrame:
    """The users sharing their email with another, grouped by email (groups in alphabetical order,
    contiguous) and each group sorted by ``rank``, so its first user is the proposed primary."""
    # Factorising the emails once gives both the duplicates and integer group keys to sort on
    # (sorting strings is what made this slow at a million users).
    codes, uniques = pd.factorize(users["email"].array)
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    shared = (codes >= 0) & (counts[np.maximum(codes, 0)] > 1)
    members = users[shared].copy()
    members["is_database"] = (members["provider"] == DATABASE_PROVIDER).to_numpy(dtype=bool)
    member_codes = codes[shared]
    groups = np.unique(member_codes)
    alphabetical = np.empty(len(uniques), dtype=np.int64)
    alphabetical[groups] = np.argsort(np.argsort(np.asarray(uniques, dtype=object)[groups]))
    keys = [_sort_key(members[column], ascending) for column, ascending in reversed(rank)]
    return members.iloc[np.lexsort([*keys, alphabetical[member_codes]])]


@dataclass
class _Groups:
    """Contiguous groups of sorted rows: every aggregate is a numpy ``reduceat`` over their starts."""

    starts: np.ndarray
    ends: np.ndarray

    @classmethod
    def of(cls, keys: np.ndarray) -> _Groups:
        n = len(keys)
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if n else np.zeros(0, dtype=np.int64)
        return cls(starts, np.r_[starts[1:], n].astype(np.int64) if n else starts)

    @property
    def sizes(self) -> np.ndarray:
        sizes: np.ndarray = self.ends - self.starts
        return sizes

    @cached_property
    def of_row(self) -> np.ndarray:
        """The group of each row."""
        return np.repeat(np.arange(len(self.starts)), self.sizes)

    def reduce(self, ufunc: np.ufunc, values: np.ndarray) -> np.ndarray:
        return ufunc.reduceat(values, self.starts) if len(values) else values[:0]

    def distinct(self, codes: np.ndarray, width: int) -> np.ndarray:
        """How many distinct ``codes`` (each in ``-1 .. width - 2``) each group holds."""
        if not len(codes):
            return np.zeros(0, int)
        # (group, code) pairs as one integer each; +1 so a missing value (-1) is a value too
        return np.bincount(np.unique(self.of_row * width + codes + 1) // width, minlength=len(self.starts))

    def names(self, codes: np.ndarray, categories: pd.Index) -> list[str]:
        """The categories present in each group, sorted and spelt ``a, b``."""
        cats = [str(c) for c in categories]
        if len(cats) < 63:  # the set of categories in each group as a bit mask, each spelt out once
            masks = self.reduce(np.bitwise_or, np.left_shift(1, np.maximum(codes, 0)).astype(np.int64))
            spelt = {m: ", ".join(sorted(c for i, c in enumerate(cats) if m >> i & 1))
                     for m in set(masks.tolist())}
            return [spelt[m] for m in masks.tolist()]
        # More categories than an int64 has bits (a tenant with many enterprise connections).
        pairs = np.unique(self.of_row * len(cats) + np.maximum(codes, 0))
        found: list[list[str]] = [[] for _ in range(len(self.starts))]
        for group, code in zip((pairs // len(cats)).tolist(), (pairs % len(cats)).tolist(), strict=True):
            found[group].append(cats[code])
        return [", ".join(sorted(f)) for f in found]


def _risk_codes(members: pd.DataFrame, groups: _Groups, verified: np.ndarray) -> list[int]:
    """Each group's reasons of ``RISKS[1:]`` as bits, in their order."""
    if not len(members):
        return []
    connections = members["connection"]
    flags = np.stack([
        ~groups.reduce(np.logical_and, verified),
        groups.reduce(np.logical_or, members["blocked"].to_numpy(dtype=bool)),
        groups.reduce(np.add, (members["identities"].to_numpy() > 1).astype(np.int64)) > 1,
        groups.distinct(connections.cat.codes.to_numpy().astype(np.int64),
                        len(connections.cat.categories) + 1) < groups.sizes,
    ])
    codes: list[int] = (flags * (1 << np.arange(len(_REASONS)))[:, None]).sum(axis=0).tolist()
    return codes


def _candidates(users: pd.DataFrame, rank: Sequence[tuple[str, bool]]) -> pd.DataFrame:
    members = _ranked_members(users, rank)
    email = members["email"].to_numpy(dtype=object)
    groups = _Groups.of(email)
    starts, ends = groups.starts.tolist(), groups.ends.tolist()
    uid_l = members["user_id"].tolist()
    verified = members["email_verified"].fillna(False).to_numpy(dtype=bool)
    login_times = members["last_login"].dt.tz_convert(None).to_numpy()
    login = login_times.view(np.int64)  # NaT is the smallest int64: maximum() skips it
    codes = _risk_codes(members, groups, verified)
    unverified: list[list[str]] = [[] for _ in starts]
    of_row = groups.of_row
    for position in np.flatnonzero(~verified).tolist():
        unverified[of_row[position]].append(uid_l[position])
    frame = pd.DataFrame({
        "email": pd.array(email[groups.starts].tolist(), dtype="string"),
        "users": groups.sizes.astype(np.int64),
        "primary_id": pd.array([uid_l[i] for i in starts], dtype="string"),
        # object columns of lists, also when empty (pandas would make an empty list column float)
        "user_ids": pd.Series([uid_l[s:e] for s, e in zip(starts, ends, strict=True)], dtype=object),
        "connections": pd.array(groups.names(members["connection"].cat.codes.to_numpy().astype(np.int64),
                                             members["connection"].cat.categories), dtype="string"),
        "providers": pd.array(groups.names(members["provider"].cat.codes.to_numpy().astype(np.int64),
                                           members["provider"].cat.categories), dtype="string"),
        "all_verified": pd.array(groups.reduce(np.logical_and, verified), dtype="boolean"),
        "unverified": pd.Series(unverified, dtype=object),
        "last_login": groups.reduce(np.maximum, login).view(login_times.dtype),
        "primary_last_login": login[groups.starts].view(login_times.dtype),
        "risk": pd.Categorical([_FIRST_REASON[c] for c in codes], categories=RISKS),
        "reasons": pd.array([_ALL_REASONS[c] for c in codes], dtype="string"),
    })
    for column in ("last_login", "primary_last_login"):
        frame[column] = frame[column].dt.tz_localize("UTC")
    return frame
