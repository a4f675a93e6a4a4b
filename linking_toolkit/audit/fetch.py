"""Reading a whole tenant into an ``Audit``: paging under Auth0's 1000 cap, a users-export job
above it, and the export file itself (gzipped NDJSON), read in batches with progress bars.

The client paces itself on Auth0's rate-limit headers, so the same calls work on a real tenant.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from ..management import SEARCH_CAP
from .frames import AUDIT_FIELDS, BATCH_RECORDS, Audit, audit_from_batches, audit_records, paused_gc

if TYPE_CHECKING:
    from ..management import ManagementClient

__all__ = [
    "audit_export_file",
    "audit_tenant",
    "read_ndjson_batches",
]

_Batch = TypeVar("_Batch", bound=list[Any])


def read_ndjson_batches(stream: IO[bytes], lines: int = BATCH_RECORDS,
                        block: int = 1 << 22) -> Iterator[list[dict[str, Any]]]:
    """Parsed records of a newline-delimited JSON stream, about ``lines`` at a time.

    The stream is read ``block`` bytes at a time and each batch of lines parsed with one
    ``json.loads``, so the whole text and its parsed copy are never in memory together. Blank
    lines are skipped; the last line may lack its newline.
    """
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


def _reported(batches: Iterable[_Batch], progress: Callable[[int], object] | None) -> Iterator[_Batch]:
    """The batches, telling ``progress`` each one's size once the consumer is done with it."""
    for batch in batches:
        yield batch
        if progress is not None:
            progress(len(batch))


def audit_export_file(path: str | os.PathLike[str], *, issuer: str | None = None,
                      progress: Callable[[int], object] | None = None) -> Audit:
    """An ``Audit`` from a users-export file (gzipped NDJSON, as Auth0 serves it, or plain).

    ``progress``, when given, is called with the number of users of each batch read.
    """
    path = Path(path)
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    stream: IO[bytes] = gzip.GzipFile(path, "rb") if gzipped else path.open("rb")  # type: ignore[assignment]
    with stream, paused_gc():
        return audit_from_batches(_reported(read_ndjson_batches(stream), progress),
                                  source="file", issuer=issuer)


def audit_tenant(client: ManagementClient, *, progress: bool = True, export_above: int = SEARCH_CAP,
                 poll: float = 1.0, timeout: float = 3600.0) -> Audit:
    """The whole tenant behind ``client`` (a Management client with ``read:users``) as an ``Audit``.

    Up to ``export_above`` users it pages ``GET /users`` (Auth0 pages only the first 1000); above,
    it runs a users-export job, shows its progress, downloads the gzipped NDJSON to a temporary file
    and parses it in chunks. The client paces itself on Auth0's rate-limit headers, so the same
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
