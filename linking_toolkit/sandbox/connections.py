"""The connections of the sandbox's tenants: one database connection and three simulated social ones.

The one definition of their names, for the seed, the server and the page driver alike.
"""

from __future__ import annotations

__all__ = ["CONNECTIONS", "DATABASE", "SOCIAL", "provider_of"]

DATABASE = "Username-Password-Authentication"
SOCIAL = ("google-oauth2", "facebook", "github")
CONNECTIONS = (DATABASE, *SOCIAL)


def provider_of(connection: str) -> str:
    """The provider (and strategy) of a connection: ``auth0`` for the database one.

    Examples
    --------
    >>> from linking_toolkit.sandbox.connections import provider_of
    >>> provider_of('Username-Password-Authentication'), provider_of('google-oauth2')
    ('auth0', 'google-oauth2')
    """
    return "auth0" if connection == DATABASE else connection
