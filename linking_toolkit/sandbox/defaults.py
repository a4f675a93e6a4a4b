"""Auth0's names and defaults that a tenant's settings hold: the grant types a client lists and the
lifetime of an API's access tokens. Below both APIs and the seed, which all name them."""

from __future__ import annotations

__all__ = ["ACCESS_TOKEN_SECONDS", "DEVICE_CODE", "PASSWORD_REALM"]

PASSWORD_REALM = "http://auth0.com/oauth/grant-type/password-realm"  # noqa: S105 - a grant type URI
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
ACCESS_TOKEN_SECONDS = 86_400  # Auth0's default for API access tokens
