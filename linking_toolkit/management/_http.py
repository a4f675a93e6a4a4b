"""The HTTP core of the Management API client: pacing, the one retry loop, error decoding.

Rate limits are Auth0's token bucket: the client paces itself from ``x-ratelimit-remaining`` /
``x-ratelimit-reset`` so a long run stays inside the bucket, and on a 429 waits until the tenant
said to come back (a 429 is always re-sent: the tenant refused the request before acting on it).
Everything else is retried only where the caller says repeating is safe, through
:meth:`ManagementHTTP.retrying`, the one retry/backoff loop of the client.

Every call has one deadline (``ManagementClient(deadline=...)``), shared by its retries, its waits
(``Retry-After`` on a 429 or a 503 is honoured only within it) and the follow-up reads a link makes:
past it the call fails at once with an error naming the request and how long it waited.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx2

from ..errors import (
    Auth0Error,
    ConnectionFailed,
    InvalidToken,
    RateLimited,
    ServerError,
    TenantError,
    error_from_response,
)

if TYPE_CHECKING:
    from ..tenant import Tenant

__all__ = ["Deadline", "ManagementHTTP", "ManagementStats", "Pacer", "TokenSource", "json_or_none", "path_id"]

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


def _seconds_asked(response: httpx2.Response) -> float | None:
    """How long ``Retry-After`` asks to wait (seconds or an HTTP date), None if it does not say."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - _tenant_now(response))
    except (TypeError, ValueError):
        return None


_GAVE_UP = "gave up after"


@dataclass
class Deadline:
    """When one call must be over: its first request, its retries and its waits all count."""

    seconds: float
    request: str  # "GET /users/{id}": what an error names (never a query, which may hold an email)
    started: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return self.seconds - (time.monotonic() - self.started)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def fail(self, error: Auth0Error, why: str) -> Auth0Error:
        """``error``, of its own class, with a message naming the request and the time it took."""
        if _GAVE_UP in error.message:  # named already, by the call inside this one
            return error
        kwargs: dict[str, Any] = {"status_code": error.status_code, "error": error.error,
                                  "error_code": error.error_code}
        if isinstance(error, RateLimited):
            kwargs["reset_at"] = error.reset_at
        message = error.message
        if not message.startswith(self.request):
            message = f"{self.request}: {message}"
        return type(error)(f"{message} ({why}; {_GAVE_UP} {self.elapsed():.1f} s, "
                           f"deadline {self.seconds:g} s)", **kwargs)


@dataclass
class ManagementStats:
    """What a client did: requests sent, retries, 429s received and time spent waiting for the bucket.

    Examples
    --------
    >>> from linking_toolkit.management import ManagementStats
    >>> ManagementStats()
    ManagementStats(requests=0, retries=0, rate_limited=0, waited_seconds=0.0)
    >>> admin.stats.rate_limited                 # doctest: +SKIP
    0
    """

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
        deadline: float,
    ) -> None:
        if not deadline > 0:
            raise ValueError(f"deadline must be a number of seconds above 0, not {deadline!r}")
        self.token_source = token_source
        self.deadline = deadline
        self.timeout = timeout
        self._calls = threading.local()  # the deadline of the call under way, per thread
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

    @contextmanager
    def call_deadline(self, method: str, path: str) -> Iterator[Deadline]:
        """The deadline of the call under way on this thread, or a new one for ``method path``: the
        requests a call makes inside another (a link's follow-up read) share the outer deadline."""
        current = getattr(self._calls, "deadline", None)
        if current is not None:
            yield current
            return
        self._calls.deadline = Deadline(self.deadline, f"{method} {path.split('?')[0]}")
        try:
            yield self._calls.deadline
        finally:
            self._calls.deadline = None

    def wait_within(self, seconds: float, deadline: Deadline, error: Auth0Error, what: str) -> None:
        """Wait ``seconds`` if the deadline leaves room for it and a request after; else fail now
        (waiting to be refused at the deadline helps nobody)."""
        if seconds >= deadline.remaining():
            raise deadline.fail(error, f"{what} ({seconds:.1f} s) would end past the deadline") from None
        self.sleep(seconds)

    def _timeout_within(self, deadline: Deadline) -> httpx2.Timeout:
        """This request's timeouts, none past the call's deadline."""
        left = max(0.001, deadline.remaining())
        t = self.timeout

        def cap(value: float | None) -> float:
            return left if value is None else min(value, left)

        return httpx2.Timeout(connect=cap(t.connect), read=cap(t.read), write=cap(t.write), pool=cap(t.pool))

    # -- one request ---------------------------------------------------------------------------------

    def _send_once(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        """One request, paced; transport failures surface as httpx2 errors for the caller."""
        if self.pool.is_closed:
            raise TenantError("this client is closed (by close() or Tenant.close()): make a new one")
        deadline = self._calls.deadline
        pause = self.pacer.delay(time.time())
        if pause:
            empty = RateLimited("the rate limit's bucket is empty", status_code=429)
            self.wait_within(pause, deadline, empty, "the wait for the rate limit's bucket")
        if deadline.remaining() <= 0:
            raise deadline.fail(ConnectionFailed("no time left to send it"), "deadline passed")
        token = self.token_source()
        if not token or not token.isprintable() or " " in token:
            raise InvalidToken("no usable access token: log in again (or check the client credentials)")
        headers = {"Authorization": f"Bearer {token}"}
        self.stats.requests += 1
        sent = time.time()
        response = self.pool.request(method, path, headers=headers, timeout=self._timeout_within(deadline),
                                     **kwargs)
        self.pacer.observe(response, sent, time.time())
        logger.debug("%s %s -> %s", method, path.split("?")[0], response.status_code)
        return response

    def _wait_after_429(self, response: httpx2.Response, waits: int, deadline: Deadline) -> None:
        reset = response.headers.get("x-ratelimit-reset")
        delay: float | None = None
        try:
            if reset is not None:
                delay = float(reset) - _tenant_now(response)
        except ValueError:
            delay = None
        if delay is None:
            delay = _seconds_asked(response)
        if delay is None:  # no header at all: back off rather than hammer the tenant
            delay = self.backoff * 2 ** min(waits, 6)
        refused = RateLimited("the tenant's rate limit refused it (429)", status_code=429,
                              reset_at=float(reset) if reset and reset.isdigit() else None)
        asked = "the tenant's Retry-After" if reset is None and _seconds_asked(response) is not None \
            else "the wait until the rate limit's reset"
        self.wait_within(max(0.0, min(delay, 120.0)), deadline, refused, asked)

    def send(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        """The tenant's answer to one request: a 429 is waited out and sent again (up to
        ``max_rate_limit_waits`` times, within the call's deadline), a 401 renews a renewable token
        once; a failed connection is :class:`ConnectionFailed`."""
        with self.call_deadline(method, path) as deadline:
            return self._send(method, path, deadline, **kwargs)

    def _send(self, method: str, path: str, deadline: Deadline, **kwargs: Any) -> httpx2.Response:
        waits = 0
        renewed = False
        while True:
            try:
                response = self._send_once(method, path, **kwargs)
            except httpx2.TransportError as exc:
                why = "no answer" if isinstance(exc, httpx2.TimeoutException) else "the connection failed"
                raise ConnectionFailed(f"{method} {path.split('?')[0]}: {why} ({type(exc).__name__}) "
                                       f"after {deadline.elapsed():.1f} s") from None
            if response.status_code == 429:
                self.stats.rate_limited += 1
                if waits < self.max_rate_limit_waits:
                    waits += 1
                    self._wait_after_429(response, waits, deadline)
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

    def retrying(self, call: Callable[[], T], recover: Callable[[Auth0Error, int], T | None], *,
                 request: tuple[str, str], asked: Callable[[], float | None] = lambda: None) -> T:
        """Run ``call`` until it answers, within one deadline: the client's one retry/backoff loop.

        When it raises, ``recover(error, retries_so_far)`` decides: it re-raises to give up, returns
        the outcome when it found the call took effect anyway, or returns None to send it again
        after ``asked()`` seconds (the tenant's ``Retry-After``) or else ``backoff * 2**n``. Only
        ``recover`` knows whether repeating is safe. ``request`` (method, path) is what errors name.
        """
        outermost = getattr(self._calls, "deadline", None) is None
        with self.call_deadline(*request) as deadline:
            attempt = 0
            while True:
                try:
                    return call()
                except Auth0Error as error:
                    try:
                        found = recover(error, attempt)
                    except Auth0Error as given_up:
                        if outermost and isinstance(given_up, TenantError | RateLimited):
                            raise deadline.fail(given_up, f"{attempt + 1} attempt(s)") from None
                        raise
                    if found is not None:
                        return found
                    pause = asked()
                    why = "the backoff before a retry" if pause is None else "the tenant's Retry-After"
                    seconds = self.backoff * 2 ** attempt if pause is None else pause
                    self.wait_within(seconds, deadline, error, why)
                attempt += 1
                self.stats.retries += 1

    def call(self, method: str, path: str, *, safe: bool, **kwargs: Any) -> Any:
        """Send and decode; when ``safe``, 5xx answers and failed connections are retried (after the
        ``Retry-After`` a 503 gives, if any)."""
        asked: list[float | None] = [None]

        def attempt() -> Any:
            response = self.send(method, path, **kwargs)
            asked[0] = _seconds_asked(response) if response.status_code >= 500 else None
            return self.decode(response)

        def recover(error: Auth0Error, attempt: int) -> None:
            passing = isinstance(error, ServerError | ConnectionFailed)  # may well work a moment later
            if not (safe and passing and attempt < self.max_retries):
                raise error
            logger.debug("%s %s failed (%s); retry %d", method, path.split("?")[0], type(error).__name__,
                         attempt + 1)

        return self.retrying(attempt, recover, request=(method, path), asked=lambda: asked[0])

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
