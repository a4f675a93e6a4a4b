"""Link and unlink: an identity moves between users in one transaction each.

No request, crash or race can leave an identity owned by two users or by none: the move, the
deletion (or re-creation) of the secondary user and the primary's ``updated_at`` commit together.
"""

from __future__ import annotations

import json
from typing import Any

from .shapes import identity_json, now_iso
from .users import UserTables

__all__ = ["LinkConflict", "LinkTables"]


class LinkConflict(Exception):
    """A link or unlink the tenant refuses; ``reason`` names why (the API words it as Auth0 does).

    Reasons: ``primary_missing``, ``secondary_missing``, ``same``, ``already_linked``,
    ``linked_elsewhere``, ``secondary_has_links``, ``main_identity``.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.demo import seed_demo_tenant
    >>> store = Store(':memory:')
    >>> demo = seed_demo_tenant(store, 'https://127.0.0.1:5000/api/v2/', seed=7)
    >>> from linking_toolkit.sandbox.store import LinkConflict
    >>> ada = demo.demo_users[0]['user_id']
    >>> try:
    ...     store.link(ada, 'auth0', ada.split('|')[1])
    ... except LinkConflict as refused:
    ...     print(refused.reason)
    same
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LinkTables(UserTables):
    """Link and unlink: each moves identities between two users in one transaction.

    Examples
    --------
    >>> from linking_toolkit.sandbox.store import Store
    >>> from linking_toolkit.sandbox.seed.demo import seed_demo_tenant
    >>> store = Store(':memory:')
    >>> demo = seed_demo_tenant(store, 'https://127.0.0.1:5000/api/v2/', seed=7)
    >>> ada, grace = (user['user_id'] for user in demo.demo_users[:2])
    >>> grace_id = grace.split('|')[1]
    >>> [identity['provider'] for identity in store.link(ada, 'auth0', grace_id)]
    ['auth0', 'auth0']
    >>> [identity['provider'] for identity in store.unlink(ada, 'auth0', grace_id)]
    ['auth0']
    """
    def link(self, primary_id: str, provider: str, secondary_short_id: str) -> list[dict[str, Any]]:
        """Move the secondary user's main identity into the primary, delete the secondary user
        and its metadata; one transaction. Returns the primary's identities (link response form).

        Raises ``LinkConflict`` with a reason when the link cannot be made.
        """
        with self.transaction() as db:
            if self.get_user_row(db, primary_id) is None:
                raise LinkConflict("primary_missing")
            ident = db.execute("SELECT * FROM identities WHERE provider = ? AND user_id = ?",
                               (provider, secondary_short_id)).fetchone()
            if ident is None:
                raise LinkConflict("secondary_missing")
            if ident["owner"] == primary_id:
                raise LinkConflict("same" if ident["position"] == 0 else "already_linked")
            if ident["position"] != 0:
                raise LinkConflict("linked_elsewhere")
            secondary_id = ident["owner"]
            count = db.execute("SELECT count(*) FROM identities WHERE owner = ?",
                               (secondary_id,)).fetchone()[0]
            if count > 1:
                raise LinkConflict("secondary_has_links")
            position = db.execute("SELECT coalesce(max(position), 0) + 1 FROM identities WHERE owner = ?",
                                  (primary_id,)).fetchone()[0]
            db.execute("UPDATE identities SET owner = ?, position = ? WHERE provider = ? AND user_id = ?",
                       (primary_id, position, provider, secondary_short_id))
            db.execute("DELETE FROM users WHERE user_id = ?", (secondary_id,))
            db.execute("UPDATE users SET updated_at = ? WHERE user_id = ?", (now_iso(), primary_id))
            return [identity_json(i, with_profile=True) for i in self.identities_of(db, primary_id)]

    def unlink(self, primary_id: str, provider: str, secondary_short_id: str) -> list[dict[str, Any]]:
        """Detach a linked identity and recreate it as a standalone user from its profileData
        (``PROFILE_FIELDS``), without metadata, as Auth0 does; one transaction. Returns the
        primary's remaining identities.

        An identity the primary does not hold changes nothing (DELETE is idempotent at Auth0).
        """
        with self.transaction() as db:
            if self.get_user_row(db, primary_id) is None:
                raise LinkConflict("primary_missing")
            ident = db.execute("SELECT * FROM identities WHERE provider = ? AND user_id = ?",
                               (provider, secondary_short_id)).fetchone()
            if ident is not None and ident["owner"] == primary_id:
                if ident["position"] == 0:
                    raise LinkConflict("main_identity")
                profile = json.loads(ident["profile_data"])
                if not ident["is_social"] and "name" not in profile:
                    # A database user created without a name has its email as the root name (as
                    # ``POST /users`` makes it) but no name in profileData (the recordings).
                    profile["name"] = profile.get("email")
                db.execute("DELETE FROM identities WHERE provider = ? AND user_id = ?",
                           (provider, secondary_short_id))
                self.insert_user(db, provider=provider, user_id=secondary_short_id,
                                 connection=ident["connection"], is_social=bool(ident["is_social"]),
                                 profile=profile, created_at=now_iso(),
                                 password_hash=ident["password_hash"])
                # The identity keeps the profileData it came with, field for field.
                db.execute("UPDATE identities SET profile_data = ? WHERE provider = ? AND user_id = ?",
                           (ident["profile_data"], provider, secondary_short_id))
                db.execute("UPDATE users SET updated_at = ? WHERE user_id = ?", (now_iso(), primary_id))
            return [identity_json(i, with_profile=True) for i in self.identities_of(db, primary_id)]
