"""Finish a sandbox login as a person would: read its pages over HTTP, fill the forms, press buttons.

There is no back door in the server: these functions only GET pages and POST the forms they find
in them (with the hidden fields and the cookie the pages set), so a test or a notebook that uses
them goes through exactly the checks a person's browser does. A database login with a password
fills the email and password form; without one it chooses the demo person from the page's list.

Examples
--------
>>> from linking_toolkit.sandbox.driver import approve_device    # doctest: +SKIP
>>> approve_device(tenant.base_url, "BCDF-GHJK", connection="google-oauth2",
...                email="alan@example.com")
"""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Protocol
from urllib.parse import urljoin

import httpx2

from .connections import DATABASE

__all__ = ["LoginPageError", "Pending", "approve_browser", "approve_device", "approve_login"]


class LoginPageError(RuntimeError):
    """A sandbox page did not offer what a person would need (or showed an error).

    Examples
    --------
    >>> from linking_toolkit.sandbox.driver import LoginPageError
    >>> issubclass(LoginPageError, RuntimeError)
    True
    >>> sandbox.approve_device("NOPE-NOPE", connection="Username-Password-Authentication",   # doctest: +SKIP
    ...                        email="ada@example.com")
    Traceback (most recent call last):
    LoginPageError: That code is invalid or has expired. Check your device and try again.
    """


@dataclass
class _Form:
    id: str
    action: str
    method: str
    attrs: dict[str, str]
    fields: list[tuple[str, str]] = field(default_factory=list)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class _FormParser(HTMLParser):
    """The page's forms (inputs and buttons) and its error message, if any."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self.error: str | None = None
        self._in_error = False
        self._current: _Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = _Form(a.get("id", ""), a.get("action", ""), a.get("method", "get").lower(), a)
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and a.get("name"):
            self._current.fields.append((a["name"], a.get("value", "")))
        elif tag == "button" and self._current is not None and a.get("name"):
            self._current.buttons.append((a["name"], a.get("value", "")))
        if a.get("id") == "error":
            self._in_error = True
            self.error = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None
        if tag == "p":
            self._in_error = False

    def handle_data(self, data: str) -> None:
        if self._in_error:
            self.error = (self.error or "") + data


def _parse(response: httpx2.Response) -> _FormParser:
    parser = _FormParser()
    parser.feed(response.text)
    return parser


def _form(page: _FormParser, predicate: object, what: str) -> _Form:
    for form in page.forms:
        if callable(predicate) and predicate(form):
            return form
    raise LoginPageError(page.error or f"the page has no {what}")


def _submit(client: httpx2.Client, page_url: str, form: _Form, values: dict[str, str] | None = None,
            button: tuple[str, str] | None = None) -> httpx2.Response:
    data = dict(form.fields)
    data.update(values or {})
    if button is None and form.buttons:
        button = form.buttons[0]
    if button is not None:
        data[button[0]] = button[1]
    url = urljoin(page_url, form.action)
    if form.method == "post":
        return client.post(url, data=data)
    return client.get(url, params=data)


def _follow(client: httpx2.Client, response: httpx2.Response, base_url: str) -> httpx2.Response:
    """Follow redirects inside the sandbox; stop at one that leaves it (the app's redirect URI)."""
    for _ in range(10):
        if not response.is_redirect:
            return response
        target = urljoin(str(response.url), response.headers["location"])
        if not target.startswith(base_url + "/"):
            return response
        response = client.get(target)
    raise LoginPageError("too many redirects")


def _is_account(form: _Form, email: str) -> bool:
    return form.attrs.get("data-email", "").lower() == email.lower()


def _log_in(client: httpx2.Client, page: httpx2.Response, base_url: str, *, connection: str,
            email: str, password: str | None, deny: bool) -> httpx2.Response:
    """From the login page (or a provider page reached directly), through to the end of the login."""
    parsed = _parse(page)
    url = str(page.url)
    if "/simulated/" not in url:
        if deny:
            return _submit(client, url, _form(parsed, lambda f: f.id == "cancel", "Cancel button"))
        if connection == DATABASE or any(f.id == "database-login" and ("connection", connection) in f.fields
                                         for f in parsed.forms):
            if password is None:  # choose the person from the page's list, as a learner does
                form = _form(parsed, lambda f: f.attrs.get("class") == "person" and _is_account(f, email)
                             and f.attrs.get("data-connection") == connection,
                             f"demo person {email} on {connection}")
                done = _submit(client, url, form)
            else:
                form = _form(parsed, lambda f: f.id == "database-login" and ("connection", connection)
                             in f.fields, f"login form for {connection}")
                done = _submit(client, url, form, {"email": email, "password": password})
            if not done.is_redirect and _parse(done).error:
                raise LoginPageError(_parse(done).error or "login failed")
            return done
        button = _form(parsed, lambda f: f.id == f"connection-{connection}", f"button for {connection}")
        page = _follow(client, _submit(client, url, button), base_url)
        parsed, url = _parse(page), str(page.url)
    if deny:
        return _submit(client, url, _form(parsed, lambda f: f.id == "deny", "Deny button"))
    account = _form(parsed, lambda f: f.id.startswith("choose-") and _is_account(f, email),
                    f"{connection} account for {email}")
    return _submit(client, url, account)


def approve_browser(authorize_url: str, *, connection: str, email: str, password: str | None = None,
                    deny: bool = False, timeout: float = 10.0, verify: ssl.SSLContext | bool = True) -> str:
    """Open ``authorize_url``, log in (or deny) as ``email`` on ``connection``, and return the
    redirect URL the sandbox sends the browser to (it carries ``code`` and ``state``, or
    ``error=access_denied``). The redirect itself is not followed: the caller is the app.
    Without ``password`` a database login chooses the demo person ``email`` from the list.
    ``verify`` is what httpx checks the sandbox's certificate with (a ``tls`` sandbox's CA).

    Examples
    --------
    >>> from linking_toolkit.sandbox.driver import approve_browser
    >>> redirect = approve_browser(pending.authorize_url, connection="google-oauth2",   # doctest: +SKIP
    ...                            email="ada@example.com")
    >>> session = pending.complete(redirect)
    """
    base_url = authorize_url.split("/authorize", 1)[0]
    with httpx2.Client(timeout=timeout, follow_redirects=False, verify=verify) as client:
        page = _follow(client, client.get(authorize_url), base_url)
        if page.is_redirect:  # /authorize answered the app directly (an error redirect)
            return urljoin(str(page.url), page.headers["location"])
        if page.status_code != 200:
            raise LoginPageError(_parse(page).error or f"the authorize page answered {page.status_code}")
        done = _log_in(client, page, base_url, connection=connection, email=email, password=password,
                       deny=deny)
        if not done.is_redirect:
            raise LoginPageError(_parse(done).error or f"the login ended with {done.status_code}")
        return urljoin(str(done.url), done.headers["location"])


def approve_device(base_url: str, user_code: str, *, connection: str, email: str,
                   password: str | None = None, deny: bool = False, timeout: float = 10.0,
                   verify: ssl.SSLContext | bool = True) -> None:
    """Enter ``user_code`` at ``{base_url}/activate``, confirm it (or cancel, with ``deny``) and
    log in as ``email`` on ``connection``, so the device's next poll gets its tokens (without
    ``password``, a database login chooses the demo person from the login page's list).

    Examples
    --------
    >>> from linking_toolkit.sandbox.driver import approve_device
    >>> approve_device(sandbox.base_url, pending.user_code,               # doctest: +SKIP
    ...                connection="Username-Password-Authentication", email="ada@example.com")
    >>> session = pending.result(timeout=30)
    """
    base_url = base_url.rstrip("/")
    with httpx2.Client(timeout=timeout, follow_redirects=False, verify=verify) as client:
        url = f"{base_url}/activate"
        page = client.get(url, params={"user_code": user_code})
        confirm = _submit(client, url, _form(_parse(page), lambda f: f.id == "activate", "code form"))
        parsed = _parse(confirm)
        if confirm.status_code != 200:
            raise LoginPageError(parsed.error or f"the activation page answered {confirm.status_code}")
        if deny:
            done = _submit(client, url, _form(parsed, lambda f: f.id == "deny", "Cancel button"))
        else:
            login = _follow(client, _submit(client, url, _form(parsed, lambda f: f.id == "confirm",
                                                                "Confirm button")), base_url)
            done = _follow(client, _log_in(client, login, base_url, connection=connection, email=email,
                                           password=password, deny=False), base_url)
        result = _parse(done)
        if done.status_code != 200 or 'data-result="' not in done.text:
            raise LoginPageError(result.error or f"the activation ended with {done.status_code}")


class Pending(Protocol):
    """What :func:`approve_login` needs of a login in progress (the client's ``PendingLogin``).

    Examples
    --------
    >>> from linking_toolkit import start_login
    >>> from linking_toolkit.sandbox.driver import Pending
    >>> isinstance(start_login(tenant), Pending)    # doctest: +SKIP
    True
    """

    user_code: str | None
    status: str  # "pending", "done", "failed", "cancelled", ...

    def done(self) -> bool: ...

    def result(self, timeout: float | None = None) -> object: ...


def approve_login(base_url: str, pending: Pending, *, connection: str, email: str,
                  password: str | None = None, verify: ssl.SSLContext | bool = True,
                  wait: float = 15.0) -> str:
    """Play the person for a device login in progress, unless the person already did.

    The tutorials' *Sandbox only* cells call this: when the login has already happened (approved
    by hand, or given back by the token cache, so there is no code), nothing is done; when the code
    was used up by a person a moment ago, the login is waited for instead of failing with "That code
    is invalid or has expired". Returns the one line it printed.

    Examples
    --------
    >>> from linking_toolkit import start_login
    >>> from linking_toolkit.sandbox.driver import approve_login
    >>> pending = start_login(tenant)                                     # doctest: +SKIP
    >>> approve_login(tenant.base_url, pending, connection="google-oauth2",
    ...               email="alan@example.com")                           # doctest: +SKIP
    Approved on the sandbox's pages as alan@example.com (google-oauth2).
    "Approved on the sandbox's pages as alan@example.com (google-oauth2)."
    """
    if pending.done() and pending.status != "done":
        return _say(f"This login already ended ({pending.status}): start it again to log in.")
    if pending.done() or not pending.user_code:
        return _say("Already logged in (by hand or from the token cache): nothing for this cell to do.")
    try:
        approve_device(base_url, pending.user_code, connection=connection, email=email, password=password,
                       verify=verify)
    except LoginPageError:
        # A person approved it between the prompt and this cell: the poll brings it in. Anything
        # else (a timeout, the login failing) leaves the page's own refusal as the error to show.
        with contextlib.suppress(Exception):
            pending.result(timeout=wait)
        if pending.status != "done":
            raise
        return _say("You logged in yourself: nothing for this cell to do.")
    return _say(f"Approved on the sandbox's pages as {email} ({connection}).")


def _say(line: str) -> str:
    print(line)
    return line
