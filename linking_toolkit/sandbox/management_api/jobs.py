"""Management API routes on users-export jobs: start one, read its progress, download its file.

The download lives outside ``/api/v2`` and takes no bearer, like Auth0's pre-signed URL: the
signature in its query is the credential. Each ``GET /jobs/{id}`` of a completed job signs a fresh
link that lives ``export_link_seconds`` (Auth0's 60 s); past that, it answers as a bad link does.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
from typing import Any, NoReturn

from flask import Response, request, send_file

from ..context import TenantContext, current_tenant
from ..jobs import EXPORT_FORMATS, download_path, start_export
from ..store import now_iso
from .auth import authorized_caller
from .blueprint import management, route
from .errors import ApiError, bad_body, json_response
from .validation import check_connection_id, path_segments, read_body

__all__ = ["EXPORTS_NOT_IN_PLAN", "create_export", "download_export", "get_job", "refuse_export",
           "signed_location"]

EXPORT_SCHEMA: dict[str, tuple[str, ...]] = {
    "connection_id": ("string",), "format": ("string",), "limit": ("integer",), "fields": ("array",),
}


@route("/jobs/users-exports", methods=["POST"])
def create_export() -> Response:
    """``POST /jobs/users-exports``: a background job writing a gzipped file (NDJSON or CSV).

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> job = api.post('jobs/users-exports', json={'format': 'json'}).json()    # doctest: +SKIP
    >>> job['type'], job['status']    # doctest: +SKIP
    ('users_export', 'pending')
    """
    authorized_caller("post_export", any_user=("read:users",))
    if not current_tenant().export_jobs:
        refuse_export()
    body = read_body(EXPORT_SCHEMA)
    fmt = body.get("format", "csv")
    if fmt not in EXPORT_FORMATS:
        bad_body(f"Payload validation error: 'Invalid value \"{fmt[:20]}\" for enum' on property format.")
    limit = body.get("limit")
    if limit is not None and limit < 1:
        bad_body("Payload validation error: 'Value 0 is less than minimum 1' on property limit.")
    fields = body.get("fields")
    if fields is not None:
        for item in fields:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
                bad_body("Payload validation error: 'Missing required property: name' on property fields.")
            extra = set(item) - {"name", "export_as"}
            if extra:
                bad_body(f"Payload validation error: 'Additional properties not allowed: {','.join(extra)}'.")
            if any(not isinstance(v, str) or len(v) > 100 for v in item.values()):
                bad_body("Payload validation error: 'Expected type string' on property fields.")
    store = current_tenant().store
    connection = None
    if "connection_id" in body:
        check_connection_id(body["connection_id"])
        connection = store.connection_by_id(body["connection_id"])
        if connection is None:
            raise ApiError(400, "The connection does not exist.", "inexistent_connection")
    job = {
        "id": "job_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(16)),
        "type": "users_export", "status": "pending", "format": fmt, "created_at": now_iso(),
        "connection_id": connection["id"] if connection else None, "fields": fields,
        "limit": limit,
    }
    store.create_job(job)
    start_export(current_tenant(), job, connection["name"] if connection else None)
    out: dict[str, Any] = {"type": job["type"], "status": job["status"]}
    if connection:
        out["connection_id"] = connection["id"]
    # The OAS requires ``connection``: the connection's name, or "" when every user is exported.
    out.update(connection=connection["name"] if connection else "", format=fmt)
    if limit is not None:
        out["limit"] = limit
    if fields is not None:
        out["fields"] = fields
    out.update(created_at=job["created_at"], id=job["id"])
    return json_response(out)


# What Auth0 answers a plan without bulk user exports (its docs list them as not on the Free
# plan). No recorded answer of POST /jobs/users-exports on such a plan could be found (searched:
# Auth0's docs, community pages, the issues of auth0-cli, auth0-deploy-cli, terraform-provider-auth0
# and the SDKs). Auth0 refuses other features a plan lacks with 403 Forbidden and a message naming
# the subscription: "Please upgrade your subscription to enable Tenant ACL Management."
# (auth0/auth0-cli#1196), "This feature is not enabled for this tenant." (terraform-provider-auth0
# #1362). So: a 403 in that wording; the errorCode is Auth0's for an operation a tenant does not
# support (it answers it for a connection that cannot create users) and is our choice here.
EXPORTS_NOT_IN_PLAN = "Please upgrade your subscription to enable bulk user exports."


def refuse_export() -> NoReturn:
    """403 before anything is read or created, as a plan without export jobs answers.

    Examples
    --------
    With ``api`` on the Management API of a ``Sandbox(seed=1, export_jobs=False)``:

    >>> answer = api.post('jobs/users-exports', json={'format': 'json'})    # doctest: +SKIP
    >>> answer.status_code, answer.json()['message']                         # doctest: +SKIP
    (403, 'Please upgrade your subscription to enable bulk user exports.')
    """
    raise ApiError(403, EXPORTS_NOT_IN_PLAN, "operation_not_supported")


@route("/jobs/<path:_rest>", methods=["GET"])
def get_job(_rest: str) -> Response:
    """``GET /jobs/{id}``: status, progress, and the download ``location`` once completed.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> job = api.post('jobs/users-exports', json={'format': 'json'}).json()    # doctest: +SKIP
    >>> api.get(f"jobs/{job['id']}").json()['type']    # doctest: +SKIP
    'users_export'
    """
    segments = path_segments()
    if len(segments) != 2 or not segments[1]:
        raise ApiError(404, "Not Found")
    authorized_caller("get_job", any_user=("create:users", "read:users"))
    job = current_tenant().store.get_job(segments[1])
    if job is None:
        raise ApiError(404, "The job does not exist.", "inexistent_job")
    out: dict[str, Any] = {"type": job["type"], "status": job["status"], "created_at": job["created_at"],
                           "id": job["id"]}
    if job["connection_id"]:
        out["connection_id"] = job["connection_id"]
    out["format"] = job["format"]
    out["percentage_done"] = job["percentage_done"]
    out["time_left_seconds"] = job["time_left_seconds"] or 0
    if job["status"] == "completed":
        out["location"] = signed_location(current_tenant(), job)
    if job["status"] == "failed":
        out["status_details"] = "The export failed."
    return json_response(out)


# -- the export download: outside /api/v2 and without a bearer, like Auth0's signed URL --------------

def signed_location(ctx: TenantContext, job: dict[str, Any]) -> str:
    """A download link for ``job``'s file, valid ``export_link_seconds`` from now.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> import time    # doctest: +SKIP
    >>> job = api.post('jobs/users-exports', json={'format': 'json'}).json()    # doctest: +SKIP
    >>> while (done := api.get(f"jobs/{job['id']}").json())['status'] != 'completed':  # doctest: +SKIP
    ...     time.sleep(0.1)
    >>> done['location'].startswith(sandbox.base_url)    # doctest: +SKIP
    True
    """
    name = f"{job['id']}.{job['format']}.gz"
    expires = int((time.time() + ctx.export_link_seconds) * 1000)  # ms: a 1 s lifetime stays 1 s
    return f"{ctx.base_url}/exports/{name}?expires={expires}&signature={_signature(ctx, name, str(expires))}"


def _signature(ctx: TenantContext, name: str, expires: str) -> str:
    return hmac.new(ctx.link_key, f"{name}\n{expires}".encode(), hashlib.sha256).hexdigest()


def download_export(name: str) -> Response:
    """Serve a completed export to a link signed here and not yet expired; any other link (a
    wrong or expired signature, another job or format) is a 404 with no file, as before.

    Examples
    --------
    With ``sandbox`` a running :class:`~linking_toolkit.sandbox.Sandbox` (``seed=1``) and ``api`` an
    ``httpx2.Client`` on its ``management_audience`` holding the M2M app's access token:

    >>> api.get('jobs/users-exports/none.json.gz').status_code    # doctest: +SKIP
    404
    """
    ctx = current_tenant()
    expires = request.args.get("expires", "")
    signed = hmac.compare_digest(_signature(ctx, name, expires).encode(),
                                 request.args.get("signature", "").encode())
    live = signed and expires.isdigit() and int(expires) > time.time() * 1000
    job_id, _, ext = name.partition(".")
    job = ctx.store.get_job(job_id) if live and job_id else None
    path = download_path(ctx, job) if job else None
    if job is None or path is None or ext != f"{job['format']}.gz":
        return ApiError(404, "Not Found").response()
    return send_file(path, mimetype="application/gzip", as_attachment=True,
                     download_name=f"{job['id']}.{job['format']}.gz")


@management.record_once
def _register_download(state: Any) -> None:
    # The route lives at the app's root (the blueprint's own prefix is /api/v2).
    state.app.add_url_rule("/exports/<name>", "management_export_download", download_export)
