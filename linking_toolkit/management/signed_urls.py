"""Pre-signed URLs kept out of the logs: an export's download link is a bearer secret while it lives.

httpx2 logs every request on its ``httpx2`` logger at INFO, URL and all. One filter there rewrites
the lines of the links being downloaded at that moment (their query becomes ``<signature hidden>``)
and leaves every other line as it was.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

__all__ = ["SignedUrlFilter", "hidden_from_logs"]


class SignedUrlFilter(logging.Filter):
    """Keeps the query (the signature) of the export links being downloaded out of httpx2's
    "HTTP Request: GET <url>" lines: a pre-signed URL is a bearer secret; every other line is kept.

    Examples
    --------
    >>> import logging
    >>> from linking_toolkit.management.signed_urls import SignedUrlFilter
    >>> hide = SignedUrlFilter()
    >>> url = "https://tenant.example/export.csv.gz?X-Amz-Signature=abc"
    >>> record = logging.LogRecord("httpx2", logging.INFO, "", 0, 'HTTP Request: %s %s "%s"',
    ...                            ("GET", url, "HTTP/1.1 200 OK"), None)
    >>> with hide.hidden(url):
    ...     hide.filter(record)
    True
    >>> record.getMessage()
    'HTTP Request: GET https://tenant.example/export.csv.gz?<signature hidden> "HTTP/1.1 200 OK"'
    """

    def __init__(self) -> None:
        super().__init__()
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def hidden(self, url: str) -> Iterator[None]:
        with self._lock:
            self._in_flight[url] = self._in_flight.get(url, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[url] -= 1
                if not self._in_flight[url]:
                    del self._in_flight[url]

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) > 1 and self._in_flight and str(args[1]) in self._in_flight:
            parts = urlsplit(str(args[1]))
            hidden = "<signature hidden>" if parts.query else ""
            record.args = (args[0], urlunsplit((parts.scheme, parts.netloc, parts.path, hidden, "")),
                           *args[2:])
        return True


# httpx2 logs every request on its "httpx2" logger at INFO, URL and all.
_FILTER = SignedUrlFilter()
logging.getLogger("httpx2").addFilter(_FILTER)


def hidden_from_logs(url: str) -> contextlib.AbstractContextManager[None]:
    """While this lasts, httpx2's request lines show ``url`` without its query.

    Examples
    --------
    >>> with hidden_from_logs("https://tenant.example/export.gz?sig=secret"):
    ...     pass
    """
    return _FILTER.hidden(url)
