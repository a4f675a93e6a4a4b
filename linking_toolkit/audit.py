"""Audit a whole tenant: every identity as a frame, link candidates, safe link plans with undo.

The rules (what a record becomes, how emails are compared, which account is proposed as primary,
when a group is safe, how metadata is merged) are plain functions on data; the functions that talk
to a tenant (``audit``, ``apply_plan``, ``undo``) only fetch, call those rules and write a journal.

Email normalisation, precisely: ``unicodedata.normalize("NFC", email.strip()).lower()``. That
folds letter case (``Ada@Example.COM`` = ``ada@example.com``; Auth0 matches emails exactly, and
people type them in any case) and Unicode canonical equivalents (an ``é`` typed as one code point or
as ``e`` plus an accent, which RFC 6532 says are the same address), and nothing else: no dots
dropped, no ``+tag`` removed, for any provider, because two Gmail addresses that differ by a dot are
the same mailbox only at Google; no compatibility forms (NFKC) and no case folding beyond
lower-casing, because ``straße.de`` and ``strasse.de`` are two domains. When in doubt it does not
fold: a group missed costs a person one more login prompt, a wrong group hands one person's
account to another.

Grouping uses each user's own (root) email: an export does not carry the profiles of identities
already linked, and those are already one user anyway.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import json
import os
import tempfile
import unicodedata
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import AlreadyLinked, Auth0Error, BadRequest, NotFound, UnsafeLink

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from pandas.io.formats.style import Styler

    from .management import ManagementClient

__all__ = [
    "AUDIT_FIELDS",
    "DATABASE_PROVIDER",
    "DEFAULT_PRIMARY_RANK",
    "PAGING_LIMIT",
    "RISKS",
    "Audit",
    "Journal",
    "apply_plan",
    "audit",
    "audit_export_file",
    "audit_records",
    "candidates_by_risk",
    "link_candidates",
    "merge_metadata",
    "normalise_email",
    "plan_links",
    "undo",
]

# Auth0 pages only the first 1000 users of a search; above that only an export job sees them all.
PAGING_LIMIT = 1000
# What the audit asks an export for (a real tenant exports a smaller default set without it).
AUDIT_FIELDS = ["user_id", "email", "email_verified", "name", "created_at", "last_login",
                "logins_count", "blocked", "identities"]
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
_CHUNK_LINES = 20_000


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


# -- records -> frames ---------------------------------------------------------------------------


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
        user_connection = pd.Categorical.from_codes(
            np.where(has_main, connection.codes[np.minimum(main, max(len(connection) - 1, 0))], -1),
            categories=connection.categories) if len(connection) else pd.Categorical([None] * len(counts))
        user_provider = pd.Categorical.from_codes(
            np.where(has_main, provider.codes[np.minimum(main, max(len(provider) - 1, 0))], -1),
            categories=provider.categories) if len(provider) else pd.Categorical([None] * len(counts))
        users = pd.DataFrame({
            "user_id": pd.array(self.user_id, dtype="string"),
            "connection": user_connection,
            "provider": user_provider,
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


@dataclass
class Audit:
    """A tenant at one moment: ``identities`` (one row per identity) and ``users`` (one per user).

    ``identities`` columns: owner (the user holding it), connection, provider, user_id (the
    identity's own id), is_primary, is_social, email (normalised), email_raw, email_verified, name,
    and the owner's created_at, last_login, logins_count. A linked identity shows its own email and
    name when the source carries them (paging does, an export does not).
    """

    users: pd.DataFrame
    identities: pd.DataFrame
    source: str = "records"  # "paging" | "export" | "file" | "records"
    issuer: str | None = None
    taken_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __repr__(self) -> str:
        return (f"<Audit {self.issuer or 'tenant'} users={len(self.users)} "
                f"identities={len(self.identities)} source={self.source}>")

    # -- summaries ------------------------------------------------------------------------------

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

    def summary(self) -> Styler:
        """Identities per connection as a styled table with bars."""
        return _bars(self.identities_per_connection(), "Identities per connection")

    def identity_count_summary(self) -> Styler:
        return _bars(self.users_by_identity_count(), "Users by number of identities")

    def plot(self, candidates: pd.DataFrame | None = None) -> Figure:
        """The audit's two counts that a glance should answer, as horizontal bar charts.

        Left, link candidate groups by risk: how much could be linked safely against how much needs
        a person to look first. Right, users by number of identities: how much is linked already.
        Every bar carries its count, so a small bar next to a large one still reads. ``candidates``
        is ``link_candidates(self)``, computed when not given.

        Returns the matplotlib ``Figure``, already closed in pyplot: a notebook shows it once, as
        the cell's result, and a script can ``fig.savefig(path)``.
        """
        import matplotlib.pyplot as plt  # here, not at import: only the chart needs matplotlib

        by_risk = _risk_table(link_candidates(self) if candidates is None else candidates)
        by_count = self.users_by_identity_count()
        # Through pyplot (not Figure()) so that Jupyter's inline backend loads and renders it.
        fig, (risk_ax, count_ax) = plt.subplots(1, 2, figsize=(10, 3), layout="constrained")
        fig.suptitle(f"Audit of {len(self.users):,} users")

        # safe first and on top, the risks below in RISKS order
        labels = [str(risk) for risk in by_risk.index]
        bars = risk_ax.barh(labels, by_risk["groups"].tolist(),
                            color=["#4c9a5b" if risk == "safe" else "#d98b3a" for risk in labels])
        risk_ax.bar_label(bars, labels=[f"{g:,} ({u:,} users)" for g, u in
                                        zip(by_risk["groups"].tolist(), by_risk["users"].tolist(),
                                            strict=True)], padding=3)
        risk_ax.set(title="Link candidate groups by risk", xlabel="candidate groups", ylabel="risk")

        bars = count_ax.barh([str(n) for n in by_count.index], by_count["users"].tolist(), color="#8fb8de")
        count_ax.bar_label(bars, labels=[f"{n:,}" for n in by_count["users"].tolist()], padding=3)
        count_ax.set(title="Users by number of identities", xlabel="users", ylabel="identities per user")

        for ax in (risk_ax, count_ax):
            ax.invert_yaxis()  # read top-down, in the tables' order
            ax.margins(x=0.3)  # room for the count labels right of the longest bar
            ax.set_xlim(left=0)
        plt.close(fig)  # out of pyplot's registry: the inline backend would draw it a second time
        return fig


def _bars(table: pd.DataFrame, caption: str) -> Styler:
    from pandas.io.formats.style import Styler

    class SummaryStyler(Styler):
        """A Styler whose plain-text form is the table itself (not a memory address), so a
        notebook's saved output repeats from run to run."""

        def __repr__(self) -> str:
            return f"{caption}\n{self.data.to_string()}"

    numeric = list(table.select_dtypes("number").columns)
    # A fixed uuid (from the caption) instead of a random one, for the same reason.
    uuid = "".join(ch if ch.isalnum() else "_" for ch in caption.lower())
    # One scale for every column, never empty (an all-zero column would divide by zero).
    top = max(1.0, float(table[numeric].to_numpy().max())) if numeric and len(table) else 1.0
    return (SummaryStyler(table, uuid=uuid).bar(subset=numeric, color="#8fb8de", vmin=0, vmax=top)
            .format("{:,}", subset=numeric).set_caption(caption))


def candidates_by_risk(candidates: pd.DataFrame) -> Styler:
    """Candidate groups and the users in them, per risk, as a styled table with bars."""
    return _bars(_risk_table(candidates), "Link candidates by risk")


def _risk_table(candidates: pd.DataFrame) -> pd.DataFrame:
    """Groups and users per risk, every risk present (a zero row says that risk was checked)."""
    return candidates.groupby("risk", observed=False).agg(groups=("email", "size"), users=("users", "sum"))


# -- building an audit ---------------------------------------------------------------------------


def audit_records(records: Iterable[Mapping[str, Any]], *, source: str = "records",
                  issuer: str | None = None) -> Audit:
    """An ``Audit`` from user records (``GET /users`` or export JSON), consumed as they come."""
    columns = _Columns()
    batch: list[Mapping[str, Any]] = []
    for record in records:
        batch.append(record)
        if len(batch) >= _CHUNK_LINES:
            columns.add(batch)
            batch = []
    columns.add(batch)
    users, identities = columns.frames()
    return Audit(users=users, identities=identities, source=source, issuer=issuer)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cycle collector while millions of acyclic dicts and strings are made: it would
    otherwise walk the growing columns again and again (a third of the time at a million users)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _ndjson_chunks(stream: IO[bytes], lines: int = _CHUNK_LINES,
                   block: int = 1 << 22) -> Iterator[list[dict[str, Any]]]:
    """Parsed records, about ``lines`` at a time: the stream is read in blocks and each batch of
    lines parsed with one ``json.loads``, so the whole text and its parsed copy are never in
    memory together."""
    batch: list[bytes] = []
    tail = b""
    while True:
        data = stream.read(block)
        if not data:
            break
        parts = (tail + data).split(b"\n")
        tail = parts.pop()
        batch += [part for part in parts if part.strip()]
        if len(batch) >= lines:
            yield json.loads(b"[" + b",".join(batch) + b"]")
            batch = []
    if tail.strip():
        batch.append(tail)
    if batch:
        yield json.loads(b"[" + b",".join(batch) + b"]")


def audit_export_file(path: str | os.PathLike[str], *, issuer: str | None = None,
                      progress: Callable[[int], object] | None = None) -> Audit:
    """An ``Audit`` from a users-export file (gzipped NDJSON, as Auth0 serves it, or plain)."""
    path = Path(path)
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    stream: IO[bytes] = gzip.GzipFile(path, "rb") if gzipped else path.open("rb")  # type: ignore[assignment]
    columns = _Columns()
    with stream, _no_gc():
        for chunk in _ndjson_chunks(stream):
            columns.add(chunk)
            if progress is not None:
                progress(len(chunk))
        users, identities = columns.frames()
    return Audit(users=users, identities=identities, source="file", issuer=issuer)


def audit(client: ManagementClient, *, progress: bool = True, export_above: int = PAGING_LIMIT,
          poll: float = 1.0, timeout: float = 3600.0) -> Audit:
    """The whole tenant behind ``client`` (a Management client with ``read:users``) as an ``Audit``.

    Up to ``export_above`` users it pages ``GET /users`` (Auth0 pages only the first 1000); above,
    it runs a users-export job, shows its progress, downloads the gzipped NDJSON to a temporary file
    and parses it in chunks. The client paces itself on Auth0's rate-limit headers, so the same
    call works on a real tenant.

    Examples
    --------
    >>> admin = ManagementClient.from_client_credentials(tenant)     # doctest: +SKIP
    >>> result = audit(admin)
    >>> link_candidates(result)
    """
    from tqdm.auto import tqdm

    issuer = getattr(client.tenant, "issuer", None)
    total = client.count_users()
    if total <= min(export_above, PAGING_LIMIT):
        with tqdm(total=total, desc="users", unit="user", disable=not progress) as bar:
            def paged() -> Iterator[dict[str, Any]]:
                # A stable order across pages (the sort Auth0 documents), so no user is seen twice or missed
                for user in client.list_users(per_page=100, fields=AUDIT_FIELDS, sort="created_at:1"):
                    bar.update(1)
                    yield user
            result = audit_records(paged(), source="paging", issuer=issuer)
        return result

    job = client.create_users_export(format="json", fields=AUDIT_FIELDS)
    with tqdm(total=100, desc="export job", unit="%", disable=not progress) as bar:
        def advance(percent: int) -> None:
            bar.update(max(0, percent - bar.n))
        job = client.wait_for_job(job["id"], progress=advance, poll=poll, timeout=timeout)
    handle, name = tempfile.mkstemp(prefix="users-export-", suffix=".json.gz")
    os.close(handle)
    try:
        client.download_export(job, name)
        with tqdm(total=total, desc="users", unit="user", disable=not progress) as bar:
            result = audit_export_file(name, issuer=issuer, progress=bar.update)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)
    result.source = "export"
    return result


# -- candidates ----------------------------------------------------------------------------------


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
    with _no_gc():
        return _candidates(result.users, rank)


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


def _candidates(users: pd.DataFrame, rank: Sequence[tuple[str, bool]]) -> pd.DataFrame:
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
    members = members.iloc[np.lexsort([*keys, alphabetical[member_codes]])]

    # Groups are contiguous after the sort: every aggregate is a numpy reduceat over their starts.
    n = len(members)
    email = members["email"].to_numpy(dtype=object)
    starts = np.flatnonzero(np.r_[True, email[1:] != email[:-1]]) if n else np.zeros(0, dtype=np.int64)
    ends = np.r_[starts[1:], n].astype(np.int64) if n else starts
    uid_l = members["user_id"].tolist()
    verified = members["email_verified"].fillna(False).to_numpy(dtype=bool)
    blocked = members["blocked"].to_numpy(dtype=bool)
    holds_links = (members["identities"].to_numpy() > 1).astype(np.int64)
    login_times = members["last_login"].dt.tz_convert(None).to_numpy()
    login = login_times.view(np.int64)  # NaT is the smallest int64: maximum() skips it
    conn_code = members["connection"].cat.codes.to_numpy().astype(np.int64)
    prov_code = members["provider"].cat.codes.to_numpy().astype(np.int64)

    def reduce(ufunc: np.ufunc, values: np.ndarray) -> np.ndarray:
        return ufunc.reduceat(values, starts) if n else values[:0]

    all_verified = reduce(np.logical_and, verified)
    any_blocked = reduce(np.logical_or, blocked)
    linked_users = reduce(np.add, holds_links)
    group_of = np.repeat(np.arange(len(starts)), ends - starts)
    # (group, connection) pairs as one integer each; +1 so a missing connection (-1) is a value too
    width = len(members["connection"].cat.categories) + 1
    distinct_connections = (np.bincount(np.unique(group_of * width + conn_code + 1) // width,
                                        minlength=len(starts)) if n else np.zeros(0, int))
    sizes = ends - starts

    def names(codes: np.ndarray, categories: pd.Index) -> list[str]:
        cats = [str(c) for c in categories]
        if len(cats) < 63:  # the set of categories in each group as a bit mask, each spelt out once
            masks = reduce(np.bitwise_or, np.left_shift(1, np.maximum(codes, 0)).astype(np.int64))
            spelt = {m: ", ".join(sorted(c for i, c in enumerate(cats) if m >> i & 1))
                     for m in set(masks.tolist())}
            return [spelt[m] for m in masks.tolist()]
        # More categories than an int64 has bits (a tenant with many enterprise connections).
        pairs = np.unique(group_of * len(cats) + np.maximum(codes, 0))
        found: list[list[str]] = [[] for _ in range(len(starts))]
        for group, code in zip((pairs // len(cats)).tolist(), (pairs % len(cats)).tolist(), strict=True):
            found[group].append(cats[code])
        return [", ".join(sorted(f)) for f in found]

    flags = np.stack([~all_verified, any_blocked, linked_users > 1, distinct_connections < sizes]) \
        if n else np.zeros((4, 0), dtype=bool)
    codes = (flags * (1 << np.arange(4))[:, None]).sum(axis=0)
    reason_names = RISKS[1:]
    reasons_of = {c: ", ".join(r for i, r in enumerate(reason_names) if c >> i & 1) or "safe"
                  for c in range(16)}
    first_reason = {c: next((r for i, r in enumerate(reason_names) if c >> i & 1), "safe") for c in range(16)}
    unverified: list[list[str]] = [[] for _ in range(len(starts))]
    for position in np.flatnonzero(~verified).tolist():
        unverified[group_of[position]].append(uid_l[position])
    last = reduce(np.maximum, login)
    frame = pd.DataFrame({
        "email": pd.array(email[starts].tolist(), dtype="string"),
        "users": sizes.astype(np.int64),
        "primary_id": pd.array([uid_l[i] for i in starts.tolist()], dtype="string"),
        # object columns of lists, also when empty (pandas would make an empty list column float)
        "user_ids": pd.Series([uid_l[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)],
                              dtype=object),
        "connections": pd.array(names(conn_code, members["connection"].cat.categories), dtype="string"),
        "providers": pd.array(names(prov_code, members["provider"].cat.categories), dtype="string"),
        "all_verified": pd.array(all_verified, dtype="boolean"),
        "unverified": pd.Series(unverified, dtype=object),
        "last_login": last.view(login_times.dtype),
        "primary_last_login": login[starts].view(login_times.dtype),
        "risk": pd.Categorical([first_reason[c] for c in codes.tolist()], categories=RISKS),
        "reasons": pd.array([reasons_of[c] for c in codes.tolist()], dtype="string"),
    })
    for column in ("last_login", "primary_last_login"):
        frame[column] = frame[column].dt.tz_localize("UTC")
    return frame


# -- plans ---------------------------------------------------------------------------------------

PLAN_COLUMNS = ["primary_id", "secondary_id", "provider", "user_id", "connection", "risk", "reasons",
                "allow_unsafe"]


def plan_links(candidates: pd.DataFrame, result: Audit | None = None) -> pd.DataFrame:
    """A link plan: one row per secondary (every user of a group but its ``primary_id``).

    Columns: primary_id, secondary_id, provider and user_id (the secondary's main identity, what
    the link request names), connection, risk, reasons, allow_unsafe (False: set it to True on a
    row, after checking that person, to let ``apply_plan`` link an unsafe row).
    ``result`` gives each secondary's main identity; without it the user id is split at its
    first ``|`` (Auth0's ``provider|id``).
    """
    main: dict[str, tuple[str, str, str]] = {}
    if result is not None:
        ids = result.identities[result.identities["is_primary"]]
        main = dict(zip(ids["owner"].tolist(),
                        zip(ids["provider"].astype(str).tolist(), ids["user_id"].tolist(),
                            ids["connection"].astype(str).tolist(), strict=True), strict=True))
    rows = []
    for group in candidates.itertuples(index=False):
        if group.primary_id not in group.user_ids:  # an edited primary_id must be one of the group
            raise ValueError(f"primary_id {group.primary_id} is not one of the group of {group.email}: "
                             f"{', '.join(group.user_ids)}")
        for secondary in group.user_ids:
            if secondary == group.primary_id:
                continue
            provider, _, short = secondary.partition("|")
            connection: str | None = None
            if secondary in main:
                provider, short, connection = main[secondary]
            rows.append((group.primary_id, secondary, provider, short, connection, group.risk,
                         getattr(group, "reasons", str(group.risk)), False))
    plan = pd.DataFrame(rows, columns=PLAN_COLUMNS)
    plan = plan.astype({"primary_id": "string", "secondary_id": "string", "provider": "string",
                        "user_id": "string", "connection": "string", "reasons": "string",
                        "allow_unsafe": bool})
    plan["risk"] = pd.Categorical(plan["risk"], categories=RISKS)
    return plan


PLAN_REQUIRED = ["primary_id", "secondary_id", "provider", "user_id", "risk"]


def _check_plan(plan: pd.DataFrame) -> None:
    """A plan ``apply_plan`` can act on, or a ``ValueError`` saying what is wrong, before any request."""
    if not isinstance(plan, pd.DataFrame):
        raise ValueError(f"a link plan is a DataFrame (plan_links()), not {type(plan).__name__}")
    missing = [c for c in PLAN_REQUIRED if c not in plan.columns]
    if missing:
        raise ValueError(f"the plan has no {', '.join(missing)} column(s); a plan needs "
                         f"{', '.join(PLAN_REQUIRED)} (plan_links() makes one)")
    for column in ("primary_id", "secondary_id", "provider", "user_id"):
        values = plan[column]
        bad = values.isna() | (values.astype("string").str.strip() == "")
        if bad.any():
            raise ValueError(f"plan column {column} is empty on row(s) "
                             f"{', '.join(map(str, plan.index[bad.to_numpy(dtype=bool)][:5]))}")
    if "allow_unsafe" in plan.columns and not (pd.api.types.is_bool_dtype(plan["allow_unsafe"].dtype)
                                               and plan["allow_unsafe"].notna().all()):
        # "False" read back as text is truthy: only real booleans may allow a row
        raise ValueError("plan column allow_unsafe must hold True or False on every row "
                         f"(it is {plan['allow_unsafe'].dtype})")
    same = plan["primary_id"].astype("string") == plan["secondary_id"].astype("string")
    if same.any():
        raise ValueError(f"plan row(s) {', '.join(map(str, plan.index[same.to_numpy(dtype=bool)][:5]))} "
                         "link a user to itself")


def merge_metadata(primary: Mapping[str, Any] | None, secondary: Mapping[str, Any] | None,
                   ) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Merge a secondary's ``user_metadata`` into the primary's before a link (Auth0 drops it).

    The rule: the primary's keys win; keys only the secondary has are added; when both hold a
    dict under one key, the two dicts are merged one level deep by the same rule. Returns
    ``(merged, patch, conflicts)``: the result, the top-level keys to send in a PATCH (Auth0
    replaces each top-level key it is sent), and the keys where the secondary's value was dropped.
    """
    merged = dict(primary or {})
    patch: dict[str, Any] = {}
    conflicts: list[str] = []
    for key, value in (secondary or {}).items():
        if key not in merged:
            merged[key] = patch[key] = value
        elif isinstance(merged[key], dict) and isinstance(value, dict):
            inner = {**value, **merged[key]}
            conflicts += [f"{key}.{k}" for k in value if k in merged[key] and merged[key][k] != value[k]]
            if inner != merged[key]:
                merged[key] = patch[key] = inner
        elif merged[key] != value:
            conflicts.append(key)
    return merged, patch, conflicts


# -- the journal ---------------------------------------------------------------------------------

_JOURNAL_KEYS = ("event", "primary_id", "secondary_id", "provider", "user_id")


def _after_last_newline(fd: int, size: int, block: int = 1 << 16) -> int:
    """The offset just past the file's last newline (0 if none), read backwards a block at a time."""
    end = size
    while end > 0:
        start = max(0, end - block)
        found = os.pread(fd, end - start, start).rfind(b"\n")
        if found >= 0:
            return start + found + 1
        end = start
    return 0


class Journal:
    """A JSON-lines file of what ``apply_plan`` did, one record per event, flushed and synced each.

    Records: ``{"event": "started"|"done"|"failed"|"undone", "primary_id", "secondary_id",
    "provider", "user_id", ...}``; "started" holds the secondary's full profile and the primary's
    ``user_metadata`` as they were before the link, so ``undo`` can restore them.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def read(self) -> list[dict[str, Any]]:
        """Every record, in order. A last line without its newline is an event cut short by a
        kill (never acted on: each request follows a complete line) and is left out; any other
        line that is not a record is a ``ValueError`` naming it, before anything is sent."""
        if not self.path.exists():
            return []
        out = []
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    if not line.endswith("\n"):
                        continue  # cut short by a kill
                    raise ValueError(f"journal {self.path}, line {number}: not a JSON record "
                                     "(edited by hand?); nothing was done") from None
                if not isinstance(record, dict) or not all(
                        isinstance(record.get(k), str) for k in _JOURNAL_KEYS):
                    raise ValueError(f"journal {self.path}, line {number}: a record needs "
                                     f"{', '.join(_JOURNAL_KEYS)}; nothing was done")
                out.append(record)
        return out

    def write(self, record: Mapping[str, Any]) -> None:
        line = json.dumps({"at": datetime.now(UTC).isoformat(timespec="milliseconds"), **record},
                          separators=(",", ":"), default=str).encode("utf-8") + b"\n"
        # Created 0600 by the call that creates it: the profiles it holds are never readable by
        # others, not even between creating the file and a chmod.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            size = os.fstat(fd).st_size
            end = _after_last_newline(fd, size)
            if end != size:  # a line cut short by a kill: no request followed it, drop it
                os.ftruncate(fd, end)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def state(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The last event per (primary_id, secondary_id), with the snapshot of the first "started"
        of the current attempt (a retried row keeps the profile read before anything changed)."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for record in self.read():
            entry = out.setdefault((record["primary_id"], record["secondary_id"]), {})
            if record["event"] == "started" and entry.get("event") in ("started", "failed"):
                entry["event"] = "started"
                continue
            entry.update(record)
        return out


# -- applying and undoing ------------------------------------------------------------------------


def _owns(profile: Mapping[str, Any], provider: str, user_id: str) -> bool:
    return any(i.get("provider") == provider and str(i.get("user_id")) == user_id
               for i in profile.get("identities") or ())


def _risk_now(primary: Mapping[str, Any], secondary: Mapping[str, Any]) -> str | None:
    """Why linking these two users as they are now is unsafe, or None: the rules of
    ``link_candidates`` on the live profiles, as a plan may be old or made by hand."""
    if primary.get("email_verified") is not True or secondary.get("email_verified") is not True:
        return "unverified email now"
    if normalise_email(primary.get("email")) != normalise_email(secondary.get("email")):
        return "emails differ now"
    if primary.get("blocked") or secondary.get("blocked"):
        return "blocked user now"
    return None


def apply_plan(client: ManagementClient, plan: pd.DataFrame, *, dry_run: bool = True,
               journal: str | os.PathLike[str] | None = None,
               allow_unsafe: Collection[str] = (), progress: bool = False) -> pd.DataFrame:
    """Link every row of ``plan``; with ``dry_run`` (the default) only show what would happen.

    Unsafe rows (``risk`` other than ``safe``) are refused, before any request, unless the row's
    ``allow_unsafe`` is True or its ``secondary_id`` is in ``allow_unsafe``: linking on an
    unverified email is how an account is taken over. A row marked safe is checked again on the
    users as they are now (both emails verified and equal once normalised, neither blocked) and
    refused if that no longer holds. For each row: read both users, merge the
    secondary's ``user_metadata`` into the primary's (``merge_metadata``), journal "started" with
    the secondary's full profile, PATCH the primary, link, journal "done". Run it again with the
    same journal after an interruption: rows done are skipped, and a row started but not done is
    checked on the primary's identities before anything is re-sent, so nothing is linked twice.

    Returns one row per plan row: primary_id, secondary_id, status, metadata_added, conflicts.
    """
    _check_plan(plan)
    if not dry_run:
        if journal is None:
            raise ValueError("applying a plan needs a journal path (it is what undo() reads)")
        if not Path(journal).parent.is_dir():  # found out now, not after the first row's reads
            raise FileNotFoundError(f"no directory {Path(journal).parent} for the journal")
    allowed = set(allow_unsafe)
    flags = plan["allow_unsafe"] if "allow_unsafe" in plan else pd.Series(False, index=plan.index)
    unsafe = [(r.secondary_id, r.reasons if "reasons" in plan else r.risk)
              for r, ok in zip(plan.itertuples(index=False), flags.tolist(), strict=True)
              if str(r.risk) != "safe" and not ok and r.secondary_id not in allowed]
    if unsafe and not dry_run:
        listed = "; ".join(f"{sid} ({why})" for sid, why in unsafe[:5])
        raise UnsafeLink(f"{len(unsafe)} plan row(s) are unsafe and not allowed row by row: {listed}"
                         + (" ..." if len(unsafe) > 5 else ""))
    refused = {sid for sid, _ in unsafe}
    trusted = {str(r.secondary_id) for r, ok in zip(plan.itertuples(index=False), flags.tolist(), strict=True)
               if ok or r.secondary_id in allowed}
    log = Journal(journal) if journal is not None else None
    state = log.state() if log is not None else {}
    from tqdm.auto import tqdm

    out = []
    for row in tqdm(list(plan.itertuples(index=False)), desc="links", disable=not progress):
        primary_id, secondary_id = str(row.primary_id), str(row.secondary_id)
        provider, short = str(row.provider), str(row.user_id)
        key = (primary_id, secondary_id)
        base = {"primary_id": primary_id, "secondary_id": secondary_id, "provider": provider,
                "user_id": short}
        previous = state.get(key, {})
        if previous.get("event") == "done":
            out.append({**base, "status": "already done (journal)", "metadata_added": [], "conflicts": []})
            continue
        if secondary_id in refused:
            out.append({**base, "status": f"would refuse: {row.risk}", "metadata_added": [],
                        "conflicts": []})
            continue
        try:
            primary = client.get_user(primary_id)
        except NotFound:  # deleted since the audit: nothing is sent for this row
            out.append({**base, "status": "primary not found", "metadata_added": [], "conflicts": []})
            continue
        interrupted = previous.get("event") in ("started", "failed")
        if _owns(primary, provider, short):  # linked already (by us before a crash, or by anyone)
            if log is not None and not dry_run and interrupted:
                log.write({**base, "event": "done", "recovered": True})
            out.append({**base, "status": "already linked", "metadata_added": [], "conflicts": []})
            continue
        try:
            secondary = client.get_user(secondary_id)
        except NotFound:
            out.append({**base, "status": "secondary not found", "metadata_added": [], "conflicts": []})
            continue
        now = None if secondary_id in trusted else _risk_now(primary, secondary)
        if now is not None:  # the plan said safe, the tenant no longer does (or the plan was made by hand)
            out.append({**base, "status": f"{'would refuse' if dry_run else 'refused'}: {now}",
                        "metadata_added": [], "conflicts": []})
            continue
        _, patch, conflicts = merge_metadata(primary.get("user_metadata"), secondary.get("user_metadata"))
        if dry_run:
            out.append({**base, "status": "would link", "metadata_added": sorted(patch),
                        "conflicts": conflicts})
            continue
        assert log is not None
        started = previous if interrupted else None
        before = started["primary_metadata"] if started else primary.get("user_metadata") or {}
        first_patch = started["metadata_patch"] if started else patch
        log.write({**base, "event": "started", "connection": getattr(row, "connection", None),
                   "secondary_profile": started["secondary_profile"] if started else secondary,
                   "primary_metadata": before, "metadata_patch": first_patch})
        try:
            if patch:
                client.update_user_metadata(primary_id, patch)
            client.link(primary_id, provider=provider, user_id=short)
        except (BadRequest, NotFound, AlreadyLinked) as exc:  # this row refused: go on with the next
            if first_patch:  # the link will not happen: the primary gives the merged keys back
                client.update_user_metadata(primary_id, {k: before.get(k) for k in first_patch})
            log.write({**base, "event": "failed", "error": str(exc)})
            out.append({**base, "status": f"failed: {exc}", "metadata_added": sorted(patch),
                        "conflicts": conflicts})
            continue
        except Auth0Error as exc:  # the tenant is in trouble: stop here, resume later from the journal
            log.write({**base, "event": "failed", "error": str(exc)})
            raise
        log.write({**base, "event": "done"})
        out.append({**base, "status": "linked", "metadata_added": sorted(patch), "conflicts": conflicts})
    return pd.DataFrame(out, columns=["primary_id", "secondary_id", "provider", "user_id", "status",
                                      "metadata_added", "conflicts"])


def undo(client: ManagementClient, journal: str | os.PathLike[str], *,
         progress: bool = False) -> pd.DataFrame:
    """Undo the links a journal records, newest first: unlink, then restore the secondary's
    ``user_metadata`` / ``app_metadata`` and the primary's metadata keys the merge changed.

    Resumable too: rows already "undone" are skipped, and an unlink the tenant already did counts.
    The restored secondary is a new user with the old id (Auth0 recreates it from the identity):
    its created_at, last_login and logins_count start again, as on Auth0.
    """
    from tqdm.auto import tqdm

    log = Journal(journal)
    if not log.path.exists():  # a mistyped path must not look like "nothing to undo"
        raise FileNotFoundError(f"no journal at {log.path}")
    state = log.state()
    out = []
    entries = [e for e in state.values() if e.get("event") in ("done", "started", "failed")]
    for entry in tqdm(list(reversed(entries)), desc="undo", disable=not progress):
        primary_id, secondary_id = entry["primary_id"], entry["secondary_id"]
        provider, short = entry["provider"], entry["user_id"]
        base = {"primary_id": primary_id, "secondary_id": secondary_id}
        primary = client.get_user(primary_id)
        if _owns(primary, provider, short):  # else never linked, or unlinked by a previous undo
            client.unlink(primary_id, provider, short)
        profile = entry.get("secondary_profile") or {}
        restore = {k: profile[k] for k in ("user_metadata", "app_metadata") if profile.get(k)}
        if restore:
            with contextlib.suppress(NotFound):
                client.update_user(secondary_id, restore)
        before = entry.get("primary_metadata") or {}
        patch = entry.get("metadata_patch") or {}
        undo_patch = {k: before.get(k) for k in patch}  # None removes a key the merge added
        if undo_patch:
            client.update_user_metadata(primary_id, undo_patch)
        log.write({**base, "provider": provider, "user_id": short, "event": "undone"})
        out.append({**base, "status": "undone"})
    return pd.DataFrame(out, columns=["primary_id", "secondary_id", "status"])

