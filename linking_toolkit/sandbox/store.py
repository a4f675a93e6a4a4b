"""SQLite storage of a sandbox tenant: schema, queries, transactions.

One connection per store, guarded by a lock, and every change inside ``transaction()``
(``BEGIN IMMEDIATE``): link and unlink move identities between users in one transaction, and the
primary key of ``identities`` is ``(provider, user_id)``, so no request, crash or race can leave an
identity owned by two users or by none.

Invariant kept by every writer: each user owns exactly one identity with ``position = 0`` (its
main identity) and ``users.user_id == provider || '|' || identities.user_id`` of that identity.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Store", "full_user_id", "split_user_id"]

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
        self._conn.execute("PRAGMA foreign_keys = ON")
        if path != ":memory:":
            self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
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


PROFILE_FIELDS = ("email", "email_verified", "name", "username", "given_name", "family_name",
                  "nickname", "picture")


def profile_data_of(profile: dict[str, Any]) -> dict[str, Any]:
    """The subset of a profile that Auth0 keeps as an identity's ``profileData``."""
    return {k: profile[k] for k in PROFILE_FIELDS if profile.get(k) is not None}
