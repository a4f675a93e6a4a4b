"""The audit's engine: DuckDB reads an export (or records) and builds the frames and the candidates.

Everything heavy runs in DuckDB's compiled, parallel, spilling code: reading the gzipped NDJSON
or CSV export, unnesting identities, normalising emails, grouping candidates. Python only turns
the results into the pandas frames the analyst gets (strings Arrow-backed, as DuckDB hands them
over) and normalises the few non-ASCII emails, so that the engine's rule is ``normalise_email``'s
to the letter.

The SQL reads one relation, ``raw``: one row per user, in Auth0's export shape.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import shutil
import tempfile
import unicodedata
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .csv_export import csv_select
from .groups import RISKS, TIERS

__all__ = [
    "PROFILE_FIELDS",
    "RAW_SCHEMA",
    "SQL_TYPES",
    "Engine",
    "candidates_frame",
    "check_phone_paths",
    "export_format",
    "normalise_email",
    "open_export",
    "system_allocator",
    "to_frame",
]

# What Python's str.strip() removes from an ASCII string: these and nothing else.
_ASCII_WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"
_PROFILE = pa.struct([("email", pa.string()), ("email_verified", pa.bool_()), ("name", pa.string())])
_IDENTITY = pa.struct([("connection", pa.string()), ("provider", pa.string()), ("user_id", pa.string()),
                       ("isSocial", pa.bool_()), ("profileData", _PROFILE)])
# The profile fields that tell people apart beyond their email (the candidate tiers read them).
PROFILE_FIELDS = ["given_name", "family_name", "nickname", "username", "phone_number"]
# Auth0's export (and GET /users) shape, as far as the audit reads it; user_metadata as JSON text.
RAW_SCHEMA = pa.schema([
    ("user_id", pa.string()), ("email", pa.string()), ("email_verified", pa.bool_()),
    ("name", pa.string()), ("created_at", pa.string()), ("last_login", pa.string()),
    ("logins_count", pa.int64()), ("blocked", pa.bool_()), ("identities", pa.list_(_IDENTITY)),
    *((name, pa.string()) for name in PROFILE_FIELDS), ("user_metadata", pa.string()),
])
SQL_TYPES = {
    "user_id": "VARCHAR", "email": "VARCHAR", "email_verified": "BOOLEAN", "name": "VARCHAR",
    "created_at": "VARCHAR", "last_login": "VARCHAR", "logins_count": "BIGINT", "blocked": "BOOLEAN",
    "identities": 'STRUCT(connection VARCHAR, provider VARCHAR, user_id VARCHAR, "isSocial" BOOLEAN, '
                  '"profileData" STRUCT(email VARCHAR, email_verified BOOLEAN, name VARCHAR))[]',
    **dict.fromkeys(PROFILE_FIELDS, "VARCHAR"), "user_metadata": "JSON",
}
# Where a tenant may keep a phone besides the root phone_number: "user_metadata.a.b" paths.
_PHONE_PATH = re.compile(r"user_metadata(\.[A-Za-z0-9_]+)+")


def normalise_email(email: str | None) -> str | None:
    """The comparison form of an email: stripped, NFC-normalised, lower-cased, nothing else
    (see :mod:`linking_toolkit.audit.frames` for why).

    Examples
    --------
    >>> from linking_toolkit.audit.engine import normalise_email
    >>> normalise_email("  Ada.Lovelace@Example.ORG ")
    'ada.lovelace@example.org'
    >>> print(normalise_email(None))
    None
    """
    if email is None:
        return None
    email = email.strip()
    if not email:
        return None
    if email.isascii():  # the common case: NFC changes nothing
        return email.lower()
    return unicodedata.normalize("NFC", email).lower()


def _normalise_arrow(emails: pa.Array) -> pa.Array:
    return pa.array([normalise_email(e) for e in emails.to_pylist()], type=pa.string())


# -- the frames' contract: each column's pandas dtype ----------------------------------------------

_KINDS = {
    "user_id": "string", "owner": "string", "email": "string", "email_raw": "string", "name": "string",
    "connection": "category", "provider": "category", "email_verified": "boolean",
    "created_at": "time", "last_login": "time", "logins_count": "Int64", "identities": "int64",
    "blocked": "bool", "is_primary": "bool", "is_social": "bool",
    "given_name": "string", "family_name": "string", "nickname": "string", "username": "string",
    "phone": "string",
}


@contextlib.contextmanager
def system_allocator() -> Iterator[None]:
    """Arrow's allocations on the C library's malloc while the audit builds its frames, the previous
    default restored after: measured here, pyarrow's default (mimalloc) made the conversion of a
    million users' rows 25 % slower and 10 % bigger, and twice as variable from run to run.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from linking_toolkit.audit.engine import system_allocator
    >>> with system_allocator():
    ...     pa.default_memory_pool().backend_name
    'system'
    """
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def _categorical(values: pa.ChunkedArray) -> pd.Categorical:
    """A categorical with pandas' own sorted categories, missing as code -1, from text or a
    dictionary-encoded column (as a saved audit holds it)."""
    if not pa.types.is_dictionary(values.type):
        values = pc.dictionary_encode(values)
    encoded = (values.unify_dictionaries() if values.num_chunks > 1 else values).combine_chunks()
    dictionary = encoded.dictionary.to_numpy(zero_copy_only=False).astype(object)
    order = np.argsort(dictionary, kind="stable")
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    codes = pc.fill_null(encoded.indices.cast(pa.int64()), -1).to_numpy()
    codes = np.where(codes >= 0, position[np.maximum(codes, 0)] if len(order) else codes, -1)
    return pd.Categorical.from_codes(codes, categories=pd.Index(dictionary[order], dtype=object))


def _column(values: pa.ChunkedArray, kind: str) -> Any:
    if kind == "string":  # Arrow-backed: no copy, no Python string per row
        return pd.StringDtype("pyarrow").__from_arrow__(values.cast(pa.large_string()))
    if kind == "category":
        return _categorical(values)
    if kind == "time":  # Auth0 keeps milliseconds
        return pd.Series(values.cast(pa.timestamp("ms", tz="UTC"), safe=False).to_pandas()).array
    if kind == "boolean":
        return pd.BooleanDtype().__from_arrow__(values)
    if kind == "Int64":
        return pd.Int64Dtype().__from_arrow__(values)
    return values.to_numpy()  # bool, int64: never null here


def to_frame(table: pa.Table) -> pd.DataFrame:
    """An engine result as the pandas frame the analyst gets, each column of its documented dtype.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from linking_toolkit.audit.engine import to_frame
    >>> frame = to_frame(pa.table({"user_id": ["auth0|1"], "connection": ["google-oauth2"]}))
    >>> str(frame["user_id"].dtype), str(frame["connection"].dtype)
    ('string', 'category')
    """
    return pd.DataFrame({name: _column(table.column(name), _KINDS[name]) for name in table.column_names})


def _lists(column: pa.ChunkedArray) -> pd.Series:
    # object columns of lists, also when empty (pandas would make an empty list column float)
    return pd.Series(column.to_pylist(), dtype=object)


def candidates_frame(table: pa.Table) -> pd.DataFrame:
    """The candidate groups of an engine (DuckDB's or Spark's) in the documented dtypes.

    Examples
    --------
    >>> from linking_toolkit.audit.engine import candidates_frame
    >>> groups = candidates_frame(connection.sql(candidates_sql()).arrow())     # doctest: +SKIP
    >>> groups.dtypes["primary_id"]                                             # doctest: +SKIP
    string[pyarrow]
    """
    def text(name: str) -> pd.api.extensions.ExtensionArray:
        return pd.StringDtype("pyarrow").__from_arrow__(table.column(name).cast(pa.large_string()))

    def times(name: str) -> pd.Series:
        return pd.Series(table.column(name).cast(pa.timestamp("ms", tz="UTC")).to_pandas()).astype(
            "datetime64[ms, UTC]")

    return pd.DataFrame({
        "tier": pd.Categorical(table.column("tier").to_numpy(zero_copy_only=False), categories=TIERS),
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
        "match_probability": table.column("match_probability").to_numpy(),
        "evidence": text("evidence"),
        "key": text("key"),
    })


def open_export(path: Path) -> IO[bytes]:
    """The export file at ``path`` opened for reading bytes, gunzipped if it is gzipped (by its
    first two bytes, not its name).

    Examples
    --------
    >>> from pathlib import Path
    >>> from linking_toolkit.audit.engine import open_export
    >>> with open_export(Path("users.json.gz")) as stream:       # doctest: +SKIP
    ...     first = stream.readline()
    """
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else path.open("rb")


def export_format(path: str | os.PathLike[str]) -> str:
    """``"json"`` (NDJSON lines) or ``"csv"``: what a users-export file holds, from its first byte.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from linking_toolkit.audit.engine import export_format
    >>> path = Path(tempfile.mkdtemp()) / "users.json"
    >>> _ = path.write_text('{"user_id": "auth0|1"}\\n')
    >>> export_format(path)
    'json'
    """
    with open_export(Path(path)) as stream:
        start = stream.read(64).lstrip()
    return "json" if start[:1] in (b"{", b"") else "csv"


# -- the engine ------------------------------------------------------------------------------------

def check_phone_paths(paths: Sequence[str]) -> list[str]:
    """``paths`` as a list, or a one-line ValueError for one that is not ``user_metadata.a[.b...]``.

    Examples
    --------
    >>> from linking_toolkit.audit.engine import check_phone_paths
    >>> check_phone_paths(("user_metadata.phone",))
    ['user_metadata.phone']
    >>> check_phone_paths(["app_metadata.phone"])
    Traceback (most recent call last):
        ...
    ValueError: a phone path is user_metadata.<key>[.<key>...] (letters, digits, _), not 'app_metadata.phone'
    """
    if isinstance(paths, str):
        raise ValueError(f"phone_paths must be a list of paths, not the string {paths!r}")
    for path in paths:
        if not isinstance(path, str) or not _PHONE_PATH.fullmatch(path):
            raise ValueError(f"a phone path is user_metadata.<key>[.<key>...] (letters, digits, _), "
                             f"not {path!r}")
    return list(paths)


def _phone_sql(paths: Sequence[str]) -> str:
    """The user's phone: the root ``phone_number``, else the first of ``paths`` that holds text."""
    found = [f"json_extract_string(user_metadata, '$.{path.split('.', 1)[1]}')" for path in paths]
    return f"nullif(trim(coalesce({', '.join(['phone_number', *found])})), '')" if found else \
        "nullif(trim(phone_number), '')"


# One pass over ``raw``, one row per identity (a user without any gets one row of NULLs): DuckDB
# streams it out in the file's order (preserve_insertion_order), with no sort, join or temporary
# table; the users are its first rows, the identities its rows that hold one.
_ROWS_SQL = """
    select user_id, normalise_email(email) as email, email as email_raw, email_verified, name,
           given_name, family_name, nickname, username, {phone} as phone,
           try_cast(created_at as timestamptz) as created_at,
           try_cast(last_login as timestamptz) as last_login,
           coalesce(logins_count, 0) as logins_count, n_identities as identities,
           coalesce(blocked, false) as blocked,
           identity.connection as connection, identity.provider as provider,
           identity.user_id as identity_user_id, coalesce(identity."isSocial", false) as is_social,
           n as position, identity."profileData" as profile
    from (select *, coalesce(len(identities), 0) as n_identities,
                 unnest(if(coalesce(len(identities), 0) > 0, identities, [null])) as identity,
                 generate_subscripts(if(coalesce(len(identities), 0) > 0, identities, [null]), 1) as n
          from raw)
"""
_USER_COLUMNS = ["user_id", "connection", "provider", "email", "email_raw", "email_verified", "name",
                 "created_at", "last_login", "logins_count", "identities", "blocked",
                 "given_name", "family_name", "nickname", "username", "phone"]


def _with_profiles(columns: dict[str, Any], profile: pa.ChunkedArray) -> None:
    """A linked identity shows its own profile when the source carries one (paging does, exports
    do not): its email (normalised here, the few there are), email_verified and name."""
    held = pc.is_valid(profile)
    if not pc.any(held).as_py():
        return
    raw = pc.struct_field(profile, "email")
    own = {"email_raw": raw, "email_verified": pc.struct_field(profile, "email_verified"),
           "name": pc.struct_field(profile, "name"),
           "email": pa.array([normalise_email(e) for e in raw.to_pylist()], type=pa.large_string())}
    for name, values in own.items():
        columns[name] = pc.if_else(held, values.cast(columns[name].type), columns[name])


def _split(rows: pa.Table) -> tuple[pa.Table, pa.Table]:
    """The users (each one's first row) and the identities (the rows that hold one) of ``rows``."""
    first = pc.equal(rows.column("position"), 1)
    users = rows.select(_USER_COLUMNS)
    users = users if pc.all(first).as_py() in (True, None) else users.filter(first)
    held = pc.is_valid(rows.column("identity_user_id"))
    holding = rows if pc.all(held).as_py() in (True, None) else rows.filter(held)
    columns = {"owner": holding.column("user_id"), "connection": holding.column("connection"),
               "provider": holding.column("provider"), "user_id": holding.column("identity_user_id"),
               "is_primary": pc.equal(holding.column("position"), 1),
               "is_social": holding.column("is_social")}
    for name in ("email", "email_raw", "email_verified", "name", "created_at", "last_login", "logins_count"):
        columns[name] = holding.column(name)
    _with_profiles(columns, holding.column("profile"))
    return users, pa.table(columns)


class Engine:
    """One DuckDB connection with the audit's functions, spilling to a private temporary folder.

    ``memory_limit`` (e.g. ``"4GB"``) caps what DuckDB holds in memory before it spills; by default
    DuckDB's own (80 % of RAM). The spill folder is made 0700 and removed with the engine.

    Examples
    --------
    >>> from linking_toolkit.audit.engine import Engine
    >>> with Engine(memory_limit="1GB") as engine:
    ...     engine.arrow("select 42 as answer").to_pylist()
    [{'answer': 42}]
    """

    def __init__(self, *, memory_limit: str | None = None, threads: int | None = None,
                 phone_paths: Sequence[str] = ()) -> None:
        self.phone_paths = check_phone_paths(phone_paths)
        self.connection = duckdb.connect()
        self._spill = tempfile.mkdtemp(prefix="linking-audit-")  # 0700: spilled rows hold emails
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._spill, ignore_errors=True)
        self.connection.execute(f"set temp_directory = '{_quoted(self._spill)}'")
        # Text as Arrow's large_string, which pandas' Arrow-backed strings hold without a copy.
        self.connection.execute("set arrow_large_buffer_size = true")
        if memory_limit:
            self.connection.execute(f"set memory_limit = '{_quoted(memory_limit)}'")
        if threads:
            self.connection.execute(f"set threads = {int(threads)}")
        self.connection.create_function("normalise_email_py", _normalise_arrow, ["VARCHAR"], "VARCHAR",
                                        type="arrow", null_handling="special")
        # normalise_email in SQL: printable ASCII with nothing to strip (nearly every email) is just
        # lowered; other ASCII (the byte and character lengths agree) is stripped as str.strip()
        # strips it (a custom trim is slow, so only there); anything else goes to Python itself.
        self.connection.execute(f"""create macro normalise_email(e) as case
            when e is null then null
            when regexp_full_match(e, '[!-~]([ -~]*[!-~])?') then lower(e)
            when strlen(e) = length(e) then nullif(lower(trim(e, '{_ASCII_WHITESPACE}')), '')
            else normalise_email_py(e) end""")

    def close(self) -> None:
        self.connection.close()
        self._cleanup()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what ``raw`` is ---------------------------------------------------------------------------

    def read_ndjson(self, path: str | os.PathLike[str]) -> None:
        """``raw`` is a users-export file of NDJSON lines (gzipped or not), read in parallel."""
        columns = ", ".join(f"'{name}': '{kind}'" for name, kind in SQL_TYPES.items())
        self.connection.execute(f"""create or replace temp view raw as select * from read_ndjson(
            '{_quoted(os.fspath(path))}', columns = {{{columns}}}, format = 'newline_delimited')""")  # noqa: S608 - a quoted path

    def read_csv(self, path: str | os.PathLike[str]) -> None:
        """``raw`` is a users-export CSV file (gzipped or not), Auth0's escaping undone (see
        :mod:`linking_toolkit.audit.csv_export`)."""
        source = (f"read_csv('{_quoted(os.fspath(path))}', header = true, all_varchar = true, "
                  "auto_detect = true)")
        header = self.connection.execute(f"describe select * from {source}").fetchall()  # noqa: S608
        select = csv_select([row[0] for row in header], SQL_TYPES)
        # Built from the header names, quoted, and a quoted path.
        self.connection.execute(f"create or replace temp view raw as select {select} from {source}")  # noqa: S608

    def use_records(self, records: Iterable[Mapping[str, Any]]) -> None:
        """``raw`` is user records (``GET /users`` pages), through the same SQL as a file."""
        rows = [_as_raw(record) for record in records]
        self.connection.register("raw", pa.Table.from_pylist(rows, schema=RAW_SCHEMA))

    # -- results -------------------------------------------------------------------------------------

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(users, identities)`` of ``raw``, which is read once."""
        with system_allocator():
            users, identities = _split(self.arrow(_ROWS_SQL.format(phone=_phone_sql(self.phone_paths))))
            return to_frame(users), to_frame(identities)

    def arrow(self, sql: str) -> pa.Table:
        """The rows of ``sql`` as an Arrow table, streamed out in batches: DuckDB never holds the
        whole result inside its memory limit."""
        return self.connection.sql(sql).to_arrow_reader(1 << 17).read_all()


def _as_raw(record: Mapping[str, Any]) -> dict[str, Any]:
    """A ``GET /users`` record in the types of ``RAW_SCHEMA`` (an identity's id may be a number)."""
    identities = record.get("identities") or []
    metadata = record.get("user_metadata")
    return {**record, "user_metadata": None if metadata is None else json.dumps(metadata),
            "identities": [{**i, "user_id": None if i.get("user_id") is None else str(i["user_id"])}
                                     for i in identities]}


def _identifier(name: str) -> str:
    return name.replace('"', '""')


def _quoted(text: str) -> str:
    return text.replace("'", "''")
