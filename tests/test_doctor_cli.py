"""``python -m linking_toolkit doctor``: the table, its exit status, ``--fix`` (asked, or ``--yes``) and
``--undo``, run as a user runs them, against a sandbox configured through the environment."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from linking_toolkit import ManagementClient, connect
from linking_toolkit.login_flows.grants import DEVICE_GRANT
from linking_toolkit.sandbox import Sandbox


@pytest.fixture
def configured(sandbox: Sandbox, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a user whose tenant is this sandbox (as for a real tenant)."""
    yield {**os.environ, "AUTH0_DOMAIN": sandbox.base_url, "AUTH0_CLIENT_ID": sandbox.client_id,
           "AUTH0_M2M_CLIENT_ID": sandbox.m2m_client_id, "AUTH0_CLIENT_SECRET": sandbox.m2m_client_secret}


def doctor(env: dict[str, str], tmp_path: Path, *args: str,
           answer: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "linking_toolkit", "doctor", "--env-file", str(tmp_path / "none.env"), *args],
        env=env, input=answer, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)


def grant_types(sandbox: Sandbox) -> list[str]:
    with connect(sandbox=sandbox) as tenant, ManagementClient.from_client_credentials(tenant) as admin:
        return list(admin.get_client(tenant.client_id)["grant_types"])


def device_grant_off(sandbox: Sandbox) -> list[str]:
    with connect(sandbox=sandbox) as tenant, ManagementClient.from_client_credentials(tenant) as admin:
        now = admin.get_client(tenant.client_id)["grant_types"]
        admin.update_client(tenant.client_id, {"grant_types": [g for g in now if g != DEVICE_GRANT]})
    return grant_types(sandbox)


def test_a_ready_tenant_exits_0_and_names_no_secret(configured: dict[str, str], tmp_path: Path) -> None:
    run = doctor(configured, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Device Code grant" in run.stdout and "✗" not in run.stdout and run.stdout.endswith("Ready.\n")
    assert configured["AUTH0_CLIENT_SECRET"] not in run.stdout + run.stderr


def test_a_broken_setting_exits_1_with_its_row(sandbox: Sandbox, configured: dict[str, str],
                                               tmp_path: Path) -> None:
    device_grant_off(sandbox)
    run = doctor(configured, tmp_path)
    assert run.returncode == 1
    (line,) = [x for x in run.stdout.splitlines() if "Device Code grant" in x]
    assert "✗" in line and "off" in line and "Grant Types > Device Code" in line
    assert "Not ready" in run.stdout


def test_fix_asks_and_a_no_changes_nothing(sandbox: Sandbox, configured: dict[str, str],
                                           tmp_path: Path) -> None:
    broken = device_grant_off(sandbox)
    run = doctor(configured, tmp_path, "--fix", answer="n\n")
    assert run.returncode == 1
    assert "grant_types" in run.stdout and "Make this change? [y/N]" in run.stdout
    assert "Nothing was changed." in run.stdout
    assert grant_types(sandbox) == broken and not list(tmp_path.glob("doctor-undo-*.json"))
    no_one = doctor(configured, tmp_path, "--fix")  # no one to answer: no
    assert no_one.returncode == 1 and grant_types(sandbox) == broken


def test_fix_yes_then_undo_puts_it_back_and_both_repeat_safely(sandbox: Sandbox, configured: dict[str, str],
                                                               tmp_path: Path) -> None:
    broken = device_grant_off(sandbox)
    undo_file = tmp_path / "undo.json"
    fixed = doctor(configured, tmp_path, "--fix", "--yes", "--undo-file", str(undo_file))
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert f"--undo {undo_file}" in fixed.stdout and fixed.stdout.endswith("Ready.\n")
    assert DEVICE_GRANT in grant_types(sandbox)
    assert stat.S_IMODE(os.stat(undo_file).st_mode) == 0o600
    again = doctor(configured, tmp_path, "--fix", "--yes")
    assert again.returncode == 0 and "Nothing to change." in again.stdout

    undone = doctor(configured, tmp_path, "--undo", str(undo_file))
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert "put back" in undone.stdout and grant_types(sandbox) == broken
    repeat = doctor(configured, tmp_path, "--undo", str(undo_file))
    assert repeat.returncode == 0 and "already so" in repeat.stdout and grant_types(sandbox) == broken


def test_usage_errors_and_an_unreadable_undo_file(configured: dict[str, str], tmp_path: Path) -> None:
    assert doctor(configured, tmp_path, "--yes").returncode == 2
    assert doctor(configured, tmp_path, "--fix", "--undo", "x.json").returncode == 2
    missing = doctor(configured, tmp_path, "--undo", str(tmp_path / "none.json"))
    assert missing.returncode == 1 and "is not an undo file of doctor --fix" in missing.stderr


def test_with_no_tenant_configured_it_checks_a_sandbox(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH0_")}
    run = doctor(env, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "checking a sandbox tenant" in run.stderr
