"""``python -m linking_toolkit.sandbox``: run a sandbox tenant from a shell.

Prints one JSON line (``Sandbox.info()``: URLs, client ids, the M2M secret and the demo users'
passwords, which is what a developer needs to log in) once the server listens, logs one access line
per request to stderr unless ``--quiet``, and exits 0 on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import sys
import threading
from types import FrameType

from .browser_apps import (
    DEFAULT_SPA_CALLBACK_URLS,
    DEFAULT_SPA_LOGOUT_URLS,
    DEFAULT_SPA_WEB_ORIGINS,
    check_url_list,
)
from .context import EXPORT_LINK_SECONDS, check_export_link_seconds, parse_rate_limit
from .server import Sandbox

__all__ = ["main", "write_record"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m linking_toolkit.sandbox",
                                     description="Run a local Auth0-compatible sandbox tenant.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    parser.add_argument("--db", default=":memory:",
                        help="SQLite file, reopened if it exists (default :memory:)")
    parser.add_argument("--seed", type=int, default=None, help="make ids, users and timestamps reproducible")
    parser.add_argument("--users", type=int, default=0, metavar="N",
                        help="seed a new tenant with N synthetic users (an existing --db file only with"
                             " the N it was made with)")
    parser.add_argument("--rate-limit", default=None,
                        help="Management API rate limit: free, enterprise or BURST/RATE (default off)")
    parser.add_argument("--export-link-seconds", type=int, default=EXPORT_LINK_SECONDS, metavar="S",
                        help="how long an export's download link lives (default %(default)s, as on Auth0)")
    parser.add_argument("--no-export-jobs", dest="export_jobs", action="store_false",
                        help="refuse users-export jobs, as an Auth0 plan without them does")
    parser.add_argument("--tls", action="store_true",
                        help="serve https with a CA made for this run (its certificate: ca_file)")
    parser.add_argument("--spa-callback-url", action="append", dest="spa_callback_urls", metavar="URL",
                        help="an Allowed Callback URL of the single-page app (repeat for more; default "
                             f"{' and '.join(DEFAULT_SPA_CALLBACK_URLS)})")
    parser.add_argument("--spa-logout-url", action="append", dest="spa_logout_urls", metavar="URL",
                        help="an Allowed Logout URL of the single-page app (repeat for more; default "
                             f"{' and '.join(DEFAULT_SPA_LOGOUT_URLS)})")
    parser.add_argument("--spa-web-origin", action="append", dest="spa_web_origins", metavar="ORIGIN",
                        help="an Allowed Web Origin of the single-page app, scheme://host[:port]: CORS, "
                             f"silent login (repeat; default {' and '.join(DEFAULT_SPA_WEB_ORIGINS)})")
    parser.add_argument("--quiet", action="store_true", help="no access log on stderr")
    parser.add_argument("--record", default=None, metavar="FILE",
                        help="also write the JSON line, with the demo users' ids and this process's pid, "
                             "to FILE (0600): how connect() finds a kept sandbox again")
    parser.add_argument("--exit-with", type=int, default=None, metavar="PID",
                        help="exit when process PID exits (the Jupyter Server whose kernels use it)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status.

    Examples
    --------
    >>> from linking_toolkit.sandbox.__main__ import main
    >>> main(["--seed", "1", "--users", "1000"])         # doctest: +SKIP
    """
    args = _parser().parse_args(argv)
    try:
        parse_rate_limit(args.rate_limit)
    except ValueError as error:
        _parser().error(str(error))
    if args.users < 0:
        _parser().error("--users must be >= 0")
    try:
        check_export_link_seconds(args.export_link_seconds)
    except ValueError:
        _parser().error(f"--export-link-seconds must be >= 1, not {args.export_link_seconds}")
    spa = {"spa_callback_urls": args.spa_callback_urls or DEFAULT_SPA_CALLBACK_URLS,
           "spa_logout_urls": args.spa_logout_urls or DEFAULT_SPA_LOGOUT_URLS,
           "spa_web_origins": args.spa_web_origins or DEFAULT_SPA_WEB_ORIGINS}
    for name, values in spa.items():
        try:
            check_url_list(values, name, origins=name == "spa_web_origins")
        except ValueError as error:
            flag = "--" + name.replace("_", "-").removesuffix("s")
            _parser().error(f"{flag}: {error}")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    sandbox = Sandbox(seed=args.seed, users=args.users, rate_limit=args.rate_limit, db=args.db,
                      host=args.host, port=args.port, quiet=args.quiet,
                      export_link_seconds=args.export_link_seconds, export_jobs=args.export_jobs,
                      tls=args.tls, **spa)
    try:
        sandbox.start()
    except ValueError as error:  # --users for an existing --db file: a usage error, nothing changed
        print(f"{_parser().prog}: error: {error}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as error:  # a port in use, a --db path that is not a database
        print(f"cannot start the sandbox: {error}", file=sys.stderr)
        return 1
    try:
        print(json.dumps(sandbox.info()), flush=True)
        if args.record:
            write_record(args.record, {**sandbox.info(), "demo_users": sandbox.demo_users, "pid": os.getpid(),
                                       "port": sandbox.port, "seed": args.seed, "users": args.users})
        while not stop.wait(0.5):
            if args.exit_with is not None and not _alive(args.exit_with):
                break
    finally:
        sandbox.stop()
    return 0


def write_record(path: str, record: dict[str, object]) -> None:
    """Write ``record`` as JSON to ``path``, 0600 in one call and whole at once (a reader polling
    for it never sees half of it), never through a symbolic link: it holds the client secret.

    Examples
    --------
    >>> import json, os, tempfile
    >>> from linking_toolkit.sandbox.__main__ import write_record
    >>> path = os.path.join(tempfile.mkdtemp(), "sandbox.json")
    >>> write_record(path, {"base_url": "http://127.0.0.1:8080"})
    >>> oct(os.stat(path).st_mode & 0o777), json.load(open(path))
    ('0o600', {'base_url': 'http://127.0.0.1:8080'})
    """
    temporary = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(record, file)
    os.replace(temporary, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


if __name__ == "__main__":
    sys.exit(main())
