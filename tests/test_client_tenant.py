"""connect(): a real tenant from arguments, environment or .env; otherwise the embedded sandbox."""

from __future__ import annotations

import os
from pathlib import Path

import httpx2
import pytest

from linking_toolkit import ManagementClient, Tenant, connect, login
from linking_toolkit.errors import TenantError
from linking_toolkit.sandbox import Sandbox

ENV = ("AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "AUTH0_AUDIENCE", "AUTH0_M2M_CLIENT_ID")


@pytest.fixture(autouse=True)
def no_auth0_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def check_discovered(tenant: Tenant, sandbox: Sandbox) -> None:
    assert tenant.issuer == sandbox.issuer and tenant.issuer.endswith("/")
    assert tenant.management_audience == sandbox.management_audience
    assert tenant.endpoints["token_endpoint"] == sandbox.base_url + "/oauth/token"
    assert tenant.endpoints["jwks_uri"].endswith("/.well-known/jwks.json")
    assert set(tenant.endpoints) == {"authorization_endpoint", "token_endpoint",
                                     "device_authorization_endpoint", "userinfo_endpoint", "jwks_uri"}


def test_without_configuration_the_sandbox_starts_and_says_so(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    with connect(env_file=tmp_path / "missing.env") as tenant:
        assert tenant.sandbox is not None
        check_discovered(tenant, tenant.sandbox)
        assert tenant.connections == ["Username-Password-Authentication", "google-oauth2", "facebook",
                                      "github"]
        out = capsys.readouterr().out
        assert out.count("\n") == 1 and tenant.issuer in out
        sandbox = tenant.sandbox
    assert "stopped" in repr(sandbox)  # closing the tenant stopped the sandbox it started


def test_a_running_sandbox(sandbox: Sandbox) -> None:
    with connect(sandbox=sandbox) as tenant:
        check_discovered(tenant, sandbox)
        assert tenant.client_id == sandbox.client_id and tenant.m2m_client_id == sandbox.m2m_client_id
        assert sandbox.m2m_client_secret not in repr(tenant)
    assert sandbox.issuer  # a sandbox passed in keeps running


def test_a_real_tenant_from_arguments(sandbox: Sandbox) -> None:
    with connect(domain=sandbox.base_url, client_id=sandbox.client_id, client_secret="s3cret",
                 m2m_client_id=sandbox.m2m_client_id, env_file=None) as tenant:
        check_discovered(tenant, sandbox)
        assert tenant.sandbox is None and tenant.m2m_client_secret == "s3cret"
        assert "s3cret" not in repr(tenant)


def test_a_real_tenant_from_the_environment(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH0_DOMAIN", sandbox.base_url)
    monkeypatch.setenv("AUTH0_CLIENT_ID", sandbox.client_id)
    with connect(env_file=None) as tenant:
        check_discovered(tenant, sandbox)
        assert tenant.m2m_client_id is None and tenant.m2m_client_secret is None


def test_a_real_tenant_from_a_dotenv_file(sandbox: Sandbox, tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(f"AUTH0_DOMAIN={sandbox.base_url}\nAUTH0_CLIENT_ID={sandbox.client_id}\n"
                   f"AUTH0_CLIENT_SECRET={sandbox.m2m_client_secret}\n"
                   f"AUTH0_M2M_CLIENT_ID={sandbox.m2m_client_id}\n")
    with connect(env_file=env) as tenant:
        check_discovered(tenant, sandbox)
        assert tenant.m2m_client_id == sandbox.m2m_client_id
        # The whole path works against it as against a real tenant: a login, then a machine client.
        ada = sandbox.demo_user("ada@example.com")
        session = login(tenant, method="password", email=ada["email"], password=ada["password"])
        assert session.claims["iss"] == tenant.issuer and session.profile["email"] == ada["email"]
        with ManagementClient.from_client_credentials(tenant) as admin:
            assert admin.get_user(session.user_id)["user_id"] == session.user_id
    assert "AUTH0_DOMAIN" not in os.environ  # read, never written into the environment


def test_a_domain_without_a_client_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TenantError, match="AUTH0_CLIENT_ID"):
        connect(domain="example.eu.auth0.com", env_file=tmp_path / "none")


def test_a_tenant_that_answers_html_is_a_tenant_error(sandbox: Sandbox) -> None:
    def html(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, text="<html>captive portal</html>", headers={"content-type": "text/html"})

    with pytest.raises(TenantError, match="JSON"):
        Tenant.discover(sandbox.base_url, client_id="x", transport=httpx2.MockTransport(html))


def test_a_discovery_document_for_another_issuer_is_refused(sandbox: Sandbox) -> None:
    real = httpx2.HTTPTransport()

    def other_issuer(request: httpx2.Request) -> httpx2.Response:
        response = real.handle_request(request)
        response.read()
        doc = response.json() | {"issuer": "https://evil.example.com/"}
        return httpx2.Response(200, json=doc)

    with pytest.raises(TenantError, match="issuer"):
        Tenant.discover(sandbox.base_url, client_id="x", transport=httpx2.MockTransport(other_issuer))


def test_an_unreachable_tenant_is_a_tenant_error() -> None:
    with Sandbox(seed=1) as gone:
        url = gone.base_url
    with pytest.raises(TenantError, match="could not reach"):
        connect(domain=url, client_id="x", env_file=None)


def test_arguments_come_before_the_environment_before_the_dotenv_file(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / ".env"
    env.write_text("AUTH0_DOMAIN=https://from-the-file.invalid\nAUTH0_CLIENT_ID=file-client\n"
                   "AUTH0_AUDIENCE=https://file-audience/\n")
    monkeypatch.setenv("AUTH0_DOMAIN", sandbox.base_url)
    monkeypatch.setenv("AUTH0_CLIENT_ID", "env-client")
    with connect(env_file=env) as tenant:
        assert tenant.issuer == sandbox.issuer and tenant.client_id == "env-client"
        assert tenant.management_audience == "https://file-audience/"  # only the file sets it
    with connect(env_file=env, client_id="arg-client", audience=sandbox.management_audience) as tenant:
        assert tenant.client_id == "arg-client" and tenant.management_audience == sandbox.management_audience
