"""Authentication API of the sandbox: ``/authorize`` and its login pages, the token endpoint and its
grants, device authorization, userinfo, discovery, the JWKS, logout, ``web_message``, CORS and SSO
sessions, as Auth0's ``authentication-api.oas.json`` (in the repository's ``tests/reference``) has
them.

The routes are in ``oauth.py`` (``auth``) and ``pages.py`` (``login_pages``), on one authorization server
(``authserver.py``, its grants in ``grants.py``); ``create_app`` registers them beside the
Management API. Codes, device codes, refresh tokens and logins in progress are kept by
``oauth_state.py``, tokens minted by ``tokens.py``.
"""

from .cors import install_cors
from .grants import install_oauth_server
from .oauth import auth
from .pages import pages as login_pages

__all__ = ["auth", "install_cors", "install_oauth_server", "login_pages"]
