"""``ManagementClient``: the Management API v2 resources the toolkit uses, one method each.

Users, users-by-email, search (paged up to :data:`SEARCH_CAP`), link, unlink and users-export
jobs (streamed). Failures are retried only where repeating is safe: GETs, and unlink (a retry
that finds the identity already gone counts as done). A link is never re-sent blindly: after a
failure the client looks at the primary user to see whether the link happened.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx2

from ..errors import Auth0Error, BadRequest, JobFailed, NotFound, TenantError
from ..identities import holds_identity
from ..private_files import open_private
from ..tokens import unverified_claims
from ._http import ManagementHTTP, ManagementStats, TokenSource, path_id
from .applications import ApplicationSettings
from .credentials import ClientCredentials
from .signed_urls import hidden_from_logs

if TYPE_CHECKING:
    from ..tenant import Tenant
    from ..tokens import Session

__all__ = ["DEFAULT_DEADLINE", "MANAGEMENT_TIMEOUT", "SEARCH_CAP", "ManagementClient"]

logger = logging.getLogger("linking_toolkit.management")

# Auth0 pages only the first 1000 results of a search; past that an export job is the way.
SEARCH_CAP = 1000
# One call, retries and waits included, ends within this (seconds): a tenant that stops answering or
# rate-limits without end costs two minutes, not an hour.
DEFAULT_DEADLINE = 120.0
# Each request: a tenant that does not take the connection is known in seconds, a slow answer waited for.
MANAGEMENT_TIMEOUT = httpx2.Timeout(30.0, connect=5.0)


class ManagementClient(ApplicationSettings):
    """A client of one tenant's Management API v2.

    ``token_source`` is a callable returning a valid access token for the Management API audience:
    a user session's token (``from_session``) or a machine-to-machine token renewed before expiry
    (``from_client_credentials``). ``transport`` is for tests that must inject a fault.

    ``deadline`` (seconds, :data:`DEFAULT_DEADLINE`) bounds each call whole: its retries, its waits
    for the rate limit (``Retry-After`` on a 429 or a 503 is honoured only within it) and, for a
    link, the read that checks whether it happened. Past it the call raises at once, with the
    request and the time it waited in the message. ``timeout`` bounds each request (connect: 5 s).

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
        timeout: httpx2.Timeout = MANAGEMENT_TIMEOUT,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_rate_limit_waits: int = 30,
        deadline: float = DEFAULT_DEADLINE,
    ) -> None:
        self.tenant = tenant
        self._api = ManagementHTTP(tenant, token_source, transport=transport, timeout=timeout,
                                   max_retries=max_retries, backoff=backoff,
                                   max_rate_limit_waits=max_rate_limit_waits, deadline=deadline)
        tenant.register_client(self)  # Tenant.close() closes this pool too, not only garbage collection

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def from_session(cls, session: Session, **kwargs: Any) -> ManagementClient:
        """Act as the logged-in user (scopes ``read:current_user update:current_user_identities``)."""
        return cls(session.tenant, lambda: session.access_token, **kwargs)

    @classmethod
    def for_session(cls, session: Session) -> ManagementClient:
        """The session's own client (one connection pool per session): the one it holds, or a new
        one that it then holds (``session.management``) and closes with itself."""
        client = session.management
        if not isinstance(client, cls):
            client = cls.from_session(session)
            session.management = client
        return client

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

    @property
    def token_source(self) -> TokenSource:
        """Where the bearer tokens come from (calling it gives one: sensitive, never show it)."""
        return self._api.token_source

    @property
    def stats(self) -> ManagementStats:
        return self._api.stats

    def close(self) -> None:
        """Close the connection pool (again is harmless)."""
        self._api.pool.close()

    @property
    def closed(self) -> bool:
        return self._api.pool.is_closed

    def __enter__(self) -> ManagementClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ManagementClient {self.tenant.issuer} requests={self.stats.requests}>"

    # -- users -----------------------------------------------------------------------------------

    def get_user(self, user_id: str, *, fields: list[str] | None = None) -> dict[str, Any]:
        """``GET /users/{id}``: the whole profile, identities included."""
        params = {"fields": ",".join(fields), "include_fields": "true"} if fields else None
        return self._api.object("GET", f"/users/{path_id(user_id)}", safe=True, params=params)

    def users_by_email(self, email: str) -> list[dict[str, Any]]:
        """``GET /users-by-email``: immediately consistent, unlike search, so the one to link with."""
        return self._api.array("GET", "/users-by-email", safe=True, params={"email": email})

    def list_users(
        self,
        q: str | None = None,
        *,
        per_page: int = 100,
        fields: list[str] | None = None,
        sort: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every user matching ``q`` (Lucene syntax), page after page, up to :data:`SEARCH_CAP`.

        Past 1000 results Auth0 refuses to page; a warning is logged and the iteration stops
        there: use ``create_users_export`` for a whole large tenant.
        """
        per_page = max(1, min(per_page, 100))
        page = 0
        seen = 0
        while True:
            users, total = self.users_page(q, page=page, per_page=per_page, fields=fields, sort=sort)
            yield from users
            seen += len(users)
            page += 1
            if not users or len(users) < per_page or (total is not None and seen >= total):
                return
            if page * per_page >= SEARCH_CAP:
                if total is None or total > seen:
                    logger.warning("stopped at %d users: Auth0 pages only the first %d results; "
                                   "use create_users_export() for the rest", seen, SEARCH_CAP)
                return

    def users_page(
        self,
        q: str | None = None,
        *,
        page: int = 0,
        per_page: int = 100,
        fields: list[str] | None = None,
        sort: str | None = None,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of ``GET /users`` (``include_totals``): its users, and how many match ``q`` in
        all (None if the tenant did not say). Auth0 refuses a page reaching past the first 1000."""
        params: dict[str, Any] = {"page": page, "per_page": per_page, "include_totals": "true"}
        if q:
            params.update(q=q, search_engine="v3")
        if fields:
            params.update(fields=",".join(fields), include_fields="true")
        if sort:
            params["sort"] = sort
        body = self._api.call("GET", "/users", safe=True, params=params)
        users = body.get("users", []) if isinstance(body, dict) else body
        total = body.get("total") if isinstance(body, dict) else None
        if not isinstance(users, list) or not all(isinstance(u, dict) for u in users) \
                or not (total is None or (isinstance(total, int) and not isinstance(total, bool))):
            raise TenantError("GET /users: the tenant's answer is not a page of users")
        return users, total

    def count_users(self, q: str | None = None) -> int:
        """How many users match ``q`` (``include_totals``), counting past :data:`SEARCH_CAP`."""
        params: dict[str, Any] = {"page": 0, "per_page": 1, "include_totals": "true"}
        if q:
            params.update(q=q, search_engine="v3")
        body = self._api.object("GET", "/users", safe=True, params=params)
        total = body.get("total")
        if not isinstance(total, int) or isinstance(total, bool):
            raise TenantError("GET /users: the tenant's answer has no numeric total")
        return total

    def create_user(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /users`` (not retried: a second attempt could create a second user)."""
        return self._api.object("POST", "/users", safe=False, json=dict(body))

    def update_user(self, user_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``PATCH /users/{id}``; metadata objects are merged by the tenant, key by key."""
        return self._api.object("PATCH", f"/users/{path_id(user_id)}", safe=False, json=dict(body))

    def update_user_metadata(self, user_id: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``metadata`` into the user's ``user_metadata`` (a key set to None is removed)."""
        return self.update_user(user_id, {"user_metadata": dict(metadata)})

    # -- link and unlink -------------------------------------------------------------------------

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
        body, target = _link_body(link_with, provider, user_id, connection_id)
        path = f"/users/{path_id(primary_id)}/identities"

        def recover(error: Auth0Error, attempt: int) -> list[dict[str, Any]] | None:
            # Any TenantError (a 5xx included) leaves the outcome unknown; others are the tenant's no.
            if not isinstance(error, TenantError) or target is None or attempt >= self._api.max_retries:
                raise error
            logger.debug("link failed (%s); checking whether it happened", type(error).__name__)
            try:
                profile = self.get_user(primary_id)
            except Auth0Error:  # the error to show is the link's: the check only failed to tell
                error.add_note(f"whether the link happened is unknown: reading {primary_id} failed too")
                raise error from None
            # Found: done. Known not to have happened: sending it again is now safe.
            return list(profile.get("identities") or []) if holds_identity(profile, *target) else None

        return self._api.retrying(lambda: self._api.array("POST", path, safe=False, json=body), recover,
                                  request=("POST", path))

    def unlink(self, primary_id: str, provider: str, user_id: str) -> list[dict[str, Any]]:
        """``DELETE /users/{id}/identities/{provider}/{user_id}``; returns the remaining identities.

        Retried after a 5xx or a dropped connection; a retry that finds the identity already gone
        counts as done (the first attempt did it).
        """
        path = f"/users/{path_id(primary_id)}/identities/{path_id(provider)}/{path_id(user_id)}"

        def recover(error: Auth0Error, attempt: int) -> list[dict[str, Any]] | None:
            if isinstance(error, TenantError) and attempt < self._api.max_retries:
                return None
            if isinstance(error, BadRequest | NotFound) and attempt > 0:
                profile = self.get_user(primary_id)
                if not holds_identity(profile, provider, user_id):
                    return list(profile.get("identities") or [])
            raise error

        result = self._api.retrying(lambda: self._api.call("DELETE", path, safe=False), recover,
                                    request=("DELETE", path))
        return result if isinstance(result, list) else []

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
        return self._api.object("POST", "/jobs/users-exports", safe=False, json=body)

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self._api.object("GET", f"/jobs/{path_id(job_id)}", safe=True)

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
        """The job's file as it streams. Auth0's link lives 60 s: refused once (an expired
        pre-signed URL answers 403, the sandbox's 404), the job is asked again for a fresh one."""
        location = _location_of(job)
        for last_try in (False, True):
            headers = {}
            # Auth0 hands out a pre-signed URL on another host: the bearer token goes only to the tenant.
            if urlsplit(location)[:2] == urlsplit(self.tenant.base_url)[:2]:
                headers["Authorization"] = f"Bearer {self.token_source()}"
            try:
                with hidden_from_logs(location), \
                        self._api.pool.stream("GET", location, headers=headers) as response:
                    if response.status_code == 200:
                        yield from response.iter_bytes()
                        return
                    response.read()
                    if last_try or response.status_code not in (403, 404) or not job.get("id"):
                        self._api.decode(response)
                        raise TenantError(f"the export download answered HTTP {response.status_code}")
            except httpx2.TransportError as exc:
                raise TenantError(f"the export download failed ({type(exc).__name__})") from None
            location = _location_of(self.get_job(str(job["id"])))

    def download_export(self, job: Mapping[str, Any], dest: str | Path | None = None) -> Path:
        """Save a completed export job's file (as the tenant serves it: gzipped) and return its path.
        A link past its lifetime (60 s on Auth0) is renewed once by asking the job again. The file
        holds every user's email: created 0600, never through a symlink, a looser one tightened."""
        path = Path(dest) if dest is not None else Path(f"{job.get('id', 'users-export')}.json.gz")
        with open_private(path, "wb") as out:
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


def _location_of(job: Mapping[str, Any]) -> str:
    location = job.get("location")
    if not isinstance(location, str) or not location:
        raise JobFailed(f"job {job.get('id')} has no location to download (status {job.get('status')!r})")
    return location


def _link_body(link_with: str | None, provider: str | None, user_id: str | None,
               connection_id: str | None) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """The body of a link request, and the ``(provider, user_id)`` the primary holds once it is
    done (None when a ``link_with`` token names no such identity)."""
    if (link_with is None) == (provider is None and user_id is None):
        raise ValueError("pass either link_with, or provider and user_id")
    if link_with is not None:
        sub = unverified_claims(link_with).get("sub")
        target = tuple(str(sub).split("|", 1)) if isinstance(sub, str) and "|" in sub else None
        return {"link_with": link_with}, (target[0], target[1]) if target else None
    if not provider or not user_id:
        raise ValueError("provider and user_id are both needed")
    body = {"provider": provider, "user_id": user_id}
    if connection_id:
        body["connection_id"] = connection_id
    # Auth0 accepts the full "provider|id" as user_id too; the identity holds the part after |.
    bare = user_id.split("|", 1)[1] if user_id.startswith(provider + "|") else user_id
    return body, (provider, bare)
