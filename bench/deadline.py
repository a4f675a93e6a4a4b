"""How long a Management call takes to give up on a tenant that never answers, and on one that
answers 429 forever, with the default deadline and with a short one; the error each ends with.

    .venv/bin/python bench/deadline.py [--deadline 120]
"""

from __future__ import annotations

import argparse
import socket
import time

from linking_toolkit import ManagementClient, Tenant, connect
from linking_toolkit.errors import Auth0Error
from linking_toolkit.management import DEFAULT_DEADLINE
from linking_toolkit.sandbox import Sandbox


def timed(call) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    try:
        call()
        outcome = "answered"
    except Auth0Error as error:
        outcome = f"{type(error).__name__}: {error}"
    return time.perf_counter() - started, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE)
    args = parser.parse_args()
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)  # accepts (the kernel does), never answers
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    silent = Tenant(domain=base.split("://")[1], issuer=base + "/", base_url=base,
                    management_audience=base + "/api/v2/", client_id="silent")
    with ManagementClient(silent, lambda: "token", deadline=args.deadline) as client:
        seconds, outcome = timed(lambda: client.get_user("auth0|someone"))
    print(f"never answers, deadline {args.deadline:g} s: ended after {seconds:.1f} s\n  {outcome}")
    listener.close()
    with Sandbox(seed=7, rate_limit=(1, 1 / 3600)) as limited, connect(sandbox=limited) as tenant, \
            ManagementClient.from_client_credentials(tenant) as other, \
            ManagementClient.from_client_credentials(tenant, deadline=args.deadline) as client:
        ada = limited.demo_user("ada@example.com")["user_id"]
        other.get_user(ada)  # the bucket's one token; the next comes in an hour
        seconds, outcome = timed(lambda: client.get_user(ada))
    print(f"429 forever, deadline {args.deadline:g} s: ended after {seconds:.1f} s\n  {outcome}")


if __name__ == "__main__":
    main()
