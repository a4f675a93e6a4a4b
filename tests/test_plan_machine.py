"""A hypothesis state machine over plan_links / apply_plan / undo: two runs, two journals, faults.

Two analysts' runs share one sandbox and overlapping plans. Steps apply a few rows of either run,
arm a fault on a run's next link (a dropped connection before or after the tenant acted, a 503, the
process stopped between the link's answer and its journal line) or make the other run link the
same row in the middle of this one's (between its merge and its link: the race of issue 17).
After every step: no identity under two users, and every secondary now linked has its metadata on
its primary. At the end both runs are resumed to completion, one undone (the other's links must
stay), then the other: the tenant must be as it started, field by field.

Faults the sandbox cannot make go through ``httpx2.MockTransport`` wrapping the real transport.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import unquote

import httpx2
import pandas as pd
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from test_plan_teams import done_in, give_metadata, metadata_missing, tenant_state

from linking_toolkit import ManagementClient, Tenant
from linking_toolkit.audit import apply_plan, audit_tenant, link_candidates, plan_links, undo
from linking_toolkit.audit.merge import MERGE_MARK
from linking_toolkit.errors import Auth0Error
from linking_toolkit.identities import holds_identity
from linking_toolkit.sandbox import Sandbox

FAULTS = ("drop before", "drop after", "503", "stopped after the answer", "the other links first")


class Stopped(BaseException):
    """The process stopping right after a link's answer arrived: nothing in the toolkit catches it."""


class Run:
    """One analyst: a plan, a journal, and a client whose transport can be told to fail once."""

    def __init__(self, name: str, tenant: Tenant, plan: pd.DataFrame, folder: Path) -> None:
        self.name, self.plan, self.journal = name, plan, folder / f"{name}.jsonl"
        self.next_row = 0
        self.fault: str | None = None
        self.other: Run | None = None
        self.real = httpx2.HTTPTransport()
        # no retries: every fault stops the run with its row unfinished, to be resumed later
        self.client = ManagementClient.from_client_credentials(
            tenant, transport=httpx2.MockTransport(self.handle), max_retries=0, backoff=0)

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        fault = self.fault
        if fault is None or request.method != "POST" or not request.url.path.endswith("/identities"):
            return self.real.handle_request(request)
        self.fault = None
        if fault == "drop before":
            raise httpx2.ConnectError("reset", request=request)
        if fault == "503":
            return httpx2.Response(503, json={"statusCode": 503, "error": "Service Unavailable",
                                              "message": "The service is unavailable."})
        if fault == "the other links first":
            assert self.other is not None
            # this run has merged and is about to link: the other runs its rows of that primary whole
            self.other.apply_rows_of(unquote(request.url.path.split("/users/")[1].split("/")[0]))
        response = self.real.handle_request(request)
        response.read()
        if fault == "drop after":
            raise httpx2.ReadError("the answer was lost", request=request)
        if fault == "stopped after the answer":
            raise Stopped
        return response

    def apply(self, rows: pd.DataFrame) -> None:
        try:
            apply_plan(self.client, rows, dry_run=False, journal=self.journal)
        except (Auth0Error, Stopped):
            pass  # stopped mid-row: the next step resumes from the journal

    def apply_rows_of(self, primary_id: str) -> None:
        """Apply this run's own rows into ``primary_id``, uninterrupted."""
        mine = self.plan[self.plan["primary_id"] == primary_id]
        if len(mine):
            apply_plan(self.client, mine, dry_run=False, journal=self.journal)


class TwoAnalysts(RuleBasedStateMachine):
    """Two runs of overlapping plans on one small tenant, interleaved row by row, with faults."""

    @initialize(data=st.data())
    def start(self, data: st.DataObject) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="plan-machine-"))
        self.sandbox = Sandbox(seed=8, users=120)
        self.sandbox.__enter__()
        self.tenant = Tenant.from_sandbox(self.sandbox)
        self.admin = ManagementClient.from_client_credentials(self.tenant)
        result = audit_tenant(self.admin, progress=False)
        plan = plan_links(link_candidates(result, tiers="exact"), result)
        plan = plan[plan["risk"] == "safe"].reset_index(drop=True)
        self.rows = plan[["primary_id", "secondary_id", "provider", "user_id"]].astype(object) \
            .to_dict("records")
        give_metadata(self.admin, self.rows)
        self.start_state = tenant_state(self.admin)
        # rows both runs hold come first in both plans (as when two analysts start on the same list)
        rows = st.lists(st.integers(0, len(plan) - 1), unique=True, max_size=4)
        shared = data.draw(rows.filter(bool), label="shared rows")
        own = [data.draw(rows.map(lambda picks: [i for i in picks if i not in shared]), label=f"rows of {n}")
               for n in ("a", "b")]
        self.runs = [Run(name, self.tenant, plan.loc[shared + mine].reset_index(drop=True), self.folder)
                     for name, mine in zip(("a", "b"), own, strict=True)]
        self.runs[0].other, self.runs[1].other = self.runs[1], self.runs[0]

    @rule(which=st.integers(0, 1), count=st.integers(1, 3))
    def apply_some_rows(self, which: int, count: int) -> None:
        run = self.runs[which]
        run.apply(run.plan.iloc[run.next_row:run.next_row + count])
        run.next_row = min(len(run.plan), run.next_row + count)

    @rule(which=st.integers(0, 1), fault=st.sampled_from(FAULTS), count=st.integers(1, 3))
    def apply_some_rows_with_a_fault(self, which: int, fault: str, count: int) -> None:
        """The fault hits the first link these rows send (none if they are all done already)."""
        self.runs[which].fault = fault
        self.apply_some_rows(which, count)
        self.runs[which].fault = None

    @rule(which=st.integers(0, 1))
    def resume_from_the_start(self, which: int) -> None:
        self.runs[which].next_row = 0

    @invariant()
    def no_identity_under_two_users(self) -> None:
        assert self.sandbox.context is not None
        with self.sandbox.context.store.read() as db:
            owners = db.execute("SELECT provider, user_id, COUNT(*) AS n FROM identities "
                                "GROUP BY provider, user_id HAVING n > 1").fetchall()
        assert owners == []

    @invariant()
    def every_linked_secondary_has_its_metadata_on_its_primary(self) -> None:
        assert metadata_missing(self.admin, self.rows, self.start_state) == []

    def teardown(self) -> None:
        try:
            self.finish_and_undo()
        finally:
            for run in getattr(self, "runs", []):
                run.client.close()
            if hasattr(self, "admin"):
                self.admin.close()
                self.sandbox.__exit__(None, None, None)

    def finish_and_undo(self) -> None:
        if not hasattr(self, "runs"):
            return
        for run in self.runs:
            run.fault = None
            apply_plan(run.client, run.plan, dry_run=False, journal=run.journal)
        planned = {r["secondary_id"]: r for run in self.runs
                   for r in run.plan.astype(object).to_dict("records")}
        for row in planned.values():
            primary = self.admin.get_user(row["primary_id"])
            assert holds_identity(primary, row["provider"], row["user_id"])
            # every link made, so no merge mark is left on a primary
            assert not [k for k in primary.get("app_metadata") or {} if k.startswith(MERGE_MARK)]
        assert metadata_missing(self.admin, self.rows, self.start_state) == []
        first, second = self.runs
        only_second = done_in(second.journal) - done_in(first.journal)
        undo(first.client, first.journal)
        for secondary in only_second:  # the other run's links survive this run's undo
            row = planned[secondary]
            assert holds_identity(self.admin.get_user(row["primary_id"]), row["provider"], row["user_id"])
        undo(second.client, second.journal)
        assert tenant_state(self.admin) == self.start_state


# No shrinking: each step is HTTP on a real tenant, so shrinking a failure takes minutes; the
# failing example's steps are printed as found.
TwoAnalysts.TestCase.settings = settings(max_examples=12, stateful_step_count=10, derandomize=True,
                                         deadline=None, database=None,
                                         phases=[Phase.explicit, Phase.generate],
                                         suppress_health_check=[HealthCheck.too_slow])
test_two_runs_with_faults_lose_nothing_and_both_undos_give_back_the_start = TwoAnalysts.TestCase
