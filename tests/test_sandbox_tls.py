"""``Sandbox(tls=True)`` / ``--tls``: the sandbox on https, signed by a CA made for the run.

SDKs that insist on an ``https`` issuer (Auth0's Node SDK, auth0-python by default) verify the
sandbox's ID tokens when they trust its CA; a client that does not trust it is refused.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
from collections.abc import Iterator

import httpx2
import pytest
from auth0.authentication import GetToken
from auth0.authentication.token_verifier import AsymmetricSignatureVerifier, TokenVerifier
from test_sandbox_cli import cli

from linking_toolkit import ManagementClient, connect, login
from linking_toolkit.errors import TenantError
from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.connections import DATABASE


@pytest.fixture(scope="module")
def tls_sandbox() -> Iterator[Sandbox]:
    with Sandbox(seed=3, tls=True) as tenant:
        yield tenant


def test_tls_sandbox_serves_https_that_only_its_ca_vouches_for(tls_sandbox: Sandbox) -> None:
    assert tls_sandbox.issuer.startswith("https://127.0.0.1:")
    assert tls_sandbox.management_audience == f"https://{tls_sandbox.domain}/api/v2/"
    ca_file = tls_sandbox.info()["ca_file"]
    assert ca_file == tls_sandbox.ca_file
    with open(ca_file) as pem:
        assert pem.read().startswith("-----BEGIN CERTIFICATE-----")
    discovery = f"{tls_sandbox.base_url}/.well-known/openid-configuration"
    with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx2.get(discovery)
    doc = httpx2.get(discovery, verify=ssl.create_default_context(cafile=ca_file)).json()
    assert doc["issuer"] == tls_sandbox.issuer
    assert doc["jwks_uri"].startswith("https://")


def test_the_toolkit_trusts_the_sandbox_it_was_given(tls_sandbox: Sandbox) -> None:
    with connect(sandbox=tls_sandbox) as tenant:
        assert tenant.ca_file == tls_sandbox.ca_file
        ada = tls_sandbox.demo_user("ada@example.com")
        session = login(tenant, method="password", email=ada["email"], password=ada["password"])
        assert session.user_id == ada["user_id"]  # its ID token was verified against the https issuer
        with ManagementClient.from_client_credentials(tenant) as admin:
            assert admin.get_user(ada["user_id"])["email"] == "ada@example.com"


def test_connect_to_a_shell_sandbox_by_url_and_ca_file(tls_sandbox: Sandbox) -> None:
    with connect(domain=tls_sandbox.base_url, client_id=tls_sandbox.client_id, env_file=None,
                 ca_file=tls_sandbox.ca_file) as tenant:
        assert tenant.issuer == tls_sandbox.issuer
    with pytest.raises(TenantError, match=r"not trusted \(CERTIFICATE_VERIFY_FAILED\).*ca_file"):
        connect(domain=tls_sandbox.base_url, client_id=tls_sandbox.client_id, env_file=None)


def test_auth0_python_on_its_https_defaults_verifies_the_sandbox_id_token(
        tls_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_sandbox.ca_file or "")
    ada = tls_sandbox.demo_user("ada@example.com")
    # No protocol="http" here: the SDK's default https, and Auth0's audience alias.
    tokens = GetToken(tls_sandbox.domain, tls_sandbox.client_id, telemetry=False).login(
        username=ada["email"], password=ada["password"], realm=DATABASE, scope="openid email",
        audience=f"https://{tls_sandbox.domain}/api/v2/")
    verifier = TokenVerifier(
        signature_verifier=AsymmetricSignatureVerifier(f"https://{tls_sandbox.domain}/.well-known/jwks.json"),
        issuer=f"https://{tls_sandbox.domain}/", audience=tls_sandbox.client_id)
    assert verifier.verify(tokens["id_token"])["email"] == "ada@example.com"


def test_the_ca_outlives_a_restart_so_trust_is_kept() -> None:
    tenant = Sandbox(seed=3, tls=True)
    with tenant:
        first = tenant.ca_file
        port = tenant.port
    with tenant:
        assert tenant.ca_file == first and tenant.port == port
        trusted = ssl.create_default_context(cafile=first)
        assert httpx2.get(f"{tenant.base_url}/.well-known/jwks.json", verify=trusted).status_code == 200


def test_cli_tls_prints_the_ca_file_and_serves_https() -> None:
    with cli("--seed", "1", "--tls", "--quiet") as (_process, info):
        assert info["issuer"].startswith("https://")
        context = ssl.create_default_context(cafile=info["ca_file"])
        response = httpx2.get(info["base_url"] + "/.well-known/openid-configuration", verify=context)
        assert response.json()["issuer"] == info["issuer"]


@pytest.mark.parametrize("option", ["tls", "export_jobs"])
def test_a_flag_that_is_not_a_bool_is_refused_in_one_line(option: str) -> None:
    with pytest.raises(ValueError, match=rf"^{option} must be True or False, not 'yes'$"):
        Sandbox(**{option: "yes"})


def test_cli_flags_take_no_value() -> None:
    done = subprocess.run([sys.executable, "-m", "linking_toolkit.sandbox", "--tls=yes"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith("argument --tls: ignored explicit argument 'yes'")
