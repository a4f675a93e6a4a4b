"""Users-export jobs: the jobs table, and every user as Auth0's export record, built by SQLite.

Records stream out in chunks with keyset paging on ``user_id``; each chunk takes the lock briefly,
so a million-user export neither holds users in memory nor blocks the API. The SQL texts built with
f-strings (marked ``noqa: S608``) interpolate only this module's fragments and column names given
by the code; every value goes as a parameter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .database import Database, as_dict
from .query import connection_filter

__all__ = ["EXPORT_BARE_RECORD_SQL", "EXPORT_RECORD_SQL", "MEMBER_SQL", "ExportTables"]

# An export record's identities, main one first, as Auth0's export lists them.
_EXPORT_IDENTITIES_SQL = """(SELECT json_group_array(json_object(
        'connection', i.connection, 'provider', i.provider, 'user_id', i.user_id,
        'isSocial', json(CASE WHEN i.is_social THEN 'true' ELSE 'false' END)))
    FROM (SELECT * FROM identities WHERE owner = u.user_id ORDER BY position) i)"""

def _optional(column: str) -> str:
    return f"CASE WHEN u.{column} IS NULL THEN NULL ELSE json_quote(u.{column}) END"


# Each top-level attribute of an export record as its JSON text, NULL when the record leaves it out
# (an attribute the user lacks, like Auth0's export), in the record's order. The metadata go in
# verbatim, nested nulls included as GET /users/{id} shows them (json_patch('{}', ...) would strip
# those too, RFC 7396, and costs more).
MEMBER_SQL: dict[str, str] = {
    "user_id": "json_quote(u.user_id)",
    "email": _optional("email"),
    "email_verified": "CASE WHEN u.email IS NULL THEN NULL WHEN u.email_verified THEN 'true' "
                      "ELSE 'false' END",
    "phone_number": _optional("phone_number"),
    "phone_verified": "CASE WHEN u.phone_number IS NULL THEN NULL WHEN u.phone_verified THEN 'true' "
                      "ELSE 'false' END",
    **{column: _optional(column) for column in ("username", "name", "nickname", "given_name", "family_name",
                                                "picture")},
    "created_at": "json_quote(u.created_at)",
    "updated_at": "json_quote(u.updated_at)",
    "last_login": _optional("last_login"),
    "logins_count": "CAST(u.logins_count AS TEXT)",
    "blocked": "CASE WHEN u.blocked THEN 'true' END",
    "identities": _EXPORT_IDENTITIES_SQL,
    "user_metadata": "json(u.user_metadata)",
    "app_metadata": "json(u.app_metadata)",
}

# One export record per user, built by SQLite as text from every member (``export_column_chunks``
# builds one from the asked members the same way).
EXPORT_RECORD_SQL = ("'{' || substr(" + " || ".join(
    f"coalesce(',{json.dumps(name)}:' || {sql}, '')" for name, sql in MEMBER_SQL.items()) + ", 2) || '}'")

# The same members as one JSON object, absent ones as null: for readers that pick fields with ``->``
# and leave nulls out themselves (``export_picked_chunks``), as it is cheaper to build and to read
# than the text above.
EXPORT_BARE_RECORD_SQL = f"""json_object(
    'user_id', u.user_id, 'email', u.email,
    'email_verified', json(CASE WHEN u.email IS NULL THEN 'null'
                                WHEN u.email_verified THEN 'true' ELSE 'false' END),
    'phone_number', u.phone_number,
    'phone_verified', json(CASE WHEN u.phone_number IS NULL THEN 'null'
                                WHEN u.phone_verified THEN 'true' ELSE 'false' END),
    'username', u.username, 'name', u.name, 'nickname', u.nickname, 'given_name', u.given_name,
    'family_name', u.family_name, 'picture', u.picture, 'created_at', u.created_at,
    'updated_at', u.updated_at, 'last_login', u.last_login, 'logins_count', u.logins_count,
    'blocked', json(CASE WHEN u.blocked THEN 'true' ELSE 'null' END),
    'identities', {_EXPORT_IDENTITIES_SQL},
    'user_metadata', json(u.user_metadata), 'app_metadata', json(u.app_metadata))"""


class ExportTables(Database):
    """Export jobs and the user rows a users-export job writes out.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.demo import seed_demo_tenant
    >>> store = Store(':memory:')
    >>> demo = seed_demo_tenant(store, 'https://127.0.0.1:5000/api/v2/', seed=7)
    >>> store.count_users()
    10
    >>> print(store.get_job('job_nothing'))
    None
    """
    def create_job(self, job: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO jobs(id, type, status, format, connection_id, fields, created_at,"
                " download_token) VALUES (?,?,?,?,?,?,?,?)",
                (job["id"], job["type"], job["status"], job["format"], job.get("connection_id"),
                 json.dumps(job["fields"]) if job.get("fields") is not None else None,
                 job["created_at"], job.get("download_token")),
            )

    def update_job(self, job_id: str, **values: Any) -> None:
        """Set columns of a job (``status``, ``percentage_done``, ``time_left_seconds``, ...)."""
        with self.transaction() as db:
            assignments = ", ".join(f"{k} = ?" for k in values)
            db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*values.values(), job_id))  # noqa: S608

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        return as_dict(self.fetch_one("SELECT * FROM jobs WHERE id = ?", (job_id,)))

    def count_users(self, connection: str | None = None) -> int:
        where, params = connection_filter(connection)
        row = self.fetch_one(f"SELECT count(*) FROM users u WHERE {where}", params)  # noqa: S608
        assert row is not None
        return int(row[0])

    def export_chunks(self, connection: str | None = None, chunk: int = 5000) -> Iterator[list[str]]:
        """Every user (of ``connection``, or all) as one JSON text, Auth0's export record, in chunks
        of ``chunk`` users."""
        where, params = connection_filter(connection)
        sql = (f"SELECT u.user_id, {EXPORT_RECORD_SQL} FROM users u WHERE {where} AND u.user_id > ?"  # noqa: S608
               " ORDER BY u.user_id LIMIT ?")
        return self._keyset_pages(sql, params, [], chunk)

    def export_column_chunks(self, connection: str | None, members: list[tuple[str, str]],
                             chunk: int = 5000) -> Iterator[list[str]]:
        """Like ``export_picked_chunks`` for top-level attributes only (``members``: ``(prefix,
        name)`` pairs, ``name`` a key of ``MEMBER_SQL``), each record built straight from the
        columns: the same text, without building the full record first and reading it back."""
        where, params = connection_filter(connection)
        pieces = " || ".join(f"coalesce(? || {MEMBER_SQL[name]}, '')" for _, name in members)
        sql = (f"SELECT u.user_id, '{{' || substr({pieces}, 2) || '}}' FROM users u"  # noqa: S608
               f" WHERE {where} AND u.user_id > ? ORDER BY u.user_id LIMIT ?")
        prefixes = [prefix for prefix, _ in members]
        return self._keyset_pages(sql, [*prefixes, *params], [], chunk)

    def export_picked_chunks(self, connection: str | None, members: list[tuple[str, str]],
                             chunk: int = 5000) -> Iterator[list[str]]:
        """Like ``export_chunks``, each record cut down to ``members``: ``(prefix, path)`` pairs where
        ``prefix`` is the text ``,"alias":`` and ``path`` an SQLite JSON path into the record.

        A member absent or null in the record is left out. Values are copied verbatim from the bare
        record (absent members as null, see ``EXPORT_BARE_RECORD_SQL``), nested nulls included.
        MATERIALIZED builds each full record once, not once a member.
        """
        where, params = connection_filter(connection)
        # nullif(..., 'null'): ``->`` answers SQL NULL when absent, the text 'null' for a JSON null.
        pieces = " || ".join(["coalesce(? || nullif(rec -> ?, 'null'), '')"] * len(members))
        picked = [value for pair in members for value in pair]
        sql = (f"WITH page AS MATERIALIZED (SELECT u.user_id, {EXPORT_BARE_RECORD_SQL} AS rec FROM users u"  # noqa: S608
               f" WHERE {where} AND u.user_id > ? ORDER BY u.user_id LIMIT ?)"
               f" SELECT user_id, '{{' || substr({pieces}, 2) || '}}' FROM page ORDER BY user_id")
        return self._keyset_pages(sql, params, picked, chunk)

    def _keyset_pages(self, sql: str, before: list[Any], after: list[Any],
                      chunk: int) -> Iterator[list[str]]:
        """Run ``sql`` (its parameters: ``before``, the last user id, the chunk size, ``after``)
        page by page; each row is ``(user_id, text)``."""
        last = ""
        while True:
            with self.read() as db:
                rows = db.execute(sql, (*before, last, chunk, *after)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [r[1] for r in rows]
