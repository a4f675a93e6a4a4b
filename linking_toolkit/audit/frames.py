"""The ``Audit`` value: every user and every identity of a tenant as two typed pandas frames.

Records (``GET /users`` pages or the lines of a users export) become column lists, then frames
built once with proper dtypes; nothing here talks to a tenant.

Email normalisation, precisely: ``unicodedata.normalize("NFC", email.strip()).lower()``. That
folds letter case (``Ada@Example.COM`` = ``ada@example.com``; Auth0 matches emails exactly, and
people type them in any case) and Unicode canonical equivalents (an ``é`` typed as one code point or
as ``e`` plus an accent, which RFC 6532 says are the same address), and nothing else: no dots
dropped, no ``+tag`` removed, for any provider, because two Gmail addresses that differ by a dot are
the same mailbox only at Google; no compatibility forms (NFKC) and no case folding beyond
lower-casing, because ``straße.de`` and ``strasse.de`` are two domains. When in doubt it does not
fold: a group missed costs a person one more login prompt, a wrong group hands one person's
account to another.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "AUDIT_FIELDS",
    "BATCH_RECORDS",
    "Audit",
    "audit_from_batches",
    "audit_records",
    "normalise_email",
    "paused_gc",
]

# What the audit asks an export for (a real tenant exports a smaller default set without it).
AUDIT_FIELDS = ["user_id", "email", "email_verified", "name", "created_at", "last_login",
                "logins_count", "blocked", "identities"]
# Records turned into columns at a time: large enough for fast comprehensions, small enough that a
# batch and its parsed copy never hold a big tenant in memory twice.
BATCH_RECORDS = 20_000


def normalise_email(email: str | None) -> str | None:
    """The comparison form of an email: stripped, NFC-normalised, lower-cased (see the module doc)."""
    if email is None:
        return None
    email = email.strip()
    if not email:
        return None
    if email.isascii():  # the common case: NFC changes nothing
        return email.lower()
    return unicodedata.normalize("NFC", email).lower()


def _normalise_all(emails: list[str | None]) -> list[str | None]:
    """``normalise_email`` over a column, with the ASCII case inlined (a million calls cost)."""
    out = [(e.strip().lower() if e.isascii() else normalise_email(e)) if e else None for e in emails]
    return [e or None for e in out] if "" in out else out


def _timestamps(values: list[str | None]) -> pd.DatetimeIndex:
    """Auth0's ``2023-01-26T14:51:52.123Z`` strings as UTC datetimes; numpy parses that form in C,
    several times faster than ``pd.to_datetime``; anything else goes through pandas."""
    try:
        parsed = np.array([v[:-1] if v and v[-1] == "Z" else (v or "NaT") for v in values],
                          dtype="datetime64[ms]")
    except ValueError:  # an offset other than Z, or another format
        return pd.DatetimeIndex(pd.to_datetime(pd.Series(values, dtype="string"), utc=True, format="ISO8601"))
    return pd.DatetimeIndex(parsed).tz_localize("UTC")


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cycle collector while millions of acyclic dicts and strings are made: it would
    otherwise walk the growing columns again and again (a third of the time at a million users)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Columns:
    """Column lists filled record by record; frames are built once, with proper dtypes."""

    def __init__(self) -> None:
        self.user_id: list[str] = []
        self.email: list[str | None] = []
        self.verified: list[bool | None] = []
        self.name: list[str | None] = []
        self.created: list[str | None] = []
        self.last_login: list[str | None] = []
        self.logins: list[int | None] = []
        self.blocked: list[bool] = []
        self.n_identities: list[int] = []
        # identities
        self.i_connection: list[str | None] = []
        self.i_provider: list[str | None] = []
        self.i_user_id: list[str] = []
        self.i_social: list[bool] = []
        # linked identities' own profile (when the source carries it): position -> values
        self.linked_profile: dict[int, tuple[str | None, bool | None, str | None]] = {}

    def add(self, records: Iterable[Mapping[str, Any]]) -> None:
        # One comprehension per column: several times faster than one loop appending to all.
        records = records if isinstance(records, list) else list(records)
        self.user_id += [r["user_id"] for r in records]
        self.email += [r.get("email") for r in records]
        self.verified += [r.get("email_verified") for r in records]
        self.name += [r.get("name") for r in records]
        self.created += [r.get("created_at") for r in records]
        self.last_login += [r.get("last_login") for r in records]
        self.logins += [r.get("logins_count") for r in records]
        self.blocked += [bool(r.get("blocked")) for r in records]
        identities = [r.get("identities") or () for r in records]
        self.n_identities += [len(i) for i in identities]
        flat = [ident for idents in identities for ident in idents]
        offset = len(self.i_user_id)
        self.i_connection += [i.get("connection") for i in flat]
        self.i_provider += [i.get("provider") for i in flat]
        self.i_user_id += [str(i.get("user_id")) for i in flat]
        self.i_social += [bool(i.get("isSocial")) for i in flat]
        for index, ident in enumerate(flat):
            if "profileData" in ident:  # only linked identities carry one, and only when paging
                data = ident["profileData"] or {}
                self.linked_profile[offset + index] = (data.get("email"), data.get("email_verified"),
                                                       data.get("name"))

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        counts = np.asarray(self.n_identities, dtype=np.int64)
        email_raw = pd.array(self.email, dtype="string")
        email = pd.array(_normalise_all(self.email), dtype="string")
        verified = pd.array(self.verified, dtype="boolean")
        created = _timestamps(self.created)
        last_login = _timestamps(self.last_login)
        # Auth0 leaves logins_count out until a first login: no count means zero logins.
        logins = pd.array([v or 0 for v in self.logins], dtype="Int64")
        main = np.cumsum(counts) - counts  # position of each user's main identity
        has_main = counts > 0
        connection = pd.Categorical(self.i_connection)
        provider = pd.Categorical(self.i_provider)
        users = pd.DataFrame({
            "user_id": pd.array(self.user_id, dtype="string"),
            "connection": _of_main_identity(connection, main, has_main),
            "provider": _of_main_identity(provider, main, has_main),
            "email": email,
            "email_raw": email_raw,
            "email_verified": verified,
            "name": pd.array(self.name, dtype="string"),
            "created_at": created,
            "last_login": last_login,
            "logins_count": logins,
            "identities": counts,
            "blocked": np.asarray(self.blocked, dtype=bool),
        })
        owner_index = np.repeat(np.arange(len(counts)), counts)
        is_primary = np.zeros(len(owner_index), dtype=bool)
        is_primary[main[has_main]] = True
        identities = pd.DataFrame({
            "owner": users["user_id"].array.take(owner_index),
            "connection": connection,
            "provider": provider,
            "user_id": pd.array(self.i_user_id, dtype="string"),
            "is_primary": is_primary,
            "is_social": np.asarray(self.i_social, dtype=bool),
            "email": email.take(owner_index),
            "email_raw": email_raw.take(owner_index),
            "email_verified": verified.take(owner_index),
            "name": users["name"].array.take(owner_index),
            "created_at": created.take(owner_index),
            "last_login": last_login.take(owner_index),
            "logins_count": logins.take(owner_index),
        })
        if self.linked_profile:  # a linked identity shows its own profile, not its owner's
            rows = np.fromiter(self.linked_profile, dtype=np.int64, count=len(self.linked_profile))
            values = list(self.linked_profile.values())
            raw = [v[0] for v in values]
            identities.loc[rows, "email_raw"] = pd.array(raw, dtype="string")
            identities.loc[rows, "email"] = pd.array([normalise_email(e) for e in raw], dtype="string")
            identities.loc[rows, "email_verified"] = pd.array([v[1] for v in values], dtype="boolean")
            identities.loc[rows, "name"] = pd.array([v[2] for v in values], dtype="string")
        return users, identities


def _of_main_identity(values: pd.Categorical, main: np.ndarray, has_main: np.ndarray) -> pd.Categorical:
    """A per-identity categorical column taken at each user's main identity (missing if none)."""
    if not len(values):
        return pd.Categorical([None] * len(main))
    codes = values.codes[np.minimum(main, len(values) - 1)]
    return pd.Categorical.from_codes(np.where(has_main, codes, -1), categories=values.categories)


@dataclass
class Audit:
    """A tenant at one moment: ``identities`` (one row per identity) and ``users`` (one per user).

    ``identities`` columns: owner (the user holding it), connection, provider, user_id (the
    identity's own id), is_primary, is_social, email (normalised), email_raw, email_verified, name,
    and the owner's created_at, last_login, logins_count. A linked identity shows its own email and
    name when the source carries them (paging does, an export does not).

    Styled tables and a chart of it are in :mod:`linking_toolkit.audit.report`.
    """

    users: pd.DataFrame
    identities: pd.DataFrame
    source: str = "records"  # "paging" | "export" | "file" | "records"
    issuer: str | None = None
    taken_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __repr__(self) -> str:
        return (f"<Audit {self.issuer or 'tenant'} users={len(self.users)} "
                f"identities={len(self.identities)} source={self.source}>")

    def identities_per_connection(self) -> pd.DataFrame:
        """Identities per connection, split into main identities and linked ones."""
        ids = self.identities
        table = pd.crosstab(ids["connection"], ids["is_primary"].map({True: "main", False: "linked"}))
        table = table.reindex(columns=["main", "linked"], fill_value=0)
        table["identities"] = table.sum(axis=1)
        return table.sort_values("identities", ascending=False).rename_axis(None, axis=1)

    def users_by_identity_count(self) -> pd.DataFrame:
        """How many users hold 1, 2, 3+ identities (a user with 2+ is already linked)."""
        bucket = pd.cut(self.users["identities"], [0, 1, 2, np.inf], labels=["1", "2", "3+"])
        counts = bucket.value_counts(sort=False).rename("users").to_frame()
        counts.index.name = "identities"
        return counts


def audit_from_batches(batches: Iterable[Iterable[Mapping[str, Any]]], *, source: str,
                       issuer: str | None = None) -> Audit:
    """An ``Audit`` from batches of user records, each batch turned into columns as it comes."""
    columns = _Columns()
    for batch in batches:
        columns.add(batch)
    users, identities = columns.frames()
    return Audit(users=users, identities=identities, source=source, issuer=issuer)


def audit_records(records: Iterable[Mapping[str, Any]], *, source: str = "records",
                  issuer: str | None = None) -> Audit:
    """An ``Audit`` from user records (``GET /users`` or export JSON), consumed as they come."""
    iterator = iter(records)
    batches = iter(lambda: list(itertools.islice(iterator, BATCH_RECORDS)), [])
    return audit_from_batches(batches, source=source, issuer=issuer)
