"""Reading a whole tenant into an ``Audit``: paging under Auth0's 1000 cap, a users-export job
above it, a partitioned search where the plan has no export jobs, and the export file itself
(gzipped NDJSON or CSV), read by the engine straight from disk.

The partitioned search splits ``created_at`` into ranges (``created_at:[A TO B]``), each small
enough to page under the cap, and checks that they add up to the tenant's count. The client paces
itself on Auth0's rate-limit headers, so the same calls work on a real tenant.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from ..errors import Auth0Error, BadRequest, Forbidden, NotFound, TenantError
from ..management import SEARCH_CAP
from .engine import Engine, check_phone_paths, export_format, open_export
from .frames import Audit, audit_fields, audit_records
from .spark_audit import SparkAudit
from .spark_engine import read_export, spark_session

if TYPE_CHECKING:
    from ..management import ManagementClient

__all__ = [
    "METHODS",
    "IncompleteAudit",
    "audit_export_file",
    "audit_tenant",
    "export_format",
]

logger = logging.getLogger("linking_toolkit.audit")

# How audit_tenant() may read a tenant: "auto" pages under the cap, exports above it, and falls back
# to the partitioned search when the tenant refuses export jobs; the others force one path.
METHODS = ("auto", "export", "partitioned")
PAGE = 100  # users per page: Auth0's maximum
# A range holding more users than the cap is split into ranges meant to hold this many each (some
# slack: users are not spread evenly in time, and a range still too full is split again).
PARTITION_TARGET = 800


class IncompleteAudit(Auth0Error):
    """The partitioned search could not reach every user exactly once: the tenant changed while it
    was read (run the audit again), or more users share one ``created_at`` millisecond than a
    search can reach (an export job is the only way then).

    Examples
    --------
    >>> from linking_toolkit.audit.fetch import IncompleteAudit
    >>> from linking_toolkit.errors import Auth0Error
    >>> issubclass(IncompleteAudit, Auth0Error)
    True
    >>> result = audit_tenant(admin)                    # doctest: +SKIP
    """


def _first_bad_line(path: Path) -> str:
    """Where an NDJSON export stops being one: the engine says something, this names the line."""
    number = 0
    try:
        with open_export(path) as stream:
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    return f"line {number} is not JSON" + (" (the file ends inside it)"
                                                           if not line.endswith(b"\n") else "")
                if not isinstance(record, dict) or "user_id" not in record:
                    return f"line {number} is not a user record"
    except (EOFError, OSError, zlib.error):
        return f"the gzip stream is cut short after line {number}"
    return "the engine could not read it"


def audit_export_file(path: str | os.PathLike[str], *, issuer: str | None = None,
                      progress: Callable[[int], object] | None = None,
                      memory_limit: str | None = None, phone_paths: Sequence[str] = (),
                      engine: Any = "duckdb") -> Audit | SparkAudit:
    """An ``Audit`` from a users-export file: NDJSON (``format: json``) or CSV, gzipped as Auth0
    serves it or plain, read by DuckDB straight from disk, in parallel, never whole in memory.

    ``progress``, when given, is called with the number of users read. ``memory_limit`` (e.g.
    ``"2GB"``) caps the engine's memory; past it, it spills to a private temporary folder. A file
    that is not a users export is a ``ValueError`` naming the line where it goes wrong.
    ``phone_paths`` (``["user_metadata.phone"]``) name where the tenant keeps a phone besides
    ``phone_number`` (the file must hold ``user_metadata``).

    ``engine="spark"`` (or a ``SparkSession``) reads it on Spark instead, from a path or any URI
    the session can read (``s3://...``), into a :class:`~.spark_audit.SparkAudit` whose frames
    stay Spark DataFrames (``pip install 'linking_toolkit[spark]'``).

    Examples
    --------
    >>> result = audit_export_file("users.json.gz", memory_limit="2GB")   # doctest: +SKIP
    >>> link_candidates(result)
    """
    check_phone_paths(phone_paths)  # a bad path is refused before the file is read
    if not (isinstance(engine, str) and engine == "duckdb"):
        return _spark_audit(path, engine, issuer=issuer, phone_paths=phone_paths)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no export file at {path}")
    kind = export_format(path)
    try:
        with Engine(memory_limit=memory_limit, phone_paths=phone_paths) as engine:
            engine.read_ndjson(path) if kind == "json" else engine.read_csv(path)
            users, identities = engine.frames()
    except duckdb.Error as error:
        where = _first_bad_line(path) if kind == "json" else str(error).splitlines()[0]
        raise ValueError(f"{path} is not a users export: {where}") from None
    if users["user_id"].isna().any():
        raise ValueError(f"{path} is not a users export: a record has no user_id")
    if progress is not None:
        progress(len(users))
    return Audit(users=users, identities=identities, source="file", issuer=issuer)


def _spark_audit(path: str | os.PathLike[str], engine: Any, *, issuer: str | None,
                 phone_paths: Sequence[str]) -> SparkAudit:
    where = os.fspath(path)
    if "://" not in where and not Path(where).is_file():
        raise FileNotFoundError(f"no export file at {where}")
    users, identities = read_export(spark_session(engine), where, phone_paths=phone_paths)
    return SparkAudit(users=users, identities=identities, source="file", issuer=issuer)


def audit_tenant(client: ManagementClient, *, method: str = "auto", progress: bool = True,
                 export_above: int = SEARCH_CAP, poll: float = 1.0, timeout: float = 3600.0,
                 phone_paths: Sequence[str] = ()) -> Audit:
    """The whole tenant behind ``client`` (a Management client with ``read:users``) as an ``Audit``.

    ``method="auto"``: up to ``export_above`` users it pages ``GET /users`` (Auth0 pages only the
    first 1000); above, it runs a users-export job, shows its progress, downloads the gzipped
    NDJSON to a temporary file and reads it with the engine. A tenant whose plan has no export jobs
    refuses the job (403): then one line says so and it reads the tenant by a partitioned search,
    ``created_at`` ranges of at most 1000 users each, paged, checked to add up to the tenant's
    count. ``method="export"`` or ``"partitioned"`` forces that path. ``Audit.source`` says which
    path was taken: ``"paging"``, ``"export"`` or ``"partitioned"``. The client paces itself on
    Auth0's rate-limit headers, so the same call works on a real tenant. ``phone_paths``
    (``["user_metadata.phone"]``) name where the tenant keeps a phone besides ``phone_number``
    (``user_metadata`` is then read too), for ``link_candidates``' phone tier.

    Examples
    --------
    >>> admin = ManagementClient.from_client_credentials(tenant)     # doctest: +SKIP
    >>> result = audit_tenant(admin)
    >>> link_candidates(result)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, not {method!r}")
    fields = audit_fields(phone_paths)
    read = _Reading(client, fields, list(phone_paths), getattr(client.tenant, "issuer", None), progress)
    total = client.count_users()
    if method == "partitioned":
        return _audit_by_partitions(read, total)
    if method == "auto" and total <= min(export_above, SEARCH_CAP):
        return _audit_by_paging(read, total)
    try:
        job = client.create_users_export(format="json", fields=fields)
    except Auth0Error as error:
        if method == "export" or not _export_refused(error):
            raise
        # The tenant's own words (Auth0's error body carries no token); stderr shows it by default.
        logger.warning("the tenant refused the users-export job (%s: %s); reading its %d users by a "
                       "partitioned search instead", error.status_code, error.message, total)
        return _audit_by_partitions(read, total)
    return _audit_by_export(read, job, total, poll=poll, timeout=timeout)


@dataclass(frozen=True)
class _Reading:
    """What every path of one audit_tenant() call reads with: the client, the fields asked for,
    the phone paths, the tenant's issuer and whether progress is shown."""

    client: ManagementClient
    fields: list[str]
    phone_paths: list[str]
    issuer: str | None
    progress: bool


def _export_refused(error: Auth0Error) -> bool:
    """Whether an export job's refusal means "not on this tenant": a plan without them (403), or a
    tenant or proxy that does not know the route (400, 404, 501)."""
    return isinstance(error, Forbidden | BadRequest | NotFound) or error.status_code == 501


def _audit_by_paging(read: _Reading, total: int) -> Audit:
    from tqdm.auto import tqdm

    with tqdm(total=total, desc="users", unit="user", disable=not read.progress) as bar:
        def paged() -> Iterator[dict[str, Any]]:
            # A stable order across pages (the sort Auth0 documents), so no user is seen twice or missed
            for user in read.client.list_users(per_page=100, fields=read.fields, sort="created_at:1"):
                bar.update(1)
                yield user
        return audit_records(paged(), source="paging", issuer=read.issuer, phone_paths=read.phone_paths)


def _audit_by_export(read: _Reading, job: dict[str, Any], total: int, *, poll: float,
                     timeout: float) -> Audit:
    from tqdm.auto import tqdm

    client, progress = read.client, read.progress
    with tqdm(total=100, desc="export job", unit="%", disable=not progress) as bar:
        def advance(percent: int) -> None:
            bar.update(max(0, percent - bar.n))
        job = client.wait_for_job(job["id"], progress=advance, poll=poll, timeout=timeout)
    # The file holds every user's email: a private name, 0600 (mkstemp), removed when read.
    handle, name = tempfile.mkstemp(prefix="users-export-", suffix=".json.gz")
    os.close(handle)
    try:
        client.download_export(job, name)
        with tqdm(total=total, desc="users", unit="user", disable=not progress) as bar:
            result = audit_export_file(name, issuer=read.issuer, progress=bar.update,
                                       phone_paths=read.phone_paths)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)
    result.source = "export"
    return result


# -- the partitioned search: created_at ranges of at most SEARCH_CAP users each ---------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def _to_ms(stamp: Any) -> int:
    try:
        moment = datetime.fromisoformat(str(stamp))
    except ValueError:
        raise TenantError(f"GET /users: created_at {str(stamp)[:40]!r} is not a timestamp") from None
    return (moment.astimezone(UTC) - _EPOCH) // _MS


def _iso(ms: int | None) -> str:
    if ms is None:
        return "*"
    moment = _EPOCH + ms * _MS
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _range_query(low: int | None, high: int | None) -> str:
    """``created_at:[low TO high]``, both ends inclusive, at millisecond precision; None is ``*``."""
    return f"created_at:[{_iso(low)} TO {_iso(high)}]"


class _Partitions:
    """Reads every user of a tenant by ``created_at`` ranges: a range holding more than the cap is
    split into equal spans of time sized for :data:`PARTITION_TARGET` users (a bisection when it
    holds under twice that), again and again, until each can be paged; each range's first page
    also gives its count, so a range small enough costs no request of its own."""

    def __init__(self, client: ManagementClient, bar: Any, fields: list[str]) -> None:
        self.client = client
        self.bar = bar
        self.fields = fields
        self.seen: set[str] = set()
        self.counted = 0  # the sum of the ranges' own totals
        self.partitions = 0
        self.bounds: dict[int, int] = {}

    def users(self, total: int) -> Iterator[dict[str, Any]]:
        if total == 0:
            return
        # (low, high, known count): None is an open end, so a user created meanwhile at either end
        # is still inside some range (and the totals then disagree: a clear error, not a gap).
        pending: list[tuple[int | None, int | None, int | None]] = [(None, None, total)]
        while pending:
            low, high, known = pending.pop()
            if known is not None and known <= SEARCH_CAP:
                known = None  # small enough: its first page counts it again, as it is now
            count, first = known, list[dict[str, Any]]()
            if count is None:
                first, count = self._page(low, high, 0, "created_at:1")
                if count <= SEARCH_CAP:
                    yield from self._read(low, high, first, count)
                    continue
            start = self._bound(1) if low is None else low
            end = self._bound(-1) if high is None else high
            if first:  # its oldest user: the span below it holds nobody, so it is left out of the split
                start = max(start, _to_ms(first[0].get("created_at")))
            if start >= end:
                yield from self._read_tied(low, high, count, start)
                continue
            parts = min(end - start + 1, max(2, -(-count // PARTITION_TARGET)))
            edges = [start + (end - start + 1) * i // parts for i in range(parts + 1)]
            spans: list[tuple[int | None, int | None]] = [(edges[i], edges[i + 1] - 1) for i in range(parts)]
            spans[0], spans[-1] = (low, spans[0][1]), (spans[-1][0], high)
            # Oldest first: the stack pops the last pushed.
            pending.extend((a, b, None) for a, b in reversed(spans))

    def _bound(self, direction: int) -> int:
        """The oldest (1) or newest (-1) created_at of the tenant, asked once, when first needed."""
        if direction in self.bounds:
            return self.bounds[direction]
        users, _ = self.client.users_page(per_page=1, fields=["created_at"], sort=f"created_at:{direction}")
        if not users:
            raise IncompleteAudit("the tenant counted users but listed none: it changed while it was "
                                  "read; run the audit again")
        self.bounds[direction] = _to_ms(users[0].get("created_at"))
        return self.bounds[direction]

    def _page(self, low: int | None, high: int | None, page: int,
              sort: str) -> tuple[list[dict[str, Any]], int]:
        users, count = self.client.users_page(_range_query(low, high), page=page, per_page=PAGE,
                                              fields=self.fields, sort=sort)
        if count is None:
            raise TenantError("GET /users: the tenant's answer has no total (include_totals)")
        return users, count

    def _keep(self, users: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for user in users:
            user_id = user.get("user_id")
            if not isinstance(user_id, str):
                raise TenantError("GET /users: a user has no user_id")
            if user_id in self.seen:
                raise IncompleteAudit(f"user {user_id} was read twice: the tenant changed while it "
                                      "was read; run the audit again")
            self.seen.add(user_id)
            self.bar.update(1)
            yield user

    def _read(self, low: int | None, high: int | None, first: list[dict[str, Any]],
              count: int) -> Iterator[dict[str, Any]]:
        """One range of at most the cap, paged in a stable order (created_at, then Auth0's own)."""
        self._counted(count)
        got = len(first)
        yield from self._keep(first)
        page = 1
        while got < count and page * PAGE < SEARCH_CAP:
            users, _ = self._page(low, high, page, "created_at:1")
            if not users:
                break
            got += len(users)
            yield from self._keep(users)
            page += 1
        if got != count:
            raise IncompleteAudit(f"the range {_range_query(low, high)} counted {count} users but "
                                  f"listed {got}: the tenant changed while it was read; run the audit again")

    def _read_tied(self, low: int | None, high: int | None, count: int,
                   at: int) -> Iterator[dict[str, Any]]:
        """More than the cap in one millisecond (``at``): no created_at range splits them. The search
        reaches the first 1000 of each order, so up to twice the cap are read, by user_id both ways."""
        where = _range_query(low, high)
        if count > 2 * SEARCH_CAP:
            raise IncompleteAudit(f"{count} users share one created_at, {_iso(at)}: a search reaches "
                                  f"at most {2 * SEARCH_CAP} of them (the first {SEARCH_CAP} in each "
                                  "order); only a users-export job (on a plan with them) reads this "
                                  "tenant whole")
        self._counted(count)
        got = 0
        for sort in ("user_id:1", "user_id:-1"):
            page = 0
            while got < count and page * PAGE < SEARCH_CAP:
                users, _ = self._page(low, high, page, sort)
                if not users:
                    break
                fresh = [u for u in users if u.get("user_id") not in self.seen]
                got += len(fresh)
                yield from self._keep(fresh)
                page += 1
        if got != count:
            raise IncompleteAudit(f"the range {where} counted {count} users but listed {got}: the "
                                  "tenant changed while it was read; run the audit again")

    def _counted(self, count: int) -> None:
        self.counted += count
        self.partitions += 1
        self.bar.set_postfix(partitions=self.partitions, refresh=False)


def _audit_by_partitions(read: _Reading, total: int) -> Audit:
    from tqdm.auto import tqdm

    with tqdm(total=total, desc="users (partitioned search)", unit="user", disable=not read.progress) as bar:
        reader = _Partitions(read.client, bar, read.fields)

        def checked() -> Iterator[dict[str, Any]]:
            yield from reader.users(total)
            if reader.counted != total or len(reader.seen) != total:
                raise IncompleteAudit(f"the tenant counts {total} users but its {reader.partitions} "
                                      f"created_at ranges hold {reader.counted} ({len(reader.seen)} "
                                      "read): it changed while it was read; run the audit again")

        return audit_records(checked(), source="partitioned", issuer=read.issuer,
                             phone_paths=read.phone_paths)
