"""``doctor``: each setting the toolkit needs, broken through the Management API as a dashboard would
leave it, the error a user then meets, the ✗ row, ``fix_tenant`` and the feature working again, and
``undo_fix`` putting the broken setting back field by field."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from linking_toolkit import LoginError, ManagementClient, Tenant, audit_tenant, doctor, login, start_login
from linking_toolkit.cache import READ_WRITE, TokenCache
from linking_toolkit.errors import Forbidden
from linking_toolkit.login_flows.grants import DEVICE_GRANT
from linking_toolkit.sandbox import Sandbox
from linking_toolkit.tenant_settings import FixRefused, fix_tenant, undo_fix
from linking_toolkit.tenant_settings.fixes import Change, apply_changes, own_objects

DOCTOR = "python -m linking_toolkit doctor"


@pytest.fixture
def sandbox_options() -> dict[str, int]:
    return {"device_poll_interval": 1}


def quiet(text: str, url: str | None) -> None:
    """The tests approve device codes themselves: nothing to show."""


def fresh_admin(tenant: Tenant, **kwargs: str) -> ManagementClient:
    """A client with a new token: a grant's scopes are in a token from when it was issued."""
    return ManagementClient.from_client_credentials(tenant, backoff=0, **kwargs)


@pytest.fixture
def owner(client_tenant: Tenant, mint) -> ManagementClient:
    """The tenant owner's client: the demo machine app's scopes, ``update:client_grants`` and
    ``update:connections``, which its machine app does not hold (granting itself scopes, or changing
    a connection every app shares, is a dashboard's job)."""
    from linking_toolkit.sandbox.seed.demo import M2M_SCOPES

    token = mint(M2M_SCOPES + " update:client_grants update:connections")
    with ManagementClient(client_tenant, lambda: token, backoff=0) as client:
        yield client


def row(tenant: Tenant, setting: str, **kwargs: str) -> dict[str, str]:
    frame = doctor(tenant, **kwargs)
    found = frame[frame["setting"] == setting]
    assert len(found) == 1, frame["setting"].tolist()
    return dict(found.iloc[0])


def m2m_grant(admin: ManagementClient, tenant: Tenant) -> dict:
    (grant,) = admin.client_grants(client_id=tenant.m2m_client_id, audience=tenant.management_audience)
    return grant


# -- breaking each setting, as a dashboard can leave it -------------------------------------------


def drop_grant_type(grant: str) -> Callable[[ManagementClient, Tenant], None]:
    def breaks(admin: ManagementClient, tenant: Tenant) -> None:
        now = admin.get_client(tenant.client_id)["grant_types"]
        admin.update_client(tenant.client_id, {"grant_types": [g for g in now if g != grant]})
    return breaks


def drop_scope(scope: str) -> Callable[[ManagementClient, Tenant], None]:
    def breaks(admin: ManagementClient, tenant: Tenant) -> None:
        grant = m2m_grant(admin, tenant)
        admin.update_client_grant(grant["id"], [s for s in grant["scope"] if s != scope])
    return breaks


def no_offline_access(admin: ManagementClient, tenant: Tenant) -> None:
    admin.update_resource_server(tenant.management_audience, {"allow_offline_access": False})


def no_rotation(admin: ManagementClient, tenant: Tenant) -> None:
    settings = dict(admin.get_client(tenant.client_id).get("refresh_token") or {})
    admin.update_client(tenant.client_id, {"refresh_token": settings | {"rotation_type": "non-rotating"}})


def no_loopback_callback(admin: ManagementClient, tenant: Tenant) -> None:
    now = admin.get_client(tenant.client_id)["callbacks"]
    admin.update_client(tenant.client_id, {"callbacks": [c for c in now if "127.0.0.1" not in c]})


def disable_connection(name: str) -> Callable[[ManagementClient, Tenant], None]:
    def breaks(admin: ManagementClient, tenant: Tenant) -> None:
        (connection,) = [c for c in admin.connections() if c["name"] == name]
        admin.set_connection_clients(connection["id"], {tenant.client_id: False})
    return breaks


def settings_of(admin: ManagementClient, tenant: Tenant) -> dict:
    """Every field the doctor may change, as the tenant holds them now."""
    native = admin.get_client(tenant.client_id)
    return {"native": {k: native.get(k) for k in ("grant_types", "callbacks", "refresh_token")},
            "grant": sorted(m2m_grant(admin, tenant)["scope"]),
            "offline": admin.get_resource_server(tenant.management_audience).get("allow_offline_access"),
            "connections": sorted(c["name"] for c in admin.connections()
                                  if tenant.client_id in admin.connection_clients(c["id"]))}


# -- what a user meets, and the same feature once fixed ---------------------------------------------


def device_login(sandbox: Sandbox, tenant: Tenant) -> None:
    pending = start_login(tenant, method="device", show=quiet)
    assert pending.user_code
    sandbox.approve_device(pending.user_code, connection="google-oauth2", email="alan@example.com")
    assert pending.result(timeout=60).profile["email"] == "alan@example.com"


def cached_login(sandbox: Sandbox, tenant: Tenant, tmp_path: Path) -> TokenCache:
    cache = READ_WRITE.at(tmp_path / f"cache-{len(list(tmp_path.iterdir()))}.json")
    user = sandbox.demo_users[0]
    login(tenant, method="password", email=user["email"], password=user["password"], cache=cache)
    return cache


def test_a_fresh_sandbox_is_ready_row_by_row(sandbox: Sandbox, client_tenant: Tenant) -> None:
    frame = doctor(client_tenant, spa_client_id=sandbox.spa_client_id)
    assert frame.attrs["ready"], frame.to_string()
    assert set(frame["ok"]) == {"✓"}
    assert list(dict.fromkeys(frame["feature"])) == [
        "device login", "browser login", "token cache", "linking", "audit by export", "the SPA example"]
    device = frame[frame["setting"] == "Device Code grant"].iloc[0]
    assert device["where in the Auth0 dashboard"] == (
        "Applications > Applications > Notebook (native) > Settings > Advanced Settings > Grant Types > "
        "Device Code")
    assert "-" in set(doctor(client_tenant)["ok"])  # no SPA named: not checked, and still ready


def test_device_grant_off_device_login_refused_with_the_hint_fix_and_undo(
        sandbox: Sandbox, client_tenant: Tenant, admin: ManagementClient, tmp_path: Path) -> None:
    drop_grant_type(DEVICE_GRANT)(admin, client_tenant)
    broken = settings_of(admin, client_tenant)
    with pytest.raises(LoginError) as refused:
        start_login(client_tenant, method="device", show=quiet)
    assert refused.value.error == "unauthorized_client"
    assert "Device Code grant" in str(refused.value) and DOCTOR in str(refused.value)
    assert "\n" not in str(refused.value)
    found = row(client_tenant, "Device Code grant")
    assert (found["ok"], found["now"], found["must be"]) == ("✗", "off", "on")

    undo_file = tmp_path / "undo.json"
    done = fix_tenant(client_tenant, undo_file, dry_run=False)
    assert list(done["result"]) == ["changed"] and list(done["field"]) == ["grant_types"]
    assert row(client_tenant, "Device Code grant")["ok"] == "✓"
    device_login(sandbox, client_tenant)

    undone = undo_fix(client_tenant, undo_file)
    assert list(undone["result"]) == ["put back"]
    assert settings_of(admin, client_tenant) == broken
    assert list(undo_fix(client_tenant, undo_file)["result"]) == ["already so"]  # safe to repeat


def test_offline_access_off_no_refresh_token_with_the_hint_then_fixed(
        sandbox: Sandbox, client_tenant: Tenant, admin: ManagementClient, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    no_offline_access(admin, client_tenant)
    broken = settings_of(admin, client_tenant)
    cache = cached_login(sandbox, client_tenant, tmp_path)
    said = capsys.readouterr().err
    assert "no refresh token" in said and "Allow Offline Access" in said and DOCTOR in said
    assert cache.load(client_tenant, purpose="login", connection=None) is None
    assert row(client_tenant, "Management API allows offline access")["ok"] == "✗"

    undo_file = tmp_path / "undo.json"
    fix_tenant(client_tenant, undo_file, dry_run=False)
    assert row(client_tenant, "Management API allows offline access")["ok"] == "✓"
    assert cached_login(sandbox, client_tenant, tmp_path).load(client_tenant, purpose="login",
                                                                      connection=None) is not None
    undo_fix(client_tenant, undo_file)
    assert settings_of(admin, client_tenant) == broken


@pytest.mark.parametrize(("scope", "setting"), [("update:users", "machine-to-machine app may update:users"),
                                                ("read:users", "machine-to-machine app may read:users")])
def test_a_scope_missing_from_the_client_grant_is_refused_with_the_hint_then_fixed(
        sandbox: Sandbox, client_tenant: Tenant, admin: ManagementClient, owner: ManagementClient,
        tmp_path: Path, scope: str, setting: str) -> None:
    drop_scope(scope)(owner, client_tenant)
    broken = settings_of(admin, client_tenant)
    primary, secondary = sandbox.demo_users[0], sandbox.demo_users[1]

    def use(client: ManagementClient) -> None:
        if scope == "read:users":
            audit_tenant(client)
        else:  # an analyst's link, then unlink, by provider and user id
            provider, user_id = secondary["user_id"].split("|", 1)
            client.link(primary["user_id"], provider=provider, user_id=secondary["user_id"])
            client.unlink(primary["user_id"], provider, user_id)

    with fresh_admin(client_tenant) as refused, pytest.raises(Forbidden) as caught:
        use(refused)
    assert f"grant the machine-to-machine app {scope}" in str(caught.value) and DOCTOR in str(caught.value)
    found = row(client_tenant, setting)
    assert (found["ok"], found["now"]) == ("✗", "not granted")

    undo_file = tmp_path / "undo.json"
    refused = fix_tenant(client_tenant, undo_file, dry_run=False)  # the demo machine app may not
    assert list(refused["result"]) == ["refused: needs update:client_grants (or change it in the dashboard)"]
    assert row(client_tenant, setting)["ok"] == "✗" and settings_of(admin, client_tenant) == broken
    undo_file = tmp_path / "undo-owner.json"
    done = fix_tenant(client_tenant, undo_file, dry_run=False, admin=owner)
    assert list(done["object"]) == ["client_grant"] and list(done["result"]) == ["changed"]
    assert row(client_tenant, setting)["ok"] == "✓"
    with fresh_admin(client_tenant) as fixed:
        use(fixed)
    undo_fix(client_tenant, undo_file, admin=owner)
    assert settings_of(admin, client_tenant) == broken


def test_a_connection_not_enabled_refuses_the_login_with_the_hint_then_fixed(
        sandbox: Sandbox, client_tenant: Tenant, admin: ManagementClient, owner: ManagementClient,
        tmp_path: Path) -> None:
    database = "Username-Password-Authentication"
    disable_connection(database)(owner, client_tenant)
    broken = settings_of(admin, client_tenant)
    user = sandbox.demo_users[0]
    with pytest.raises(LoginError) as refused:
        login(client_tenant, method="password", email=user["email"], password=user["password"])
    assert "enable the connection for the Native app" in str(refused.value) and DOCTOR in str(refused.value)
    found = row(client_tenant, f"connection {database}")
    assert (found["ok"], found["now"], found["feature"]) == ("✗", "not enabled", "device login")
    assert found["where in the Auth0 dashboard"] == \
        "Applications > Applications > Notebook (native) > Connections"

    refused_fix = fix_tenant(client_tenant, tmp_path / "demo-app.json", dry_run=False)
    assert list(refused_fix["result"]) == [
        "refused: needs update:connections (or change it in the dashboard)"]
    undo_file = tmp_path / "undo.json"
    fix_tenant(client_tenant, undo_file, dry_run=False, admin=owner)
    assert row(client_tenant, f"connection {database}")["ok"] == "✓"
    login(client_tenant, method="password", email=user["email"], password=user["password"])
    undo_fix(client_tenant, undo_file, admin=owner)
    assert settings_of(admin, client_tenant) == broken


@pytest.mark.parametrize(("breaks", "setting"), [
    (drop_grant_type("refresh_token"), "Refresh Token grant"),
    (drop_grant_type("authorization_code"), "Authorization Code grant"),
    (no_rotation, "Refresh Token Rotation"),
    (no_loopback_callback, "Allowed Callback URLs"),
], ids=["refresh-grant", "code-grant", "rotation", "callbacks"])
def test_each_native_app_setting_is_found_fixed_and_put_back_exactly(
        client_tenant: Tenant, admin: ManagementClient, tmp_path: Path, breaks, setting: str) -> None:
    before = settings_of(admin, client_tenant)
    breaks(admin, client_tenant)
    broken = settings_of(admin, client_tenant)
    assert broken != before
    assert row(client_tenant, setting)["ok"] == "✗"
    assert not doctor(client_tenant).attrs["ready"]
    undo_file = tmp_path / "undo.json"
    fix_tenant(client_tenant, undo_file, dry_run=False)
    assert doctor(client_tenant).attrs["ready"]
    assert fix_tenant(client_tenant, tmp_path / "again.json", dry_run=False).empty  # nothing left to do
    assert not (tmp_path / "again.json").exists()
    undo_fix(client_tenant, undo_file)
    assert settings_of(admin, client_tenant) == broken


def test_everything_broken_at_once_is_one_fix_and_one_undo(
        sandbox: Sandbox, client_tenant: Tenant, admin: ManagementClient, owner: ManagementClient,
        tmp_path: Path) -> None:
    for breaks in (drop_grant_type(DEVICE_GRANT), drop_grant_type("refresh_token"), no_offline_access,
                   no_rotation, drop_scope("read:users"), disable_connection("google-oauth2")):
        breaks(owner, client_tenant)
    broken = settings_of(admin, client_tenant)
    planned = fix_tenant(client_tenant)  # a dry run: nothing changes
    assert set(planned["result"]) == {"planned"} and settings_of(admin, client_tenant) == broken
    grant_types = planned[planned["field"] == "grant_types"]
    assert len(grant_types) == 1  # two grant types, one change of the field
    assert {DEVICE_GRANT, "refresh_token"} <= set(json.loads(grant_types.iloc[0]["after"]))
    undo_file = tmp_path / "undo.json"
    fix_tenant(client_tenant, undo_file, dry_run=False, admin=owner)
    assert stat.S_IMODE(os.stat(undo_file).st_mode) == 0o600
    assert doctor(client_tenant).attrs["ready"]
    device_login(sandbox, client_tenant)
    undo_fix(client_tenant, undo_file, admin=owner)
    assert settings_of(admin, client_tenant) == broken


def test_without_read_scopes_the_doctor_says_which_it_lacks(client_tenant: Tenant) -> None:
    with fresh_admin(client_tenant, scope="read:users update:users") as limited:
        frame = doctor(client_tenant, admin=limited)
    assert not frame.attrs["ready"]
    by_setting = frame.set_index("setting")
    assert by_setting.loc["Device Code grant", "ok"] == "?"
    assert by_setting.loc["Device Code grant", "now"] == "cannot check: needs read:clients"
    assert by_setting.loc["machine-to-machine app may read:users", "now"] == \
        "cannot check: needs read:client_grants"
    assert by_setting.loc["Management API allows offline access", "now"] == \
        "cannot check: needs read:resource_servers"
    assert by_setting.loc["connection google-oauth2", "now"] == "cannot check: needs read:connections"


def test_the_fix_refuses_another_apps_settings(sandbox: Sandbox, client_tenant: Tenant,
                                               admin: ManagementClient, tmp_path: Path) -> None:
    spa = admin.get_client(sandbox.spa_client_id)
    change = Change("client", sandbox.spa_client_id, "web_origins", spa["web_origins"], ["https://evil.example"])
    with pytest.raises(FixRefused, match="not one of the toolkit's own"):
        apply_changes(admin, client_tenant, [change], tmp_path / "undo.json", own_objects(client_tenant))
    assert not (tmp_path / "undo.json").exists()
    assert admin.get_client(sandbox.spa_client_id)["web_origins"] == spa["web_origins"]


def test_an_undo_file_naming_another_app_is_refused_whole(sandbox: Sandbox, client_tenant: Tenant,
                                                          admin: ManagementClient, tmp_path: Path) -> None:
    drop_grant_type(DEVICE_GRANT)(admin, client_tenant)
    undo_file = tmp_path / "undo.json"
    fix_tenant(client_tenant, undo_file, dry_run=False)
    fixed = settings_of(admin, client_tenant)
    record = json.loads(undo_file.read_text())
    spa = admin.get_client(sandbox.spa_client_id)
    record["changes"].append({**record["changes"][0], "id": sandbox.spa_client_id, "field": "web_origins",
                              "before": ["https://evil.example"], "after": spa["web_origins"]})
    undo_file.write_text(json.dumps(record))
    with pytest.raises(FixRefused, match="not one of the toolkit's own"):
        undo_fix(client_tenant, undo_file)
    assert settings_of(admin, client_tenant) == fixed
    assert admin.get_client(sandbox.spa_client_id)["web_origins"] == spa["web_origins"]


def test_an_existing_undo_file_is_never_overwritten(client_tenant: Tenant, admin: ManagementClient,
                                                    tmp_path: Path) -> None:
    drop_grant_type(DEVICE_GRANT)(admin, client_tenant)
    earlier = tmp_path / "undo.json"
    earlier.write_text("an earlier fix's record")
    with pytest.raises(FixRefused, match="exists already"):
        fix_tenant(client_tenant, earlier, dry_run=False)
    assert earlier.read_text() == "an earlier fix's record"
    assert row(client_tenant, "Device Code grant")["ok"] == "✗"


def test_an_undo_file_of_another_tenant_is_refused(client_tenant: Tenant, admin: ManagementClient,
                                                   tmp_path: Path) -> None:
    drop_grant_type(DEVICE_GRANT)(admin, client_tenant)
    undo_file = tmp_path / "undo.json"
    fix_tenant(client_tenant, undo_file, dry_run=False)
    record = json.loads(undo_file.read_text()) | {"issuer": "https://other.eu.auth0.com/"}
    undo_file.write_text(json.dumps(record))
    with pytest.raises(FixRefused, match=r"other\.eu\.auth0\.com"):
        undo_fix(client_tenant, undo_file)
    assert row(client_tenant, "Device Code grant")["ok"] == "✓"


def test_a_setting_changed_again_after_the_fix_is_left_alone_by_undo(
        client_tenant: Tenant, admin: ManagementClient, tmp_path: Path) -> None:
    no_loopback_callback(admin, client_tenant)
    undo_file = tmp_path / "undo.json"
    fix_tenant(client_tenant, undo_file, dry_run=False)
    callbacks = admin.get_client(client_tenant.client_id)["callbacks"]
    admin.update_client(client_tenant.client_id, {"callbacks": [*callbacks, "http://127.0.0.1:8888/lab"]})
    done = undo_fix(client_tenant, undo_file)  # someone added a URL since: theirs is kept, and said so
    assert list(done["result"]) == ["left alone: it changed since the fix"]
    assert "http://127.0.0.1:8888/lab" in admin.get_client(client_tenant.client_id)["callbacks"]


DEVICE_REFUSED = "Grant type 'urn:ietf:params:oauth:grant-type:device_code' not allowed for the client."
NOT_AUTHORIZED = ('Client is not authorized to access "https://example.eu.auth0.com/api/v2/". '
                  "You need to create a client-grant associated to this API.")


@pytest.mark.parametrize(("error", "message", "setting"), [
    ("unauthorized_client", DEVICE_REFUSED, "Device Code grant"),
    ("unauthorized_client", "Grant type 'refresh_token' not allowed for the client.", "Refresh Token grant"),
    ("access_denied", "Service not enabled within domain: https://example.eu.auth0.com/userinfo",
     "enable the connection for the Native app"),
    ("Forbidden", "Insufficient scope, expected any of: read:users",
     "grant the machine-to-machine app read:users"),
    ("access_denied", NOT_AUTHORIZED, "authorize the machine-to-machine app"),
])
def test_each_auth0_error_of_a_missing_setting_names_the_setting(error: str, message: str,
                                                                 setting: str) -> None:
    from linking_toolkit.errors import error_from_response

    raised = error_from_response(403, {"statusCode": 403, "error": error, "message": message})
    assert str(raised).startswith(message) and setting in str(raised) and DOCTOR in str(raised)
    assert "\n" not in str(raised)
    other = error_from_response(403, {"error": error, "message": "Another refusal."})
    assert other.message == "Another refusal."


def test_a_user_sessions_own_scopes_get_no_grant_hint() -> None:
    from linking_toolkit.errors import fix_hint

    assert fix_hint(None, "Insufficient scope; expected any of: read:current_user.") is None


def test_a_machine_token_without_read_users_names_the_grant_to_change(client_tenant: Tenant) -> None:
    with fresh_admin(client_tenant, scope="update:users") as limited, pytest.raises(Forbidden) as refused:
        audit_tenant(limited)
    assert "grant the machine-to-machine app read:users" in str(refused.value)
    assert "Machine To Machine Applications" in str(refused.value) and DOCTOR in str(refused.value)
