"""The HTTP core of the Management API client: pacing, the one retry loop, error decoding.

Rate limits are Auth0's token bucket: the client paces itself from ``x-ratelimit-remaining`` /
``x-ratelimit-reset`` so a long run stays inside the bucket, and on a 429 waits until the tenant
said to come back (a 429 is always re-sent: the tenant refused the request before acting on it).
Everything else is retried only where the caller says repeating is safe, through
:meth:`ManagementHTTP.retrying`, the one retry/backoff loop of the client.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx2

from ..errors import (
    Auth0Error,
    ConnectionFailed,
    InvalidToken,
    ServerError,
    TenantError,
    error_from_response,
)

if TYPE_CHECKING:
    from ..tenant import Tenant

__all__ = ["ManagementHTTP", "ManagementStats", "Pacer", "TokenSource", "json_or_none", "path_id"]

logger = logging.getLogger("linking_toolkit.management")

TokenSource = Callable[[], str]
T = TypeVar("T")


def path_id(value: str) -> str:
    """A path segment: ``|``, ``/``, ``%``, spaces and unicode all encoded (nothing is safe)."""
    return quote(str(value), safe="")


def json_or_none(response: httpx2.Response) -> Any:
    """The answer's JSON, or None when it is not JSON (an HTML error page, garbage)."""
    try:
        return response.json()
    except ValueError:
        return None


def _tenant_now(response: httpx2.Response) -> float:
    """Now by the tenant's clock: ours, unless the answer's ``Date`` differs from it by more than
    that header's one-second resolution explains (a laptop clock a few seconds off would otherwise
    turn every 429's reset into no wait, or a long one)."""
    now = time.time()
    try:
        theirs = parsedate_to_datetime(response.headers["date"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return now
    return theirs if abs(now - theirs) > 2.0 else now


@dataclass
class ManagementStats:
    """What a client did: requests sent, retries, 429s received and time spent waiting for the bucket."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    waited_seconds: float = 0.0


class Pacer:
    """Keeps a client inside the tenant's token bucket, from the headers of its answers.

    When the last answer said ``x-ratelimit-remaining: 0`` the next request waits, until
    ``x-ratelimit-reset`` at the latest. Auth0 rounds that reset up to a whole second, so the
    pacer also learns a lower bound of the refill rate from what it has seen (tokens it was told
    remain, plus tokens it spent, over the time elapsed) and, once known, waits only as long as
    one new token takes at that rate: never early (the bound is conservative), never a second late.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.remaining: int | None = None
        self.reset: float | None = None
        self.last_received = 0.0
        self._anchor: tuple[float, int, int] | None = None  # (sent at, remaining, spent)
        self._spent = 0
        self.rate_floor = 0.0

    def delay(self, now: float) -> float:
        with self.lock:
            if self.remaining is None or self.remaining > 0:
                if self.remaining is not None:
                    self.remaining -= 1  # a concurrent caller sees this request's token as taken
                return 0.0
            target = self.reset if self.reset is not None else now
            if self.rate_floor > 0:
                target = min(target, self.last_received + 1.0 / self.rate_floor)
            return max(0.0, min(target - now, 120.0))

    def observe(self, response: httpx2.Response, sent_at: float, received_at: float) -> None:
        headers = response.headers
        try:
            remaining = int(headers["x-ratelimit-remaining"])
            limit = int(headers.get("x-ratelimit-limit", "0"))
            reset = float(headers["x-ratelimit-reset"])
        except (KeyError, ValueError):
            return
        reset += time.time() - _tenant_now(response)  # on our clock, should the tenant's differ
        with self.lock:
            self.remaining, self.reset, self.last_received = remaining, reset, received_at
            if response.status_code == 429:
                return
            self._spent += 1
            # A full bucket makes everything before it irrelevant: measure from here.
            if self._anchor is None or (limit and remaining >= limit - 1):
                self._anchor = (sent_at, remaining, self._spent)
                return
            t0, r0, s0 = self._anchor
            elapsed = received_at - t0
            if elapsed > 0:
                bound = (remaining - r0 + (self._spent - s0) - 1) / elapsed
                self.rate_floor = max(self.rate_floor, bound)


class ManagementHTTP:
    """One connection pool on ``{tenant}/api/v2``, paced, with a bearer token from ``token_source``.

    :meth:`send` gives the tenant's answer to one request (429s waited out, a machine token renewed
    once after a 401); :meth:`retrying` is the retry/backoff loop; :meth:`call` puts them together
    with :meth:`decode`, retrying 5xx and dropped connections only when ``safe``.
    """

    def __init__(
        self,
        tenant: Tenant,
        token_source: TokenSource,
        *,
        transport: httpx2.BaseTransport | None,
        timeout: httpx2.Timeout,
        max_retries: int,
        backoff: float,
        max_rate_limit_waits: int,
    ) -> None:
        self.token_source = token_source
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_rate_limit_waits = max_rate_limit_waits
        self.stats = ManagementStats()
        self.pacer = Pacer()
        self.pool = httpx2.Client(base_url=tenant.base_url + "/api/v2", timeout=timeout, transport=transport,
                                  verify=tenant.verify)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.stats.waited_seconds += seconds
            time.sleep(seconds)

    # -- one request ---------------------------------------------------------------------------------

    def _send_once(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        """One request, paced; transport failures surface as httpx2 errors for the caller."""
        if self.pool.is_closed:
            raise TenantError("this client is closed (by close() or Tenant.close()): make a new one")
        self.sleep(self.pacer.delay(time.time()))
        token = self.token_source()
        if not token or not token.isprintable() or " " in token:
            raise InvalidToken("no usable access token: log in again (or check the client credentials)")
        headers = {"Authorization": f"Bearer {token}"}
        self.stats.requests += 1
        sent = time.time()
        response = self.pool.request(method, path, headers=headers, **kwargs)
        self.pacer.observe(response, sent, time.time())
        logger.debug("%s %s -> %s", method, path.split("?")[0], response.status_code)
        return response

    def _wait_after_429(self, response: httpx2.Response, waits: int) -> None:
        reset = response.headers.get("x-ratelimit-reset")
        retry_after = response.headers.get("retry-after")
        delay: float | None = None
        try:
            if reset is not None:
                delay = float(reset) - _tenant_now(response)
            elif retry_after is not None:
                delay = float(retry_after)
        except ValueError:
            delay = None
        if delay is None:  # no header at all: back off rather than hammer the tenant
            delay = self.backoff * 2 ** min(waits, 6)
        self.sleep(max(0.0, min(delay, 120.0)))

    def send(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        """The tenant's answer to one request: a 429 is waited out and sent again (up to
        ``max_rate_limit_waits`` times), a 401 renews a renewable token once; a failed connection
        is :class:`ConnectionFailed`."""
        waits = 0
        renewed = False
        while True:
            try:
                response = self._send_once(method, path, **kwargs)
            except httpx2.TransportError as exc:
                raise ConnectionFailed(f"{method} {path.split('?')[0]}: the connection to the tenant "
                                       f"failed ({type(exc).__name__})") from None
            if response.status_code == 429:
                self.stats.rate_limited += 1
                if waits < self.max_rate_limit_waits:
                    waits += 1
                    self._wait_after_429(response, waits)
                    continue
            elif response.status_code == 401 and not renewed and hasattr(self.token_source, "invalidate"):
                # A machine token may have been revoked or rotated: fetch a new one, once.
                renewed = True
                self.token_source.invalidate()
                continue
            return response

    def decode(self, response: httpx2.Response) -> Any:
        """The JSON of a success, or the exception for an error; HTML or garbage is a TenantError."""
        status = response.status_code
        if status == 204 or (200 <= status < 300 and not response.content):
            return None
        body = json_or_none(response)
        if 200 <= status < 300:
            if body is None:
                raise TenantError(f"the tenant answered HTTP {status} with something that is not JSON "
                                  f"({response.headers.get('content-type', 'no content type')})",
                                  status_code=status)
            return body
        if body is None or not isinstance(body, dict):
            cls = ServerError if status >= 500 else TenantError
            raise cls(f"the tenant answered HTTP {status} with something that is not Auth0's JSON error",
                      status_code=status)
        reset = response.headers.get("x-ratelimit-reset")
        raise error_from_response(status, body, reset_at=float(reset) if reset and reset.isdigit() else None)

    # -- retries ------------------------------------------------------------------------------------

    def retrying(self, call: Callable[[], T], recover: Callable[[Auth0Error, int], T | None]) -> T:
        """Run ``call`` until it answers: the client's one retry/backoff loop.

        When it raises, ``recover(error, retries_so_far)`` decides: it re-raises to give up, returns
        the outcome when it found the call took effect anyway, or returns None to send it again
        after ``backoff * 2**n`` seconds. Only ``recover`` knows whether repeating is safe.
        """
        attempt = 0
        while True:
            try:
                return call()
            except Auth0Error as error:
                found = recover(error, attempt)
                if found is not None:
                    return found
            attempt += 1
            self.stats.retries += 1
            self.sleep(self.backoff * 2 ** (attempt - 1))

    def call(self, method: str, path: str, *, safe: bool, **kwargs: Any) -> Any:
        """Send and decode; when ``safe``, 5xx answers and failed connections are retried."""

        def recover(error: Auth0Error, attempt: int) -> None:
            passing = isinstance(error, ServerError | ConnectionFailed)  # may well work a moment later
            if not (safe and passing and attempt < self.max_retries):
                raise error
            logger.debug("%s %s failed (%s); retry %d", method, path.split("?")[0], type(error).__name__,
                         attempt + 1)

        return self.retrying(lambda: self.decode(self.send(method, path, **kwargs)), recover)

    def object(self, method: str, path: str, *, safe: bool, **kwargs: Any) -> dict[str, Any]:
        """A call whose answer must be a JSON object (a user, a job): anything else is garbage."""
        body = self.call(method, path, safe=safe, **kwargs)
        if not isinstance(body, dict):
            raise TenantError(f"{method} {path.split('?')[0]}: the tenant's answer is not a JSON object")
        return body

    def array(self, method: str, path: str, *, safe: bool, **kwargs: Any) -> list[dict[str, Any]]:
        """A call whose answer must be a JSON array of objects (users, identities)."""
        body = self.call(method, path, safe=safe, **kwargs)
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise TenantError(f"{method} {path.split('?')[0]}: the tenant's answer is not a JSON array")
        return body
