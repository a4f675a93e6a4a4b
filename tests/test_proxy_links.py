"""The login link a person's browser can open: a sandbox's loopback link through the notebook
server's proxy (jupyter-server-proxy) on a hub or a lab that has it, any other link untouched; and
the link a LoginPrompt and ``show_link`` show under ``JUPYTERHUB_SERVICE_PREFIX``."""

from __future__ import annotations

import json
import os

import pytest

from linking_toolkit.errors import LoginCancelled
from linking_toolkit.login_flows import show_link
from linking_toolkit.proxy_links import PROXY_BASE_ENV, browser_link, proxied_link, proxy_base
from linking_toolkit.widgets import LoginPrompt

HUB = "https://hub.example.org/user/ada/"


@pytest.fixture(autouse=True)
def no_server(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """No hub, no explicit base, and a Jupyter runtime directory with no server in it."""
    for name in (PROXY_BASE_ENV, "JUPYTERHUB_SERVICE_PREFIX", "JUPYTERHUB_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))


@pytest.mark.parametrize(("url", "base", "expected"), [
    ("http://127.0.0.1:41234/activate?user_code=BCDF-GHJK", HUB,
     "https://hub.example.org/user/ada/proxy/41234/activate?user_code=BCDF-GHJK"),
    ("http://127.0.0.1:41234/activate?user_code=BCDF-GHJK", "/user/ada/",
     "/user/ada/proxy/41234/activate?user_code=BCDF-GHJK"),
    ("http://localhost:8000/authorize?a=1&b=%2F#top", "/", "/proxy/8000/authorize?a=1&b=%2F#top"),
    ("http://[::1]:8000/activate", "/base/", "/base/proxy/8000/activate"),
    ("http://127.0.0.1:8000", "/", "/proxy/8000/"),
    # Never rewritten: a real tenant, no proxy, no port, not plain http.
    ("https://example.eu.auth0.com/activate?user_code=X", HUB, "https://example.eu.auth0.com/activate?user_code=X"),
    ("http://127.0.0.1:41234/activate", None, "http://127.0.0.1:41234/activate"),
    ("http://127.0.0.1/callback", HUB, "http://127.0.0.1/callback"),
    ("https://127.0.0.1:41234/activate", HUB, "https://127.0.0.1:41234/activate"),
    ("http://10.0.0.5:41234/activate", HUB, "http://10.0.0.5:41234/activate"),
])
def test_proxied_link(url: str, base: str | None, expected: str) -> None:
    assert proxied_link(url, base) == expected


def test_no_hub_and_no_server_keeps_the_loopback_link() -> None:
    assert proxy_base() is None
    assert browser_link("http://127.0.0.1:41234/activate") == "http://127.0.0.1:41234/activate"


def test_on_a_hub_the_users_server_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    assert proxy_base() == "/user/ada/"
    assert browser_link("http://127.0.0.1:41234/activate") == "/user/ada/proxy/41234/activate"
    # With the hub's public URL, a full link (only its origin is taken).
    monkeypatch.setenv("JUPYTERHUB_PUBLIC_URL", "https://hub.example.org/user/ada/")
    assert browser_link("http://127.0.0.1:41234/activate") == f"{HUB}proxy/41234/activate"


def test_the_explicit_base_wins_and_off_keeps_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    monkeypatch.setenv(PROXY_BASE_ENV, "https://lab.example.org/base")
    assert proxy_base() == "https://lab.example.org/base/"
    monkeypatch.setenv(PROXY_BASE_ENV, "off")
    assert browser_link("http://127.0.0.1:41234/activate") == "http://127.0.0.1:41234/activate"
    monkeypatch.setenv(PROXY_BASE_ENV, "lab.example.org")
    with pytest.raises(ValueError, match="LINKING_TOOLKIT_PROXY_BASE must be the notebook server's base"):
        proxy_base()


def test_the_jupyter_server_that_started_the_kernel(tmp_path) -> None:
    """A kernel's parent is its Jupyter server, which lists itself in ``jpserver-<pid>.json``."""
    (tmp_path / "jpserver-1.json").write_text(json.dumps({"pid": 1, "base_url": "/other/"}))
    assert proxy_base() is None  # another server is not this kernel's
    (tmp_path / f"jpserver-{os.getppid()}.json").write_text(json.dumps({"base_url": "/lab/"}))
    assert proxy_base() == "/lab/"
    (tmp_path / f"jpserver-{os.getppid()}.json").write_text("{not json")
    assert proxy_base() is None


def test_the_prompt_and_show_link_show_the_proxied_link(monkeypatch: pytest.MonkeyPatch, client_tenant,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    prompt = LoginPrompt.start(client_tenant)
    capsys.readouterr()  # the one line on why nothing is cached for a sandbox in this process
    try:
        port = client_tenant.sandbox.port
        link = f"/user/ada/proxy/{port}/activate?user_code={prompt.pending.user_code}"
        assert f"href='{link}'" in prompt.link.value and f">{link}</a>" in prompt.link.value
        assert "127.0.0.1" not in prompt.link.value
        # The kernel itself still talks to the tenant on loopback: same issuer, same endpoints.
        assert prompt.pending.verification_uri_complete.startswith(client_tenant.sandbox.base_url)
        assert client_tenant.issuer == client_tenant.sandbox.issuer
    finally:
        prompt.press_cancel()
    with pytest.raises(LoginCancelled):
        prompt.result(30)
    show_link("Open this link:", f"http://127.0.0.1:{port}/activate")
    assert capsys.readouterr().err == f"Open this link: /user/ada/proxy/{port}/activate\n"
