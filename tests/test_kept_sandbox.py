"""A kernel restart keeps the tutorial's login: the kept sandbox, in two real kernel processes.

``make lab`` sets ``LINKING_TOOLKIT_KEEP_SANDBOX=1``: a kernel's ``connect()`` then uses the
notebook's sandbox process, which the next kernel finds again, and the token cache (on, for it)
gives the login back with no prompt.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from jupyter_client.manager import KernelManager

from linking_toolkit.sandbox.kept import KeptSandbox, kept_sandbox

LOGIN = """
from linking_toolkit import connect, login
tenant = connect()
ada = login(tenant, method="password", email="ada@example.com",
            password=tenant.sandbox.demo_user("ada@example.com")["password"])
print("LOGGED", ada.user_id, tenant.issuer)
"""

RESTARTED = """
from linking_toolkit import connect, start_login
tenant = connect()
pending = start_login(tenant, timeout=5)  # a device login would wait for a person: the cache answers
tenant.sandbox.approve_login(pending, connection="Username-Password-Authentication",
                             email="ada@example.com")  # the tutorial's Sandbox only cell
again = pending.result(timeout=5)
print("AGAIN", again.user_id, tenant.issuer)
"""


def _run(env: dict[str, str], code: str) -> tuple[str, str]:
    """Run ``code`` in a new kernel process, then shut the kernel down; its stdout and stderr."""
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env={**os.environ, **env}, extra_arguments=["--HistoryManager.enabled=False"])
    client = manager.client()
    client.start_channels()
    out: list[str] = []
    err: list[str] = []
    try:
        client.wait_for_ready(timeout=60)

        def collect(message: dict) -> None:
            content = message["content"]
            if message["msg_type"] == "stream":
                (out if content["name"] == "stdout" else err).append(content["text"])
            elif message["msg_type"] == "error":
                err.append("\n".join(content["traceback"]))

        client.execute_interactive(code, timeout=90, output_hook=collect)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return "".join(out), "".join(err)


@pytest.fixture
def lab_env(tmp_path: Path):
    env = {"LINKING_TOOLKIT_KEEP_SANDBOX": "1", "LINKING_TOOLKIT_SANDBOX_HOME": str(tmp_path / "sandboxes"),
           "LINKING_TOOLKIT_CACHE": str(tmp_path / "tokens.json"),
           "JPY_SESSION_NAME": "notebooks/01-log-in.ipynb"}
    yield env
    record = tmp_path / "sandboxes" / "01-log-in" / "sandbox.json"
    if record.exists():
        KeptSandbox(json.loads(record.read_text()), record.parent).stop()


def test_a_restarted_kernel_gets_the_login_back_with_no_prompt(lab_env: dict[str, str],
                                                               tmp_path: Path) -> None:
    first_out, first_err = _run(lab_env, LOGIN)
    assert "LOGGED auth0|" in first_out, first_err
    assert "kept across kernel restarts" in first_out
    assert "Not caching" not in first_out + first_err
    user_id, issuer = first_out.split("LOGGED ")[1].split()

    second_out, second_err = _run(lab_env, RESTARTED)  # a new kernel process: "Restart Kernel"
    assert f"AGAIN {user_id} {issuer}" in second_out, second_err
    assert "from the token cache" in second_out  # a plain line in the cell, not red stderr
    assert "Already logged in (by hand or from the token cache): nothing for this cell to do." in second_out
    assert "Enter the code" not in second_out + second_err  # no device prompt

    folder = tmp_path / "sandboxes" / "01-log-in"
    for name in ("sandbox.json", "sandbox.db", "sandbox.log"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_a_stopped_kept_sandbox_starts_again_on_its_data_and_port(tmp_path: Path) -> None:
    first = kept_sandbox(seed=1, key="nb", home=tmp_path, exit_with=os.getpid())
    try:
        admin_token = _m2m_token(first)
        auth = {"Authorization": f"Bearer {admin_token}"}
        users = httpx2.get(first.base_url + "/api/v2/users", headers=auth)
        user_id = users.json()[0]["user_id"]
        patched = httpx2.patch(first.base_url + f"/api/v2/users/{user_id}", json={"nickname": "kept"},
                               headers=auth)
        assert patched.status_code == 200
        assert kept_sandbox(seed=1, key="nb", home=tmp_path).pid == first.pid  # found, not started
        first.stop()
        _wait_gone(first.pid)

        second = kept_sandbox(seed=1, key="nb", home=tmp_path, exit_with=os.getpid())
        assert second.pid != first.pid
        assert second.base_url == first.base_url  # the old port, free again: cached logins name it
        token = _m2m_token(second)
        user = httpx2.get(second.base_url + f"/api/v2/users/{user_id}",
                          headers={"Authorization": f"Bearer {token}"})
        assert user.json()["nickname"] == "kept"
    finally:
        kept_sandbox(seed=1, key="nb", home=tmp_path, exit_with=os.getpid()).stop()


def test_the_kept_sandbox_ends_with_the_process_it_was_told_to_follow(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        kept = kept_sandbox(seed=1, key="follow", home=tmp_path, exit_with=parent.pid)
        assert kept.answers()
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    _wait_gone(kept.pid)
    assert not kept.answers()


def test_a_kept_sandbox_folder_through_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "nb").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="symbolic link"):
        kept_sandbox(seed=1, key="nb", home=tmp_path / "home")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def _m2m_token(sandbox: KeptSandbox) -> str:
    response = httpx2.post(sandbox.base_url + "/oauth/token", data={
        "grant_type": "client_credentials", "client_id": sandbox.m2m_client_id,
        "client_secret": sandbox.m2m_client_secret, "audience": sandbox.management_audience})
    return str(response.json()["access_token"])


def _wait_gone(pid: int, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):  # our own child is a zombie until reaped
            os.waitpid(pid, os.WNOHANG)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} still runs")
