"""The login link a person's browser can open: the tenant's own address, or through the notebook
server's proxy (jupyter-server-proxy) when the tenant listens on the kernel's loopback address.

On JupyterHub the kernel and the sandbox tenant run on the server, so the browser cannot open
``http://127.0.0.1:41234/activate``. jupyter-server-proxy forwards ``{server base}proxy/{port}/...``
to ``localhost:{port}/...`` for the logged-in user, so the prompt shows that link instead. Only the
link shown to the person changes: the kernel still talks to the tenant on loopback, so the issuer
and the tokens are the same. A link to any other host (a real Auth0 tenant) is never rewritten.

Where the notebook server's base comes from (the first that is set wins):

1. ``LINKING_TOOLKIT_PROXY_BASE``: the server's base URL as the browser sees it
   (``https://hub.example.org/user/ada/``, or a path: ``/user/ada/``); ``off`` keeps loopback links.
2. ``JUPYTERHUB_SERVICE_PREFIX``: on a hub, the user's server prefix (``/user/ada/``), after the
   origin of ``JUPYTERHUB_PUBLIC_URL`` when the hub sets it (as dask's dashboard links do).
3. The Jupyter server that started this kernel, read from its ``jpserver-<pid>.json`` in Jupyter's
   runtime directory (the pid is the kernel's parent's), when jupyter-server-proxy is installed in
   the kernel's environment (``make lab`` installs both in one). A kernel in another environment
   than its server says so with ``LINKING_TOOLKIT_PROXY_BASE``.

A base without a host gives a path (``/proxy/41234/activate?user_code=...``): the browser opens it
on the notebook page's own origin, by whatever name the person reached the server (an SSH tunnel, a
DNS name), which the kernel cannot know. Off a hub, with no Jupyter server or no proxy, links stay
as the tenant gave them.

Examples
--------
>>> proxied_link("http://127.0.0.1:41234/activate?user_code=BCDF-GHJK", "/user/ada/")
'/user/ada/proxy/41234/activate?user_code=BCDF-GHJK'
>>> proxied_link("https://example.eu.auth0.com/activate", "/user/ada/")
'https://example.eu.auth0.com/activate'
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

__all__ = ["PROXY_BASE_ENV", "browser_link", "proxied_link", "proxy_base"]

PROXY_BASE_ENV = "LINKING_TOOLKIT_PROXY_BASE"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def proxied_link(url: str, base: str | None) -> str:
    """``url`` through the proxy of the notebook server at ``base``: ``{base}proxy/{port}{path}``,
    for a loopback ``http`` URL with a port; any other URL, or no ``base``, is returned as it is.

    Examples
    --------
    >>> from linking_toolkit.proxy_links import proxied_link
    >>> proxied_link('http://127.0.0.1:53817/authorize?state=x', 'https://hub.example.org/user/ada/')
    'https://hub.example.org/user/ada/proxy/53817/authorize?state=x'
    >>> proxied_link('http://127.0.0.1:53817/authorize', None)
    'http://127.0.0.1:53817/authorize'
    >>> proxied_link('https://example.eu.auth0.com/authorize', '/user/ada/')
    'https://example.eu.auth0.com/authorize'
    """
    parts = urlsplit(url)
    if base is None or parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS or not parts.port:
        return url
    server = urlsplit(base)
    path = f"{server.path.rstrip('/')}/proxy/{parts.port}{parts.path or '/'}"
    return urlunsplit((server.scheme, server.netloc, path, parts.query, parts.fragment))


def proxy_base(environ: Mapping[str, str] | None = None) -> str | None:
    """The notebook server's base as the browser sees it (ending in ``/``), or None where links
    should stay on loopback. See the module's docstring for where it comes from.

    Examples
    --------
    >>> from linking_toolkit.proxy_links import proxy_base
    >>> proxy_base({'JUPYTERHUB_SERVICE_PREFIX': '/user/ada/', 'JUPYTERHUB_PUBLIC_URL': 'https://hub.example.org'})
    'https://hub.example.org/user/ada/'
    >>> print(proxy_base({'LINKING_TOOLKIT_PROXY_BASE': 'off'}))
    None
    """
    env = os.environ if environ is None else environ
    explicit = env.get(PROXY_BASE_ENV, "").strip()
    if explicit:
        if explicit.lower() == "off":
            return None
        if not explicit.startswith(("/", "http://", "https://")):
            raise ValueError(f"{PROXY_BASE_ENV} must be the notebook server's base URL "
                             f"(https://host/user/name/ or /user/name/) or 'off', not {explicit!r}")
        return explicit.rstrip("/") + "/"
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX", "").strip()
    if prefix.startswith("/"):
        public = urlsplit(env.get("JUPYTERHUB_PUBLIC_URL", ""))
        known = public.scheme in ("http", "https") and public.netloc
        origin = f"{public.scheme}://{public.netloc}" if known else ""
        return origin + prefix.rstrip("/") + "/"
    if importlib.util.find_spec("jupyter_server_proxy") is None:
        return None
    return _parent_server_base()


def _parent_server_base() -> str | None:
    """The ``base_url`` of the Jupyter server that started this process (its kernel), if any."""
    try:
        from jupyter_core.paths import jupyter_runtime_dir
    except ImportError:  # no Jupyter here: a script, not a kernel
        return None
    parent = os.getppid()
    for name in (f"jpserver-{parent}.json", f"nbserver-{parent}.json"):  # Jupyter Server, Notebook < 7
        try:
            info = json.loads((Path(jupyter_runtime_dir()) / name).read_text())
        except (OSError, ValueError):
            continue
        base = info.get("base_url") if isinstance(info, dict) else None
        if isinstance(base, str) and base.startswith("/"):
            return base.rstrip("/") + "/"
    return None


def browser_link(url: str) -> str:
    """The link to show a person for ``url``: through the notebook server's proxy where there is
    one (:func:`proxy_base`), else ``url`` itself.

    Examples
    --------
    >>> from linking_toolkit.proxy_links import browser_link
    >>> browser_link('http://127.0.0.1:53817/activate?user_code=ABCD-EFGH')   # doctest: +SKIP
    'https://hub.example.org/user/ada/proxy/53817/activate?user_code=ABCD-EFGH'
    """
    return proxied_link(url, proxy_base())
