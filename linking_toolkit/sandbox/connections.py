"""The connections of the sandbox's tenants: one database connection and three simulated social ones.

The one definition of their names, for the seed, the server and the page driver alike.
"""

from __future__ import annotations

__all__ = ["CONNECTIONS", "DATABASE", "SOCIAL", "provider_of"]

DATABASE = "Username-Password-Authentication"
SOCIAL = ("google-oauth2", "facebook", "github")
CONNECTIONS = (DATABASE, *SOCIAL)


def provider_of(connection: str) -> str:
    """The provider (and strategy) of a connection: ``auth0`` for the database one."""
    return "auth0" if connection == DATABASE else connection
