"""Files that hold tokens or personal data: opened for writing by their owner only.

One call creates the file 0600 (no moment when another local user may read it), a symlink in
its place is refused rather than followed (``O_NOFOLLOW``), and a file already there with a looser
mode is tightened before a byte is written. Folders made for such files are 0700.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO, Any

__all__ = ["open_private", "private_dir", "private_fd"]

_PRIVATE_FILE = 0o600
_PRIVATE_DIR = 0o700


def private_fd(path: str | Path, *, append: bool = False, read: bool = False) -> int:
    """A file descriptor open for writing on ``path``, created 0600, a looser existing file tightened.

    Raises ``OSError`` (``ELOOP``) when ``path`` is a symlink, and when it is not a regular file.

    Examples
    --------
    >>> import os, tempfile
    >>> fd = private_fd(os.path.join(tempfile.mkdtemp(), "secret"))
    >>> oct(os.fstat(fd).st_mode & 0o777)
    '0o600'
    >>> os.close(fd)
    """
    flags = (os.O_RDWR if read else os.O_WRONLY) | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_APPEND if append else os.O_TRUNC
    fd = os.open(path, flags, _PRIVATE_FILE)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(f"{path} is not a regular file")
        if mode & 0o077:  # made by an older version, or by hand: readable by others until now
            os.fchmod(fd, _PRIVATE_FILE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_private(path: str | Path, mode: str = "w", **options: Any) -> IO[Any]:
    """``open(path, mode)`` for a file only its owner may read (``mode`` is ``"w"``, ``"wb"``, ``"a"``
    or ``"ab"``); see :func:`private_fd`.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "users.csv")
    >>> with open_private(path) as out:
    ...     _ = out.write("email\\n")
    >>> oct(os.stat(path).st_mode & 0o777)
    '0o600'
    """
    if mode.rstrip("b") not in ("w", "a"):
        raise ValueError(f"mode is 'w', 'wb', 'a' or 'ab', not {mode!r}")
    return os.fdopen(private_fd(path, append=mode.startswith("a")), mode, **options)


def private_dir(path: str | Path) -> Path:
    """``path`` made (with its missing parents) readable by its owner only; an existing folder is
    left as it is (it may be shared, e.g. the current directory): the files in it are 0600.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = private_dir(os.path.join(tempfile.mkdtemp(), "audit"))
    >>> oct(folder.stat().st_mode & 0o777)
    '0o700'
    """
    folder = Path(path)
    if not folder.is_dir():
        folder.mkdir(mode=_PRIVATE_DIR, parents=True, exist_ok=True)
        os.chmod(folder, _PRIVATE_DIR)  # mkdir's mode passes through the umask
    return folder
