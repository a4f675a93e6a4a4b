"""Users-export jobs over HTTP: the file holds exactly every user, in NDJSON or CSV, gzipped."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import time
from typing import Any

import httpx2
import pytest
from test_sandbox_management import assert_error, enc

from linking_toolkit.sandbox import Sandbox

USERS = 3000


def add_users(sandbox: Sandbox, n: int) -> None:
    """``n`` database users with metadata, inserted as the seed would."""
    ctx = sandbox.context
    assert ctx is not None
    with ctx.store.transaction() as db:
        for i in range(n):
            ctx.store.insert_user(
                db, provider="auth0", user_id=f"{i:024x}", connection="Username-Password-Authentication",
                is_social=False, created_at="2026-01-01T00:00:00.000Z",
                profile={"email": f"user{i}@example.org", "email_verified": i % 2 == 0, "name": f"User {i}"},
                user_metadata={"n": i}, app_metadata={"plan": "free"} if i % 3 == 0 else None,
            )


def run_export(api: httpx2.Client, body: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """Start a job, poll it like a client would, download the file without a bearer."""
    started = api.post("/jobs/users-exports", json=body)
    assert started.status_code == 200, started.text
    job = started.json()
    assert job["status"] == "pending" and job["type"] == "users_export" and job["id"].startswith("job_")
    for _ in range(600):
        status = api.get(f"/jobs/{job['id']}").json()
        assert status["status"] in ("pending", "processing", "completed"), status
        assert 0 <= status["percentage_done"] <= 100
        if status["status"] == "completed":
            break
        assert "location" not in status
        time.sleep(0.05)
    assert status["status"] == "completed"
    download = httpx2.get(status["location"])  # a signed URL: no Authorization header
    assert download.status_code == 200
    return status, gzip.decompress(download.content)


def all_user_ids(sandbox: Sandbox) -> set[str]:
    ctx = sandbox.context
    assert ctx is not None
    with ctx.store.read() as db:
        return {row[0] for row in db.execute("SELECT user_id FROM users")}


def test_json_export_holds_exactly_every_user(sandbox: Sandbox, api: httpx2.Client) -> None:
    add_users(sandbox, USERS)
    ada = sandbox.demo_user("ada@example.com")["user_id"]
    google = next(u["user_id"] for u in api.get("/users-by-email", params={"email": "ada@example.com"}).json()
                  if u["user_id"].startswith("google-oauth2|"))
    assert api.post(f"/users/{enc(ada)}/identities",
                    json={"provider": "google-oauth2", "user_id": google}).status_code == 201
    status, data = run_export(api, {"format": "json"})
    assert status["format"] == "json" and status["location"].endswith(".json.gz")
    records = [json.loads(line) for line in data.decode().splitlines()]
    ids = [r["user_id"] for r in records]
    assert len(ids) == len(set(ids)) == USERS + 9  # ten demo users, one of them linked into another
    assert set(ids) == all_user_ids(sandbox)
    by_id = {r["user_id"]: r for r in records}
    linked = by_id[ada]
    assert [i["provider"] for i in linked["identities"]] == ["auth0", "google-oauth2"]
    assert linked["identities"][1] == {"connection": "google-oauth2", "provider": "google-oauth2",
                                       "user_id": google.split("|")[1], "isSocial": True}
    one = by_id["auth0|" + f"{3:024x}"]
    assert one["email"] == "user3@example.org" and one["email_verified"] is False
    assert one["user_metadata"] == {"n": 3} and one["app_metadata"] == {"plan": "free"}
    assert one["created_at"] == "2026-01-01T00:00:00.000Z" and one["logins_count"] == 0
    assert "last_login" not in one  # absent attributes are left out, not null


def test_csv_export_with_fields_connection_and_limit(sandbox: Sandbox, api: httpx2.Client) -> None:
    add_users(sandbox, 50)
    fields = [{"name": "user_id", "export_as": "id"}, {"name": "email"},
              {"name": "identities[0].connection", "export_as": "connection"},
              {"name": "user_metadata"}, {"name": "email_verified"}]
    _, data = run_export(api, {"format": "csv", "fields": fields})
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows[0] == ["id", "email", "connection", "user_metadata", "email_verified"]
    assert {r[0] for r in rows[1:]} == all_user_ids(sandbox) and len(rows) == 1 + 50 + 10
    row = next(r for r in rows if r[0] == "auth0|" + f"{4:024x}")
    assert row[1:] == ["user4@example.org", "Username-Password-Authentication", '{"n":4}', "true"]

    _, github = run_export(api, {"format": "json", "connection_id": sandbox.connections["github"]})
    assert [json.loads(line)["email"] for line in github.decode().splitlines()] == ["grace@example.com"]

    _, limited = run_export(api, {"format": "json", "limit": 7,
                                  "fields": [{"name": "email", "export_as": "mail"}]})
    lines = [json.loads(line) for line in limited.decode().splitlines()]
    assert len(lines) == 7 and all(set(line) == {"mail"} for line in lines)

    _, default_csv = run_export(api, {})
    header = next(csv.reader(io.StringIO(default_csv.decode())))
    assert header[0] == "user_id" and "email" in header


def test_export_errors(sandbox: Sandbox, api: httpx2.Client) -> None:
    assert_error(api.post("/jobs/users-exports", json={"format": "xml"}), 400, error_code="invalid_body")
    assert_error(api.post("/jobs/users-exports", json={"connection_id": "github"}), 400,
                 error_code="invalid_body")
    assert_error(api.post("/jobs/users-exports", json={"connection_id": "con_0000000000000000"}), 400,
                 "The connection does not exist.")
    assert_error(api.post("/jobs/users-exports", json={"fields": [{"export_as": "x"}]}), 400)
    assert_error(api.post("/jobs/users-exports", json={"fields": [{"name": "a", "as": "b"}]}), 400)
    assert_error(api.post("/jobs/users-exports", json={"limit": 0}), 400)
    assert_error(api.post("/jobs/users-exports", json={"bogus": True}), 400,
                 "Payload validation error: 'Additional properties not allowed: bogus'.")
    assert_error(api.get("/jobs/job_0000000000000000"), 404, error_code="inexistent_job")
    status, _ = run_export(api, {"format": "json"})
    wrong = status["location"].rsplit("/", 1)[0] + "/not-the-token.json.gz"
    assert httpx2.get(wrong).status_code == 404
    assert httpx2.get(status["location"].replace(".json.gz", ".csv.gz")).status_code == 404


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_files_are_removed_when_the_sandbox_stops(fmt: str) -> None:
    with Sandbox(seed=3) as sandbox:
        ctx = sandbox.context
        assert ctx is not None
        from linking_toolkit.sandbox.tokens import mint_access_token

        token = mint_access_token(ctx, sub="x@clients", client_id=sandbox.m2m_client_id, scope="read:users",
                                  audience=sandbox.management_audience)
        with httpx2.Client(base_url=sandbox.base_url + "/api/v2",
                           headers={"Authorization": f"Bearer {token}"}) as api:
            run_export(api, {"format": fmt})
        directory = ctx.extras["exports"].directory
        assert any(name.endswith(f".{fmt}.gz") for name in os.listdir(directory))
    assert not os.path.exists(directory)


def test_export_of_a_synthetic_tenant_matches_the_database() -> None:
    """A seeded synthetic tenant (with linked users): every user once, every identity in place."""
    with Sandbox(seed=5, users=2500) as sandbox:
        ctx = sandbox.context
        assert ctx is not None
        response = httpx2.post(sandbox.base_url + "/oauth/token", json={
            "grant_type": "client_credentials", "client_id": sandbox.m2m_client_id,
            "client_secret": sandbox.m2m_client_secret, "audience": sandbox.management_audience})
        token = response.json()["access_token"]
        with httpx2.Client(base_url=sandbox.base_url + "/api/v2",
                           headers={"Authorization": f"Bearer {token}"}) as api:
            _, data = run_export(api, {"format": "json"})
        records = {r["user_id"]: r for r in map(json.loads, data.decode().splitlines())}
        with ctx.store.read() as db:
            expected: dict[str, list[tuple[str, str]]] = {}
            for row in db.execute("SELECT owner, provider, user_id FROM identities ORDER BY owner, position"):
                expected.setdefault(row["owner"], []).append((row["provider"], row["user_id"]))
        assert len(records) == len(expected) >= 2500
        assert {uid: [(i["provider"], i["user_id"]) for i in r["identities"]]
                for uid, r in records.items()} == expected
        assert any(len(ids) > 1 for ids in expected.values())  # the tenant has linked users
