"""``link()`` and ``unlink()`` on logged-in sessions, and what they refuse before any request.

The refusals are the toolkit's own rules, checked on the sessions alone: the same account twice,
a session of another tenant, a secondary not logged in for linking, an account already linked,
an expired token or a login not made just now, the main identity. What passes goes to the primary
session's own :class:`~linking_toolkit.management.ManagementClient`, and the tenant's answer updates
``primary.profile`` in place, with no second request.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .errors import LinkRefused, SessionExpired, UnsafeLink
from .identities import Identity, is_primary
from .management import ManagementClient
from .tokens import Session

__all__ = ["MAX_LOGIN_AGE", "check_link", "check_unlink", "link", "unlink"]

# How long ago the account to link may have logged in: a person who has just logged in always meets it.
MAX_LOGIN_AGE = 600.0


def check_link(primary: Session, secondary: Session, *, max_login_age: float = MAX_LOGIN_AGE) -> None:
    """Raise why ``secondary`` may not be linked into ``primary``; return if it may.

    ``max_login_age`` (seconds) bounds how long ago the secondary's person logged in (its ID token's
    ``auth_time``): Auth0's guidance is that both accounts authenticate at the time of the link, so a
    session kept from earlier, a cached one say, is not proof that the person holds it now.

    Examples
    --------
    >>> from linking_toolkit.linking import check_link
    >>> check_link(primary, secondary)                 # doctest: +SKIP
    >>> check_link(primary, primary)                   # doctest: +SKIP
    Traceback (most recent call last):
        ...
    linking_toolkit.errors.UnsafeLink: the secondary session is the primary account itself, ...
    """
    if secondary is primary or secondary.user_id == primary.user_id:
        raise UnsafeLink("the secondary session is the primary account itself, the account you are "
                         "already logged in to: choose the other one when you log in with "
                         "purpose='linking'")
    issuer = primary.tenant.issuer
    if secondary.tenant.issuer != issuer or secondary.claims.get("iss") != issuer:
        raise UnsafeLink(f"the secondary session belongs to another tenant ({secondary.tenant.issuer}), "
                         f"not {primary.tenant.issuer}")
    if secondary.purpose != "linking":
        raise UnsafeLink("the secondary session was logged in for purpose='login'; link only a session "
                         "logged in with purpose='linking', so the two logins are never confused")
    if primary.purpose != "login":
        raise UnsafeLink("the primary session was logged in for linking; use the main account's session")
    if any(i.full_id == secondary.user_id for i in primary.identities):
        raise LinkRefused(f"{secondary.user_id} is already linked to {primary.user_id}")
    if float(secondary.claims.get("exp", 0)) <= time.time():
        raise SessionExpired("the secondary session's ID token has expired: log in to it again")
    auth_time = secondary.claims.get("auth_time")
    age = time.time() - float(auth_time) if isinstance(auth_time, int | float) else None
    if age is None or age > max_login_age:
        when = "says no login time" if age is None else f"logged in {age / 60:.0f} minutes ago"
        raise LinkRefused(f"the account to link {when}, and a link needs a login made just now (within "
                          f"{max_login_age / 60:g} minutes): log in to it again with purpose='linking'")


def check_unlink(primary: Session, identity: Identity) -> None:
    """Raise if ``identity`` is ``primary``'s main identity (Auth0 would answer "Main identity
    cannot be removed.").

    Examples
    --------
    >>> from linking_toolkit.linking import check_unlink
    >>> check_unlink(primary, primary.identities[1])     # doctest: +SKIP
    >>> check_unlink(primary, primary.identities[0])     # doctest: +SKIP
    Traceback (most recent call last):
        ...
    linking_toolkit.errors.LinkRefused: the main identity cannot be unlinked; unlink the other identities ...
    """
    if identity.full_id == primary.user_id or is_primary(primary.profile, identity):
        raise LinkRefused("the main identity cannot be unlinked; unlink the other identities instead")


def link(primary: Session, secondary: Session, *, max_login_age: float = MAX_LOGIN_AGE) -> list[Identity]:
    """Link the ``secondary`` account into ``primary`` and return the primary's identities.

    Sends ``POST /api/v2/users/{primary}/identities`` with the primary's access token as bearer and
    ``{"link_with": <secondary ID token>}`` (Auth0 no longer accepts an ID token as bearer). Both
    accounts must have logged in; the secondary with ``purpose="linking"``. Refused before any
    request: the same account twice, a session of another tenant, a ``purpose="login"`` secondary,
    a secondary whose login is older than ``max_login_age`` seconds (10 minutes by default).
    The 201 answer updates ``primary.profile`` in place; no second request.

    Examples
    --------
    >>> primary = login(tenant)                          # doctest: +SKIP
    >>> secondary = login(tenant, purpose="linking", connection="google-oauth2")
    >>> link(primary, secondary)                       # the primary's identities, now with Google's
    """
    check_link(primary, secondary, max_login_age=max_login_age)
    identities = ManagementClient.for_session(primary).link(primary.user_id, link_with=secondary.id_token)
    primary.profile["identities"] = identities
    return [Identity.from_api(i) for i in identities]


def unlink(primary: Session, identity: Identity | Mapping[str, Any]) -> list[Identity]:
    """Unlink ``identity`` from ``primary`` and return the identities that remain.

    The unlinked account becomes a user of its own again. The main identity is refused before any
    request. The 200 answer updates ``primary.profile`` in place.

    Examples
    --------
    >>> google = next(i for i in primary.identities if i.connection == "google-oauth2")  # doctest: +SKIP
    >>> unlink(primary, google)                        # the identities left; Google is a user again
    """
    if not isinstance(identity, Identity):
        identity = Identity.from_api(identity)
    check_unlink(primary, identity)
    identities = ManagementClient.for_session(primary).unlink(primary.user_id, identity.provider,
                                                              identity.user_id)
    primary.profile["identities"] = identities
    return [Identity.from_api(i) for i in identities]
