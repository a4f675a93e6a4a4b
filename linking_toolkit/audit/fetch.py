"""Reading a whole tenant into an ``Audit``: paging under Auth0's 1000 cap, a users-export job
above it, and the export file itself (gzipped NDJSON or CSV), read by the engine straight from disk.

The client paces itself on Auth0's rate-limit headers, so the same calls work on a real tenant.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import duckdb

from ..management import SEARCH_CAP
from .engine import Engine
from .frames import AUDIT_FIELDS, Audit, audit_records

if TYPE_CHECKING:
    from ..management import ManagementClient

__all__ = [
    "audit_export_file",
    "audit_tenant",
    "export_format",
]


def _open(path: Path) -> IO[bytes]:
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else path.open("rb")


def export_format(path: str | os.PathLike[str]) -> str:
    """``"json"`` (NDJSON lines) or ``"csv"``: what a users-export file holds, from its first byte."""
    with _open(Path(path)) as stream:
        start = stream.read(64).lstrip()
    return "json" if start[:1] in (b"{", b"") else "csv"


def _first_bad_line(path: Path) -> str:
    """Where an NDJSON export stops being one: the engine says something, this names the line."""
    number = 0
    try:
        with _open(path) as stream:
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
                      memory_limit: str | None = None) -> Audit:
    """An ``Audit`` from a users-export file: NDJSON (``format: json``) or CSV, gzipped as Auth0
    serves it or plain, read by DuckDB straight from disk, in parallel, never whole in memory.

    ``progress``, when given, is called with the number of users read. ``memory_limit`` (e.g.
    ``"2GB"``) caps the engine's memory; past it, it spills to a private temporary folder. A file
    that is not a users export is a ``ValueError`` naming the line where it goes wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no export file at {path}")
    kind = export_format(path)
    try:
        with Engine(memory_limit=memory_limit) as engine:
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


def audit_tenant(client: ManagementClient, *, progress: bool = True, export_above: int = SEARCH_CAP,
                 poll: float = 1.0, timeout: float = 3600.0) -> Audit:
    """The whole tenant behind ``client`` (a Management client with ``read:users``) as an ``Audit``.

    Up to ``export_above`` users it pages ``GET /users`` (Auth0 pages only the first 1000); above,
    it runs a users-export job, shows its progress, downloads the gzipped NDJSON to a temporary file
    and reads it with the engine. The client paces itself on Auth0's rate-limit headers, so the same
    call works on a real tenant.

    Examples
    --------
    >>> admin = ManagementClient.from_client_credentials(tenant)     # doctest: +SKIP
    >>> result = audit_tenant(admin)
    >>> link_candidates(result)
    """
    issuer = getattr(client.tenant, "issuer", None)
    total = client.count_users()
    if total <= min(export_above, SEARCH_CAP):
        return _audit_by_paging(client, total, issuer=issuer, progress=progress)
    return _audit_by_export(client, total, issuer=issuer, progress=progress, poll=poll, timeout=timeout)


def _audit_by_paging(client: ManagementClient, total: int, *, issuer: str | None,
                     progress: bool) -> Audit:
    from tqdm.auto import tqdm

    with tqdm(total=total, desc="users", unit="user", disable=not progress) as bar:
        def paged() -> Iterator[dict[str, Any]]:
            # A stable order across pages (the sort Auth0 documents), so no user is seen twice or missed
            for user in client.list_users(per_page=100, fields=AUDIT_FIELDS, sort="created_at:1"):
                bar.update(1)
                yield user
        return audit_records(paged(), source="paging", issuer=issuer)


def _audit_by_export(client: ManagementClient, total: int, *, issuer: str | None, progress: bool,
                     poll: float, timeout: float) -> Audit:
    from tqdm.auto import tqdm

    job = client.create_users_export(format="json", fields=AUDIT_FIELDS)
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
            result = audit_export_file(name, issuer=issuer, progress=bar.update)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)
    result.source = "export"
    return result
