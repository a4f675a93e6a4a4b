"""Users-export jobs of the sandbox: a background thread writes a gzipped NDJSON or CSV file.

Rows stream from SQLite in chunks (see ``Store.export_chunks``; ``NdjsonFieldsInSql`` has SQLite
pick the asked fields too, with ``Store.export_picked_chunks``) straight into the gzip stream, so an
export of a million users never holds them in memory. Files live in a temporary directory of the
tenant, removed when the sandbox stops (``stop_exports`` runs when the store closes) or, at the
latest, when the interpreter exits.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import operator
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .context import ExportState, TenantContext
from .store import Store
from .store.exports import MEMBER_SQL

__all__ = [
    "AUTH0_DATES",
    "DEFAULT_CSV_FIELDS",
    "EXPORT_FORMATS",
    "CsvWriter",
    "NdjsonAll",
    "NdjsonColumns",
    "NdjsonFieldsInPython",
    "NdjsonFieldsInSql",
    "RecordWriter",
    "download_path",
    "record_writer",
    "start_export",
    "stop_exports",
]

EXPORT_FORMATS = ("json", "csv")
# What Auth0's dashboard proposes for a CSV export when no fields are given.
# The dates Auth0 itself writes (ISO 8601): a CSV export leaves them unescaped.
AUTH0_DATES = frozenset({"created_at", "updated_at", "last_login", "last_password_reset"})
DEFAULT_CSV_FIELDS = ["user_id", "email", "email_verified", "name", "nickname", "created_at",
                      "updated_at", "last_login", "logins_count", "identities[0].connection"]
CHUNK = 5000
GZIP_LEVEL = 4  # a small level: the export is bound by compression time, and the files stay small


def _exports(ctx: TenantContext) -> ExportState:
    with ctx.exports_lock:
        if ctx.exports is None:
            ctx.exports = ExportState()
            # Sandbox.stop() closes the store: the exports stop and their files go with it.
            ctx.store.on_close(lambda: stop_exports(ctx))
        return ctx.exports


def stop_exports(ctx: TenantContext) -> None:
    """Stop running exports and delete the tenant's export files. Call before the store closes.

    Examples
    --------
    >>> from linking_toolkit.sandbox.jobs import stop_exports
    >>> stop_exports(ctx)                                 # doctest: +SKIP
    """
    state = ctx.exports
    if state is None:
        return
    state.stop.set()
    for thread in list(state.threads):
        thread.join(timeout=10)
    state.remove()


def start_export(ctx: TenantContext, job: dict[str, Any], connection: str | None) -> threading.Thread:
    """Run ``job`` in a daemon thread; progress goes to the jobs table as it runs.

    Examples
    --------
    >>> from linking_toolkit.sandbox.jobs import start_export
    >>> thread = start_export(ctx, job, connection=None)   # doctest: +SKIP
    >>> thread.join()
    """
    state = _exports(ctx)
    path = os.path.join(state.directory, f"{job['id']}.{job['format']}.gz")
    thread = threading.Thread(target=_run_export, args=(ctx.store, job, connection, path, state.stop),
                              name=f"export-{job['id']}", daemon=True)
    with state.lock:
        state.threads = [t for t in state.threads if t.is_alive()] + [thread]
    thread.start()
    return thread


def download_path(ctx: TenantContext, job: dict[str, Any]) -> str | None:
    """The file of a completed job, if it is still there.

    Examples
    --------
    >>> from linking_toolkit.sandbox.jobs import download_path
    >>> download_path(ctx, job)                           # doctest: +SKIP
    """
    if job["status"] != "completed" or not job["file_path"]:
        return None
    if ctx.exports is None or not os.path.isfile(job["file_path"]):
        return None
    return job["file_path"]


class _GzipInBackground:
    """A gzip file written by a thread of its own: zlib and SQLite both release the GIL, so the
    next chunk is built while this one is compressed (an export is bound by the two together)."""

    def __init__(self, path: str) -> None:
        self._file = gzip.open(path, "wb", compresslevel=GZIP_LEVEL)
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._compress, name="export-gzip", daemon=True)
        self._thread.start()

    def _compress(self) -> None:
        while (data := self._chunks.get()) is not None:
            if self._failure is None:  # after a failure, keep taking chunks so the writer never blocks
                try:
                    self._file.write(data)
                except BaseException as exc:  # handed to the export thread in write() or close()
                    self._failure = exc

    def write(self, data: bytes) -> None:
        if self._failure is not None:
            raise self._failure
        self._chunks.put(data)

    def close(self) -> None:
        self._chunks.put(None)
        self._thread.join()
        self._file.close()
        if self._failure is not None:
            raise self._failure


def _run_export(store: Store, job: dict[str, Any], connection: str | None, path: str,
                stop: threading.Event) -> None:
    try:
        total = store.count_users(connection)
        if job.get("limit"):
            total = min(total, job["limit"])
        store.update_job(job["id"], status="processing")
        partial = path + ".part"
        out = _GzipInBackground(partial)
        try:
            _write_records(store, job, connection, out, total, stop)
        finally:
            out.close()
        os.replace(partial, path)
        store.update_job(job["id"], status="completed", percentage_done=100, time_left_seconds=0,
                         file_path=path)
    except Exception as exc:  # a failed job says so in its status; it never kills the server
        try:
            store.update_job(job["id"], status="failed", error=type(exc).__name__)
        except Exception:  # noqa: S110 - the store is already closed: the sandbox stopped
            pass


def _write_records(store: Store, job: dict[str, Any], connection: str | None, out: _GzipInBackground,
                   total: int, stop: threading.Event) -> None:
    """The job's records, chunk by chunk, with its progress in the jobs table."""
    started = time.monotonic()
    done = 0
    writer = record_writer(job)
    header = writer.header()
    if header:
        out.write(header)
    for records in writer.chunks(store, connection, CHUNK):
        if stop.is_set():
            raise InterruptedError("the sandbox stopped")
        if total - done < len(records):
            records = records[: total - done]
        out.write(writer.write(records))
        done += len(records)
        elapsed = time.monotonic() - started
        left = int(elapsed / done * (total - done)) if done else 0
        store.update_job(job["id"], percentage_done=min(99, done * 100 // max(total, 1)),
                         time_left_seconds=left)
        if done >= total:
            break


class RecordWriter:
    """A file format: its header, where its chunks of lines come from, and how they are written.

    Examples
    --------
    >>> from linking_toolkit.sandbox.jobs import NdjsonAll, RecordWriter
    >>> issubclass(NdjsonAll, RecordWriter), NdjsonAll().header()
    (True, b'')
    """

    def header(self) -> bytes:
        return b""

    def chunks(self, store: Store, connection: str | None, size: int) -> Iterator[list[str]]:
        return store.export_chunks(connection, size)

    def write(self, records: list[str]) -> bytes:
        raise NotImplementedError


class NdjsonAll(RecordWriter):
    """Records exactly as SQLite built them: one JSON object a line.

    Examples
    --------
    >>> from linking_toolkit.sandbox.jobs import NdjsonAll
    >>> NdjsonAll().write(['{"user_id": "auth0|1"}'])
    b'{"user_id": "auth0|1"}\\n'
    """

    def write(self, records: list[str]) -> bytes:
        return ("\n".join(records) + "\n").encode()


class NdjsonColumns(NdjsonAll):
    """Only the asked top-level attributes, each under its ``export_as`` name, built by SQLite
    straight from the columns (``Store.export_column_chunks``): what an audit asks for, fastest.

    Examples
    --------
    >>> from linking_toolkit.sandbox.jobs import record_writer
    >>> type(record_writer({"format": "json", "fields": [{"name": "email"}]})).__name__
    'NdjsonColumns'
    """

    def __init__(self, prefixes: list[str], names: list[str]) -> None:
        self.members = list(zip(prefixes, names, strict=True))

    def chunks(self, store: Store, connection: str | None, size: int) -> Iterator[list[str]]:
        return store.export_column_chunks(connection, self.members, size)


class NdjsonFieldsInSql(NdjsonAll):
    """Only the asked fields, each under its ``export_as`` name, picked by SQLite from the record
    (``Store.export_picked_chunks``): left out when absent or null, values copied verbatim.

    Examples
    --------
    >>> from linking_toolkit.sandbox.jobs import record_writer
    >>> type(record_writer({"format": "json", "fields": [{"name": "user_metadata.plan"}]})).__name__
    'NdjsonFieldsInSql'
    """

    def __init__(self, prefixes: list[str], paths: list[str]) -> None:
        self.members = list(zip(prefixes, paths, strict=True))

    def chunks(self, store: Store, connection: str | None, size: int) -> Iterator[list[str]]:
        return store.export_picked_chunks(connection, self.members, size)


class NdjsonFieldsInPython(RecordWriter):
    """The asked fields picked in Python: for names SQLite's JSON paths cannot address exactly.

    Examples
    --------
    >>> from linking_toolkit.sandbox.jobs import NdjsonFieldsInPython
    >>> writer = NdjsonFieldsInPython([{"name": "user_metadata.a-b", "export_as": "ab"}])
    >>> writer.write(['{"user_id": "auth0|1", "user_metadata": {"a-b": 1}}'])
    b'{"ab":1}\\n'
    """

    def __init__(self, fields: list[dict[str, str]]) -> None:
        self.fields = [(_field_getter(f["name"]), f.get("export_as") or f["name"]) for f in fields]

    def write(self, records: list[str]) -> bytes:
        lines = []
        for text in records:
            record = json.loads(text)
            picked = {alias: value for get, alias in self.fields if (value := get(record)) is not None}
            lines.append(json.dumps(picked, separators=(",", ":")))
        return ("\n".join(lines) + "\n").encode()


class CsvWriter(RecordWriter):
    """Auth0's CSV export: a header of aliases, one row a user (the dashboard's fields by default),
    strings escaped as Auth0 does against formula injection (see ``_csv_cell``).

    Examples
    --------
    >>> from linking_toolkit.sandbox.jobs import CsvWriter
    >>> CsvWriter([{"name": "email", "export_as": "Email"}, {"name": "user_id"}]).header()
    b'Email,user_id\\n'
    """

    def __init__(self, fields: list[dict[str, str]] | None) -> None:
        chosen = fields or [{"name": n} for n in DEFAULT_CSV_FIELDS]
        self.fields = [(_field_getter(f["name"]), f.get("export_as") or f["name"]) for f in chosen]
        self.dates = [f["name"] in AUTH0_DATES for f in chosen]

    def header(self) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow([alias for _, alias in self.fields])
        return buffer.getvalue().encode()

    def write(self, records: list[str]) -> bytes:
        lines = []
        for text in records:
            record = json.loads(text)
            lines.append(",".join(_csv_cell(get(record), date)
                                  for (get, _), date in zip(self.fields, self.dates, strict=True)))
        return ("\n".join(lines) + "\n").encode()


def record_writer(job: dict[str, Any]) -> RecordWriter:
    """The writer of a job's ``format`` and ``fields``: SQLite builds top-level attributes straight
    from the columns, picks nested fields when it can read them exactly as ``_field_getter`` does,
    and Python does the rest.

    Examples
    --------
    >>> from linking_toolkit.sandbox.jobs import record_writer
    >>> type(record_writer({"format": "csv"})).__name__, type(record_writer({"format": "json"})).__name__
    ('CsvWriter', 'NdjsonAll')
    """
    fields = job.get("fields")
    if job["format"] == "csv":
        return CsvWriter(fields)
    if not fields:
        return NdjsonAll()
    aliases = [f.get("export_as") or f["name"] for f in fields]
    prefixes = [f",{json.dumps(alias)}:" for alias in aliases]
    if len(set(aliases)) == len(aliases) and all(f["name"] in MEMBER_SQL for f in fields):
        return NdjsonColumns(prefixes, [f["name"] for f in fields])
    paths = [_json_path(f["name"]) for f in fields]
    # Python for what SQLite cannot read exactly like _field_getter, or a repeated alias (last one wins).
    if len(set(aliases)) < len(aliases) or None in paths:
        return NdjsonFieldsInPython(fields)
    return NdjsonFieldsInSql(prefixes, [p for p in paths if p])


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
# A key SQLite's path compares byte for byte with the stored JSON: printable ASCII, which json.dumps
# never escapes, except the quote and the backslash.
_PLAIN_KEY = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")


def _json_path(name: str) -> str | None:
    """``name``'s steps (as ``_field_getter`` parses them) as an SQLite JSON path, or None when a
    step has no exact equivalent there (a key with quotes or non-ASCII, an index past 9 digits)."""
    path = "$"
    for key, index in _STEP.findall(name):
        if key and _PLAIN_KEY.fullmatch(key):
            path += f'."{key}"'
        elif index and len(index) < 10:
            path += f"[{int(index)}]"
        else:
            return None
    return path


def _field_getter(name: str) -> Callable[[dict[str, Any]], Any]:
    """A reader of ``name`` (``email``, ``identities[0].connection``) in an export record; it
    answers None when absent. Parsed once per job, not once per record."""
    steps = [(key, int(index) if index else None) for key, index in _STEP.findall(name)]
    if len(steps) == 1 and steps[0][1] is None:
        return operator.methodcaller("get", steps[0][0])

    def get(record: dict[str, Any]) -> Any:
        value: Any = record
        for key, index in steps:
            if key and isinstance(value, dict):
                value = value.get(key)
            elif index is not None and isinstance(value, list) and index < len(value):
                value = value[index]
            else:
                return None
        return value

    return get


def _csv_cell(value: Any, date: bool) -> str:
    """One cell as Auth0 writes it (its "Bulk user exports" page, after OWASP's CSV-injection
    advice): a string gets a leading ``'`` and double quotes, its own quotes doubled; Auth0's own
    ISO 8601 dates are left as they are; objects are written as JSON text, escaped like a string."""
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    if date:
        return text
    return '"\'' + text.replace('"', '""') + '"'
