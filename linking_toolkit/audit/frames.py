"""The ``Audit`` value: every user and every identity of a tenant as two typed pandas frames, and
SQL over them, and the audit kept on disk.

Email normalisation, precisely: ``unicodedata.normalize("NFC", email.strip()).lower()``. That
folds letter case (``Ada@Example.COM`` = ``ada@example.com``; Auth0 matches emails exactly, and
people type them in any case) and Unicode canonical equivalents (an ``é`` typed as one code point or
as ``e`` plus an accent, which RFC 6532 says are the same address), and nothing else: no dots
dropped, no ``+tag`` removed, for any provider, because two Gmail addresses that differ by a dot are
the same mailbox only at Google; no compatibility forms (NFKC) and no case folding beyond
lower-casing, because ``straße.de`` and ``strasse.de`` are two domains. When in doubt it does not
fold: a group missed costs a person one more login prompt, a wrong group hands one person's
account to another. The engine applies the same rule (:func:`~.engine.normalise_email`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from .engine import PROFILE_FIELDS, Engine, check_phone_paths, normalise_email, to_frame
from .groups import candidates_sql

__all__ = [
    "AUDIT_FIELDS",
    "Audit",
    "audit_fields",
    "audit_records",
    "normalise_email",
]

# What the audit asks an export for (a real tenant exports a smaller default set without it).
AUDIT_FIELDS = ["user_id", "email", "email_verified", "name", "created_at", "last_login",
                "logins_count", "blocked", "identities", *PROFILE_FIELDS]


def audit_fields(phone_paths: Sequence[str] = ()) -> list[str]:
    """What the audit asks a tenant for: ``AUDIT_FIELDS``, and ``user_metadata`` when a phone is
    read from it (``phone_paths``, checked here, before any request).

    Examples
    --------
    >>> from linking_toolkit.audit.frames import audit_fields
    >>> audit_fields()[:4]
    ['user_id', 'email', 'email_verified', 'name']
    >>> audit_fields(["user_metadata.phone"])[-1]
    'user_metadata'
    """
    return [*AUDIT_FIELDS, "user_metadata"] if check_phone_paths(phone_paths) else list(AUDIT_FIELDS)


@dataclass
class Audit:
    """A tenant at one moment: ``identities`` (one row per identity) and ``users`` (one per user).

    ``identities`` columns: owner (the user holding it), connection, provider, user_id (the
    identity's own id), is_primary, is_social, email (normalised), email_raw, email_verified, name,
    and the owner's created_at, last_login, logins_count. A linked identity shows its own email and
    name when the source carries them (paging does, an export does not). Text columns are
    Arrow-backed (``string[pyarrow]``).

    Styled tables and a chart of it are in :mod:`linking_toolkit.audit.report`.

    Examples
    --------
    >>> result = audit_tenant(admin)                     # doctest: +SKIP
    >>> result.identities[~result.identities["is_primary"]]   # the linked identities
    >>> result.sql("select connection, count(*) from identities group by all")
    >>> result.save("tenant.audit"); Audit.open("tenant.audit")
    """

    users: pd.DataFrame
    identities: pd.DataFrame
    source: str = "records"  # "paging" | "export" | "partitioned" | "file" | "records"
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

    def sql(self, query: str) -> pd.DataFrame:
        """The answer to an analyst's own question, in DuckDB's SQL, as a pandas frame.

        The query sees ``users``, ``identities`` (the frames themselves, read in place, not copied)
        and ``candidates`` (``link_candidates``' groups with the default rank).

        Examples
        --------
        >>> result.sql('''select connection, count(*) as linked from identities
        ...               where not is_primary group by all order by linked desc''')   # doctest: +SKIP
        """
        with Engine() as engine:
            engine.connection.register("users", self.users)
            engine.connection.register("identities", self.identities)
            engine.connection.execute(f"create temp view candidates as {candidates_sql()}")
            return engine.connection.sql(query).df()

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Keep the audit in one DuckDB file, to reopen with :meth:`Audit.open` in a later kernel
        without exporting the tenant again (and to query with DuckDB itself).

        The file holds every user's email: it is written in a new folder only its owner can open
        and made 0600 there, then moved into place, so no one else can ever read it.
        """
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists: pass overwrite=True to replace it")
        if not path.parent.is_dir():
            raise FileNotFoundError(f"{path.parent} is no directory to save the audit in")
        folder = tempfile.mkdtemp(prefix=".audit-", dir=path.parent)  # 0700, on the same file system
        try:
            staged = os.path.join(folder, "audit.duckdb")
            with duckdb.connect(staged) as db:
                db.register("users_frame", self.users)
                db.register("identities_frame", self.identities)
                db.execute("create table users as select * from users_frame")
                db.execute("create table identities as select * from identities_frame")
                db.execute("create table audit (source varchar, issuer varchar, taken_at timestamptz)")
                db.execute("insert into audit values (?, ?, ?)", [self.source, self.issuer, self.taken_at])
            os.chmod(staged, 0o600)
            os.replace(staged, path)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return path

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Audit:
        """An audit kept by :meth:`Audit.save`, with its frames, source, issuer and time."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no saved audit at {path}")
        try:
            with duckdb.connect(str(path), read_only=True) as db:
                users = to_frame(db.sql("select * from users").to_arrow_table())
                identities = to_frame(db.sql("select * from identities").to_arrow_table())
                meta = db.execute("select source, issuer, taken_at from audit").fetchone()
                source, issuer, taken_at = meta or ("file", None, None)
        except duckdb.Error as error:
            raise ValueError(f"{path} is not an audit saved by Audit.save: {error}") from None
        return cls(users=users, identities=identities, source=source, issuer=issuer,
                   taken_at=taken_at.astimezone(UTC) if taken_at else datetime.now(UTC))


def audit_records(records: Iterable[Mapping[str, Any]], *, source: str = "records",
                  issuer: str | None = None, phone_paths: Sequence[str] = ()) -> Audit:
    """An ``Audit`` from user records (``GET /users`` pages or export lines), through the same
    engine and SQL as an export file. ``phone_paths`` (``["user_metadata.phone"]``) name where the
    tenant keeps a phone besides ``phone_number``.

    Examples
    --------
    >>> from linking_toolkit.audit.frames import audit_records
    >>> result = audit_records([
    ...     {"user_id": "auth0|1", "email": "ada@example.org", "email_verified": True,
    ...      "identities": [{"provider": "auth0", "user_id": "1",
    ...                      "connection": "Username-Password-Authentication"}]},
    ...     {"user_id": "google-oauth2|2", "email": "Ada@example.org", "email_verified": True,
    ...      "identities": [{"provider": "google-oauth2", "user_id": "2", "connection": "google-oauth2"}]}])
    >>> result
    <Audit tenant users=2 identities=2 source=records>
    >>> result.users["email"].tolist()                  # normalised for comparison
    ['ada@example.org', 'ada@example.org']
    """
    with Engine(phone_paths=phone_paths) as engine:
        engine.use_records(records)
        users, identities = engine.frames()
    return Audit(users=users, identities=identities, source=source, issuer=issuer)
