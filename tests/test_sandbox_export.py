"""Users-export jobs over HTTP: the file holds exactly every user, in NDJSON or CSV, gzipped."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from test_sandbox_management import assert_error, enc

from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.jobs import NdjsonColumns, NdjsonFieldsInPython, NdjsonFieldsInSql, record_writer

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


def run_export(api: httpx2.Client, body: dict[str, Any], *,
               form: bool = False) -> tuple[dict[str, Any], bytes]:
    """Start a job (with a JSON body, or a form-encoded one), poll it like a client would, download
    the file without a bearer."""
    started = api.post("/jobs/users-exports", **{"data" if form else "json": body})
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


def link_ada_google(sandbox: Sandbox, api: httpx2.Client) -> tuple[str, str]:
    """Link the demo user Ada's Google account into her database one; returns both full ids."""
    ada = sandbox.demo_user("ada@example.com")["user_id"]
    google = next(u["user_id"] for u in api.get("/users-by-email", params={"email": "ada@example.com"}).json()
                  if u["user_id"].startswith("google-oauth2|"))
    assert api.post(f"/users/{enc(ada)}/identities",
                    json={"provider": "google-oauth2", "user_id": google}).status_code == 201
    return ada, google


def all_user_ids(sandbox: Sandbox) -> set[str]:
    ctx = sandbox.context
    assert ctx is not None
    with ctx.store.read() as db:
        return {row[0] for row in db.execute("SELECT user_id FROM users")}


def test_json_export_holds_exactly_every_user(sandbox: Sandbox, api: httpx2.Client) -> None:
    add_users(sandbox, USERS)
    ada, google = link_ada_google(sandbox, api)
    status, data = run_export(api, {"format": "json"})
    assert status["format"] == "json" and urlsplit(status["location"]).path.endswith(".json.gz")
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



def test_export_record_is_the_users_document_nested_nulls_too(sandbox: Sandbox, api: httpx2.Client) -> None:
    """Nulls nested in metadata are exported as GET /users/{id} shows them; absent attributes are not."""
    add_users(sandbox, 3)  # never logged in: no last_login, no nickname
    ctx = sandbox.context
    assert ctx is not None
    with ctx.store.transaction() as db:  # a user without an email (a social account that hides it)
        no_email = ctx.store.insert_user(db, provider="github", user_id="424242", connection="github",
                                         is_social=True, created_at="2026-01-02T00:00:00.000Z",
                                         profile={"name": "No Email", "nickname": "noemail"})
    grace = sandbox.demo_user("grace@example.com")["user_id"]
    user_metadata = {"prefs": {"theme": None, "font": "serif"}, "tags": [None, 1], "deep": {"a": {"b": None}}}
    app_metadata = {"flags": {"beta": None}, "plan": "pro"}
    changed = api.patch(f"/users/{enc(grace)}", json={"user_metadata": user_metadata,
                                                       "app_metadata": app_metadata})
    assert changed.status_code == 200, changed.text
    _, data = run_export(api, {"format": "json"})
    records = {r["user_id"]: r for r in map(json.loads, data.decode().splitlines())}

    record, body = records[grace], api.get(f"/users/{enc(grace)}").json()
    for key, sent in (("user_metadata", user_metadata), ("app_metadata", app_metadata)):
        assert record[key] == body[key]
        assert {k: record[key][k] for k in sent} == sent  # merged into Grace's metadata, nulls kept
    assert {k: v for k, v in record.items() if k in body} == {k: v for k, v in body.items() if k in record}
    assert set(body) <= set(record)  # nothing GET shows is missing from the export

    never = records["auth0|" + f"{1:024x}"]
    assert "last_login" not in never and "nickname" not in never and "blocked" not in never
    hidden = records[no_email]
    assert "email" not in hidden and "email_verified" not in hidden and hidden["nickname"] == "noemail"
    # No attribute is ever exported as a null: absent ones are left out.
    assert all(value is not None for r in records.values() for value in r.values())

def test_csv_export_with_fields_connection_and_limit(sandbox: Sandbox, api: httpx2.Client) -> None:
    add_users(sandbox, 50)
    fields = [{"name": "user_id", "export_as": "id"}, {"name": "email"},
              {"name": "identities[0].connection", "export_as": "connection"},
              {"name": "user_metadata"}, {"name": "email_verified"}]
    _, data = run_export(api, {"format": "csv", "fields": fields})
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows[0] == ["id", "email", "connection", "user_metadata", "email_verified"]
    # Auth0 escapes every string against formula injection: a leading ' inside double quotes
    assert {r[0] for r in rows[1:]} == {"'" + uid for uid in all_user_ids(sandbox)}
    assert len(rows) == 1 + 50 + 10
    row = next(r for r in rows if r[0] == "'auth0|" + f"{4:024x}")
    assert row[1:] == ["'user4@example.org", "'Username-Password-Authentication", "'" + '{"n":4}', "true"]
    line = next(line for line in data.decode().splitlines() if f"{4:024x}" in line)
    assert line.startswith('"' + "'auth0|") and line.endswith(',"' + "'" + '{""n"":4}",true')

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


def test_a_form_encoded_export_reads_its_limit_as_a_number(sandbox: Sandbox, api: httpx2.Client) -> None:
    add_users(sandbox, 20)
    started = api.post("/jobs/users-exports", data={"format": "json", "limit": "5"})
    assert started.status_code == 200, started.text
    assert started.json()["limit"] == 5
    _, data = run_export(api, {"format": "json", "limit": "5"}, form=True)
    assert len(data.decode().splitlines()) == 5
    assert_error(api.post("/jobs/users-exports", data={"limit": "five"}), 400,
                 "Payload validation error: 'Expected type integer but found type string' on property limit.",
                 "invalid_body")
    assert_error(api.post("/jobs/users-exports", data={"limit": "0"}), 400, error_code="invalid_body")
    assert_error(api.post("/jobs/users-exports", data={"fields": "email"}), 400,
                 "Payload validation error: 'Expected type array but found type string' on property fields.")


def test_an_expired_export_link_is_refused_and_the_job_gives_a_fresh_one() -> None:
    """Auth0's download link lives 60 s; here 1 s. Past it, the link answers as a wrong one does."""
    with Sandbox(seed=3, export_link_seconds=1) as sandbox, management_api(sandbox) as api:
        status, data = run_export(api, {"format": "json"})
        time.sleep(1.5)
        expired = httpx2.get(status["location"])
        assert_error(expired, 404, "Not Found")
        assert b"user_id" not in expired.content
        fresh = api.get(f"/jobs/{status['id']}").json()["location"]
        assert fresh != status["location"]
        again = httpx2.get(fresh)
        assert again.status_code == 200 and gzip.decompress(again.content) == data
        # The expiry is signed: a link whose expiry was pushed back is a wrong link.
        base, _, query = status["location"].partition("?")
        later = query.replace("expires=", "expires=9", 1)
        assert_error(httpx2.get(f"{base}?{later}"), 404)
        assert_error(httpx2.get(base), 404)


def test_the_export_link_lives_60_seconds_by_default(sandbox: Sandbox, api: httpx2.Client) -> None:
    status, _ = run_export(api, {"format": "json"})
    expires = int(parse_qs(urlsplit(status["location"]).query)["expires"][0])
    assert 55_000 < expires - time.time() * 1000 <= 60_000


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_files_are_removed_when_the_sandbox_stops(fmt: str) -> None:
    with Sandbox(seed=3) as sandbox:
        ctx = sandbox.context
        assert ctx is not None
        with management_api(sandbox) as api:
            run_export(api, {"format": fmt})
        assert ctx.exports is not None
        directory = ctx.exports.directory
        assert any(name.endswith(f".{fmt}.gz") for name in os.listdir(directory))
    assert not os.path.exists(directory)


def management_api(sandbox: Sandbox) -> httpx2.Client:
    """A Management API client of a sandbox started in the test (client credentials, as an analyst)."""
    response = httpx2.post(sandbox.base_url + "/oauth/token", json={
        "grant_type": "client_credentials", "client_id": sandbox.m2m_client_id,
        "client_secret": sandbox.m2m_client_secret, "audience": sandbox.management_audience})
    assert response.status_code == 200, response.text
    return httpx2.Client(base_url=sandbox.base_url + "/api/v2", timeout=30,
                         headers={"Authorization": f"Bearer {response.json()['access_token']}"})


def test_export_of_a_synthetic_tenant_matches_the_database() -> None:
    """A seeded synthetic tenant (with linked users): every user once, every identity in place."""
    with Sandbox(seed=5, users=2500) as sandbox:
        ctx = sandbox.context
        assert ctx is not None
        with management_api(sandbox) as api:
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


def reduced(record: dict[str, Any], fields: list[dict[str, str]]) -> dict[str, Any]:
    """``record`` cut down to ``fields`` as the export documents it: each under its ``export_as``,
    left out when absent or null, a repeated alias holding its last value."""
    out: dict[str, Any] = {}
    for field in fields:
        value: Any = record
        for step in field["name"].replace("[", ".[").split("."):
            if step.startswith("["):
                index = int(step[1:-1])
                value = value[index] if isinstance(value, list) and index < len(value) else None
            else:
                value = value.get(step) if isinstance(value, dict) else None
        if value is not None:
            out[field.get("export_as") or field["name"]] = value
    return out


# Aliases, nested paths (present, absent, a key on a list, an index on an object), a field no user has.
PICKED = [{"name": "user_id", "export_as": "id"}, {"name": "email"}, {"name": "email_verified"},
          {"name": "name", "export_as": "full name"}, {"name": "last_login"}, {"name": "blocked"},
          {"name": "logins_count"}, {"name": "identities"},
          {"name": "identities[0].connection", "export_as": "connection"}, {"name": "identities[1].provider"},
          {"name": "identities[0]"}, {"name": "identities.connection"}, {"name": "user_metadata"},
          {"name": "user_metadata.prefs.font"}, {"name": "user_metadata[0]"}, {"name": "app_metadata"},
          {"name": "user_metadata.tags[0]", "export_as": "a null"}, {"name": "user_metadata.tags[1]"},
          {"name": "no_such_field", "export_as": "nothing"}]
# Top-level attributes only (an audit's fields), every one SQLite builds from the columns, aliased too.
TOP_LEVEL = [{"name": name} for name in ("user_id", "email", "email_verified", "username", "name", "nickname",
                                          "given_name", "family_name", "picture", "created_at", "updated_at",
                                          "last_login", "logins_count", "blocked", "identities",
                                          "user_metadata")] + [{"name": "app_metadata", "export_as": "app"}]
# What SQLite's JSON paths cannot address exactly goes through Python: a repeated alias, a non-ASCII key.
IN_PYTHON = [{"name": "email", "export_as": "contact"}, {"name": "nickname", "export_as": "contact"},
             {"name": "user_metadata.café"}, {"name": "user_id"}]


def test_fields_export_is_the_full_export_reduced_to_those_fields() -> None:
    """Record by record, whichever way the fields are picked (SQLite or Python), in field order."""
    assert isinstance(record_writer({"format": "json", "fields": PICKED}), NdjsonFieldsInSql)
    assert isinstance(record_writer({"format": "json", "fields": TOP_LEVEL}), NdjsonColumns)
    assert isinstance(record_writer({"format": "json", "fields": IN_PYTHON}), NdjsonFieldsInPython)
    with Sandbox(seed=11, users=3000) as sandbox, management_api(sandbox) as api:
        add_users(sandbox, 20)  # users without last_login or nickname
        ada, _ = link_ada_google(sandbox, api)
        nested = {"prefs": {"theme": None, "font": "serif"}, "café": "crème", "tags": [None, 1]}
        changed = api.patch(f"/users/{enc(ada)}", json={"user_metadata": nested, "blocked": True})
        assert changed.status_code == 200, changed.text
        _, full = run_export(api, {"format": "json"})
        records = [json.loads(line) for line in full.decode().splitlines()]
        assert any("last_login" not in r for r in records) and any("last_login" in r for r in records)
        for fields in (TOP_LEVEL, PICKED, IN_PYTHON):
            _, data = run_export(api, {"format": "json", "fields": fields})
            lines = [json.loads(line) for line in data.decode().splitlines()]
            expected = [reduced(r, fields) for r in records]
            assert len(lines) == len(records) > 3000
            assert lines == expected and [list(line) for line in lines] == [list(e) for e in expected]
        linked = next(line for line in lines if line["user_id"] == ada)
        assert linked["user_metadata.café"] == "crème"
        picked = {line["id"]: line for line in map(json.loads, run_export(
            api, {"format": "json", "fields": PICKED})[1].decode().splitlines())}[ada]
        assert picked["blocked"] is True and picked["identities[1].provider"] == "google-oauth2"
        assert picked["user_metadata.prefs.font"] == "serif" and picked["user_metadata"]["tags"] == [None, 1]
        assert picked["user_metadata.tags[1]"] == 1 and "a null" not in picked
        # A null nested in user_metadata is the full record's, copied as is (no null stripping of its own).
        assert picked["user_metadata"] == next(r for r in records if r["user_id"] == ada)["user_metadata"]

        github = sandbox.connections["github"]
        _, data = run_export(api, {"format": "json", "connection_id": github, "fields": PICKED})
        assert [json.loads(line) for line in data.decode().splitlines()] == [
            reduced(r, PICKED) for r in records if any(i["connection"] == "github" for i in r["identities"])]
