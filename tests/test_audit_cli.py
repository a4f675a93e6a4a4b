"""``python -m linking_toolkit audit``: a scheduled run against a tenant configured by environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.seed import SyntheticTenant


def test_the_command_line_writes_the_frames_and_candidates_of_a_configured_tenant(tmp_path: Path) -> None:
    with Sandbox(seed=12, users=300) as sandbox:
        assert sandbox.context is not None
        truth = SyntheticTenant.from_store(sandbox.context.store)
        assert truth is not None
        with sandbox.context.store.read() as db:
            n_users = db.execute("SELECT count(*) FROM users").fetchone()[0]
            n_identities = db.execute("SELECT count(*) FROM identities").fetchone()[0]
        env = {**os.environ, "AUTH0_DOMAIN": sandbox.base_url, "AUTH0_CLIENT_ID": sandbox.client_id,
               "AUTH0_M2M_CLIENT_ID": sandbox.m2m_client_id,
               "AUTH0_CLIENT_SECRET": sandbox.m2m_client_secret}
        run = subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "linking_toolkit", "audit", "--out", str(tmp_path / "out"),
             "--env-file", str(tmp_path / "none.env"), "--no-progress"],
            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert env["AUTH0_CLIENT_SECRET"] not in run.stdout + run.stderr
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    users = pd.read_csv(out / "users.csv")
    identities = pd.read_csv(out / "identities.csv")
    candidates = pd.read_csv(out / "candidates.csv")
    assert summary["users"] == len(users) == n_users
    assert summary["identities"] == len(identities) == n_identities
    synthetic = candidates[(candidates["tier"] == "exact") & candidates["email"].str.endswith("@example.org")]
    assert sorted(sorted(ids.split(" ")) for ids in synthetic["user_ids"]) == sorted(
        truth.safe_groups + truth.unsafe_groups)
    assert f"{summary['candidate_groups']} candidate groups" in run.stdout


def test_a_bad_option_is_a_usage_error() -> None:
    run = subprocess.run([sys.executable, "-m", "linking_toolkit", "audit"], capture_output=True,
                         text=True, timeout=60, check=False)
    assert run.returncode == 2 and "--out" in run.stderr


@pytest.mark.parametrize("option, message", [
    (["--tiers", "exact,fuzzy"], "tiers are some of exact, alias, phone, probable (or \"all\"), "
                                 "not ['exact', 'fuzzy']"),
    (["--default-region", "England"], "default_region is a region code phonenumbers knows "
                                      "(e.g. 'GB', 'US'), not 'England'"),
    (["--phone-path", "app_metadata.phone"], "a phone path is user_metadata.<key>[.<key>...] "
                                             "(letters, digits, _), not 'app_metadata.phone'"),
    (["--method", "scrape"], "argument --method: invalid choice: 'scrape'"),
])
def test_a_bad_candidate_or_reading_option_is_refused_before_any_request(option: list[str], message: str,
                                                                         tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "linking_toolkit", "audit", "--out",  # noqa: S603
                          str(tmp_path / "out"), *option], capture_output=True, text=True, timeout=60,
                         check=False)
    assert run.returncode == 2
    assert message in run.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()


def test_the_command_line_reads_by_partitioned_search_and_finds_every_rule_tier(tmp_path: Path) -> None:
    with Sandbox(seed=12, users=1500, export_jobs=False) as sandbox:
        assert sandbox.context is not None
        truth = SyntheticTenant.from_store(sandbox.context.store)
        assert truth is not None
        env = {**os.environ, "AUTH0_DOMAIN": sandbox.base_url, "AUTH0_CLIENT_ID": sandbox.client_id,
               "AUTH0_M2M_CLIENT_ID": sandbox.m2m_client_id,
               "AUTH0_CLIENT_SECRET": sandbox.m2m_client_secret}
        run = subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "linking_toolkit", "audit", "--out", str(tmp_path / "out"),
             "--env-file", str(tmp_path / "none.env"), "--no-progress", "--method", "partitioned",
             "--default-region", "GB", "--phone-path", "user_metadata.phone"],
            env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["source"] == "partitioned"
    candidates = pd.read_csv(tmp_path / "out" / "candidates.csv")
    for tier, expected in (("alias", truth.alias_groups), ("phone", truth.phone_groups)):
        found = candidates[candidates["tier"] == tier]["user_ids"]
        assert sorted(sorted(ids.split(" ")) for ids in found) == sorted(sorted(g) for g in expected)


def test_with_no_tenant_configured_it_audits_the_sandbox_and_keeps_the_files_private(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH0_")}
    out = tmp_path / "audit"
    run = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "linking_toolkit", "audit", "--out", str(out), "--env-file",
         str(tmp_path / "none.env"), "--no-progress"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert "auditing a sandbox tenant" in run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["candidates.csv", "identities.csv", "summary.json",
                                                    "users.csv"]
    assert out.stat().st_mode & 0o777 == 0o700  # every user's email and name are in there
    candidates = pd.read_csv(out / "candidates.csv")
    linus = candidates.set_index("email").loc["linus@example.com"]
    assert linus["risk"] == "unverified email" and len(linus["user_ids"].split(" ")) == 2
    identities = pd.read_csv(out / "identities.csv")
    assert list(identities.columns[:9]) == ["owner", "connection", "provider", "user_id", "is_primary",
                                            "is_social", "email", "email_raw", "email_verified"]


def test_an_out_path_that_is_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("not a directory")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH0_")}
    run = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "linking_toolkit", "audit", "--out", str(taken), "--env-file",
         str(tmp_path / "none.env"), "--no-progress"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 1
    assert "audit failed: cannot write the frames to" in run.stderr and "Traceback" not in run.stderr
    assert taken.read_text() == "not a directory"


def test_parquet_output_keeps_the_frames_dtypes_and_lists(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH0_")}
    out = tmp_path / "audit"
    run = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "linking_toolkit", "audit", "--out", str(out), "--format", "parquet",
         "--env-file", str(tmp_path / "none.env"), "--no-progress"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["candidates.parquet", "identities.parquet",
                                                    "summary.json", "users.parquet"]
    candidates = pd.read_parquet(out / "candidates.parquet").set_index("email")
    linus = candidates.loc["linus@example.com"]
    assert sorted(linus["user_ids"]) == sorted([*linus["unverified"].tolist(), linus["primary_id"]])
    users = pd.read_parquet(out / "users.parquet")
    assert str(users["created_at"].dtype).startswith("datetime64") and users["blocked"].dtype == bool
