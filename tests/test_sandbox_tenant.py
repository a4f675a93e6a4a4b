"""The sandbox as a whole tenant: its demo people, ``seed`` determinism, isolation of two tenants in
one process, and the rate-limit presets, all seen over HTTP as a client sees them."""

from __future__ import annotations

import stat
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import pytest

from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.connections import DATABASE


@contextmanager
def management(tenant: Sandbox) -> Iterator[httpx2.Client]:
    """A Management API client with the M2M client's token, fetched with client credentials."""
    response = httpx2.post(tenant.base_url + "/oauth/token", json={
        "grant_type": "client_credentials", "client_id": tenant.m2m_client_id,
        "client_secret": tenant.m2m_client_secret, "audience": tenant.management_audience})
    assert response.status_code == 200, response.text
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    with httpx2.Client(base_url=tenant.base_url + "/api/v2", headers=headers, timeout=30) as client:
        yield client


def all_users_text(tenant: Sandbox) -> str:
    """Every user, as the raw bytes of ``GET /api/v2/users`` pages, with the port taken out."""
    with management(tenant) as api:
        pages = [api.get("/users", params={"page": page, "per_page": 100, "include_totals": "true"}).text
                 for page in range(3)]
    return "\n".join(pages).replace(f":{tenant.port}", ":PORT")


def test_the_demo_tenant_has_the_people_the_tutorials_need(shared_sandbox: Sandbox) -> None:
    assert set(shared_sandbox.connections) == {DATABASE, "google-oauth2", "facebook", "github"}
    with management(shared_sandbox) as api:
        users = api.get("/users", params={"per_page": 100}).json()
    connections_of: dict[str, set[str]] = defaultdict(set)
    for user in users:
        connections_of[user["email"]].add(user["identities"][0]["connection"])
    assert len(connections_of) >= 6  # people
    database_people = {u["email"] for u in shared_sandbox.demo_users if u["connection"] == DATABASE}
    assert len(database_people) >= 3
    assert database_people == {e for e, cons in connections_of.items() if DATABASE in cons}
    assert len([e for e, cons in connections_of.items() if len(cons) > 1]) >= 2
    assert any(not u["email_verified"] for u in users)
    # Every database demo user's password logs in.
    for person in shared_sandbox.demo_users:
        response = httpx2.post(shared_sandbox.base_url + "/oauth/token", data={
            "grant_type": "http://auth0.com/oauth/grant-type/password-realm", "realm": DATABASE,
            "client_id": shared_sandbox.client_id, "username": person["email"],
            "password": person["password"]})
        assert response.status_code == 200, person["email"]


def test_a_seed_gives_the_same_users_ids_and_timestamps_every_run() -> None:
    runs = []
    for seed in (11, 11, 12):
        with Sandbox(seed=seed, users=120) as tenant:
            runs.append((all_users_text(tenant), tenant.client_id, tenant.m2m_client_id, tenant.connections))
    first, again, other = runs
    assert '"total":130' in first[0]
    assert first == again
    assert other[0] != first[0] and other[1:] != first[1:]


def test_two_sandboxes_in_one_process_share_nothing() -> None:
    with Sandbox(seed=7) as one, Sandbox(seed=7, rate_limit="100/1") as two:
        assert one.port != two.port
        ada = one.demo_user("ada@example.com")["user_id"]
        assert ada == two.demo_user("ada@example.com")["user_id"]  # same seed, same ids
        before = all_users_text(two)
        with management(one) as api_one:
            assert api_one.delete(f"/users/{quote(ada, safe='')}").status_code == 204
            assert api_one.get(f"/users/{quote(ada, safe='')}").status_code == 404
            assert "x-ratelimit-limit" not in api_one.get("/users").headers
            token_one = api_one.headers["Authorization"]
        assert all_users_text(two) == before  # the other tenant still has Ada
        # Keys differ: one tenant's token is a forgery to the other.
        refused = httpx2.get(two.base_url + "/api/v2/users", headers={"Authorization": token_one})
        assert refused.status_code == 401 and refused.headers["x-ratelimit-limit"] == "100"
        keys_one = httpx2.get(one.base_url + "/.well-known/jwks.json").json()["keys"]
        keys_two = httpx2.get(two.base_url + "/.well-known/jwks.json").json()["keys"]
        assert {k["kid"] for k in keys_one}.isdisjoint({k["kid"] for k in keys_two})
        assert one.m2m_client_secret != two.m2m_client_secret
        assert one.demo_user("ada@example.com")["password"] != two.demo_user("ada@example.com")["password"]


def test_device_flow_lifetimes_are_options_with_auth0s_defaults() -> None:
    def device_code(tenant: Sandbox) -> dict[str, Any]:
        response = httpx2.post(f"{tenant.base_url}/oauth/device/code",
                               data={"client_id": tenant.client_id, "scope": "openid"})
        assert response.status_code == 200
        return response.json()

    with Sandbox(seed=7) as default, Sandbox(seed=7, device_poll_interval=1, device_code_seconds=60) as short:
        assert (device_code(default)["interval"], device_code(default)["expires_in"]) == (5, 900)
        assert (device_code(short)["interval"], device_code(short)["expires_in"]) == (1, 60)


@pytest.mark.parametrize("options", [{"device_poll_interval": 0}, {"device_poll_interval": 1.5},
                                     {"device_poll_interval": True}, {"device_code_seconds": "60"},
                                     {"export_link_seconds": 0}, {"export_link_seconds": 1.5},
                                     {"export_link_seconds": "60"}, {"export_link_seconds": True}])
def test_bad_device_flow_options_are_one_line_value_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))) as refused:
        Sandbox(**options)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(("preset", "limit"), [("free", "2"), ("enterprise", "50"), ("12/3", "12")])
def test_rate_limit_presets_are_auth0s_tiers(preset: str, limit: str) -> None:
    with Sandbox(seed=7, rate_limit=preset) as tenant, management(tenant) as api:
        response = api.get("/users-by-email", params={"email": "ada@example.com"})
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit"] == limit
        assert response.headers["x-ratelimit-remaining"] == str(int(limit) - 1)


def test_a_port_in_use_is_an_oserror_not_an_exit(tmp_path: Path) -> None:
    """werkzeug's own server calls sys.exit(1) on a taken port, which would end a notebook kernel's cell
    with SystemExit; the sandbox raises OSError, and its database file is closed again."""
    import socket

    db = tmp_path / "tenant.sqlite"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="in use"):
            Sandbox(port=taken.getsockname()[1], db=str(db)).start()
    with Sandbox(db=str(db)) as tenant:  # the file is usable again: nothing half-made was kept
        assert tenant.client_id


def test_an_ipv6_host_is_bracketed_in_the_tenant_urls() -> None:
    from linking_toolkit.sandbox.server import base_url_for

    assert base_url_for("::1", 8080) == "http://[::1]:8080"
    assert base_url_for("127.0.0.1", 8080) == "http://127.0.0.1:8080"
    assert httpx2.URL(base_url_for("::1", 8080) + "/").port == 8080


def user_total(tenant: Sandbox) -> int:
    with management(tenant) as api:
        return api.get("/users", params={"per_page": 0, "include_totals": "true"}).json()["total"]


def test_users_for_an_existing_database_file_is_refused_unless_it_was_made_with_them(tmp_path: Path) -> None:
    """``users`` seeds a new tenant only: on a file that exists it would otherwise be silently ignored."""
    db = tmp_path / "tenant.sqlite"
    with Sandbox(db=str(db), users=30, seed=2) as tenant:
        assert user_total(tenant) == 10 + 30
    made = db.read_bytes()
    with pytest.raises(ValueError, match=r"already holds a tenant \(30 synthetic users\), so 50 cannot be "
                                         r"seeded in it: leave out users"):
        Sandbox(db=str(db), users=50).start()
    assert db.read_bytes() == made  # refused before any change
    for users in (30, 0):  # the number it was made with (the same command again), or none: reopened
        with Sandbox(db=str(db), users=users) as tenant:
            assert user_total(tenant) == 10 + 30


TENANT_PROPERTIES = ("base_url", "issuer", "domain", "management_audience", "client_id", "m2m_client_id",
                     "m2m_client_secret", "connections", "demo_users")


def test_a_stopped_sandbox_says_so_and_starts_again(tmp_path: Path) -> None:
    """Once stopped, the old URLs and credentials raise instead of pointing at nothing; start() again
    serves the same tenant from its file at the same address, or a new one from memory."""
    sandbox = Sandbox(db=str(tmp_path / "tenant.sqlite"), seed=3)
    with sandbox:
        was = {name: getattr(sandbox, name) for name in TENANT_PROPERTIES if name != "demo_users"}
        assert f"issuer={was['issuer']!r}" in repr(sandbox)
    assert repr(sandbox) == "<Sandbox stopped seed=3>"
    for name in TENANT_PROPERTIES:
        with pytest.raises(RuntimeError, match="the sandbox is not running"):
            getattr(sandbox, name)
    with pytest.raises(RuntimeError, match="the sandbox is not running"):
        sandbox.info()
    sandbox.stop()  # stopping twice is harmless
    with sandbox:
        assert {name: getattr(sandbox, name) for name in was} == was
        assert user_total(sandbox) == 10
    with pytest.raises(RuntimeError, match="the sandbox is not running"):
        _ = sandbox.base_url

    in_memory = Sandbox(seed=4).start()
    try:
        with management(in_memory) as api:
            ada = in_memory.demo_user("ada@example.com")["user_id"]
            assert api.delete(f"/users/{quote(ada, safe='')}").status_code == 204
        assert user_total(in_memory) == 9
        in_memory.stop()
        in_memory.start()  # a new tenant: the old one went with its in-memory database
        assert user_total(in_memory) == 10
    finally:
        in_memory.stop()


def test_a_database_file_and_its_wal_and_shm_are_the_owners_alone(tmp_path: Path) -> None:
    """The file holds client secrets, password hashes and every email: 0600 from its first byte, an
    existing looser one tightened, and never reached through a symbolic link."""
    db = tmp_path / "tenant.sqlite"
    with Sandbox(db=str(db), seed=3) as tenant, management(tenant) as api:
        created = api.post("/users", json={"connection": DATABASE, "email": "new@example.com",
                                           "password": "Str0ng-enough-4-us!"})
        assert created.status_code == 201, created.text
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert all(f.exists() for f in files)
        assert {oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {"0o600"}
    db.chmod(0o644)
    with Sandbox(db=str(db)):
        assert oct(stat.S_IMODE(db.stat().st_mode)) == "0o600"
    link = tmp_path / "link.sqlite"
    link.symlink_to(db)
    with pytest.raises(ValueError, match="symbolic link"):
        Sandbox(db=str(link)).start()
