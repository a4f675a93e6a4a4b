"""Management API tokens for a machine-to-machine application, renewed before they expire."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import httpx2

from ..errors import TenantError, error_from_response
from ._http import json_or_none

if TYPE_CHECKING:
    from ..tenant import Tenant

__all__ = ["ClientCredentials"]

logger = logging.getLogger("linking_toolkit.management")


class ClientCredentials:
    """A token source for a machine-to-machine application, renewed before it expires.

    Calling it returns a valid access token for the Management API; a new one is fetched when
    the current one is within ``renew_before`` seconds of expiry (or after ``invalidate()``).

    Examples
    --------
    >>> from linking_toolkit.management import ClientCredentials
    >>> token_source = ClientCredentials(tenant, client_id, client_secret)   # doctest: +SKIP
    >>> admin = ManagementClient(tenant, token_source)
    >>> token_source.invalidate()                # the next request fetches a new token
    """

    def __init__(
        self,
        tenant: Tenant,
        client_id: str,
        client_secret: str,
        *,
        audience: str | None = None,
        scope: str | None = None,
        renew_before: float = 60.0,
    ) -> None:
        self.tenant = tenant
        self.client_id = client_id
        self._client_secret = client_secret
        self.audience = audience or tenant.management_audience
        self.scope = scope
        self.renew_before = renew_before
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Forget the current token (the tenant refused it): the next call fetches a new one."""
        with self._lock:
            self._token = None

    def __call__(self) -> str:
        with self._lock:
            if self._token is None or time.time() >= self._expires_at - self.renew_before:
                self._token, self._expires_at = self.request_token()
            return self._token

    def request_token(self) -> tuple[str, float]:
        """Ask the token endpoint for a new token: ``(access_token, expires_at)`` (epoch seconds).

        Calling the source does this only when needed; a subclass may change how a token is got.
        """
        data = {"grant_type": "client_credentials", "client_id": self.client_id,
                "client_secret": self._client_secret, "audience": self.audience}
        if self.scope:
            data["scope"] = self.scope
        try:
            response = self.tenant.http.post(self.tenant.endpoint("token_endpoint"), data=data)
        except httpx2.HTTPError as exc:
            raise TenantError(f"the token endpoint could not be reached ({type(exc).__name__})") from None
        body = json_or_none(response)
        if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            if body is None:
                raise TenantError(f"the token endpoint answered HTTP {response.status_code}, not JSON",
                                  status_code=response.status_code)
            raise error_from_response(response.status_code, body)
        logger.debug("fetched a client-credentials token for %s", self.client_id)
        try:
            expires_in = float(body.get("expires_in", 86_400))
        except (TypeError, ValueError):
            raise TenantError("the token endpoint's expires_in is not a number of seconds") from None
        return str(body["access_token"]), time.time() + expires_in

    def __repr__(self) -> str:
        return f"<ClientCredentials client_id={self.client_id!r} audience={self.audience!r}>"
