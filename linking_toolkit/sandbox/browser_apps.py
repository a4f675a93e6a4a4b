"""The single-page application's settings, as on an Auth0 tenant: Allowed Callback URLs, Allowed
Logout URLs and Allowed Web Origins; their defaults, their checks, and how a URL is matched.

A callback or logout URL is an absolute ``http``/``https`` URL with a host and no fragment; an
origin is ``scheme://host[:port]`` with no path, query or fragment (what a browser sends in
``Origin``). Matching is exact, as Auth0's for a browser app (no loopback port leniency: that is
for native apps, RFC 8252), except that an empty path and ``/`` are the same URL.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_SPA_CALLBACK_URLS",
    "DEFAULT_SPA_LOGOUT_URLS",
    "DEFAULT_SPA_WEB_ORIGINS",
    "SPA_CLIENT_NAME",
    "check_origin",
    "check_url",
    "check_url_list",
    "origin_of",
    "same_url",
]

SPA_CLIENT_NAME = "Account linking (single-page app)"
# Auth0's quickstarts serve the app on http://localhost:3000; 127.0.0.1:3000 is the same app as
# `python -m http.server 3000 --bind 127.0.0.1` serves it.
DEFAULT_SPA_CALLBACK_URLS = ("http://localhost:3000", "http://127.0.0.1:3000")
DEFAULT_SPA_LOGOUT_URLS = DEFAULT_SPA_CALLBACK_URLS
DEFAULT_SPA_WEB_ORIGINS = ("http://localhost:3000", "http://127.0.0.1:3000")


def _split(value: object, what: str) -> tuple[str, str, str, str, str, int | None]:
    if not isinstance(value, str) or not value or value != value.strip():
        raise ValueError(f"{what} must be a URL string, not {value!r}")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} {value!r} must be an absolute http or https URL")
    if parts.username is not None or parts.password is not None or any(c in value for c in " *\\"):
        raise ValueError(f"{what} {value!r} must not hold credentials, spaces or wildcards")
    return parts.scheme, parts.hostname, parts.path, parts.query, parts.fragment, port


def check_url(value: object, what: str = "URL") -> str:
    """``value`` if it is an allowed callback or logout URL, else a one-line ValueError.

    Examples
    --------
    >>> from linking_toolkit.sandbox.browser_apps import check_url
    >>> check_url("http://127.0.0.1:3000/callback")
    'http://127.0.0.1:3000/callback'
    >>> check_url("javascript:alert(1)")
    Traceback (most recent call last):
        ...
    ValueError: URL 'javascript:alert(1)' must be an absolute http or https URL
    """
    *_, fragment, _port = _split(value, what)
    if fragment or "#" in str(value):
        raise ValueError(f"{what} {value!r} must not have a fragment")
    return str(value)


def check_origin(value: object, what: str = "web origin") -> str:
    """``value``, lower-cased, if it is ``scheme://host[:port]``, else a one-line ValueError.

    Examples
    --------
    >>> from linking_toolkit.sandbox.browser_apps import check_origin
    >>> check_origin("HTTP://LocalHost:3000")
    'http://localhost:3000'
    >>> check_origin("http://localhost:3000/path")
    Traceback (most recent call last):
        ...
    ValueError: web origin 'http://localhost:3000/path' must be scheme://host[:port], with no path
    """
    _scheme, _host, path, query, fragment, _port = _split(value, what)
    if path or query or fragment or "?" in str(value) or "#" in str(value):
        raise ValueError(f"{what} {value!r} must be scheme://host[:port], with no path")
    return str(value).lower()


def check_url_list(values: object, what: str, *, origins: bool = False) -> tuple[str, ...]:
    """A list of URLs (or origins); one string is a list of one.

    Examples
    --------
    >>> from linking_toolkit.sandbox.browser_apps import check_url_list
    >>> check_url_list("http://127.0.0.1:3000/callback", "callback URL")
    ('http://127.0.0.1:3000/callback',)
    >>> check_url_list(["http://LOCALHOST:3000"], "web origin", origins=True)
    ('http://localhost:3000',)
    """
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, Iterable):
        raise ValueError(f"{what} must be a list of URLs, not {values!r}")
    check = check_origin if origins else check_url
    return tuple(dict.fromkeys(check(v, what.rstrip("s")) for v in values))


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL (lower case, default port left out), or None.

    Examples
    --------
    >>> from linking_toolkit.sandbox.browser_apps import origin_of
    >>> origin_of("HTTPS://Example.org:443/path?x=1"), origin_of("http://127.0.0.1:8080/a")
    ('https://example.org', 'http://127.0.0.1:8080')
    >>> print(origin_of("not a url"))
    None
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def same_url(registered: str, given: str) -> bool:
    """Whether ``given`` is the registered URL (scheme and host case-insensitive, ``""`` path = ``/``).

    Examples
    --------
    >>> from linking_toolkit.sandbox.browser_apps import same_url
    >>> same_url("http://localhost:3000", "HTTP://LOCALHOST:3000/")
    True
    >>> same_url("http://localhost:3000/a", "http://localhost:3000/b")
    False
    """
    try:
        a, b = urlsplit(registered), urlsplit(given)
        ports = a.port, b.port
    except ValueError:
        return False
    if "#" in given or "@" in b.netloc or not b.hostname:  # no fragment, no userinfo (RFC 6749 §3.1.2)
        return False
    return ((a.scheme.lower(), a.hostname, ports[0], a.path or "/", a.query)
            == (b.scheme.lower(), b.hostname, ports[1], b.path or "/", b.query))
