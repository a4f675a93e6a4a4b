"""Shared fixtures: every test that talks to a tenant talks HTTP to a running sandbox."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from linking_toolkit.sandbox import Sandbox

# Auth0's documents the tests check the sandbox against, vendored with the repository.
REFERENCE = Path(__file__).resolve().parent / "reference"


@pytest.fixture(scope="session", autouse=True)
def private_token_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The token cache of every test, and of the kernels and processes it starts, is a file of this
    run (``LINKING_TOOLKIT_CACHE``), never the user's own; a test of the cache passes its own path.

    The suite sees a personal machine wherever it runs: a hub's or Colab's variables (which change
    the cache's default and the links a prompt shows) are cleared; a test that needs them sets them.
    """
    path = tmp_path_factory.mktemp("token-cache") / "tokens.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LINKING_TOOLKIT_CACHE", str(path))
        for name in ("JUPYTERHUB_USER", "JUPYTERHUB_SERVICE_PREFIX", "JUPYTERHUB_PUBLIC_URL",
                     "COLAB_RELEASE_TAG", "LINKING_TOOLKIT_PROXY_BASE"):
            patch.delenv(name, raising=False)
        yield path


@pytest.fixture
def sandbox_options() -> dict[str, int]:
    """``Sandbox`` options of the ``sandbox`` fixture beyond its seed: none, unless a module or a
    test overrides this fixture (``{"device_poll_interval": 1}`` keeps device logins short)."""
    return {}


@pytest.fixture
def sandbox(sandbox_options: dict[str, int]) -> Iterator[Sandbox]:
    """A fresh, seeded demo tenant for one test (nothing leaks between tests)."""
    with Sandbox(seed=7, **sandbox_options) as tenant:
        yield tenant


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[Sandbox]:
    """One demo tenant for a module's read-only tests."""
    with Sandbox(seed=7) as tenant:
        yield tenant


@pytest.fixture
def mint(sandbox: Sandbox):
    """Mint an access token in-process, as the tenant itself would (for crafted and user tokens).

    ``mint(scope=..., sub=..., client_id=..., audience=..., expires_in=...)``.
    """
    from linking_toolkit.sandbox.authentication_api.tokens import mint_access_token

    def _mint(scope: str, *, sub: str | None = None, client_id: str | None = None,
              audience: str | None = None, expires_in: int = 3600, gty: str | None = None) -> str:
        ctx = sandbox.context
        assert ctx is not None
        client = client_id or sandbox.m2m_client_id
        return mint_access_token(ctx, sub=sub or f"{client}@clients", client_id=client, scope=scope,
                                 audience=audience or sandbox.management_audience, gty=gty,
                                 expires_in=expires_in)

    return _mint


@pytest.fixture
def m2m_token(sandbox: Sandbox) -> str:
    """A Management API token of the demo machine-to-machine client (all its granted scopes),
    from the sandbox's token endpoint with client credentials, as an analyst would get one."""
    response = httpx2.post(sandbox.base_url + "/oauth/token", json={
        "grant_type": "client_credentials", "client_id": sandbox.m2m_client_id,
        "client_secret": sandbox.m2m_client_secret, "audience": sandbox.management_audience})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.fixture
def api(sandbox: Sandbox, m2m_token: str) -> Iterator[httpx2.Client]:
    """An HTTP client on the sandbox's ``/api/v2`` carrying the M2M client's bearer token."""
    with httpx2.Client(base_url=sandbox.base_url + "/api/v2", timeout=30,
                       headers={"Authorization": f"Bearer {m2m_token}"}) as client:
        yield client


@pytest.fixture
def mint_id(sandbox: Sandbox):
    """Mint an ID token for a user of the sandbox, as its login would (``link_with`` tokens)."""
    import time

    from linking_toolkit.sandbox.authentication_api.tokens import mint_id_token

    def _mint(user_id: str, *, client_id: str | None = None) -> str:
        ctx = sandbox.context
        assert ctx is not None
        with ctx.store.read() as db:
            row = ctx.store.get_user_row(db, user_id)
        assert row is not None, user_id
        return mint_id_token(ctx, user=row, client_id=client_id or sandbox.client_id,
                             scope="openid profile email", auth_time=int(time.time()))

    return _mint


@pytest.fixture(scope="session")
def auth0_reference() -> Path:
    """Auth0's published reference files (OpenAPI documents, recordings), kept verbatim in
    ``tests/reference`` (their sources are in its ``SOURCES.md``).

    ``LINKING_AUTH0_REFERENCE`` may name a folder of the same layout, to test against a newer copy;
    a folder without the files fails the tests that need them (never a skip), with this message.
    """
    where = Path(os.environ.get("LINKING_AUTH0_REFERENCE", REFERENCE))
    if not (where / "management-api-v2.linking-subset.oas.json").is_file():
        pytest.fail(f"Auth0's reference files are not at {where}: LINKING_AUTH0_REFERENCE must name "
                    "a folder holding management-api-v2.linking-subset.oas.json and recordings/")
    return where


@pytest.fixture
def client_tenant(sandbox: Sandbox):
    """The client toolkit's view of the sandbox (``connect(sandbox=...)``), closed after the test."""
    from linking_toolkit import connect

    tenant = connect(sandbox=sandbox)
    yield tenant
    tenant.close()


@pytest.fixture
def admin(client_tenant):
    """A Management client of the demo machine-to-machine application (client credentials), which
    retries without waiting (``backoff=0``): tests inject faults, they need not sit them out."""
    from linking_toolkit import ManagementClient

    with ManagementClient.from_client_credentials(client_tenant, backoff=0) as client:
        yield client


@pytest.fixture
def login_as(sandbox: Sandbox, client_tenant):
    """Log in through the client toolkit as a demo person: ``login_as(email, connection, purpose)``.

    Database users use the password-realm grant; social ones the paste flow through the sandbox's
    own pages, as a person's browser would.
    """
    from linking_toolkit import login, start_login

    def _login(email: str, connection: str = "Username-Password-Authentication", purpose: str = "login"):
        if connection == "Username-Password-Authentication":
            user = sandbox.demo_user(email, connection)
            return login(client_tenant, method="password", email=email, password=user["password"],
                         purpose=purpose)
        pending = start_login(client_tenant, method="paste", connection=connection, purpose=purpose,
                              show=lambda text, url: None)
        redirect = sandbox.approve_browser(pending.authorize_url, connection=connection, email=email)
        return pending.complete(redirect)

    return _login
