"""What the CLI and the client write to disk: formulas guarded in CSV, files 0600, no symlink followed."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import httpx2
import pandas as pd
import pytest

from linking_toolkit.audit import Journal
from linking_toolkit.audit.csv_export import csv_select
from linking_toolkit.sandbox import Sandbox

HOSTILE_NAMES = ['=HYPERLINK("http://x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "'quoted"]


def _audit(sandbox: Sandbox, out: Path, *options: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AUTH0_DOMAIN": sandbox.base_url, "AUTH0_CLIENT_ID": sandbox.client_id,
           "AUTH0_M2M_CLIENT_ID": sandbox.m2m_client_id, "AUTH0_CLIENT_SECRET": sandbox.m2m_client_secret}
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "linking_toolkit", "audit", "--out", str(out), "--env-file",
         str(out.parent / "none.env"), "--no-progress", *options],
        env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def hostile_users(sandbox: Sandbox, api: httpx2.Client) -> dict[str, str]:
    """Users whose names a spreadsheet would run, made through the Management API: email -> name."""
    made = {}
    for number, name in enumerate(HOSTILE_NAMES):
        email = f"hostile{number}@example.net"
        response = api.post("/users", json={"connection": "Username-Password-Authentication", "email": email,
                                            "password": "Correct-Horse-9", "name": name})
        assert response.status_code == 201, response.text
        made[email] = name
    return made


def test_a_name_a_spreadsheet_would_run_is_guarded_in_csv_and_real_in_parquet(
        sandbox: Sandbox, hostile_users: dict[str, str], tmp_path: Path) -> None:
    run = _audit(sandbox, tmp_path / "csv")
    assert run.returncode == 0, run.stderr
    users_csv = tmp_path / "csv" / "users.csv"
    cells = pd.read_csv(users_csv, dtype=str, keep_default_na=False).set_index("email")["name"]
    for email, name in hostile_users.items():
        assert cells[email] == "'" + name  # Auth0's own guard: the spreadsheet shows text
    columns = list(pd.read_csv(users_csv, nrows=0).columns)
    query = (f"select {csv_select(columns, {'email': 'VARCHAR', 'name': 'VARCHAR'})} "  # noqa: S608 - ours
             f"from read_csv('{users_csv}', all_varchar=true)")
    read_back = duckdb.sql(query).df().set_index("email")["name"]
    assert {email: read_back[email] for email in hostile_users} == hostile_users
    run = _audit(sandbox, tmp_path / "parquet", "--format", "parquet")
    assert run.returncode == 0, run.stderr
    names = pd.read_parquet(tmp_path / "parquet" / "users.parquet").set_index("email")["name"]
    assert {email: names[email] for email in hostile_users} == hostile_users


def test_the_cli_files_are_0600_a_looser_one_tightened_and_a_symlink_refused(
        sandbox: Sandbox, tmp_path: Path) -> None:
    out = tmp_path / "new" / "audit"
    assert _audit(sandbox, out).returncode == 0
    assert out.stat().st_mode & 0o777 == 0o700
    assert {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()} == {
        "users.csv": 0o600, "identities.csv": 0o600, "candidates.csv": 0o600, "summary.json": 0o600}
    (out / "users.csv").chmod(0o644)
    assert _audit(sandbox, out).returncode == 0
    assert (out / "users.csv").stat().st_mode & 0o777 == 0o600
    elsewhere = tmp_path / "elsewhere.csv"
    elsewhere.write_text("kept\n")
    (out / "identities.csv").unlink()
    (out / "identities.csv").symlink_to(elsewhere)
    run = _audit(sandbox, out)
    assert run.returncode == 1 and "audit failed: cannot write the frames to" in run.stderr
    assert elsewhere.read_text() == "kept\n"


def test_an_export_download_is_0600_a_looser_one_tightened_a_symlink_refused(admin, tmp_path: Path) -> None:
    job = admin.wait_for_job(admin.create_users_export(format="json", fields=["email"])["id"], poll=0.05)
    fresh = admin.download_export(job, tmp_path / "users.json.gz")
    assert fresh.stat().st_mode & 0o777 == 0o600
    fresh.chmod(0o644)
    assert admin.download_export(job, fresh).stat().st_mode & 0o777 == 0o600
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("kept")
    (tmp_path / "link.json.gz").symlink_to(elsewhere)
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        admin.download_export(job, tmp_path / "link.json.gz")
    assert elsewhere.read_text() == "kept"


def test_a_looser_journal_is_tightened_and_a_symlinked_one_refused(tmp_path: Path) -> None:
    record = {"event": "started", "primary_id": "a", "secondary_id": "b", "provider": "auth0", "user_id": "b"}
    loose = tmp_path / "links.jsonl"
    loose.write_text("")
    loose.chmod(0o644)
    Journal(loose).write(record)
    assert loose.stat().st_mode & 0o777 == 0o600
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("kept")
    (tmp_path / "linked.jsonl").symlink_to(elsewhere)
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        Journal(tmp_path / "linked.jsonl").write(record)
    assert elsewhere.read_text() == "kept"


def test_the_signed_export_url_is_never_logged(admin, caplog: pytest.LogCaptureFixture,
                                               tmp_path: Path) -> None:
    job = admin.wait_for_job(admin.create_users_export(format="json", fields=["email"])["id"], poll=0.05)
    query = urlsplit(job["location"]).query
    assert query  # a signed link: its query is the bearer secret
    with caplog.at_level(logging.INFO):
        admin.download_export(job, tmp_path / "users.json.gz")
        admin.get_job(job["id"])
    lines = [record.getMessage() for record in caplog.records]
    assert not [line for line in lines if query in line]
    assert any("HTTP Request: GET" in line and urlsplit(job["location"]).path in line for line in lines)
    assert any(f"/jobs/{job['id']}" in line for line in lines)  # other requests still logged
