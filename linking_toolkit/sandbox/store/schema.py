"""The tables of a sandbox tenant, as one SQL script run when a store opens (``CREATE TABLE IF NOT EXISTS``).

Invariant kept by every writer (all in this package): each user owns exactly one identity with
``position = 0`` (its main identity) and ``users.user_id == provider || '|' || identities.user_id``
of that identity; the primary key of ``identities`` is ``(provider, user_id)``, so an identity is
never owned by two users.
"""

import sqlite3

__all__ = ["EMAIL_INDEXES", "SCHEMA", "upgrade"]

# The indexes on the users' emails, by name (q=email:"..." ignores case). A bulk insert drops and
# builds them again (UserTables.email_indexes_deferred): one sort, not a million random inserts.
EMAIL_INDEXES = {"users_email": "users(email)", "users_email_lower": "users(lower(email))"}

_TABLES = """
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
    redirect_uris TEXT NOT NULL,         -- JSON list: Auth0's callbacks; loopback ones match any port
    allowed_logout_urls TEXT NOT NULL DEFAULT '[]',  -- JSON lists, as Auth0's client holds them
    web_origins         TEXT NOT NULL DEFAULT '[]',
    allowed_origins     TEXT NOT NULL DEFAULT '[]',
    refresh_token       TEXT,                        -- JSON object (rotation_type, ...) or NULL
    oidc_conformant     INTEGER NOT NULL DEFAULT 1,
    description         TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS client_grants (
    client_id TEXT NOT NULL REFERENCES clients(client_id),
    audience  TEXT NOT NULL,
    scope     TEXT NOT NULL,             -- space separated
    id        TEXT,                      -- cgr_...; given on upgrade to rows made before it
    PRIMARY KEY (client_id, audience)
);
-- The APIs of the tenant (Auth0's resource servers): the Management API, a system one.
CREATE TABLE IF NOT EXISTS resource_servers (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    identifier           TEXT NOT NULL UNIQUE,   -- its audience (holds the port: it moves with it)
    is_system            INTEGER NOT NULL DEFAULT 0,
    allow_offline_access INTEGER NOT NULL DEFAULT 0,
    skip_consent         INTEGER NOT NULL DEFAULT 1,  -- skip_consent_for_verifiable_first_party_clients
    token_lifetime       INTEGER NOT NULL,
    scopes               TEXT NOT NULL DEFAULT '[]'  -- JSON list of {value, description}
);
-- Which clients may log in through which connection (Auth0's enabled clients of a connection).
CREATE TABLE IF NOT EXISTS connection_clients (
    connection_id TEXT NOT NULL REFERENCES connections(id),
    client_id     TEXT NOT NULL REFERENCES clients(client_id),
    PRIMARY KEY (connection_id, client_id)
);
CREATE TABLE IF NOT EXISTS users (
    user_id        TEXT PRIMARY KEY,     -- provider|id of the main identity
    email          TEXT,
    email_verified INTEGER NOT NULL DEFAULT 0,
    username       TEXT,
    phone_number   TEXT,                 -- Auth0's root attribute, E.164 (+447700900123)
    phone_verified INTEGER NOT NULL DEFAULT 0,
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
"""
_REST = """
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
    expires_at            INTEGER NOT NULL,
    grant_id              TEXT,             -- names every token issued from the code (RFC 6749 §4.1.2)
    used_at               INTEGER           -- kept after its one use, so a replay is recognised
);
-- Grants revoked because their code was presented twice: their access tokens (jti "<grant_id>.<n>")
-- are refused by the Management API and /userinfo until they would have expired anyway.
CREATE TABLE IF NOT EXISTS revoked_grants (
    grant_id   TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS device_codes (
    device_code  TEXT PRIMARY KEY,
    user_code    TEXT NOT NULL UNIQUE,
    client_id    TEXT NOT NULL,
    scope        TEXT NOT NULL,
    audience     TEXT,
    status       TEXT NOT NULL DEFAULT 'pending',   -- pending | approved | denied
    user_id      TEXT,
    auth_time    INTEGER,
    interval     INTEGER NOT NULL,
    last_poll    REAL,
    expires_at   INTEGER NOT NULL
);
-- Rotating refresh tokens, as Auth0's: each use returns a new token of the same family and marks the
-- used one (used_at); presenting a used token again deletes its whole family (reuse detection).
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,          -- sha256 of the token; the token itself is never stored
    client_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    scope      TEXT NOT NULL,
    audience   TEXT,
    auth_time  INTEGER NOT NULL,
    family     TEXT,                      -- every token descended from one login shares it
    used_at    INTEGER,                   -- NULL while the token is the family's newest
    expires_at INTEGER                    -- the family's absolute lifetime, counted from its login
);
-- A deleted user's refresh tokens go with it, as on Auth0: that includes the secondary of a link,
-- so an account linked away, then unlinked, is not logged in again by a token of before.
CREATE TRIGGER IF NOT EXISTS refresh_tokens_of_a_deleted_user AFTER DELETE ON users BEGIN
    DELETE FROM refresh_tokens WHERE user_id = OLD.user_id;
END;
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
    download_token   TEXT UNIQUE,         -- unused: download links are now signed, and expire
    error            TEXT
);
"""

SCHEMA = "".join((_TABLES, *(f"CREATE INDEX IF NOT EXISTS {name} ON {on};\n"
                              for name, on in EMAIL_INDEXES.items()), _REST))

# Columns added since the first version of a table: a database file made before gains them on opening.
_ADDED_COLUMNS = {"refresh_tokens": ("family TEXT", "used_at INTEGER", "expires_at INTEGER"),
                  "authorization_codes": ("grant_id TEXT", "used_at INTEGER"),
                  "users": ("phone_number TEXT", "phone_verified INTEGER NOT NULL DEFAULT 0"),
                  "clients": ("allowed_logout_urls TEXT NOT NULL DEFAULT '[]'",
                              "web_origins TEXT NOT NULL DEFAULT '[]'",
                              "allowed_origins TEXT NOT NULL DEFAULT '[]'", "refresh_token TEXT",
                              "oidc_conformant INTEGER NOT NULL DEFAULT 1",
                              "description TEXT NOT NULL DEFAULT ''"),
                  "client_grants": ("id TEXT",)}


def upgrade(db: sqlite3.Connection) -> None:
    """Bring a database file made by an earlier version up to :data:`SCHEMA` (run after it).

    A refresh token issued before rotation existed becomes a family of its own; a client grant made
    before grants had ids gets one.

    Examples
    --------
    >>> import sqlite3
    >>> from linking_toolkit.sandbox.store.schema import SCHEMA, upgrade
    >>> db = sqlite3.connect(':memory:')
    >>> _ = db.executescript(SCHEMA)
    >>> upgrade(db)                                      # a file of this version: nothing to do
    """
    for table, columns in _ADDED_COLUMNS.items():
        # Table and column names come from _ADDED_COLUMNS above, never from input.
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for column in columns:
            if column.split()[0] not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    db.execute("UPDATE refresh_tokens SET family = token_hash WHERE family IS NULL")
    db.execute("CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens(family)")
    # Auth0's grant ids: cgr_ and 16 characters.
    db.execute("UPDATE client_grants SET id = 'cgr_' || lower(hex(randomblob(8))) WHERE id IS NULL")
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS client_grants_id ON client_grants(id)")
