"""``python -m linking_toolkit.sandbox`` started as a real subprocess, as a developer would."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from linking_toolkit.sandbox.connections import DATABASE
from linking_toolkit.sandbox.defaults import PASSWORD_REALM


@contextmanager
def cli(*args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """Start the sandbox CLI, read its JSON line, and make sure it is gone afterwards."""
    process = subprocess.Popen([sys.executable, "-m", "linking_toolkit.sandbox", *args],  # noqa: S603
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, process.stderr.read() if process.stderr else "no output"
        yield process, json.loads(line)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def stop(process: subprocess.Popen[str], signum: int) -> tuple[int, str, str]:
    process.send_signal(signum)
    out, err = process.communicate(timeout=20)
    return process.returncode, out, err


def login(info: dict[str, Any], email: str) -> httpx2.Response:
    user = next(u for u in info["demo_users"] if u["email"] == email)
    return httpx2.post(f"{info['base_url']}/oauth/token", data={
        "grant_type": PASSWORD_REALM, "client_id": info["client_id"], "username": email,
        "password": user["password"], "realm": DATABASE, "scope": "openid"})


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_one_json_line_logs_requests_and_stops_cleanly(signum: int) -> None:
    with cli("--seed", "3") as (process, info):
        assert set(info) >= {"issuer", "domain", "base_url", "management_audience", "client_id",
                             "m2m_client_id", "m2m_client_secret", "connections", "demo_users"}
        assert info["base_url"].startswith("http://127.0.0.1:")
        assert info["issuer"] == info["base_url"] + "/"
        assert info["management_audience"] == info["base_url"] + "/api/v2/"
        assert set(info["connections"]) == {DATABASE, "google-oauth2", "facebook", "github"}
        assert all(set(u) == {"email", "connection", "password"} for u in info["demo_users"])
        discovery = httpx2.get(f"{info['base_url']}/.well-known/openid-configuration")
        assert discovery.json()["issuer"] == info["issuer"]
        response = login(info, "ada@example.com")
        assert response.status_code == 200
        code, out, err = stop(process, signum)
    assert code == 0
    assert out == ""  # one JSON line, nothing after it
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    lines = err.splitlines()
    assert "GET /.well-known/openid-configuration 200" in lines
    assert "POST /oauth/token 200" in lines
    # The access log names paths only: no password, token or query string reaches it.
    user = next(u for u in info["demo_users"] if u["email"] == "ada@example.com")
    assert user["password"] not in err and response.json()["access_token"] not in err


def machine_token(info: dict[str, Any]) -> str:
    response = httpx2.post(f"{info['base_url']}/oauth/token", json={
        "grant_type": "client_credentials", "client_id": info["m2m_client_id"],
        "client_secret": info["m2m_client_secret"], "audience": info["management_audience"]})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def list_users(info: dict[str, Any], **params: str) -> httpx2.Response:
    return httpx2.get(f"{info['base_url']}/api/v2/users", params=params,
                      headers={"Authorization": f"Bearer {machine_token(info)}"})


def test_cli_quiet_logs_nothing() -> None:
    with cli("--quiet", "--rate-limit", "free") as (process, info):
        assert httpx2.get(f"{info['base_url']}/.well-known/jwks.json").status_code == 200
        # The free tier's bucket (burst 2) is on: even a refused call carries its headers.
        refused = httpx2.get(f"{info['base_url']}/api/v2/users")
        assert refused.status_code == 401 and refused.headers["x-ratelimit-limit"] == "2"
        code, out, err = stop(process, signal.SIGTERM)
    assert code == 0 and out == "" and err == ""


def free_port(*, other_than: str = "") -> int:
    """A loopback port that was free a moment ago (and is not the one in ``other_than``)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if not other_than.endswith(f":{port}"):
            return port


def test_cli_host_port_users_and_a_burst_rate_limit() -> None:
    port = free_port()
    with cli("--quiet", "--host", "127.0.0.1", "--port", str(port), "--seed", "4", "--users", "40",
             "--rate-limit", "7/3") as (process, info):
        assert info["base_url"] == f"http://127.0.0.1:{port}"
        response = list_users(info, include_totals="true", per_page="0")
        assert response.status_code == 200, response.text
        assert response.json()["total"] == 10 + 40  # the ten demo users and the synthetic ones
        assert response.headers["x-ratelimit-limit"] == "7"
        assert stop(process, signal.SIGTERM)[0] == 0


def test_cli_refuses_bad_arguments() -> None:
    for args in (["--rate-limit", "fast"], ["--users", "-1"], ["--port", "x"], ["--export-link-seconds", "0"],
                 ["--export-link-seconds", "soon"]):
        result = subprocess.run([sys.executable, "-m", "linking_toolkit.sandbox", *args],  # noqa: S603
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 2 and result.stdout == ""
        assert "usage:" in result.stderr
        last = result.stderr.splitlines()[-1]
        assert last.startswith("python -m linking_toolkit.sandbox: error: ")
        assert args[0] in last or args[0] == "--rate-limit"


def test_cli_reopens_a_database_file(tmp_path: Path) -> None:
    db = str(tmp_path / "tenant.sqlite")
    with cli("--quiet", "--seed", "5", "--db", db) as (process, first):
        before = list_users(first, per_page="100").json()
        assert stop(process, signal.SIGTERM)[0] == 0
    port = free_port(other_than=first["base_url"])
    with cli("--quiet", "--db", db, "--port", str(port)) as (process, second):
        # On a new port, the same users; the M2M client is still granted the API at its new address.
        assert second["base_url"] != first["base_url"]
        assert list_users(second, per_page="100").json() == before
        # Same tenant: clients and connections; demo users get fresh passwords (only hashes are kept).
        for key in ("client_id", "m2m_client_id", "m2m_client_secret", "connections"):
            assert second[key] == first[key]
        assert [u["email"] for u in second["demo_users"]] == [u["email"] for u in first["demo_users"]]
        assert login(second, "grace@example.com").status_code == 200
        old = next(u for u in first["demo_users"] if u["email"] == "grace@example.com")
        stale = httpx2.post(f"{second['base_url']}/oauth/token", data={
            "grant_type": PASSWORD_REALM, "client_id": second["client_id"], "username": old["email"],
            "password": old["password"], "realm": DATABASE})
        assert stale.status_code == 403
        assert stop(process, signal.SIGTERM)[0] == 0


def test_cli_reports_a_database_or_port_it_cannot_use(tmp_path: Path) -> None:
    not_a_database = tmp_path / "notes.sqlite"
    not_a_database.write_text("these are notes, not a database\n" * 100)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        for args in (["--db", str(tmp_path / "missing" / "tenant.sqlite")], ["--db", str(not_a_database)],
                     ["--port", str(taken.getsockname()[1])]):
            result = subprocess.run([sys.executable, "-m", "linking_toolkit.sandbox", "--quiet", *args],  # noqa: S603
                                    capture_output=True, text=True, timeout=30)
            assert result.returncode == 1 and result.stdout == "", args
            assert result.stderr.startswith("cannot start the sandbox: ") and "Traceback" not in result.stderr
    assert not_a_database.read_text().startswith("these are notes")  # left as it was


def test_cli_users_for_an_existing_db_file_is_a_usage_error(tmp_path: Path) -> None:
    """``--users`` seeds a new tenant: on an existing file, another number is refused, not ignored."""
    from linking_toolkit.sandbox import Sandbox

    db = tmp_path / "tenant.sqlite"
    with Sandbox(db=str(db), users=20, seed=6):
        pass
    made = db.read_bytes()
    result = subprocess.run([sys.executable, "-m", "linking_toolkit.sandbox", "--quiet", "--db", str(db),  # noqa: S603
                             "--users", "5"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("python -m linking_toolkit.sandbox: error: ")
    assert "(20 synthetic users)" in result.stderr and "leave out users (--users)" in result.stderr
    assert db.read_bytes() == made
    with cli("--quiet", "--db", str(db), "--users", "20") as (process, info):  # the command that made it
        assert list_users(info, include_totals="true", per_page="0").json()["total"] == 10 + 20
        assert stop(process, signal.SIGTERM)[0] == 0
