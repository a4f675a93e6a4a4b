"""The audit on its engine: export files read by DuckDB (NDJSON and Auth0's escaped CSV), the same
frames as a plain reading of the records, clear errors for broken files, SQL over an audit, and an
audit saved and reopened."""

from __future__ import annotations

import gzip
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from test_audit_rules import user

from linking_toolkit import ManagementClient, audit_export_file, link_candidates
from linking_toolkit.audit import AUDIT_FIELDS, Audit, audit_records, normalise_email
from linking_toolkit.sandbox import Sandbox

IDENTITY_FIELDS = [f"identities[{i}].{field}" for i in range(3)
                   for field in ("connection", "provider", "user_id", "isSocial")]


@pytest.fixture(scope="module")
def tenant_2000() -> Iterator[tuple[Sandbox, ManagementClient]]:
    """A synthetic tenant of 2 000 users besides the demo people, read only."""
    from linking_toolkit import connect

    with Sandbox(seed=5, users=2000) as sandbox, connect(sandbox=sandbox) as tenant, \
            ManagementClient.from_client_credentials(tenant) as admin:
        yield sandbox, admin


def export(admin: ManagementClient, path: Path, fmt: str, fields: list[str]) -> Path:
    job = admin.create_users_export(format=fmt, fields=fields)
    return admin.download_export(admin.wait_for_job(job["id"], poll=0.05), path)


def plain_rows(path: Path) -> tuple[list[tuple], list[tuple]]:
    """What the frames must hold, read from the NDJSON lines with nothing but json and Python."""
    users, identities = [], []
    for line in gzip.open(path, "rt", encoding="utf-8"):
        r = json.loads(line)
        ids = r.get("identities") or []
        users.append((r["user_id"], normalise_email(r.get("email")), r.get("email"), r.get("email_verified"),
                      r.get("logins_count") or 0, len(ids), bool(r.get("blocked")),
                      ids[0]["connection"] if ids else None))
        identities += [(r["user_id"], i["connection"], i["provider"], str(i["user_id"]), n == 0,
                        bool(i.get("isSocial"))) for n, i in enumerate(ids)]
    return users, identities


def frame_rows(result: Audit) -> tuple[list[tuple], list[tuple]]:
    u, i = result.users, result.identities

    def values(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
        out = frame[columns].astype(object)
        return list(out.where(out.notna(), None).itertuples(index=False, name=None))

    return (values(u, ["user_id", "email", "email_raw", "email_verified", "logins_count", "identities",
                       "blocked", "connection"]),
            values(i, ["owner", "connection", "provider", "user_id", "is_primary", "is_social"]))


def test_the_engine_reads_an_export_as_a_plain_reading_of_its_records(
        tenant_2000: tuple[Sandbox, ManagementClient], tmp_path: Path) -> None:
    _, admin = tenant_2000
    path = export(admin, tmp_path / "users.json.gz", "json", AUDIT_FIELDS)
    result = audit_export_file(path)
    assert frame_rows(result) == plain_rows(path)
    assert len(result.users) == admin.count_users()
    created = [json.loads(line).get("created_at") for line in gzip.open(path, "rt")]
    assert result.users["created_at"].tolist() == pd.to_datetime(created, utc=True).tolist()


def test_csv_and_ndjson_exports_of_one_tenant_give_equal_audits(
        tenant_2000: tuple[Sandbox, ManagementClient], tmp_path: Path) -> None:
    _, admin = tenant_2000
    ndjson = audit_export_file(export(admin, tmp_path / "users.json.gz", "json", AUDIT_FIELDS))
    csv_path = export(admin, tmp_path / "users.csv.gz", "csv", AUDIT_FIELDS)
    first_row = gzip.open(csv_path, "rt").read().splitlines()[1]
    assert first_row.startswith("\"'")  # Auth0's escaping is there: "'auth0|...",...
    from_csv = audit_export_file(csv_path)
    assert from_csv.users.equals(ndjson.users) and from_csv.identities.equals(ndjson.identities)
    # Auth0 exports no whole object in CSV: identities named field by field give the same audit
    by_field = audit_export_file(export(admin, tmp_path / "fields.csv.gz", "csv",
                                        [f for f in AUDIT_FIELDS if f != "identities"] + IDENTITY_FIELDS))
    assert by_field.users.equals(ndjson.users) and by_field.identities.equals(ndjson.identities)
    assert link_candidates(from_csv).equals(link_candidates(ndjson))


UNICODE_EMAILS = [
    "Ada@Example.COM", " ZOE\u0308@x.org", "ada@stra\u00dfe.de", "\u0130stanbul@x.org",
    "\u03a3\u039f\u03a3@x.gr", "\uff41\uff44\uff41@example.com", "\u00a0ada@x.org\u2003",
    "\tada@x.org\x1f", "\u212bngstr\u00f6m@x.se",
    "", "  ", None,
]


def test_the_engine_normalises_every_email_as_normalise_email_does(tmp_path: Path) -> None:
    records = [user(f"auth0|{i}", e) for i, e in enumerate(UNICODE_EMAILS)]
    path = tmp_path / "export.json"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    for result in (audit_records(records), audit_export_file(path)):
        got = result.users["email"].astype(object)
        assert got.where(got.notna(), None).tolist() == [normalise_email(e) for e in UNICODE_EMAILS]


def write(path: Path, text: str, *, gzipped: bool = False) -> Path:
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gzipped else data)
    return path


@pytest.mark.parametrize(("content", "said"), [
    ('{"user_id": "auth0|1"}\n{"user_id": "auth0|2", "email": }\n', r"line 2 is not JSON"),
    ('{"user_id": "auth0|1"}\n{"user_id": "auth0|2", "ema',
     r"line 2 is not JSON \(the file ends inside it\)"),
    ('{"user_id": "auth0|1"}\n[1, 2]\n', r"line 2 is not a user record"),
    ('{"user_id": "auth0|1"}\n{"email": "a@x.org"}\n', r"a record has no user_id"),
], ids=["bad-json", "cut-short", "not-an-object", "no-user-id"])
def test_a_broken_export_is_a_clear_error_naming_the_line(tmp_path: Path, content: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        audit_export_file(write(tmp_path / "export.json", content))


def test_a_gzip_file_cut_short_is_a_clear_error(tmp_path: Path) -> None:
    data = gzip.compress(b"".join(json.dumps(user(f"auth0|{i}", f"p{i}@x.org")).encode() + b"\n"
                                  for i in range(3000)))
    path = tmp_path / "export.json.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"the gzip stream is cut short after line \d+"):
        audit_export_file(path)
    with pytest.raises(FileNotFoundError, match="no export file"):
        audit_export_file(tmp_path / "missing.json.gz")


def test_sql_answers_an_analysts_own_question_over_the_frames_and_candidates() -> None:
    result = audit_records([user("auth0|1", "a@x.org"), user("google-oauth2|2", "A@x.org"),
                            user("github|3", "b@x.org", linked=[{"connection": "facebook",
                                                                  "provider": "facebook", "user_id": "9"}])])
    linked = result.sql("""select i.connection, u.email from identities i join users u on u.user_id = i.owner
                           where not i.is_primary""")
    assert linked.to_dict("records") == [{"connection": "facebook", "email": "b@x.org"}]
    groups = result.sql("select email, users, primary_id, risk from candidates")
    assert groups.to_dict("records") == [{"email": "a@x.org", "users": 2, "primary_id": "auth0|1",
                                          "risk": "safe"}]
    with pytest.raises(Exception, match="nowhere"):
        result.sql("select * from nowhere")


def test_a_saved_audit_reopens_equal_and_is_readable_by_its_owner_only(
        tenant_2000: tuple[Sandbox, ManagementClient], tmp_path: Path) -> None:
    _, admin = tenant_2000
    result = audit_export_file(export(admin, tmp_path / "users.json.gz", "json", AUDIT_FIELDS),
                               issuer="https://example.auth0.com/")
    saved = result.save(tmp_path / "tenant.audit")
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tenant.audit", "users.json.gz"]  # nothing left
    again = Audit.open(saved)
    assert again.users.equals(result.users) and again.identities.equals(result.identities)
    assert (again.source, again.issuer, again.taken_at) == (result.source, result.issuer, result.taken_at)
    assert link_candidates(again).equals(link_candidates(result))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        result.save(saved)
    with pytest.raises(ValueError, match=r"not an audit saved by Audit\.save"):
        Audit.open(write(tmp_path / "other.audit", "not a database"))
