"""A sandbox that outlives the kernel: one server process per notebook, found again after a restart.

A sandbox started inside a kernel ends with it, and its logins with it: after "Restart Kernel" the
token cache could only hold refresh tokens of a tenant that no longer exists. ``make lab`` sets
``LINKING_TOOLKIT_KEEP_SANDBOX=1``, and then ``connect()`` asks this module for the sandbox of the
notebook (``JPY_SESSION_NAME``, which Jupyter Server gives every kernel it starts): a
``python -m linking_toolkit.sandbox`` process of its own, with its database file and port recorded
in a folder under the user's data directory. The next kernel of that notebook finds it answering at
the same address and uses it; if it is gone (the computer restarted), it is started again on the
same database and, when free, the same port, so cached logins still work.

The process exits when the process that started the kernel (Jupyter Server) exits. Its record,
database and log are private files (0600 in a 0700 folder): they hold the tenant's client secret
and the demo people's passwords.

Examples
--------
>>> from linking_toolkit.sandbox.kept import kept_sandbox          # doctest: +SKIP
>>> sandbox = kept_sandbox(seed=1)
>>> sandbox.issuer
'http://127.0.0.1:50123/'
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
import platformdirs

from .connections import DATABASE

if TYPE_CHECKING:
    from .driver import Pending

__all__ = ["HOME_ENV", "KEEP_ENV", "KeptSandbox", "kept_sandbox", "notebook_key", "sandbox_home"]

KEEP_ENV = "LINKING_TOOLKIT_KEEP_SANDBOX"  # "1": connect() keeps the sandbox across kernel restarts
HOME_ENV = "LINKING_TOOLKIT_SANDBOX_HOME"  # where the kept sandboxes live (default: user data dir)
START_SECONDS = 60.0
# The servers this process started: they run on after it (that is the point), and a Popen dropped
# while its child runs warns; held here, they are reaped by the subprocess module when they end.
_STARTED: list[subprocess.Popen[bytes]] = []


def sandbox_home() -> Path:
    """``$LINKING_TOOLKIT_SANDBOX_HOME``, else ``sandboxes`` in the user's data directory.

    Examples
    --------
    >>> import os
    >>> from linking_toolkit.sandbox.kept import sandbox_home
    >>> os.environ["LINKING_TOOLKIT_SANDBOX_HOME"] = "/tmp/sandboxes"     # doctest: +SKIP
    >>> sandbox_home()
    PosixPath('/tmp/sandboxes')
    """
    given = os.environ.get(HOME_ENV)
    return Path(given) if given else Path(platformdirs.user_data_dir("linking_toolkit")) / "sandboxes"


def notebook_key(session_name: str | None = None) -> str:
    """A folder name for the notebook this kernel runs (``JPY_SESSION_NAME``), or ``default``.

    Examples
    --------
    >>> from linking_toolkit.sandbox.kept import notebook_key
    >>> notebook_key("notebooks/02-link-and-unlink.ipynb"), notebook_key("My Notebook.ipynb")
    ('02-link-and-unlink', 'My-Notebook')
    >>> notebook_key(None)
    'default'
    """
    name = session_name if session_name is not None else os.environ.get("JPY_SESSION_NAME", "")
    stem = Path(name).stem if name else ""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip(".-") or "default"


class KeptSandbox:
    """A sandbox server in another process, as :class:`~linking_toolkit.sandbox.Sandbox` shows
    itself to a client: its URLs, clients, connections and demo people, and the two ``approve_*``
    helpers that finish a login on its pages. ``stop()`` ends the process (the data stays).

    Examples
    --------
    >>> from linking_toolkit.sandbox.kept import kept_sandbox
    >>> kept = kept_sandbox(seed=1)                       # doctest: +SKIP
    >>> kept.answers(), kept.base_url
    >>> kept.stop()                                       # the data stays for the next start
    """

    kept = True

    def __init__(self, record: dict[str, Any], folder: Path) -> None:
        self._record = record
        self.folder = folder
        for name in ("issuer", "domain", "base_url", "management_audience", "client_id", "spa_client_id",
                     "m2m_client_id"):
            setattr(self, name, record[name])
        self.connections: dict[str, str] = dict(record["connections"])
        self.ca_file: str | None = record.get("ca_file")
        self.pid: int = int(record["pid"])

    @property
    def m2m_client_secret(self) -> str:
        return str(self._record["m2m_client_secret"])

    @property
    def demo_users(self) -> list[dict[str, Any]]:
        """Database demo users with their passwords (for scripted logins only)."""
        return [dict(u) for u in self._record["demo_users"]]

    def demo_user(self, email: str, connection: str = DATABASE) -> dict[str, Any]:
        for user in self.demo_users:
            if user["email"] == email and user["connection"] == connection:
                return user
        raise KeyError(f"no demo user {email!r} on {connection!r}")

    def approve_device(self, user_code: str, *, connection: str, email: str,
                       password: str | None = None, deny: bool = False) -> None:
        """Approve (or deny) a device login on ``/activate`` as ``email`` (see ``Sandbox``)."""
        from .driver import approve_device

        if password is None and connection == DATABASE and not deny:
            password = self.demo_user(email, connection)["password"]
        approve_device(self.base_url, user_code, connection=connection, email=email,
                       password=None if deny else password, deny=deny)

    def approve_browser(self, authorize_url: str, *, connection: str, email: str,
                        password: str | None = None, deny: bool = False) -> str:
        """Log in (or deny) on the pages ``authorize_url`` leads to (see ``Sandbox``)."""
        from .driver import approve_browser

        if password is None and connection == DATABASE and not deny:
            password = self.demo_user(email, connection)["password"]
        return approve_browser(authorize_url, connection=connection, email=email,
                               password=None if deny else password, deny=deny)

    def approve_login(self, pending: Pending, *, connection: str, email: str,
                      password: str | None = None) -> str:
        """Play the person for the device login ``pending``, unless it already happened (see
        :func:`~linking_toolkit.sandbox.driver.approve_login`)."""
        from .driver import approve_login

        if password is None and connection == DATABASE:
            password = self.demo_user(email, connection)["password"]
        return approve_login(self.base_url, pending, connection=connection, email=email, password=password)

    def answers(self) -> bool:
        """Whether the recorded server answers its discovery document with its issuer."""
        try:
            doc = httpx2.get(self.base_url + "/.well-known/openid-configuration", timeout=2.0).json()
        except (httpx2.HTTPError, ValueError):
            return False
        return isinstance(doc, dict) and doc.get("issuer") == self.issuer

    def stop(self) -> None:
        """End the server process; its database stays, so the next ``kept_sandbox`` reopens it."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        for process in [p for p in _STARTED if p.pid == self.pid]:  # started here: reap it
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
                _STARTED.remove(process)

    def __repr__(self) -> str:
        return f"<KeptSandbox {self.issuer} in {self.folder}>"


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One kernel at a time starts a notebook's sandbox (two tabs of one notebook, say)."""
    fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _private_folder(folder: Path) -> Path:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.is_symlink():
        raise ValueError(f"{folder} is a symbolic link: the sandbox's secrets are not kept through one")
    os.chmod(folder, 0o700)
    return folder


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd) as file:
        try:
            record = json.load(file)
        except ValueError:
            return None
    return record if isinstance(record, dict) else None


def kept_sandbox(*, seed: int | None = 1, users: int = 0, key: str | None = None,
                 home: Path | None = None, exit_with: int | None = None) -> KeptSandbox:
    """The kept sandbox of notebook ``key`` (this kernel's notebook by default): found answering
    where it was recorded, or started (again) on its database, on its old port when that is free.

    ``exit_with`` is the pid whose end ends the server (default: this process's parent, the
    Jupyter Server that starts kernels). Raises RuntimeError, with the server's last log lines,
    if it does not start within a minute.

    Examples
    --------
    >>> from linking_toolkit import connect
    >>> from linking_toolkit.sandbox.kept import kept_sandbox
    >>> tenant = connect(sandbox=kept_sandbox(seed=1, key="02-link-and-unlink"))   # doctest: +SKIP
    """
    folder = _private_folder((home or sandbox_home()) / (key or notebook_key()))
    with _locked(folder):
        record = _read_record(folder / "sandbox.json")
        if record is not None and record.get("seed") == seed and record.get("users") == users:
            found = KeptSandbox(record, folder)
            if found.answers():
                return found
            port = int(record.get("port") or 0)
        else:
            port = 0
        return _start(folder, seed, users, port, os.getppid() if exit_with is None else exit_with)


def _start(folder: Path, seed: int | None, users: int, port: int, exit_with: int) -> KeptSandbox:
    record_path = folder / "sandbox.json"
    with contextlib.suppress(FileNotFoundError):
        record_path.unlink()
    command = [sys.executable, "-m", "linking_toolkit.sandbox", "--db", str(folder / "sandbox.db"),
               "--quiet", "--record", str(record_path), "--exit-with", str(exit_with),
               "--users", str(users)]
    if seed is not None:
        command += ["--seed", str(seed)]
    for attempt_port in dict.fromkeys((port, 0)):  # the old port first: cached logins name it
        log = os.open(folder / "sandbox.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            # Our own interpreter and module, with arguments this function built: no shell, no input.
            process = subprocess.Popen([*command, "--port", str(attempt_port)],  # noqa: S603
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                       start_new_session=True)
        finally:
            os.close(log)
        _STARTED.append(process)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and process.poll() is None:
            record = _read_record(record_path)
            if record is not None:
                return KeptSandbox(record, folder)
            time.sleep(0.05)
        if process.poll() is None:
            process.kill()
            break
    tail = (folder / "sandbox.log").read_text(errors="replace").strip().splitlines()[-3:]
    raise RuntimeError("the kept sandbox did not start: " + (" / ".join(tail) or "no message"))
