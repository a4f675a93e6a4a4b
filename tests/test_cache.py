"""The token cache against a running sandbox: the modes, the 0600 file, two kernels in a row,
rotation, reuse detection, falling back to a login, a corrupt file, forget, and the defaults."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx2
import pytest

from linking_toolkit import Session, Tenant, connect, link, login, start_login, unlink
from linking_toolkit import cache as token_cache
from linking_toolkit.cache import CACHE_ENV, NOOP, READ_WRITE, REAUTH, CacheWarning, TokenCache
from linking_toolkit.sandbox import Sandbox

GOOGLE = "google-oauth2"
FROM_CACHE = "from the token cache"


@pytest.fixture
def sandbox_options() -> dict[str, int]:
    return {"device_poll_interval": 1}  # the logins the cache falls back to are device logins


@pytest.fixture
def tenant(sandbox: Sandbox):
    """The sandbox as a kernel that did not start it sees it (by its URL): as a real tenant."""
    with Tenant.discover(sandbox.base_url, client_id=sandbox.client_id) as discovered:
        yield discovered


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "config" / "tokens.json"


@pytest.fixture
def personal_machine(monkeypatch: pytest.MonkeyPatch, path: Path) -> Path:
    """No hub, no Colab, and the default cache file in the test's folder."""
    for name in ("JUPYTERHUB_USER", "COLAB_RELEASE_TAG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(CACHE_ENV, str(path))
    return path


def password_login(sandbox: Sandbox, tenant: Tenant, cache: TokenCache | None, email: str = "ada@example.com",
                   **extra: str) -> Session:
    user = sandbox.demo_user(email)
    return login(tenant, method="password", email=email, password=user["password"], cache=cache, **extra)


def device_login(sandbox: Sandbox, tenant: Tenant, cache: TokenCache | None, email: str = "ada@example.com",
                 shown: list[str] | None = None, **extra: str) -> Session:
    """start_login with the device method, approved at once on the sandbox's page."""
    pending = start_login(tenant, cache=cache, show=lambda text, url: (shown or []).append(text), **extra)
    assert not pending.done() and pending.user_code, "a prompt was expected, not a cached login"
    sandbox.approve_device(pending.user_code, connection="Username-Password-Authentication", email=email)
    return pending.result(timeout=60)


def stored(path: Path) -> list[dict]:
    return json.loads(path.read_text())["logins"]


def refresh(sandbox: Sandbox, refresh_token: str) -> httpx2.Response:
    return httpx2.post(f"{sandbox.base_url}/oauth/token", data={
        "grant_type": "refresh_token", "client_id": sandbox.client_id, "refresh_token": refresh_token})


# -- the modes -----------------------------------------------------------------------------------


def test_read_write_keeps_the_login_in_a_0600_file_and_logs_in_again_with_no_prompt(
        sandbox: Sandbox, tenant: Tenant, path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = READ_WRITE.at(path)
    first = password_login(sandbox, tenant, cache)
    assert "offline_access" in first.scope.split()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = [(e["issuer"], e["client_id"], e["purpose"], e["connection"], e["user_id"]) for e in stored(path)]
    assert keys == [(tenant.issuer, tenant.client_id, "login", None, first.user_id)]
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []  # no temporary left

    shown: list[str] = []
    pending = start_login(tenant, cache=cache, show=lambda text, url: shown.append(text))
    assert pending.done() and pending.from_cache and shown == []  # no prompt at all
    again = pending.result(0)
    assert again.user_id == first.user_id and again.profile["email"] == "ada@example.com"
    assert again.purpose == "login" and not again.expired and again.identities
    assert again.claims["iss"] == tenant.issuer and again.claims["aud"] == tenant.client_id
    assert f"Logged in as ada@example.com {FROM_CACHE}" in capsys.readouterr().err


def test_each_use_rotates_the_stored_refresh_token(sandbox: Sandbox, tenant: Tenant, path: Path) -> None:
    cache = READ_WRITE.at(path)
    password_login(sandbox, tenant, cache)
    seen = [stored(path)[0]["refresh_token"]]
    for _ in range(3):
        login(tenant, cache=cache)
        seen.append(stored(path)[0]["refresh_token"])
    assert len(set(seen)) == 4 and len(stored(path)) == 1
    assert refresh(sandbox, seen[-1]).status_code == 200  # the newest one works


def test_reauth_logs_in_again_and_the_latest_login_is_the_one_used(sandbox: Sandbox, tenant: Tenant,
                                                                    path: Path) -> None:
    password_login(sandbox, tenant, READ_WRITE.at(path))
    grace = device_login(sandbox, tenant, REAUTH.at(path), email="grace@example.com")  # prompts though cached
    assert sorted(e["user_id"] for e in stored(path)) == sorted([grace.user_id,
                                                                 sandbox.demo_user("ada@example.com")["user_id"]])
    assert login(tenant, cache=READ_WRITE.at(path)).user_id == grace.user_id  # the most recently stored


def test_noop_neither_reads_nor_writes(sandbox: Sandbox, tenant: Tenant, path: Path) -> None:
    assert NOOP.at(path) is NOOP
    session = password_login(sandbox, tenant, NOOP)
    assert "offline_access" not in session.scope.split()  # no refresh token is even asked for
    password_login(sandbox, tenant, READ_WRITE.at(path))
    pending = start_login(tenant, cache=NOOP, show=lambda text, url: None)
    assert not pending.done() and pending.user_code  # a cached login is there, NOOP does not read it
    pending.cancel()


def test_a_linking_login_is_cached_apart_from_the_main_one(sandbox: Sandbox, tenant: Tenant,
                                                           path: Path) -> None:
    cache = READ_WRITE.at(path)
    password_login(sandbox, tenant, cache)
    pending = start_login(tenant, purpose="linking", connection=GOOGLE, cache=cache, show=lambda t, u: None)
    assert not pending.done()  # the main login's token never answers for the account to link
    pending.cancel()
    linking = password_login(sandbox, tenant, cache, email="grace@example.com", purpose="linking")
    again = login(tenant, purpose="linking", cache=cache)
    assert again.purpose == "linking" and again.user_id == linking.user_id


def test_a_login_for_linking_neither_reads_nor_keeps_a_cache_unless_asked(
        sandbox: Sandbox, tenant: Tenant, personal_machine: Path) -> None:
    """A link must follow a login to both accounts made now: by default the account to link is
    always asked for, even where the main login comes from the cache."""
    password_login(sandbox, tenant, READ_WRITE.at(personal_machine), email="grace@example.com",
                   purpose="linking")
    assert [entry["purpose"] for entry in stored(personal_machine)] == ["linking"]
    pending = start_login(tenant, purpose="linking", show=lambda text, url: None)  # the default cache
    assert not pending.done() and pending.user_code  # a prompt, not the kept login
    pending.cancel()
    password_login(sandbox, tenant, None, email="ada@example.com", purpose="linking")
    assert [entry["purpose"] for entry in stored(personal_machine)] == ["linking"]  # nothing new kept


def test_a_prompt_over_a_cached_login_shows_who_is_logged_in_and_no_link(
        sandbox: Sandbox, tenant: Tenant, path: Path) -> None:
    from linking_toolkit import LoginPrompt

    cache = READ_WRITE.at(path)
    password_login(sandbox, tenant, cache)
    prompt = LoginPrompt(start_login(tenant, cache=cache, show=lambda text, url: None))
    assert prompt.children == (prompt.title, prompt.status)  # no link, code, countdown or Cancel
    assert "Logged in as ada@example.com." in prompt.status.value


# -- two kernels in a row -------------------------------------------------------------------------


KERNEL = textwrap.dedent("""
    import os, sys
    from linking_toolkit import Tenant, login
    tenant = Tenant.discover(os.environ["SANDBOX_URL"], client_id=os.environ["SANDBOX_CLIENT_ID"])
    if len(sys.argv) > 1:
        session = login(tenant, method="password", email=sys.argv[1], password=os.environ["DEMO_PASSWORD"])
    else:
        session = login(tenant, timeout=5)
    print(session.profile["email"], session.user_id, session.purpose)
""")


def run_kernel(sandbox: Sandbox, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, CACHE_ENV: str(path), "SANDBOX_URL": sandbox.base_url,
           "SANDBOX_CLIENT_ID": sandbox.client_id,
           "DEMO_PASSWORD": sandbox.demo_user("ada@example.com")["password"]}  # never on a command line
    for name in ("JUPYTERHUB_USER", "COLAB_RELEASE_TAG"):
        env.pop(name, None)
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", KERNEL, *args], env=env, capture_output=True, text=True, timeout=120,
        check=False)


def test_a_second_kernel_gets_its_session_from_the_cache_with_no_prompt(sandbox: Sandbox, path: Path) -> None:
    ada = sandbox.demo_user("ada@example.com")
    first = run_kernel(sandbox, path, "ada@example.com")
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == ["ada@example.com", ada["user_id"], "login"]
    token_of_first = stored(path)[0]["refresh_token"]

    second = run_kernel(sandbox, path)  # login(tenant): the default method is device, with a prompt
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["ada@example.com", ada["user_id"], "login"]
    assert FROM_CACHE in second.stderr and "open this link" not in second.stderr
    assert stored(path)[0]["refresh_token"] != token_of_first


# -- revoked, reused, corrupt -------------------------------------------------------------------


def test_a_replayed_token_revokes_its_family_and_the_next_login_falls_back(
        sandbox: Sandbox, tenant: Tenant, path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = READ_WRITE.at(path)
    password_login(sandbox, tenant, cache)
    stolen = stored(path)[0]["refresh_token"]
    login(tenant, cache=cache)  # the owner uses it: it rotates
    newest = stored(path)[0]["refresh_token"]

    replayed = refresh(sandbox, stolen)  # someone replays the copy they took
    assert replayed.status_code == 403
    assert replayed.json() == {"error": "invalid_grant",
                               "error_description": "Unknown or invalid refresh token."}
    assert refresh(sandbox, newest).status_code == 403  # the whole family is revoked, newest included
    capsys.readouterr()

    session = device_login(sandbox, tenant, cache)  # falls back to the interactive login
    err = capsys.readouterr().err
    assert "The cached login of" in err and "no longer works (Unknown or invalid refresh token.)" in err
    assert session.profile["email"] == "ada@example.com"
    assert stored(path)[0]["refresh_token"] not in (stolen, newest)  # the new login is kept
    assert refresh(sandbox, stored(path)[0]["refresh_token"]).status_code == 200


def test_a_linked_account_is_not_given_back_by_the_cache(sandbox: Sandbox, tenant: Tenant, path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    cache = READ_WRITE.at(path)
    primary = password_login(sandbox, tenant, NOOP)
    secondary = password_login(sandbox, tenant, cache, email="grace@example.com", purpose="linking")
    link(primary, secondary)  # the secondary user is gone, and its refresh tokens with it
    unlink(primary, next(i for i in primary.identities if i.full_id == secondary.user_id))
    pending = start_login(tenant, purpose="linking", cache=cache, show=lambda text, url: None)
    assert not pending.done()  # a prompt: the account must be logged in again to be linked again
    pending.cancel()
    assert "no longer works (Unknown or invalid refresh token.)" in capsys.readouterr().err


@pytest.mark.parametrize("content", ["{not json", "[]", '{"version": 1, "logins": [{"issuer": 3}]}', ""])
def test_a_corrupt_cache_file_is_ignored_with_a_warning(sandbox: Sandbox, tenant: Tenant, path: Path,
                                                         content: str) -> None:
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.warns(CacheWarning, match="is not a file this toolkit wrote"):
        session = device_login(sandbox, tenant, READ_WRITE.at(path))
    assert session.profile["email"] == "ada@example.com"
    assert [e["user_id"] for e in stored(path)] == [session.user_id]  # the next login replaced it
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_forget_clears_a_tenant_and_then_everything(sandbox: Sandbox, tenant: Tenant, path: Path) -> None:
    cache = READ_WRITE.at(path)
    password_login(sandbox, tenant, cache)
    other = Tenant(domain="other.example", issuer="https://other.example/", base_url="https://other.example",
                   management_audience="https://other.example/api/v2/", client_id="another-client")
    cache.save(other, purpose="login", connection=None, user_id="auth0|someone", refresh_token="v1.elsewhere")

    assert token_cache.forget(tenant, cache=cache) == 1
    assert [e["issuer"] for e in stored(path)] == [other.issuer]
    pending = start_login(tenant, cache=cache, show=lambda text, url: None)
    assert not pending.done()  # forgotten: the login prompts again
    pending.cancel()
    assert token_cache.forget(cache=cache) == 1 and stored(path) == []


# -- the defaults ---------------------------------------------------------------------------------


def test_the_default_on_a_personal_machine_reads_and_writes(sandbox: Sandbox, tenant: Tenant,
                                                            personal_machine: Path) -> None:
    first = password_login(sandbox, tenant, None)
    assert [e["user_id"] for e in stored(personal_machine)] == [first.user_id]
    assert login(tenant).user_id == first.user_id
    assert token_cache.forget(tenant) == 1  # forget() reads the default file too


@pytest.mark.parametrize(("name", "why"), [("JUPYTERHUB_USER", "on JupyterHub"),
                                           ("COLAB_RELEASE_TAG", "on Colab")])
def test_the_default_on_a_hub_or_colab_caches_nothing_and_says_why(
        sandbox: Sandbox, tenant: Tenant, personal_machine: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], name: str, why: str) -> None:
    monkeypatch.setenv(name, "learner-7")
    session = password_login(sandbox, tenant, None)
    assert "offline_access" not in session.scope.split()
    assert not personal_machine.exists()
    lines = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith(f"Not caching this login: {why}")
    assert "cache=linking_toolkit.cache.READ_WRITE" in lines[0]


def test_a_sandbox_started_in_this_process_is_not_cached(sandbox: Sandbox, personal_machine: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    with connect(sandbox=sandbox) as in_process:  # its tokens end with the process: nothing to keep
        password_login(sandbox, in_process, None)
        assert capsys.readouterr().err == ("Not caching this login: this sandbox runs inside the kernel and "
                                           "its logins end with it (make lab keeps one across kernel "
                                           "restarts).\n")
        password_login(sandbox, in_process, None)  # said once per tenant, not at every login
        assert capsys.readouterr().err == ""
    assert not personal_machine.exists()


def test_the_strategies_say_what_they_do(path: Path) -> None:
    assert "NOOP" in repr(NOOP) and "REAUTH" in repr(REAUTH.at(path))
    assert str(path) in repr(READ_WRITE.at(path))
    assert (READ_WRITE.reads, READ_WRITE.writes, REAUTH.reads, REAUTH.writes, NOOP.reads, NOOP.writes) == (
        True, True, False, True, False, False)
