"""SQLite storage of a sandbox tenant: schema, queries, transactions.

One connection per store, guarded by a lock, and every change inside ``transaction()``
(``BEGIN IMMEDIATE``): link and unlink move identities between users in one transaction, and the
primary key of ``identities`` is ``(provider, user_id)``, so no request, crash or race can leave an
identity owned by two users or by none.

The few SQL texts built with f-strings (marked ``noqa: S608``) interpolate only column names and
fragments from fixed whitelists in this module; every value goes as a parameter.

Invariant kept by every writer: each user owns exactly one identity with ``position = 0`` (its
main identity) and ``users.user_id == provider || '|' || identities.user_id`` of that identity.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "LinkRefused",
    "QueryError",
    "Store",
    "UserQuery",
    "full_user_id",
    "iso",
    "now_iso",
    "parse_user_query",
    "split_user_id",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS connections (
    id        TEXT PRIMARY KEY,          -- con_...
    name      TEXT NOT NULL UNIQUE,      -- Username-Password-Authentication, google-oauth2, ...
    strategy  TEXT NOT NULL,             -- auth0, google-oauth2, facebook, github
    is_social INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS clients (
    client_id     TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    client_secret TEXT,                  -- NULL for the public (native) client
    app_type      TEXT NOT NULL,         -- native | non_interactive
    grant_types   TEXT NOT NULL,         -- JSON list
    redirect_uris TEXT NOT NULL          -- JSON list; loopback redirects match on any port
);
CREATE TABLE IF NOT EXISTS client_grants (
    client_id TEXT NOT NULL REFERENCES clients(client_id),
    audience  TEXT NOT NULL,
    scope     TEXT NOT NULL,             -- space separated
    PRIMARY KEY (client_id, audience)
);
CREATE TABLE IF NOT EXISTS users (
    user_id        TEXT PRIMARY KEY,     -- provider|id of the main identity
    email          TEXT,
    email_verified INTEGER NOT NULL DEFAULT 0,
    username       TEXT,
    name           TEXT,
    nickname       TEXT,
    given_name     TEXT,
    family_name    TEXT,
    picture        TEXT,
    created_at     TEXT NOT NULL,        -- ISO 8601, millisecond precision, Z
    updated_at     TEXT NOT NULL,
    last_login     TEXT,
    logins_count   INTEGER NOT NULL DEFAULT 0,
    blocked        INTEGER NOT NULL DEFAULT 0,
    user_metadata  TEXT NOT NULL DEFAULT '{}',
    app_metadata   TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS users_email ON users(email);
CREATE INDEX IF NOT EXISTS users_email_lower ON users(lower(email));  -- q=email:"..." ignores case
CREATE TABLE IF NOT EXISTS identities (
    provider      TEXT NOT NULL,          -- auth0, google-oauth2, facebook, github
    user_id       TEXT NOT NULL,          -- the provider's id, without the "provider|" prefix
    connection    TEXT NOT NULL,          -- connection name
    is_social     INTEGER NOT NULL,
    owner         TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,       -- 0 = the owner's main identity, then link order
    profile_data  TEXT NOT NULL DEFAULT '{}',  -- JSON: the identity's own profile (see Store.profile_of)
    password_hash TEXT,                   -- database identities only
    PRIMARY KEY (provider, user_id)
);
CREATE INDEX IF NOT EXISTS identities_owner ON identities(owner, position);
CREATE INDEX IF NOT EXISTS identities_connection ON identities(connection);
-- The people each simulated social provider knows (the "upstream" accounts of its login page).
CREATE TABLE IF NOT EXISTS upstream_accounts (
    connection     TEXT NOT NULL,
    sub            TEXT NOT NULL,
    email          TEXT,
    email_verified INTEGER NOT NULL DEFAULT 1,
    name           TEXT,
    given_name     TEXT,
    family_name    TEXT,
    picture        TEXT,
    PRIMARY KEY (connection, sub)
);
CREATE TABLE IF NOT EXISTS authorization_codes (
    code                  TEXT PRIMARY KEY,
    client_id             TEXT NOT NULL,
    redirect_uri          TEXT NOT NULL,
    scope                 TEXT NOT NULL,
    audience              TEXT,
    user_id               TEXT NOT NULL,
    nonce                 TEXT,
    code_challenge        TEXT,
    code_challenge_method TEXT,
    auth_time             INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS device_codes (
    device_code  TEXT PRIMARY KEY,
    user_code    TEXT NOT NULL UNIQUE,
    client_id    TEXT NOT NULL,
    scope        TEXT NOT NULL,
    audience     TEXT,
    nonce        TEXT,
    status       TEXT NOT NULL DEFAULT 'pending',   -- pending | approved | denied | used
    user_id      TEXT,
    auth_time    INTEGER,
    interval     INTEGER NOT NULL,
    last_poll    REAL,
    expires_at   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,          -- sha256 of the token; the token itself is never stored
    client_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    scope      TEXT NOT NULL,
    audience   TEXT,
    auth_time  INTEGER NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS jobs (
    id               TEXT PRIMARY KEY,    -- job_...
    type             TEXT NOT NULL,       -- users_export
    status           TEXT NOT NULL,       -- pending | processing | completed | failed
    format           TEXT NOT NULL,       -- json | csv
    connection_id    TEXT,
    fields           TEXT,                -- JSON list or NULL
    created_at       TEXT NOT NULL,
    percentage_done  INTEGER NOT NULL DEFAULT 0,
    time_left_seconds INTEGER,
    file_path        TEXT,
    download_token   TEXT UNIQUE,         -- the unguessable part of the download URL (a signed URL)
    error            TEXT
);
"""


def full_user_id(provider: str, user_id: str) -> str:
    return f"{provider}|{user_id}"


def split_user_id(full: str) -> tuple[str, str]:
    """``"google-oauth2|123"`` -> ``("google-oauth2", "123")``; raises ValueError without a ``|``."""
    provider, sep, rest = full.partition("|")
    if not sep or not provider or not rest:
        raise ValueError(f"not a full user id: {full!r}")
    return provider, rest


class Store:
    """A tenant's database. ``path`` is a file or ``":memory:"`` (private to this store)."""

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute("PRAGMA foreign_keys = ON")
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.executescript(SCHEMA)
        except sqlite3.Error:  # not a database (or not ours): close it rather than leave it to GC
            self._conn.close()
            raise
        self._on_close: list[Callable[[], None]] = []

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the store closes (the sandbox stops): background jobs end there."""
        self._on_close.append(callback)

    def close(self) -> None:
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:  # outside the lock: a callback may wait for a job that reads
            callback()
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing: commits when the block ends, rolls back on any exception."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read (the lock keeps writers out while the block runs)."""
        with self._lock:
            yield self._conn

    # -- settings -----------------------------------------------------------------------------

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        with self.read() as db:
            row = db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else default

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", (key, value))

    # -- connections and clients ----------------------------------------------------------------

    def connections(self) -> list[dict[str, Any]]:
        with self.read() as db:
            rows = db.execute("SELECT * FROM connections ORDER BY rowid").fetchall()
        return [dict(r) | {"is_social": bool(r["is_social"])} for r in rows]

    def connection_by_name(self, name: str) -> dict[str, Any] | None:
        with self.read() as db:
            row = db.execute("SELECT * FROM connections WHERE name = ?", (name,)).fetchone()
        return dict(row) | {"is_social": bool(row["is_social"])} if row else None

    def connection_by_id(self, con_id: str) -> dict[str, Any] | None:
        with self.read() as db:
            row = db.execute("SELECT * FROM connections WHERE id = ?", (con_id,)).fetchone()
        return dict(row) | {"is_social": bool(row["is_social"])} if row else None

    def client(self, client_id: str) -> dict[str, Any] | None:
        with self.read() as db:
            row = db.execute("SELECT * FROM clients WHERE client_id = ?", (client_id,)).fetchone()
        if row is None:
            return None
        out = dict(row)
        out["grant_types"] = json.loads(out["grant_types"])
        out["redirect_uris"] = json.loads(out["redirect_uris"])
        return out

    def client_grant(self, client_id: str, audience: str) -> list[str] | None:
        """Scopes granted to a machine-to-machine client for an API, or None if not granted."""
        with self.read() as db:
            row = db.execute(
                "SELECT scope FROM client_grants WHERE client_id = ? AND audience = ?",
                (client_id, audience),
            ).fetchone()
        return row["scope"].split() if row else None

    # -- users and identities -------------------------------------------------------------------

    def get_user_row(self, db: sqlite3.Connection, user_id: str) -> sqlite3.Row | None:
        return db.execute("SELECT * FROM users WHERE user_id = ?", (user_id,)).fetchone()

    def identities_of(self, db: sqlite3.Connection, user_id: str) -> list[sqlite3.Row]:
        return db.execute(
            "SELECT * FROM identities WHERE owner = ? ORDER BY position", (user_id,)
        ).fetchall()

    def find_identity(self, provider: str, user_id: str) -> sqlite3.Row | None:
        with self.read() as db:
            return db.execute(
                "SELECT * FROM identities WHERE provider = ? AND user_id = ?", (provider, user_id)
            ).fetchone()

    def database_identity_by_email(self, connection: str, email: str) -> sqlite3.Row | None:
        """The database identity whose profile email is ``email`` (case-insensitive, as Auth0
        stores database emails lowercased)."""
        with self.read() as db:
            return db.execute(
                "SELECT i.* FROM identities i WHERE i.connection = ? AND i.is_social = 0 "
                "AND lower(json_extract(i.profile_data, '$.email')) = lower(?)",
                (connection, email),
            ).fetchone()

    def upstream_accounts(self, connection: str) -> list[dict[str, Any]]:
        with self.read() as db:
            rows = db.execute(
                "SELECT * FROM upstream_accounts WHERE connection = ? ORDER BY rowid", (connection,)
            ).fetchall()
        return [dict(r) | {"email_verified": bool(r["email_verified"])} for r in rows]

    def insert_user(
        self,
        db: sqlite3.Connection,
        *,
        provider: str,
        user_id: str,
        connection: str,
        is_social: bool,
        profile: dict[str, Any],
        created_at: str,
        password_hash: str | None = None,
        user_metadata: dict[str, Any] | None = None,
        app_metadata: dict[str, Any] | None = None,
        last_login: str | None = None,
        logins_count: int = 0,
    ) -> str:
        """Insert a user and its main identity inside the caller's transaction; returns the full id.

        ``profile`` holds the profile claims (email, email_verified, name, nickname, given_name,
        family_name, picture, username); they become both the user's root profile and the
        identity's ``profile_data`` (which Auth0 shows once the identity is linked elsewhere).
        """
        full = full_user_id(provider, user_id)
        db.execute(
            "INSERT INTO users(user_id, email, email_verified, username, name, nickname, given_name,"
            " family_name, picture, created_at, updated_at, last_login, logins_count,"
            " user_metadata, app_metadata) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                full,
                profile.get("email"),
                int(bool(profile.get("email_verified"))),
                profile.get("username"),
                profile.get("name"),
                profile.get("nickname"),
                profile.get("given_name"),
                profile.get("family_name"),
                profile.get("picture"),
                created_at,
                created_at,
                last_login,
                logins_count,
                json.dumps(user_metadata or {}),
                json.dumps(app_metadata or {}),
            ),
        )
        db.execute(
            "INSERT INTO identities(provider, user_id, connection, is_social, owner, position,"
            " profile_data, password_hash) VALUES (?,?,?,?,?,0,?,?)",
            (provider, user_id, connection, int(is_social), full,
             json.dumps(profile_data_of(profile)), password_hash),
        )
        return full


    # -- the Management API's queries ------------------------------------------------------------

    def user_document(self, db: sqlite3.Connection, user_id: str) -> dict[str, Any] | None:
        """A user as ``GET /api/v2/users/{id}`` shows it, or None."""
        row = self.get_user_row(db, user_id)
        if row is None:
            return None
        return user_json(row, self.identities_of(db, user_id))

    def get_user(self, user_id: str) -> dict[str, Any] | None:
        with self.read() as db:
            return self.user_document(db, user_id)

    def search_users(self, query: UserQuery, *, sort: tuple[str, int] | None, offset: int,
                     limit: int) -> tuple[int, list[dict[str, Any]]]:
        """One page of users matching ``query``, and how many match in all."""
        where, params = query.sql()
        order = "u.user_id"
        if sort is not None:
            column, direction = sort
            order = f"u.{column} {'DESC' if direction < 0 else 'ASC'}, u.user_id"
        with self.read() as db:
            total = db.execute(f"SELECT count(*) FROM users u WHERE {where}", params).fetchone()[0]  # noqa: S608
            rows = db.execute(
                f"SELECT u.* FROM users u WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",  # noqa: S608
                (*params, limit, offset),
            ).fetchall()
            users = self._documents(db, rows)
        return total, users

    def users_by_email(self, email: str) -> list[dict[str, Any]]:
        """Users whose root email is exactly ``email`` (the OAS documents this search as
        case-sensitive; it is immediately consistent, unlike ``q``)."""
        with self.read() as db:
            rows = db.execute("SELECT * FROM users WHERE email = ? ORDER BY created_at, user_id",
                              (email,)).fetchall()
            return self._documents(db, rows)

    def _documents(self, db: sqlite3.Connection, rows: list[sqlite3.Row]) -> list[dict[str, Any]]:
        # One query for all identities of the page, not one per user.
        ids = [r["user_id"] for r in rows]
        owned: dict[str, list[sqlite3.Row]] = {i: [] for i in ids}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for ident in db.execute(
                f"SELECT * FROM identities WHERE owner IN ({marks}) ORDER BY owner, position", chunk  # noqa: S608
            ):
                owned[ident["owner"]].append(ident)
        return [user_json(r, owned[r["user_id"]]) for r in rows]

    def update_user(self, user_id: str, changes: dict[str, Any],
                    password_hash: str | None = None) -> dict[str, Any] | None:
        """Apply a PATCH: root attributes replaced, metadata merged one level deep (a key set to
        None is removed), as Auth0 does. Returns the new document, or None if no such user."""
        with self.transaction() as db:
            row = self.get_user_row(db, user_id)
            if row is None:
                return None
            sets: dict[str, Any] = {}
            for key in ("user_metadata", "app_metadata"):
                if key in changes:
                    merged = json.loads(row[key])
                    for k, v in (changes[key] or {}).items():
                        if v is None:
                            merged.pop(k, None)
                        else:
                            merged[k] = v
                    sets[key] = json.dumps(merged)
            for key in ("email", "username", "name", "nickname", "given_name", "family_name",
                        "picture"):
                if key in changes:
                    sets[key] = changes[key]
            for key in ("email_verified", "blocked"):
                if key in changes:
                    sets[key] = int(bool(changes[key]))
            sets["updated_at"] = now_iso()
            assignments = ", ".join(f"{k} = ?" for k in sets)
            db.execute(f"UPDATE users SET {assignments} WHERE user_id = ?", (*sets.values(), user_id))  # noqa: S608
            # The main identity's profileData follows the root profile it was made from.
            main = self.identities_of(db, user_id)[0]
            profile = json.loads(main["profile_data"])
            for key in PROFILE_FIELDS:
                if key in changes:
                    if changes[key] is None:
                        profile.pop(key, None)
                    else:
                        profile[key] = changes[key]
            db.execute("UPDATE identities SET profile_data = ? WHERE provider = ? AND user_id = ?",
                       (json.dumps(profile), main["provider"], main["user_id"]))
            if password_hash is not None:
                db.execute("UPDATE identities SET password_hash = ? WHERE provider = ? AND user_id = ?",
                           (password_hash, main["provider"], main["user_id"]))
            return self.user_document(db, user_id)

    def delete_user(self, user_id: str) -> bool:
        """Delete a user with all its identities (linked ones too, as Auth0 does)."""
        with self.transaction() as db:
            db.execute("DELETE FROM identities WHERE owner = ?", (user_id,))
            return db.execute("DELETE FROM users WHERE user_id = ?", (user_id,)).rowcount > 0

    def link(self, primary_id: str, provider: str, secondary_short_id: str) -> list[dict[str, Any]]:
        """Move the secondary user's main identity into the primary, delete the secondary user
        and its metadata; one transaction. Returns the primary's identities (link response form).

        Raises ``LinkRefused`` with a reason when the link cannot be made.
        """
        with self.transaction() as db:
            if self.get_user_row(db, primary_id) is None:
                raise LinkRefused("primary_missing")
            ident = db.execute("SELECT * FROM identities WHERE provider = ? AND user_id = ?",
                               (provider, secondary_short_id)).fetchone()
            if ident is None:
                raise LinkRefused("secondary_missing")
            if ident["owner"] == primary_id:
                raise LinkRefused("same" if ident["position"] == 0 else "already_linked")
            if ident["position"] != 0:
                raise LinkRefused("linked_elsewhere")
            secondary_id = ident["owner"]
            count = db.execute("SELECT count(*) FROM identities WHERE owner = ?",
                               (secondary_id,)).fetchone()[0]
            if count > 1:
                raise LinkRefused("secondary_has_links")
            position = db.execute("SELECT coalesce(max(position), 0) + 1 FROM identities WHERE owner = ?",
                                  (primary_id,)).fetchone()[0]
            db.execute("UPDATE identities SET owner = ?, position = ? WHERE provider = ? AND user_id = ?",
                       (primary_id, position, provider, secondary_short_id))
            db.execute("DELETE FROM users WHERE user_id = ?", (secondary_id,))
            db.execute("UPDATE users SET updated_at = ? WHERE user_id = ?", (now_iso(), primary_id))
            return [identity_json(i, with_profile=True) for i in self.identities_of(db, primary_id)]

    def unlink(self, primary_id: str, provider: str, secondary_short_id: str) -> list[dict[str, Any]]:
        """Detach a linked identity and recreate it as a standalone user (from its profileData,
        without metadata); one transaction. Returns the primary's remaining identities.

        An identity the primary does not hold changes nothing (DELETE is idempotent at Auth0).
        """
        with self.transaction() as db:
            if self.get_user_row(db, primary_id) is None:
                raise LinkRefused("primary_missing")
            ident = db.execute("SELECT * FROM identities WHERE provider = ? AND user_id = ?",
                               (provider, secondary_short_id)).fetchone()
            if ident is not None and ident["owner"] == primary_id:
                if ident["position"] == 0:
                    raise LinkRefused("main_identity")
                profile = json.loads(ident["profile_data"])
                db.execute("DELETE FROM identities WHERE provider = ? AND user_id = ?",
                           (provider, secondary_short_id))
                self.insert_user(db, provider=provider, user_id=secondary_short_id,
                                 connection=ident["connection"], is_social=bool(ident["is_social"]),
                                 profile=profile, created_at=now_iso(),
                                 password_hash=ident["password_hash"])
                db.execute("UPDATE users SET updated_at = ? WHERE user_id = ?", (now_iso(), primary_id))
            return [identity_json(i, with_profile=True) for i in self.identities_of(db, primary_id)]

    # -- export jobs -------------------------------------------------------------------------------

    def create_job(self, job: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO jobs(id, type, status, format, connection_id, fields, created_at,"
                " download_token) VALUES (?,?,?,?,?,?,?,?)",
                (job["id"], job["type"], job["status"], job["format"], job.get("connection_id"),
                 json.dumps(job["fields"]) if job.get("fields") is not None else None,
                 job["created_at"], job["download_token"]),
            )

    def update_job(self, job_id: str, **values: Any) -> None:
        with self.transaction() as db:
            assignments = ", ".join(f"{k} = ?" for k in values)
            db.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*values.values(), job_id))  # noqa: S608

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        with self.read() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return dict(row) if row else None

    def job_by_download_token(self, token: str) -> dict[str, Any] | None:
        with self.read() as db:
            row = db.execute("SELECT * FROM jobs WHERE download_token = ?", (token,)).fetchone()
        return dict(row) if row else None

    def count_users(self, connection: str | None = None) -> int:
        where, params = _connection_filter(connection)
        with self.read() as db:
            return db.execute(f"SELECT count(*) FROM users u WHERE {where}", params).fetchone()[0]  # noqa: S608

    def export_chunks(self, connection: str | None = None, chunk: int = 5000) -> Iterator[list[str]]:
        """Every user as one JSON text (Auth0's export record), in chunks of ``chunk`` users.

        SQLite builds the JSON itself; each chunk takes the lock briefly (keyset paging on
        ``user_id``), so a million-user export neither holds users in memory nor blocks the API.
        """
        where, params = _connection_filter(connection)
        last = ""
        while True:
            with self.read() as db:
                rows = db.execute(
                    f"SELECT u.user_id, {EXPORT_RECORD_SQL} FROM users u WHERE {where} AND u.user_id > ?"  # noqa: S608
                    " ORDER BY u.user_id LIMIT ?", (*params, last, chunk),
                ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [r[1] for r in rows]

PROFILE_FIELDS = ("email", "email_verified", "name", "username", "given_name", "family_name",
                  "nickname", "picture")


def profile_data_of(profile: dict[str, Any]) -> dict[str, Any]:
    """The subset of a profile that Auth0 keeps as an identity's ``profileData``."""
    return {k: profile[k] for k in PROFILE_FIELDS if profile.get(k) is not None}


def iso(moment: datetime) -> str:
    """Auth0's timestamp format: ``2023-01-26T14:51:52.123Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now_iso() -> str:
    """Now, in Auth0's timestamp format."""
    return iso(datetime.now(UTC))


class LinkRefused(Exception):
    """A link or unlink the tenant refuses; ``reason`` names why (the API words it as Auth0 does)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class QueryError(ValueError):
    """A ``q`` search the sandbox cannot run (the API answers 400 ``invalid_query_string``)."""


def identity_json(row: sqlite3.Row, *, with_profile: bool) -> dict[str, Any]:
    """An identity in Auth0's shape; ``profileData`` for linked ones (and in link responses)."""
    out: dict[str, Any] = {}
    if with_profile:
        out["profileData"] = json.loads(row["profile_data"])
    out.update({"connection": row["connection"], "user_id": row["user_id"],
                "provider": row["provider"], "isSocial": bool(row["is_social"])})
    return out


def user_json(row: sqlite3.Row, identities: list[sqlite3.Row]) -> dict[str, Any]:
    """A user in Auth0's shape: absent attributes and empty metadata are left out, as Auth0 does."""
    out: dict[str, Any] = {
        "created_at": row["created_at"],
        "email": row["email"],
        "email_verified": bool(row["email_verified"]) if row["email"] is not None else None,
        "family_name": row["family_name"],
        "given_name": row["given_name"],
        "identities": [identity_json(i, with_profile=i["position"] > 0) for i in identities],
        "name": row["name"],
        "nickname": row["nickname"],
        "picture": row["picture"],
        "updated_at": row["updated_at"],
        "user_id": row["user_id"],
        "username": row["username"],
        "last_login": row["last_login"],
        # Auth0 shows logins_count only once the user has logged in (see the recordings).
        "logins_count": row["logins_count"] or None,
    }
    out = {k: v for k, v in out.items() if v is not None}
    if row["blocked"]:
        out["blocked"] = True
    for key in ("user_metadata", "app_metadata"):
        value = json.loads(row[key])
        if value:
            out[key] = value
    return out


# -- searching (the sandbox's subset of Auth0's Lucene ``q``) -------------------------------------

_TERM = re.compile(
    r'\s*(?P<field>[A-Za-z_][\w.]*):(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^\s"()]+))\s*'
)
_IDENTITY_FIELDS = {"identities.connection": "connection", "identities.provider": "provider",
                    "identities.user_id": "user_id", "identities.isSocial": "is_social"}
_USER_FIELDS = {"email", "user_id", "name", "nickname", "given_name", "family_name", "username",
                "email_verified", "blocked"}
_METADATA_KEY = re.compile(r"^(user_metadata|app_metadata)\.([A-Za-z0-9_]+)$")


@dataclass
class UserQuery:
    """Terms ANDed together: ``(field, value)`` pairs from ``q``."""

    terms: list[tuple[str, str]] = field(default_factory=list)

    def sql(self) -> tuple[str, list[Any]]:
        clauses: list[str] = ["1"]
        params: list[Any] = []
        for name, value in self.terms:
            wildcard = value.endswith("*") and not value.endswith("\\*")
            text = value[:-1] if wildcard else value
            if name in _IDENTITY_FIELDS:
                column = _IDENTITY_FIELDS[name]
                if column == "is_social":
                    clauses.append("EXISTS (SELECT 1 FROM identities i WHERE i.owner = u.user_id"
                                   " AND i.is_social = ?)")
                    params.append(_boolean(name, text))
                else:
                    op, arg = _matcher(text, wildcard)
                    clauses.append(f"EXISTS (SELECT 1 FROM identities i WHERE i.owner = u.user_id"  # noqa: S608
                                   f" AND i.{column} {op})")
                    params.append(arg)
            elif name in ("email_verified", "blocked"):
                clauses.append(f"u.{name} = ?")
                params.append(_boolean(name, text))
            elif name == "email":
                # Auth0 stores emails lowercased, so its email search ignores case.
                op, arg = _matcher(text.lower(), wildcard)
                clauses.append(f"lower(u.email) {op}")
                params.append(arg)
            elif name in _USER_FIELDS:
                op, arg = _matcher(text, wildcard)
                clauses.append(f"u.{name} {op}")
                params.append(arg)
            elif match := _METADATA_KEY.match(name):
                clauses.append(f"json_extract(u.{match.group(1)}, ?) = ?")
                params.extend([f"$.{match.group(2)}", text])
            else:
                raise QueryError(f"field {name!r} cannot be searched")
        return " AND ".join(clauses), params


def _matcher(text: str, wildcard: bool) -> tuple[str, str]:
    if not wildcard:
        return "= ?", text
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "LIKE ? ESCAPE '\\'", escaped + "%"


def _boolean(name: str, text: str) -> int:
    if text not in ("true", "false"):
        raise QueryError(f"{name} must be true or false")
    return int(text == "true")


def parse_user_query(q: str) -> UserQuery:
    """Parse ``email:"a@b.c" AND identities.connection:"github"``; raises ``QueryError``."""
    query = UserQuery()
    rest = q.strip()
    while rest:
        match = _TERM.match(rest)
        if match is None:
            raise QueryError(f"cannot parse {rest[:40]!r}")
        value = match.group("quoted")
        value = re.sub(r"\\(.)", r"\1", value) if value is not None else match.group("bare")
        query.terms.append((match.group("field"), value))
        rest = rest[match.end():]
        if rest:
            if not rest.startswith("AND "):
                raise QueryError("only AND is supported between terms")
            rest = rest[4:].lstrip()
            if not rest:
                raise QueryError("a term must follow AND")
    return query


def _connection_filter(connection: str | None) -> tuple[str, list[Any]]:
    if connection is None:
        return "1", []
    return ("EXISTS (SELECT 1 FROM identities i WHERE i.owner = u.user_id AND i.connection = ?)",
            [connection])


# An export record's identities, main one first, as Auth0's export lists them.
_EXPORT_IDENTITIES_SQL = """(SELECT json_group_array(json_object(
        'connection', i.connection, 'provider', i.provider, 'user_id', i.user_id,
        'isSocial', json(CASE WHEN i.is_social THEN 'true' ELSE 'false' END)))
    FROM (SELECT * FROM identities WHERE owner = u.user_id ORDER BY position) i)"""

# One export record per user, built by SQLite as text: an attribute the user lacks (a NULL column)
# is left out, like Auth0's export, and the metadata go in verbatim, nested nulls included as
# GET /users/{id} shows them (json_patch('{}', ...) would strip those too, RFC 7396, and costs more).
EXPORT_RECORD_SQL = f"""'{{"user_id":' || json_quote(u.user_id)
    || CASE WHEN u.email IS NULL THEN '' ELSE ',"email":' || json_quote(u.email)
            || CASE WHEN u.email_verified THEN ',"email_verified":true' ELSE ',"email_verified":false' END
       END
    || CASE WHEN u.username IS NULL THEN '' ELSE ',"username":' || json_quote(u.username) END
    || CASE WHEN u.name IS NULL THEN '' ELSE ',"name":' || json_quote(u.name) END
    || CASE WHEN u.nickname IS NULL THEN '' ELSE ',"nickname":' || json_quote(u.nickname) END
    || CASE WHEN u.given_name IS NULL THEN '' ELSE ',"given_name":' || json_quote(u.given_name) END
    || CASE WHEN u.family_name IS NULL THEN '' ELSE ',"family_name":' || json_quote(u.family_name) END
    || CASE WHEN u.picture IS NULL THEN '' ELSE ',"picture":' || json_quote(u.picture) END
    || ',"created_at":' || json_quote(u.created_at) || ',"updated_at":' || json_quote(u.updated_at)
    || CASE WHEN u.last_login IS NULL THEN '' ELSE ',"last_login":' || json_quote(u.last_login) END
    || ',"logins_count":' || u.logins_count
    || CASE WHEN u.blocked THEN ',"blocked":true' ELSE '' END
    || ',"identities":' || {_EXPORT_IDENTITIES_SQL}
    || ',"user_metadata":' || json(u.user_metadata) || ',"app_metadata":' || json(u.app_metadata)
    || '}}'"""

# The same members as one JSON object, absent ones as null: for readers that pick fields with ``->``
# and leave nulls out themselves (jobs.py), as it is cheaper to build and to read than the text above.
EXPORT_BARE_RECORD_SQL = f"""json_object(
    'user_id', u.user_id, 'email', u.email,
    'email_verified', json(CASE WHEN u.email IS NULL THEN 'null'
                                WHEN u.email_verified THEN 'true' ELSE 'false' END),
    'username', u.username, 'name', u.name, 'nickname', u.nickname, 'given_name', u.given_name,
    'family_name', u.family_name, 'picture', u.picture, 'created_at', u.created_at,
    'updated_at', u.updated_at, 'last_login', u.last_login, 'logins_count', u.logins_count,
    'blocked', json(CASE WHEN u.blocked THEN 'true' ELSE 'null' END),
    'identities', {_EXPORT_IDENTITIES_SQL},
    'user_metadata', json(u.user_metadata), 'app_metadata', json(u.app_metadata))"""
