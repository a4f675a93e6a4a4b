"""Users and their identities: insert, read, search, update, delete, and a login's count.

The SQL texts built with f-strings (marked ``noqa: S608``) interpolate only column names from fixed
lists of this package; every value goes as a parameter.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .database import Database, as_dict
from .query import UserQuery
from .schema import EMAIL_INDEXES
from .shapes import PROFILE_FIELDS, full_user_id, now_iso, profile_data_of, user_json

__all__ = ["SYNTHETIC_IDENTITY_COLUMNS", "SYNTHETIC_USER_COLUMNS", "UserExists", "UserTables"]

# The columns of the rows ``insert_user_rows`` takes, in order.
SYNTHETIC_USER_COLUMNS = ("user_id", "email", "email_verified", "username", "phone_number",
                          "phone_verified", "name", "nickname", "given_name", "family_name", "picture",
                          "created_at", "updated_at", "last_login", "logins_count", "user_metadata")
SYNTHETIC_IDENTITY_COLUMNS = ("provider", "user_id", "connection", "is_social", "owner", "position",
                              "profile_data")
# Root attributes a PATCH replaces as they come, and those it stores as 0/1.
PATCHABLE_TEXT = ("email", "username", "name", "nickname", "given_name", "family_name", "picture")
PATCHABLE_FLAGS = ("email_verified", "blocked")


class UserExists(Exception):
    """``create_database_user`` found the id, or the email on that connection, already taken.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.demo import seed_demo_tenant
    >>> store = Store(':memory:')
    >>> demo = seed_demo_tenant(store, 'https://127.0.0.1:5000/api/v2/', seed=7)
    >>> from linking_toolkit.sandbox.store import UserExists
    >>> from linking_toolkit.sandbox.passwords import hash_password
    >>> try:
    ...     store.create_database_user(provider='auth0', user_id='x1',
    ...         connection='Username-Password-Authentication',
    ...         profile={'email': 'ada@example.com'}, password_hash=hash_password('pw-1'), name_given=False)
    ... except UserExists as refused:
    ...     print(type(refused).__name__)
    UserExists
    """


def _marks(columns: tuple[str, ...]) -> str:
    return ",".join("?" * len(columns))


class UserTables(Database):
    """Users and identities. A method taking ``db`` runs inside the caller's transaction or read.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.demo import seed_demo_tenant
    >>> store = Store(':memory:')
    >>> demo = seed_demo_tenant(store, 'https://127.0.0.1:5000/api/v2/', seed=7)
    >>> ada = demo.demo_users[0]['user_id']
    >>> with store.read() as db:
    ...     row = store.get_user_row(db, ada)
    ...     identities = store.identities_of(db, ada)
    >>> row['email'], [identity['provider'] for identity in identities]
    ('ada@example.com', ['auth0'])
    """

    def get_user_row(self, db: sqlite3.Connection, user_id: str) -> sqlite3.Row | None:
        return db.execute("SELECT * FROM users WHERE user_id = ?", (user_id,)).fetchone()

    def identities_of(self, db: sqlite3.Connection, user_id: str) -> list[sqlite3.Row]:
        return db.execute(
            "SELECT * FROM identities WHERE owner = ? ORDER BY position", (user_id,)
        ).fetchall()

    def user_row(self, user_id: str) -> dict[str, Any] | None:
        """A user's row (its root profile, ``blocked``, counters) as a dict, or None."""
        return as_dict(self.fetch_one("SELECT * FROM users WHERE user_id = ?", (user_id,)))

    def main_identity(self, user_id: str) -> sqlite3.Row | None:
        """The identity a user was made from (``position = 0``), or None if there is no such user."""
        return self.fetch_one("SELECT * FROM identities WHERE owner = ? AND position = 0", (user_id,))

    def find_identity(self, provider: str, user_id: str) -> sqlite3.Row | None:
        return self.fetch_one("SELECT * FROM identities WHERE provider = ? AND user_id = ?",
                              (provider, user_id))

    def database_identity_by_email(self, connection: str, email: str) -> sqlite3.Row | None:
        """The database identity whose profile email is ``email`` (case-insensitive, as Auth0
        stores database emails lowercased)."""
        with self.read() as db:
            return _database_identity(db, connection, email)

    def database_identities_of(self, connection: str, emails: list[str]) -> dict[str, sqlite3.Row]:
        """The database identities whose profile email is one of ``emails`` (lowercase), by email,
        in one pass over the connection (the login page's demo people)."""
        rows = self.fetch_all(
            "SELECT i.*, lower(json_extract(i.profile_data, '$.email')) AS email FROM identities i"
            " WHERE i.connection = ? AND i.is_social = 0"
            " AND email IN (SELECT value FROM json_each(?))",
            (connection, json.dumps(emails)))
        return {row["email"]: row for row in rows}  # an email is taken once per connection

    def database_identities(self, connection: str) -> list[dict[str, Any]]:
        """Every identity of a database connection with its profile's email, in creation order."""
        rows = self.fetch_all(
            "SELECT i.provider, i.user_id, i.owner, json_extract(i.profile_data, '$.email') AS email,"
            " json_extract(i.profile_data, '$.email_verified') AS email_verified"
            " FROM identities i WHERE i.connection = ? AND i.is_social = 0 ORDER BY i.rowid",
            (connection,),
        )
        return [dict(r) | {"email_verified": bool(r["email_verified"])} for r in rows]

    def set_password_hashes(self, hashes: dict[tuple[str, str], str]) -> None:
        """New password hashes for identities ``(provider, user_id)``, in one transaction."""
        with self.transaction() as db:
            db.executemany("UPDATE identities SET password_hash = ? WHERE provider = ? AND user_id = ?",
                           [(h, provider, user_id) for (provider, user_id), h in hashes.items()])

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

        ``profile`` holds the profile claims (``PROFILE_FIELDS``: email, names, picture, username,
        phone_number, phone_verified, ...); they become both the user's root profile and the
        identity's ``profile_data`` (which Auth0 shows once the identity is linked elsewhere).
        """
        full = full_user_id(provider, user_id)
        db.execute(
            "INSERT INTO users(user_id, email, email_verified, username, phone_number, phone_verified,"
            " name, nickname, given_name, family_name, picture, created_at, updated_at, last_login,"
            " logins_count, user_metadata, app_metadata) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (full, profile.get("email"), int(bool(profile.get("email_verified"))), profile.get("username"),
             profile.get("phone_number"), int(bool(profile.get("phone_verified"))),
             profile.get("name"), profile.get("nickname"), profile.get("given_name"),
             profile.get("family_name"), profile.get("picture"), created_at, created_at, last_login,
             logins_count, json.dumps(user_metadata or {}), json.dumps(app_metadata or {})),
        )
        db.execute(
            "INSERT INTO identities(provider, user_id, connection, is_social, owner, position,"
            " profile_data, password_hash) VALUES (?,?,?,?,?,0,?,?)",
            (provider, user_id, connection, int(is_social), full,
             json.dumps(profile_data_of(profile)), password_hash),
        )
        return full

    def insert_user_rows(self, db: sqlite3.Connection, users: list[tuple[Any, ...]],
                         identities: list[tuple[Any, ...]]) -> None:
        """Many users at once (a synthetic tenant), as rows of ``SYNTHETIC_USER_COLUMNS`` and
        ``SYNTHETIC_IDENTITY_COLUMNS``; the caller keeps the invariant (one main identity each)."""
        db.executemany(f"INSERT INTO users({', '.join(SYNTHETIC_USER_COLUMNS)})"  # noqa: S608
                       f" VALUES ({_marks(SYNTHETIC_USER_COLUMNS)})", users)
        db.executemany(f"INSERT INTO identities({', '.join(SYNTHETIC_IDENTITY_COLUMNS)})"  # noqa: S608
                       f" VALUES ({_marks(SYNTHETIC_IDENTITY_COLUMNS)})", identities)

    @contextmanager
    def email_indexes_deferred(self, db: sqlite3.Connection) -> Iterator[None]:
        """Inside the caller's transaction, the email indexes are dropped while the block runs and
        built again after it: for ``insert_user_rows`` of many users, where building them once is
        several seconds faster than a million random inserts. An exception rolls the drop back."""
        for name in EMAIL_INDEXES:  # names of this package's schema, never input
            db.execute(f"DROP INDEX IF EXISTS {name}")
        yield
        for name, on in EMAIL_INDEXES.items():
            db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")

    def identity_ids_by_provider(self) -> dict[str, set[str]]:
        """The provider ids already taken, per provider (new synthetic ids must avoid them)."""
        taken: dict[str, set[str]] = {}
        with self.read() as db:
            for row in db.execute("SELECT provider, user_id FROM identities"):
                taken.setdefault(row["provider"], set()).add(row["user_id"])
        return taken

    def create_database_user(self, *, provider: str, user_id: str, connection: str,
                             profile: dict[str, Any], password_hash: str, name_given: bool,
                             blocked: bool = False, user_metadata: dict[str, Any] | None = None,
                             app_metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """``POST /users`` on a database connection; returns the new user's document.

        Raises ``UserExists`` if the id, or the (lowercased) email on that connection, is taken.
        Without ``name_given`` the email stands in for the name, but not in profileData (recordings).
        """
        with self.transaction() as db:
            if (self.get_user_row(db, full_user_id(provider, user_id)) is not None
                    or _database_identity(db, connection, profile["email"]) is not None):
                raise UserExists(full_user_id(provider, user_id))
            full = self.insert_user(db, provider=provider, user_id=user_id, connection=connection,
                                    is_social=False, profile=profile, created_at=now_iso(),
                                    password_hash=password_hash, user_metadata=user_metadata,
                                    app_metadata=app_metadata)
            if blocked:
                db.execute("UPDATE users SET blocked = 1 WHERE user_id = ?", (full,))
            if not name_given:
                db.execute("UPDATE identities SET profile_data = json_remove(profile_data, '$.name')"
                           " WHERE owner = ?", (full,))
            document = self.user_document(db, full)
        assert document is not None
        return document

    def social_user(self, connection: str, sub: str, profile: dict[str, Any]) -> str:
        """The user who owns the identity ``sub`` of a social connection, created from ``profile``
        on first login as ``provider|sub`` (if the identity was linked into another user, that user
        is who logs in, as on Auth0). Two first logins at once make one user."""
        for _ in range(2):
            identity = self.find_identity(connection, sub)
            if identity is not None:
                return str(identity["owner"])
            try:
                with self.transaction() as db:
                    return self.insert_user(db, provider=connection, user_id=sub, connection=connection,
                                            is_social=True, profile=profile, created_at=now_iso())
            except sqlite3.IntegrityError:
                continue  # a concurrent first login created it: read it again
        return full_user_id(connection, sub)

    def record_login(self, user_id: str) -> None:
        """A login counts in the user's ``last_login`` and ``logins_count``, as on Auth0."""
        with self.transaction() as db:
            db.execute("UPDATE users SET last_login = ?, logins_count = logins_count + 1 WHERE user_id = ?",
                       (now_iso(), user_id))

    # -- the Management API's reads ----------------------------------------------------------------

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

    # -- the Management API's writes ---------------------------------------------------------------

    def update_user(self, user_id: str, changes: dict[str, Any],
                    password_hash: str | None = None) -> dict[str, Any] | None:
        """Apply a PATCH: root attributes replaced, metadata merged one level deep (a key set to
        None is removed), as Auth0 does. Returns the new document, or None if no such user."""
        with self.transaction() as db:
            row = self.get_user_row(db, user_id)
            if row is None:
                return None
            sets = _root_changes(row, changes)
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


def _database_identity(db: sqlite3.Connection, connection: str, email: str) -> sqlite3.Row | None:
    return db.execute(
        "SELECT i.* FROM identities i WHERE i.connection = ? AND i.is_social = 0 "
        "AND lower(json_extract(i.profile_data, '$.email')) = lower(?)",
        (connection, email),
    ).fetchone()


def _root_changes(row: sqlite3.Row, changes: dict[str, Any]) -> dict[str, Any]:
    """The ``users`` columns a PATCH sets: metadata merged one level deep, the rest replaced."""
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
    for key in PATCHABLE_TEXT:
        if key in changes:
            sets[key] = changes[key]
    for key in PATCHABLE_FLAGS:
        if key in changes:
            sets[key] = int(bool(changes[key]))
    sets["updated_at"] = now_iso()
    return sets
