"""Auth0's JSON shapes of the store's rows, its ids and its timestamps (no SQL here, only rows in)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "PROFILE_FIELDS",
    "full_user_id",
    "identity_json",
    "iso",
    "now_iso",
    "profile_data_of",
    "split_user_id",
    "user_json",
]

# The profile an identity keeps as its ``profileData``: the OAS's ``UserProfileData`` properties
# (email, email_verified, name, username, given_name, family_name, phone_number, phone_verified) and
# the recordings' nickname and picture. Unlink recreates the secondary user from exactly these.
PROFILE_FIELDS = ("email", "email_verified", "name", "username", "given_name", "family_name",
                  "nickname", "picture", "phone_number", "phone_verified")


def full_user_id(provider: str, user_id: str) -> str:
    """``provider|user_id``: the id a user has in Auth0's answers.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import full_user_id
    >>> full_user_id('google-oauth2', '123')
    'google-oauth2|123'
    """
    return f"{provider}|{user_id}"


def split_user_id(full: str) -> tuple[str, str]:
    """``"google-oauth2|123"`` -> ``("google-oauth2", "123")``; raises ValueError without a ``|``.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import split_user_id
    >>> split_user_id('google-oauth2|123')
    ('google-oauth2', '123')
    """
    provider, sep, rest = full.partition("|")
    if not sep or not provider or not rest:
        raise ValueError(f"not a full user id: {full!r}")
    return provider, rest


def profile_data_of(profile: dict[str, Any]) -> dict[str, Any]:
    """The subset of a profile that Auth0 keeps as an identity's ``profileData``.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store.shapes import profile_data_of
    >>> profile_data_of({'email': 'ada@example.com', 'email_verified': True, 'name': 'Ada',
    ...                  'logins_count': 3})
    {'email': 'ada@example.com', 'email_verified': True, 'name': 'Ada'}
    """
    return {k: profile[k] for k in PROFILE_FIELDS if profile.get(k) is not None}


def iso(moment: datetime) -> str:
    """Auth0's timestamp format: ``2023-01-26T14:51:52.123Z``.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from linking_toolkit.sandbox.store import iso
    >>> iso(datetime(2023, 1, 26, 14, 51, 52, 123456, tzinfo=timezone.utc))
    '2023-01-26T14:51:52.123Z'
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now_iso() -> str:
    """Now, in Auth0's timestamp format.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import now_iso
    >>> now_iso()                                        # doctest: +SKIP
    '2026-12-03T07:10:00.000Z'
    >>> now_iso().endswith('Z')
    True
    """
    return iso(datetime.now(UTC))


def identity_json(row: sqlite3.Row, *, with_profile: bool) -> dict[str, Any]:
    """An identity in Auth0's shape; ``profileData`` for linked ones (and in link responses).

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.demo import seed_demo_tenant
    >>> store = Store(':memory:')
    >>> demo = seed_demo_tenant(store, 'https://127.0.0.1:5000/api/v2/', seed=7)
    >>> from linking_toolkit.sandbox.store.shapes import identity_json
    >>> with store.read() as db:
    ...     row = store.identities_of(db, demo.demo_users[0]['user_id'])[0]
    >>> sorted(identity_json(row, with_profile=False))
    ['connection', 'isSocial', 'provider', 'user_id']
    """
    out: dict[str, Any] = {}
    if with_profile:
        out["profileData"] = json.loads(row["profile_data"])
    out.update({"connection": row["connection"], "user_id": row["user_id"],
                "provider": row["provider"], "isSocial": bool(row["is_social"])})
    return out


def user_json(row: sqlite3.Row, identities: list[sqlite3.Row]) -> dict[str, Any]:
    """A user in Auth0's shape: absent attributes and empty metadata are left out, as Auth0 does.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.demo import seed_demo_tenant
    >>> store = Store(':memory:')
    >>> demo = seed_demo_tenant(store, 'https://127.0.0.1:5000/api/v2/', seed=7)
    >>> from linking_toolkit.sandbox.store.shapes import user_json
    >>> with store.read() as db:
    ...     ada = demo.demo_users[0]['user_id']
    ...     user = user_json(store.get_user_row(db, ada), store.identities_of(db, ada))
    >>> user['email'], [i['provider'] for i in user['identities']]
    ('ada@example.com', ['auth0'])
    """
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
        "phone_number": row["phone_number"],
        # Auth0 shows phone_verified with a phone number only.
        "phone_verified": bool(row["phone_verified"]) if row["phone_number"] is not None else None,
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
