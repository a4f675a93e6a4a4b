"""What one sandbox tenant is: its store, keys, URLs, clients and rate limiter.

Every request handler finds its tenant with ``tenant_of(current_app)``; nothing lives at module
level, so two sandboxes in one process never share state.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from .keys import SigningKeys
from .store import Store

__all__ = ["RateLimiter", "TenantContext", "parse_rate_limit", "tenant_of"]

# Auth0's Management API rate-limit tiers (its "Management API Endpoint Rate Limits" page):
# free tenants burst 2 at 2/s, enterprise 50 at 16/s.
RATE_LIMIT_PRESETS: dict[str, tuple[int, float]] = {
    "free": (2, 2.0),
    "enterprise": (50, 16.0),
}


def parse_rate_limit(spec: str | tuple[int, float] | None) -> tuple[int, float] | None:
    """``"free"``, ``"enterprise"``, ``"BURST/RATE"`` (e.g. ``"10/5"``) or ``None`` (off)."""
    if spec is None or spec == "" or spec == "off":
        return None
    if isinstance(spec, tuple):
        burst, rate = spec
    elif spec in RATE_LIMIT_PRESETS:
        burst, rate = RATE_LIMIT_PRESETS[spec]
    else:
        try:
            b, _, r = spec.partition("/")
            burst, rate = int(b), float(r)
        except ValueError:
            raise ValueError(
                f"rate limit must be one of {sorted(RATE_LIMIT_PRESETS)} or BURST/RATE, "
                f"not {spec!r}"
            ) from None
    if burst < 1 or rate <= 0:
        raise ValueError("rate limit burst must be >= 1 and rate > 0")
    return int(burst), float(rate)


class RateLimiter:
    """A token bucket, as Auth0 runs one per tenant for the Management API.

    ``take()`` answers whether the request may go, and the values of Auth0's headers:
    ``x-ratelimit-limit`` (bucket size), ``x-ratelimit-remaining`` and ``x-ratelimit-reset``
    (UNIX seconds when the next token is added).
    """

    def __init__(self, burst: int, rate: float, clock: Any = time.time) -> None:
        self.burst = burst
        self.rate = rate
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock = threading.Lock()

    def take(self) -> tuple[bool, dict[str, str]]:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            allowed = self._tokens >= 1.0
            if allowed:
                self._tokens -= 1.0
            # The moment the bucket next holds a whole token (rounded up to a whole second).
            missing = max(0.0, 1.0 - (self._tokens % 1.0)) if self._tokens < self.burst else 0.0
            reset = now + (missing / self.rate if missing else 0.0)
            headers = {
                "x-ratelimit-limit": str(self.burst),
                "x-ratelimit-remaining": str(int(self._tokens)),
                "x-ratelimit-reset": str(int(-(-reset // 1))),
            }
        return allowed, headers


@dataclass
class TenantContext:
    """One tenant. ``base_url`` is ``http://127.0.0.1:{port}`` (no trailing slash)."""

    store: Store
    keys: SigningKeys
    base_url: str
    seed: int | None = None
    rate_limiter: RateLimiter | None = None
    quiet: bool = True
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return self.base_url + "/"

    @property
    def domain(self) -> str:
        return self.base_url.split("://", 1)[1]

    @property
    def management_audience(self) -> str:
        return self.base_url + "/api/v2/"

    @property
    def userinfo_url(self) -> str:
        return self.base_url + "/userinfo"

    @property
    def client_id(self) -> str:
        return self.store.get_setting("native_client_id") or ""

    @property
    def m2m_client_id(self) -> str:
        return self.store.get_setting("m2m_client_id") or ""


def tenant_of(app: Flask) -> TenantContext:
    return app.extensions["linking_sandbox"]
