"""How fast an IdentityTable of 50 identities builds and redraws, against pandas' own HTML table.

Arranges a real profile: a sandbox tenant with synthetic users, 49 of them linked into Ada's
account through the Management API, then Ada logs in (so the profile is the tenant's answer).
Then, in one run, the median of repeated:
  - baseline: ``identities_frame(profile).to_html()`` (the plain pandas table, no widgets);
  - ``IdentityTable(session)``: frame, one widget per cell, an Unlink button per linked row;
  - ``table.refresh()`` after one identity went away (rows updated in place, not rebuilt).
Target: building the table stays well under a second.

Run: ``.venv/bin/python bench/widgets.py`` (outside a kernel the widgets' comms are inert, so this
measures the widgets' own Python work; a kernel adds one comm message per widget).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from linking_toolkit import ManagementClient, Tenant, identities_frame, login
from linking_toolkit.sandbox import Sandbox
from linking_toolkit.widgets import IdentityTable

IDENTITIES = 50
REPEAT = 15


def median_seconds(work: Callable[[], object], repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    with Sandbox(seed=1, users=200) as sandbox, Tenant.from_sandbox(sandbox) as tenant:
        ada = sandbox.demo_user("ada@example.com")
        with ManagementClient.from_client_credentials(tenant) as admin:
            database = 'identities.connection:"Username-Password-Authentication"'
            others = [u for u in admin.list_users(q=database)
                      if len(u["identities"]) == 1 and u["user_id"] != ada["user_id"]]
            for user in others[: IDENTITIES - 1]:
                identity = user["identities"][0]
                admin.link(ada["user_id"], provider=identity["provider"], user_id=identity["user_id"])
        session = login(tenant, method="password", email=ada["email"], password=ada["password"])
        profile = session.profile
        assert len(profile["identities"]) == IDENTITIES, len(profile["identities"])

        baseline = median_seconds(lambda: identities_frame(profile).to_html())
        build = median_seconds(lambda: IdentityTable(session))

        table = IdentityTable(session)
        full = list(profile["identities"])

        def redraw() -> None:
            profile["identities"] = full[:-1]
            table.refresh()
            profile["identities"] = full
            table.refresh()

        refresh = median_seconds(redraw) / 2

    print(f"IdentityTable of {IDENTITIES} identities, median of {REPEAT} runs")
    print(f"  pandas HTML table (baseline) {baseline * 1000:8.2f} ms")
    print(f"  IdentityTable(session)       {build * 1000:8.2f} ms   {build / baseline:6.1f} x baseline")
    print(f"  table.refresh() after unlink {refresh * 1000:8.2f} ms   {refresh / baseline:6.1f} x baseline")
    print(f"  target: build well under 1 s -> {'met' if build < 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
