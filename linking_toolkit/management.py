"""Management API v2 client: users, link, unlink, users-by-email, search, export jobs.

One ``httpx2`` connection pool per client and a timeout on every call. Rate limits are Auth0's
token bucket: the client paces itself from ``x-ratelimit-remaining`` / ``x-ratelimit-reset`` so a
long run stays inside the bucket, and on a 429 waits until the tenant said to come back.
Failures are retried only where repeating is safe: GETs, and unlink (a retry that finds the
identity already gone counts as done). A link is never re-sent blindly: after a failure the
client looks at the primary user to see whether the link happened.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx2

from .errors import (
    Auth0Error,
    BadRequest,
    InvalidToken,
    LinkRefused,
    NotFound,
    ServerError,
    SessionExpired,
    TenantError,
    UnsafeLink,
    error_from_response,
)
from .identities import Identity, is_primary
from .tenant import DEFAULT_TIMEOUT
from .tokens import Session, unverified_claims

if TYPE_CHECKING:
    from .tenant import Tenant

__all__ = [
    "ClientCredentials",
    "JobFailed",
    "ManagementClient",
    "ManagementStats",
    "link",
    "unlink",
]

logger = logging.getLogger("linking_toolkit.management")

# Auth0 pages only the first 1000 results of a search; past that an export job is the way.
PAGING_CAP = 1000

TokenSource = Callable[[], str]


class JobFailed(Auth0Error):
    """An export job ended as ``failed`` or did not finish within the timeout."""


def _path_id(value: str) -> str:
    """A path segment: ``|``, ``/``, ``%``, spaces and unicode all encoded (nothing is safe)."""
    return quote(str(value), safe="")


@dataclass
class ManagementStats:
    """What a client did: requests sent, retries, 429s received and time spent waiting for the bucket."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    waited_seconds: float = 0.0


class ClientCredentials:
    """A token source for a machine-to-machine application, renewed before it expires.

    Calling it returns a valid access token for the Management API; a new one is fetched when
    the current one is within ``renew_before`` seconds of expiry (or after ``invalidate()``).
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
        with self._lock:
            self._token = None

    def __call__(self) -> str:
        with self._lock:
            if self._token is None or time.time() >= self._expires_at - self.renew_before:
                self._token, self._expires_at = self._fetch()
            return self._token

    def _fetch(self) -> tuple[str, float]:
        data = {"grant_type": "client_credentials", "client_id": self.client_id,
                "client_secret": self._client_secret, "audience": self.audience}
        if self.scope:
            data["scope"] = self.scope
        try:
            response = self.tenant.http.post(self.tenant.endpoint("token_endpoint"), data=data)
        except httpx2.HTTPError as exc:
            raise TenantError(f"the token endpoint could not be reached ({type(exc).__name__})") from None
        body = _json_or_none(response)
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


def _json_or_none(response: httpx2.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class _Pacer:
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


class ManagementClient:
    """A client of one tenant's Management API v2.

    ``token_source`` is a callable returning a valid access token for the Management API audience:
    a user session's token (``from_session``) or a machine-to-machine token renewed before expiry
    (``from_client_credentials``). ``transport`` is for tests that must inject a fault.

    Examples
    --------
    >>> with ManagementClient.from_client_credentials(tenant) as admin:      # doctest: +SKIP
    ...     admin.users_by_email("ada@example.com")
    """

    def __init__(
        self,
        tenant: Tenant,
        token_source: TokenSource,
        *,
        transport: httpx2.BaseTransport | None = None,
        timeout: httpx2.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_rate_limit_waits: int = 30,
    ) -> None:
        self.tenant = tenant
        self._token_source = token_source
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_rate_limit_waits = max_rate_limit_waits
        self.stats = ManagementStats()
        self._pacer = _Pacer()
        self._http = httpx2.Client(base_url=tenant.base_url + "/api/v2", timeout=timeout,
                                   transport=transport)
        tenant._clients.add(self)  # Tenant.close() closes this pool too, not only garbage collection

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def from_session(cls, session: Session, **kwargs: Any) -> ManagementClient:
        """Act as the logged-in user (scopes ``read:current_user update:current_user_identities``)."""
        return cls(session.tenant, lambda: session.access_token, **kwargs)

    @classmethod
    def from_client_credentials(
        cls,
        tenant: Tenant,
        client_id: str | None = None,
        client_secret: str | None = None,
        scope: str | None = None,
        **kwargs: Any,
    ) -> ManagementClient:
        """Act as a machine-to-machine application (defaults to the tenant's, e.g. the sandbox's)."""
        client_id = client_id or tenant.m2m_client_id
        client_secret = client_secret or tenant.m2m_client_secret
        if not client_id or not client_secret:
            raise TenantError("no machine-to-machine client: pass client_id and client_secret, or set "
                              "AUTH0_CLIENT_SECRET")
        return cls(tenant, ClientCredentials(tenant, client_id, client_secret, scope=scope), **kwargs)

    def close(self) -> None:
        """Close the connection pool (again is harmless)."""
        self._http.close()

    @property
    def closed(self) -> bool:
        return self._http.is_closed

    def __enter__(self) -> ManagementClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ManagementClient {self.tenant.issuer} requests={self.stats.requests}>"

    # -- the HTTP core ---------------------------------------------------------------------------

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.stats.waited_seconds += seconds
            time.sleep(seconds)

    def _send_once(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        """One request, paced; transport failures surface as httpx2 errors for the caller."""
        if self._http.is_closed:
            raise TenantError("this client is closed (by close() or Tenant.close()): make a new one")
        self._sleep(self._pacer.delay(time.time()))
        token = self._token_source()
        if not token or not token.isprintable() or " " in token:
            raise InvalidToken("no usable access token: log in again (or check the client credentials)")
        headers = {"Authorization": f"Bearer {token}"}
        self.stats.requests += 1
        sent = time.time()
        response = self._http.request(method, path, headers=headers, **kwargs)
        self._pacer.observe(response, sent, time.time())
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
        self._sleep(max(0.0, min(delay, 120.0)))

    def _request(self, method: str, path: str, *, safe: bool, **kwargs: Any) -> httpx2.Response:
        """Send with pacing, 429 waits, and (when ``safe``) retries of 5xx and connection errors.

        A 429 is always waited out and re-sent: the tenant refused the request before acting on it.
        """
        attempt = 0
        waits = 0
        renewed = False
        while True:
            try:
                response = self._send_once(method, path, **kwargs)
            except httpx2.TransportError as exc:
                if safe and attempt < self.max_retries:
                    attempt += 1
                    self.stats.retries += 1
                    logger.debug("%s %s failed (%s); retry %d", method, path.split("?")[0],
                                 type(exc).__name__, attempt)
                    self._sleep(self.backoff * 2 ** (attempt - 1))
                    continue
                raise TenantError(f"{method} {path.split('?')[0]}: the connection to the tenant failed "
                                  f"({type(exc).__name__})") from None
            status = response.status_code
            if status == 429:
                self.stats.rate_limited += 1
                if waits < self.max_rate_limit_waits:
                    waits += 1
                    self._wait_after_429(response, waits)
                    continue
            elif status >= 500 and safe and attempt < self.max_retries:
                attempt += 1
                self.stats.retries += 1
                self._sleep(self.backoff * 2 ** (attempt - 1))
                continue
            elif (status == 401 and not renewed and hasattr(self._token_source, "invalidate")):
                # A machine token may have been revoked or rotated: fetch a new one, once.
                renewed = True
                self._token_source.invalidate()
                continue
            return response

    def _decode(self, response: httpx2.Response) -> Any:
        """The JSON of a success, or the exception for an error; HTML or garbage is a TenantError."""
        status = response.status_code
        if status == 204 or (200 <= status < 300 and not response.content):
            return None
        body = _json_or_none(response)
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

    def _call(self, method: str, path: str, *, safe: bool, **kwargs: Any) -> Any:
        return self._decode(self._request(method, path, safe=safe, **kwargs))

    def _object(self, method: str, path: str, *, safe: bool, **kwargs: Any) -> dict[str, Any]:
        """A call whose answer must be a JSON object (a user, a job): anything else is garbage."""
        body = self._call(method, path, safe=safe, **kwargs)
        if not isinstance(body, dict):
            raise TenantError(f"{method} {path.split('?')[0]}: the tenant's answer is not a JSON object")
        return body

    def _array(self, method: str, path: str, *, safe: bool, **kwargs: Any) -> list[dict[str, Any]]:
        """A call whose answer must be a JSON array of objects (users, identities)."""
        body = self._call(method, path, safe=safe, **kwargs)
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise TenantError(f"{method} {path.split('?')[0]}: the tenant's answer is not a JSON array")
        return body

    # -- users -----------------------------------------------------------------------------------

    def get_user(self, user_id: str, *, fields: list[str] | None = None) -> dict[str, Any]:
        """``GET /users/{id}``: the whole profile, identities included."""
        params = {"fields": ",".join(fields), "include_fields": "true"} if fields else None
        return self._object("GET", f"/users/{_path_id(user_id)}", safe=True, params=params)

    def users_by_email(self, email: str) -> list[dict[str, Any]]:
        """``GET /users-by-email``: immediately consistent, unlike search, so the one to link with."""
        return self._array("GET", "/users-by-email", safe=True, params={"email": email})

    def list_users(
        self,
        q: str | None = None,
        *,
        per_page: int = 100,
        fields: list[str] | None = None,
        sort: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every user matching ``q`` (Lucene syntax), page after page, up to Auth0's 1000 cap.

        Past 1000 results Auth0 refuses to page; a warning is logged and the iteration stops
        there: use ``create_users_export`` for a whole large tenant.
        """
        per_page = max(1, min(per_page, 100))
        page = 0
        seen = 0
        while True:
            params: dict[str, Any] = {"page": page, "per_page": per_page, "include_totals": "true"}
            if q:
                params.update(q=q, search_engine="v3")
            if fields:
                params.update(fields=",".join(fields), include_fields="true")
            if sort:
                params["sort"] = sort
            body = self._call("GET", "/users", safe=True, params=params)
            users = body.get("users", []) if isinstance(body, dict) else body
            total = body.get("total") if isinstance(body, dict) else None
            if not isinstance(users, list) or not all(isinstance(u, dict) for u in users) \
                    or not (total is None or isinstance(total, int)):
                raise TenantError("GET /users: the tenant's answer is not a page of users")
            yield from users
            seen += len(users)
            page += 1
            if not users or len(users) < per_page or (total is not None and seen >= total):
                return
            if page * per_page >= PAGING_CAP:
                if total is None or total > seen:
                    logger.warning("stopped at %d users: Auth0 pages only the first %d results; "
                                   "use create_users_export() for the rest", seen, PAGING_CAP)
                return

    def count_users(self, q: str | None = None) -> int:
        """How many users match ``q`` (``include_totals``), counting past the 1000 paging cap."""
        params: dict[str, Any] = {"page": 0, "per_page": 1, "include_totals": "true"}
        if q:
            params.update(q=q, search_engine="v3")
        body = self._object("GET", "/users", safe=True, params=params)
        total = body.get("total")
        if not isinstance(total, int) or isinstance(total, bool):
            raise TenantError("GET /users: the tenant's answer has no numeric total")
        return total

    def create_user(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /users`` (not retried: a second attempt could create a second user)."""
        return self._object("POST", "/users", safe=False, json=dict(body))

    def update_user(self, user_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``PATCH /users/{id}``; metadata objects are merged by the tenant, key by key."""
        return self._object("PATCH", f"/users/{_path_id(user_id)}", safe=False, json=dict(body))

    def update_user_metadata(self, user_id: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``metadata`` into the user's ``user_metadata`` (a key set to None is removed)."""
        return self.update_user(user_id, {"user_metadata": dict(metadata)})

    # -- link and unlink -------------------------------------------------------------------------

    def _has_identity(self, primary_id: str, provider: str, user_id: str) -> list[dict[str, Any]] | None:
        """The primary's identities if it owns ``provider|user_id``, else None."""
        identities = self.get_user(primary_id).get("identities") or []
        for identity in identities:
            if identity.get("provider") == provider and str(identity.get("user_id")) == user_id:
                return identities
        return None

    def link(
        self,
        primary_id: str,
        *,
        link_with: str | None = None,
        provider: str | None = None,
        user_id: str | None = None,
        connection_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """``POST /users/{id}/identities``: link a secondary account into ``primary_id``.

        Either ``link_with`` (the secondary's ID token; with a user's own access token) or
        ``provider`` + ``user_id`` (+ ``connection_id``; with ``update:users``). Returns the
        primary's new identities. A failure whose outcome is unknown (5xx, dropped connection) is
        followed by a look at the primary user: if the identity is there, the link happened.
        """
        if (link_with is None) == (provider is None and user_id is None):
            raise ValueError("pass either link_with, or provider and user_id")
        if link_with is not None:
            body: dict[str, Any] = {"link_with": link_with}
            sub = unverified_claims(link_with).get("sub")
            target = tuple(str(sub).split("|", 1)) if isinstance(sub, str) and "|" in sub else None
        else:
            if not provider or not user_id:
                raise ValueError("provider and user_id are both needed")
            body = {"provider": provider, "user_id": user_id}
            if connection_id:
                body["connection_id"] = connection_id
            # Auth0 accepts the full "provider|id" as user_id too; the identity holds the part after |.
            bare = user_id.split("|", 1)[1] if user_id.startswith(provider + "|") else user_id
            target = (provider, bare)
        path = f"/users/{_path_id(primary_id)}/identities"
        attempt = 0
        while True:
            try:
                return self._array("POST", path, safe=False, json=body)
            except TenantError as exc:  # includes ServerError: the outcome is unknown
                if target is None or attempt >= self.max_retries:
                    raise
                attempt += 1
                logger.debug("link failed (%s); checking whether it happened", type(exc).__name__)
                identities = self._has_identity(primary_id, target[0], target[1])
                if identities is not None:
                    return identities
                # Known not to have happened: sending it again is now safe.
                self.stats.retries += 1
                self._sleep(self.backoff * 2 ** (attempt - 1))

    def unlink(self, primary_id: str, provider: str, user_id: str) -> list[dict[str, Any]]:
        """``DELETE /users/{id}/identities/{provider}/{user_id}``; returns the remaining identities.

        Retried after a 5xx or a dropped connection; a retry that finds the identity already gone
        counts as done (the first attempt did it).
        """
        path = (f"/users/{_path_id(primary_id)}/identities/{_path_id(provider)}/{_path_id(user_id)}")
        attempt = 0
        while True:
            try:
                result = self._call("DELETE", path, safe=False)
                return result if isinstance(result, list) else []
            except TenantError:
                if attempt >= self.max_retries:
                    raise
                attempt += 1
                self.stats.retries += 1
                self._sleep(self.backoff * 2 ** (attempt - 1))
            except (BadRequest, NotFound):
                if attempt == 0:
                    raise
                profile = self.get_user(primary_id)
                if self._has_identity_in(profile, provider, user_id):
                    raise
                return list(profile.get("identities") or [])

    @staticmethod
    def _has_identity_in(profile: Mapping[str, Any], provider: str, user_id: str) -> bool:
        return any(i.get("provider") == provider and str(i.get("user_id")) == user_id
                   for i in profile.get("identities") or [])

    # -- export jobs -----------------------------------------------------------------------------

    def create_users_export(
        self,
        *,
        format: str = "json",
        fields: list[str] | None = None,
        connection_id: str | None = None,
    ) -> dict[str, Any]:
        """``POST /jobs/users-exports``: start an export of every user (NDJSON, gzipped, for json)."""
        body: dict[str, Any] = {"format": format}
        if fields:
            body["fields"] = [{"name": name} for name in fields]
        if connection_id:
            body["connection_id"] = connection_id
        return self._object("POST", "/jobs/users-exports", safe=False, json=body)

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self._object("GET", f"/jobs/{_path_id(job_id)}", safe=True)

    def wait_for_job(
        self,
        job_id: str,
        *,
        progress: Callable[[int], object] | None = None,
        poll: float = 1.0,
        timeout: float = 600.0,
    ) -> dict[str, Any]:
        """Poll a job until it completes; ``progress(percentage_done)`` after each poll."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if progress is not None:
                progress(int(job.get("percentage_done") or (100 if job.get("status") == "completed" else 0)))
            status = job.get("status")
            if status == "completed":
                return job
            if status == "failed":
                raise JobFailed(f"export job {job_id} failed: {job.get('summary') or job.get('error') or ''}"
                                .rstrip(": "))
            if time.monotonic() + poll > deadline:
                raise JobFailed(f"export job {job_id} did not finish within {timeout:g} s")
            time.sleep(poll)

    def _download(self, job: Mapping[str, Any]) -> Iterator[bytes]:
        location = job.get("location")
        if not isinstance(location, str) or not location:
            raise JobFailed(f"job {job.get('id')} has no location to download (status {job.get('status')!r})")
        headers = {}
        # Auth0 hands out a pre-signed URL on another host: the bearer token goes only to the tenant.
        if urlsplit(location)[:2] == urlsplit(self.tenant.base_url)[:2]:
            headers["Authorization"] = f"Bearer {self._token_source()}"
        try:
            with self._http.stream("GET", location, headers=headers) as response:
                if response.status_code != 200:
                    response.read()
                    self._decode(response)
                    raise TenantError(f"the export download answered HTTP {response.status_code}")
                yield from response.iter_bytes()
        except httpx2.TransportError as exc:
            raise TenantError(f"the export download failed ({type(exc).__name__})") from None

    def download_export(self, job: Mapping[str, Any], dest: str | Path | None = None) -> Path:
        """Save a completed export job's file (as the tenant serves it: gzipped) and return its path."""
        path = Path(dest) if dest is not None else Path(f"{job.get('id', 'users-export')}.json.gz")
        with path.open("wb") as out:
            for chunk in self._download(job):
                out.write(chunk)
        return path

    def iter_export(self, job: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """The users of a completed json export, one dict per NDJSON line, gunzipped as it streams
        (a 100 000-user export never sits whole in memory)."""
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        buffer = b""
        for chunk in self._download(job):
            buffer += inflater.decompress(chunk)
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.strip():
                    yield json.loads(line)
        buffer += inflater.flush()
        for line in buffer.split(b"\n"):
            if line.strip():
                yield json.loads(line)


def _client_of(session: Session) -> ManagementClient:
    """The session's own client (one pool per session), made on first use."""
    if not isinstance(session._management, ManagementClient):
        session._management = ManagementClient.from_session(session)
    return session._management


def _refuse_link(primary: Session, secondary: Session) -> None:
    if secondary is primary or secondary.user_id == primary.user_id:
        raise UnsafeLink("the secondary session is the primary account itself: log in to the other "
                         "account with purpose='linking'")
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


def link(primary: Session, secondary: Session) -> list[Identity]:
    """Link the ``secondary`` account into ``primary`` and return the primary's identities.

    Sends ``POST /api/v2/users/{primary}/identities`` with the primary's access token as bearer and
    ``{"link_with": <secondary ID token>}`` (Auth0 no longer accepts an ID token as bearer). Both
    accounts must have logged in; the secondary with ``purpose="linking"``. Refused before any
    request: the same account twice, a session of another tenant, a ``purpose="login"`` secondary.
    The 201 answer updates ``primary.profile`` in place; no second request.
    """
    _refuse_link(primary, secondary)
    identities = _client_of(primary).link(primary.user_id, link_with=secondary.id_token)
    primary.profile["identities"] = identities
    return [Identity.from_api(i) for i in identities]


def unlink(primary: Session, identity: Identity | Mapping[str, Any]) -> list[Identity]:
    """Unlink ``identity`` from ``primary`` and return the identities that remain.

    The unlinked account becomes a user of its own again. The main identity is refused before any
    request (Auth0 would answer "Main identity cannot be removed."). The 200 answer updates
    ``primary.profile`` in place.
    """
    if not isinstance(identity, Identity):
        identity = Identity.from_api(identity)
    if identity.full_id == primary.user_id or is_primary(primary.profile, identity):
        raise LinkRefused("the main identity cannot be unlinked; unlink the other identities instead")
    identities = _client_of(primary).unlink(primary.user_id, identity.provider, identity.user_id)
    primary.profile["identities"] = identities
    return [Identity.from_api(i) for i in identities]

