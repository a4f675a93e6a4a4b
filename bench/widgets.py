"""How fast an IdentityTable of 50 identities builds and redraws, against pandas' own HTML table.

Arranges a real profile: a sandbox tenant with synthetic users, 49 of them linked into Ada's
account through the Management API, then Ada logs in (so the profile is the tenant's answer).
Then, in one run, the median of repeated:
  - baseline: ``identities_frame(profile).to_html()`` (the plain pandas table, no widgets);
  - ``IdentityTable(session)``: frame, one widget per cell, an Unlink button per linked row;
  - ``table.refresh()`` after one identity went away (rows updated in place, not rebuilt).
The same measurement runs twice: in this process, where the widgets' comms are inert (the
widgets' own Python work), and inside an IPython kernel, where every widget also sends its comm
message as it does in a notebook. Target: building the table stays well under a second.

Run: ``.venv/bin/python bench/widgets.py``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

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


def measure() -> dict[str, float]:
    """Arrange Ada with 50 identities and time the baseline, the build and a redraw (seconds)."""
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
    return {"baseline": baseline, "build": build, "refresh": refresh}


def measure_in_kernel() -> dict[str, float]:
    """``measure()`` run inside an IPython kernel, where widgets open their comms for real."""
    from jupyter_client.manager import start_new_kernel

    # The kernel's stderr holds only its start-up chatter; a failure comes back in the reply.
    manager, client = start_new_kernel(kernel_name="python3", stderr=subprocess.DEVNULL)
    try:
        code = (f"import json, runpy\nbench = runpy.run_path({str(Path(__file__).resolve())!r}, "
                f"run_name='bench_widgets')\nprint(json.dumps(bench['measure']()))")
        out: list[str] = []
        reply = client.execute_interactive(
            code, timeout=600,
            output_hook=lambda msg: out.append(msg["content"].get("text", ""))
            if msg["msg_type"] == "stream" else None)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"the kernel failed: {reply['content'].get('evalue')}")
        return json.loads("".join(out).strip().splitlines()[-1])
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def main() -> None:
    print(f"IdentityTable of {IDENTITIES} identities, median of {REPEAT} runs")
    for where, figures in (("plain Python (comms inert)", measure()),
                           ("inside an IPython kernel (comms sent)", measure_in_kernel())):
        baseline, build, refresh = figures["baseline"], figures["build"], figures["refresh"]
        print(f" {where}")
        print(f"  pandas HTML table (baseline) {baseline * 1000:8.2f} ms")
        print(f"  IdentityTable(session)       {build * 1000:8.2f} ms   {build / baseline:6.1f} x baseline")
        print(f"  table.refresh() after unlink {refresh * 1000:8.2f} ms   "
              f"{refresh / baseline:6.1f} x baseline")
        print(f"  target: build well under 1 s -> {'met' if build < 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
