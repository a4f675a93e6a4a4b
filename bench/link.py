"""Requests and wall time per link + unlink cycle: the toolkit against the seed's pattern.

The seed's Angular service re-fetched the whole profile after every link and unlink; the toolkit
updates the session from the 201/200 bodies instead. Both run here on one sandbox, in one run, with
the same two logged-in accounts (Ada's database account, her Google account to link in).

    .venv/bin/python bench/link.py --cycles 50
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from linking_toolkit import ManagementClient, Session, connect, link, login, start_login, unlink
from linking_toolkit.sandbox import Sandbox


def toolkit_cycle(primary: Session, secondary: Session) -> None:
    identities = link(primary, secondary)
    unlink(primary, identities[-1])


def seed_cycle(client: ManagementClient, primary: Session, secondary: Session) -> None:
    """The seed's pattern: link, then GET the profile; unlink, then GET the profile again."""
    client.link(primary.user_id, link_with=secondary.id_token)
    primary.profile = client.get_user(primary.user_id)
    provider, user_id = secondary.user_id.split("|", 1)
    client.unlink(primary.user_id, provider, user_id)
    primary.profile = client.get_user(primary.user_id)


def run(name: str, cycles: int, cycle: Callable[[], None], requests: Callable[[], int]) -> tuple:
    before = requests()
    start = time.perf_counter()
    for _ in range(cycles):
        cycle()
    wall = time.perf_counter() - start
    return name, (requests() - before) / cycles, wall / cycles * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=50)
    args = parser.parse_args()

    with Sandbox(seed=1) as sandbox, connect(sandbox=sandbox, quiet=True) as tenant:
        ada = sandbox.demo_user("ada@example.com")
        primary = login(tenant, method="password", email=ada["email"], password=ada["password"])
        pending = start_login(tenant, method="paste", connection="google-oauth2", purpose="linking",
                              show=lambda text, url: None)
        assert pending.authorize_url is not None
        redirect = sandbox.approve_browser(pending.authorize_url, connection="google-oauth2",
                                           email=ada["email"])
        secondary = pending.complete(redirect)
        ours = ManagementClient.for_session(primary)  # the client link() and unlink() use
        with ManagementClient.from_session(primary) as seed_client:
            rows = [
                run("linking_toolkit link() + unlink()", args.cycles,
                    lambda: toolkit_cycle(primary, secondary), lambda: ours.stats.requests),
                run("seed pattern (re-fetch after each)", args.cycles,
                    lambda: seed_cycle(seed_client, primary, secondary), lambda: seed_client.stats.requests),
            ]
        assert len(primary.identities) == 1

    print(f"{args.cycles} link + unlink cycles each")
    print(f"{'pattern':36} {'requests/cycle':>15} {'ms/cycle':>9}")
    for name, requests, ms in rows:
        print(f"{name:36} {requests:15.1f} {ms:9.1f}")
    print(f"ratio (seed / toolkit): requests {rows[1][1] / rows[0][1]:.2f}x, "
          f"time {rows[1][2] / rows[0][2]:.2f}x")


if __name__ == "__main__":
    main()
