"""Two analysts at once, at the size issue 17 measured: a 20 000-user sandbox, two processes each
applying its own plan (90 safe rows in all, 30 of them in both plans), then one undo, then the other.

Prints, for the memory and the file database, what the issue's table counts (the shared helper is
the test's, ``tests/test_plan_teams.py``, which runs the same at a bounded size).

    .venv/bin/python bench/team.py [--users 20000 --shared 30 --own 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_plan_teams import two_analysts  # the test's own procedure, not a copy

from linking_toolkit import ManagementClient, connect
from linking_toolkit.sandbox import Sandbox


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--shared", type=int, default=30)
    parser.add_argument("--own", type=int, default=30)
    args = parser.parse_args()
    for database in ("memory", "file"):
        with tempfile.TemporaryDirectory() as folder:
            db = str(Path(folder) / "tenant.db") if database == "file" else ":memory:"
            started = time.perf_counter()
            with Sandbox(seed=8, users=args.users, db=db) as sandbox, connect(sandbox=sandbox) as tenant, \
                    ManagementClient.from_client_credentials(tenant) as admin:
                seen = two_analysts(sandbox, admin, Path(folder), shared=args.shared, own=args.own)
            print(f"{database} database ({args.users} users, {time.perf_counter() - started:.0f} s):")
            for name, value in seen.items():
                print(f"  {name:36} {value}")


if __name__ == "__main__":
    main()
