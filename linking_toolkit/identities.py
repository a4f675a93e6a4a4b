"""Pure functions on Auth0 user profiles: which identity is primary, which are linked, as a table.

Nothing here talks HTTP, so the rules can be read and tested apart from the client. A profile is
the JSON of ``GET /api/v2/users/{id}``: ``user_id`` is ``provider|id`` of the main identity, and
``identities`` lists every identity the user owns (the main one first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = [
    "FRAME_COLUMNS",
    "Identity",
    "holds_identity",
    "identities_frame",
    "identities_of",
    "is_primary",
    "linked_accounts",
    "primary_identity",
]

# The identity provider's own tokens appear in identities when the caller has read:user_idp_tokens;
# the toolkit never keeps or shows them.
_IDP_TOKEN_KEYS = frozenset({"access_token", "access_token_secret", "refresh_token", "expires_in"})

FRAME_COLUMNS: dict[str, str] = {
    "connection": "string",
    "provider": "string",
    "user_id": "string",
    "is_social": "boolean",
    "is_primary": "boolean",
    "name": "string",
    "email": "string",
    "email_verified": "boolean",
}


@dataclass(frozen=True)
class Identity:
    """One identity of a user: an account at one connection (``provider|user_id``).

    Examples
    --------
    >>> primary.identities[0]                              # doctest: +SKIP
    Identity(connection='Username-Password-Authentication', provider='auth0', user_id='...', ...)
    >>> [identity.full_id for identity in primary.identities]
    """

    provider: str
    user_id: str
    connection: str
    is_social: bool
    profile_data: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Identity:
        """From an entry of Auth0's ``identities`` array (``isSocial``, ``profileData``).

        Some providers' ids arrive as numbers; Auth0's paths and ``provider|id`` use strings.
        """
        profile = data.get("profileData")
        return cls(
            provider=str(data["provider"]),
            user_id=str(data["user_id"]),
            connection=str(data.get("connection") or ""),
            is_social=bool(data.get("isSocial", False)),
            profile_data=dict(profile) if isinstance(profile, Mapping) else None,
        )

    @property
    def full_id(self) -> str:
        """``provider|user_id``: the user id this identity has when it is a user of its own."""
        return f"{self.provider}|{self.user_id}"


def identities_of(profile: Mapping[str, Any]) -> list[Identity]:
    """The profile's identities as :class:`Identity` values, main identity first.

    Examples
    --------
    >>> from linking_toolkit.identities import identities_of
    >>> profile = {'user_id': 'auth0|1', 'identities': [
    ...     {'provider': 'auth0', 'user_id': '1', 'connection': 'Username-Password-Authentication',
    ...      'isSocial': False},
    ...     {'provider': 'google-oauth2', 'user_id': '42', 'connection': 'google-oauth2', 'isSocial': True}]}
    >>> [identity.full_id for identity in identities_of(profile)]
    ['auth0|1', 'google-oauth2|42']
    """
    return [Identity.from_api(i) for i in profile.get("identities") or []]


def is_primary(profile: Mapping[str, Any], identity: Mapping[str, Any] | Identity) -> bool:
    """Whether ``identity`` is the profile's main identity (its ``provider|user_id`` is the
    profile's ``user_id``), which can never be unlinked.

    Examples
    --------
    >>> from linking_toolkit.identities import is_primary
    >>> profile = {'user_id': 'auth0|1', 'identities': [{'provider': 'auth0', 'user_id': '1'},
    ...                                                 {'provider': 'google-oauth2', 'user_id': '42'}]}
    >>> is_primary(profile, profile['identities'][0]), is_primary(profile, profile['identities'][1])
    (True, False)
    """
    if isinstance(identity, Identity):
        full = identity.full_id
    else:
        full = f"{identity.get('provider')}|{identity.get('user_id')}"
    return full == profile.get("user_id")


def holds_identity(profile: Mapping[str, Any], provider: str, user_id: str) -> bool:
    """Whether the profile holds the identity ``provider``/``user_id`` (linked or its own): how a
    link or an unlink is known to have happened, from the tenant's answer alone.

    Examples
    --------
    >>> from linking_toolkit.identities import holds_identity
    >>> profile = {'user_id': 'auth0|1', 'identities': [{'provider': 'auth0', 'user_id': '1'},
    ...                                                 {'provider': 'google-oauth2', 'user_id': '42'}]}
    >>> holds_identity(profile, 'google-oauth2', '42'), holds_identity(profile, 'facebook', '42')
    (True, False)
    """
    return any(i.get("provider") == provider and str(i.get("user_id")) == user_id
               for i in profile.get("identities") or ())


def primary_identity(profile: Mapping[str, Any]) -> Identity | None:
    """The profile's main identity (the one whose ``provider|user_id`` is the profile's ``user_id``), or None.

    Examples
    --------
    >>> from linking_toolkit.identities import primary_identity
    >>> profile = {'user_id': 'auth0|1', 'identities': [
    ...     {'provider': 'google-oauth2', 'user_id': '42', 'connection': 'google-oauth2', 'isSocial': True},
    ...     {'provider': 'auth0', 'user_id': '1', 'connection': 'Username-Password-Authentication',
    ...      'isSocial': False}]}
    >>> primary_identity(profile).full_id
    'auth0|1'
    >>> print(primary_identity({'user_id': 'auth0|1', 'identities': []}))
    None
    """
    for identity in identities_of(profile):
        if is_primary(profile, identity):
            return identity
    return None


def _without_idp_tokens(identity: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in identity.items() if k not in _IDP_TOKEN_KEYS}


def linked_accounts(profile: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The identities linked to this user: every identity except the main one.

    The seed's Angular filter, kept as Auth0 defines it: the main identity is the one whose
    ``provider|user_id`` equals the profile's ``user_id``, not simply the first entry. Identity
    provider tokens, if the caller could read them, are left out.

    Examples
    --------
    >>> linked_accounts({"user_id": "auth0|1", "identities": [
    ...     {"provider": "auth0", "user_id": "1", "connection": "db", "isSocial": False},
    ...     {"provider": "github", "user_id": "7", "connection": "github", "isSocial": True}]})
    [{'provider': 'github', 'user_id': '7', 'connection': 'github', 'isSocial': True}]
    """
    return [_without_idp_tokens(i) for i in profile.get("identities") or [] if not is_primary(profile, i)]


def _rows(profile: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    for raw in profile.get("identities") or []:
        identity = Identity.from_api(raw)
        primary = is_primary(profile, identity)
        # The main identity's profile is the user's root profile; a linked one keeps its own.
        source: Mapping[str, Any] = profile if primary else (identity.profile_data or {})
        verified = source.get("email_verified")
        yield {
            "connection": identity.connection,
            "provider": identity.provider,
            "user_id": identity.user_id,
            "is_social": identity.is_social,
            "is_primary": primary,
            "name": source.get("name"),
            "email": source.get("email"),
            "email_verified": None if verified is None else bool(verified),
        }


def identities_frame(profile: Mapping[str, Any]) -> pd.DataFrame:
    """One row per identity of the user, main identity first, in a stable shape.

    Columns are always ``connection, provider, user_id, is_social, is_primary, name, email,
    email_verified``, with pandas' ``string`` and ``boolean`` dtypes (missing values are ``<NA>``),
    so a table built from an empty profile has the same columns as a full one.

    Examples
    --------
    >>> identities_frame(primary.profile)                # doctest: +SKIP
                             connection      provider  ...  is_primary
    0  Username-Password-Authentication         auth0  ...        True
    1                     google-oauth2  google-oauth2  ...       False
    """
    frame = pd.DataFrame(list(_rows(profile)), columns=list(FRAME_COLUMNS))
    return frame.astype(FRAME_COLUMNS)
