"""The login flows that end in a verified :class:`~linking_toolkit.tokens.Session`; no widgets here.

- ``device`` (default): the device authorization grant. The kernel shows a link and a code; the
  person signs in on any browser (their laptop, their phone). Works where the kernel runs far
  from the browser: JupyterHub, Colab, VS Code remote.
- ``browser``: authorization code + PKCE (S256) with a loopback redirect on 127.0.0.1.
- ``paste``: the same, but the person pastes the URL the browser was redirected to.
- ``password``: the password-realm grant, for database users (tests, scripts, the sandbox).

Every flow asks for the Management API audience and :data:`SCOPE`; the interactive ones send a
``state`` that carries the purpose (``linking.<random>``, as the seed's ``state: "linking"``) and a
``nonce``, and check both. ``begin_login`` runs the waiting in a background thread and returns a
:class:`PendingLogin` at once; ``login`` blocks. The ``start_login`` a learner calls (which shows
a LoginPrompt widget in a notebook) is in :mod:`linking_toolkit.widgets`.

Both take ``cache=``, a strategy of :mod:`linking_toolkit.cache`: a cached login is refreshed
into a verified session with no prompt (``flows.session_from_cache``), and a login that may be
kept asks for ``offline_access`` and keeps its refresh token once its session is verified.

Modules: ``grants.py`` (what is sent, and tokens -> Session), ``pending.py`` (PendingLogin, the
device poller and loopback server), ``flows.py`` (begin_login, login, the cache, how a link is shown).
"""

from .flows import PASTE_REDIRECT_URI, Show, begin_login, in_kernel, login, show_link
from .grants import DATABASE_CONNECTION, SCOPE, AuthorizationRequest, DeviceAuthorization, Method
from .pending import DEVICE_POLL_FAILURES, PendingLogin, Status

__all__ = [
    "DATABASE_CONNECTION",
    "DEVICE_POLL_FAILURES",
    "PASTE_REDIRECT_URI",
    "SCOPE",
    "AuthorizationRequest",
    "DeviceAuthorization",
    "Method",
    "PendingLogin",
    "Show",
    "Status",
    "begin_login",
    "in_kernel",
    "login",
    "show_link",
]
