"""Link plans: one row per secondary user, checked, applied with a journal, and undone from it.

A plan is a frame an analyst can read and edit (``plan_links``). ``apply_plan`` refuses unsafe
rows before any request, checks each safe row again on the users as they are now, merges the
secondary's ``user_metadata`` into the primary's (``merge_metadata``: Auth0 drops it at the link)
and journals every step, so an interrupted run resumes without linking twice and ``undo`` can put
every user back as it was. Each row is idempotent: two runs of overlapping plans at once (two
analysts, two laptops: Auth0 has no lock between them) agree, since the merge is deterministic, a
row found linked by the other is "already linked" (its merge completed if missing), and a refused
row takes back only what this run wrote.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import AlreadyLinked, Auth0Error, BadRequest, NotFound, UnsafeLink
from ..identities import holds_identity
from .candidates import RISKS, TIERS, risk_now
from .frames import Audit
from .journal import ROW_KEYS, Journal, unfinished
from .merge import MERGE_MARK, before_marked_merge, merge_mark, merge_metadata, unmerge_metadata
from .spark_audit import SparkAudit
from .spark_engine import is_spark_frame
from .spark_plan import CHUNK, plan_chunks, spark_plan_links, unsafe_rows

if TYPE_CHECKING:
    from ..management import ManagementClient

__all__ = [
    "PLAN_COLUMNS",
    "PLAN_REQUIRED",
    "apply_plan",
    "plan_links",
]

PLAN_COLUMNS = [*ROW_KEYS, "connection", "tier", "risk", "reasons", "evidence", "allow_unsafe"]
# What apply_plan needs of a plan made by hand.
PLAN_REQUIRED = [*ROW_KEYS, "risk"]
_RESULT_COLUMNS = [*ROW_KEYS, "status", "metadata_added", "conflicts"]


def plan_links(candidates: pd.DataFrame | Any,
               result: Audit | SparkAudit | None = None) -> pd.DataFrame | Any:
    """A link plan: one row per secondary (every user of a group but its ``primary_id``).

    Columns: primary_id, secondary_id, provider and user_id (the secondary's main identity, what
    the link request names), connection, tier, risk, reasons, evidence, allow_unsafe (False: set it
    to True on a row, after checking that person, to let ``apply_plan`` link an unsafe row; a row
    of any tier but ``exact`` is never safe).
    ``result`` gives each secondary's main identity; without it the user id is split at its
    first ``|`` (Auth0's ``provider|id``). Spark candidates (of a ``SparkAudit``) give a Spark
    DataFrame plan, made on Spark, that ``apply_plan`` reads in chunks.

    Examples
    --------
    >>> candidates = link_candidates(result)             # doctest: +SKIP
    >>> plan = plan_links(candidates[candidates["risk"] == "safe"], result)
    >>> plan[["primary_id", "secondary_id", "risk"]]
    """
    if is_spark_frame(candidates):
        return spark_plan_links(candidates, None if result is None else result.identities)
    main: dict[str, tuple[str, str, str]] = {}
    if result is not None:
        ids = result.identities[result.identities["is_primary"]]
        main = dict(zip(ids["owner"].tolist(),
                        zip(ids["provider"].astype(str).tolist(), ids["user_id"].tolist(),
                            ids["connection"].astype(str).tolist(), strict=True), strict=True))
    rows = []
    planned: set[str] = set()  # a user in groups of two tiers is planned once, by the stronger
    for group in candidates.itertuples(index=False):
        if group.primary_id not in group.user_ids:  # an edited primary_id must be one of the group
            raise ValueError(f"primary_id {group.primary_id} is not one of the group of {group.email}: "
                             f"{', '.join(group.user_ids)}")
        for secondary in group.user_ids:
            if secondary == group.primary_id or secondary in planned:
                continue
            planned.add(secondary)
            provider, _, short = secondary.partition("|")
            connection: str | None = None
            if secondary in main:
                provider, short, connection = main[secondary]
            rows.append((group.primary_id, secondary, provider, short, connection,
                         getattr(group, "tier", "exact"), group.risk,
                         getattr(group, "reasons", str(group.risk)), getattr(group, "evidence", None), False))
    plan = pd.DataFrame(rows, columns=PLAN_COLUMNS)
    plan = plan.astype({"primary_id": "string", "secondary_id": "string", "provider": "string",
                        "user_id": "string", "connection": "string", "reasons": "string",
                        "evidence": "string", "allow_unsafe": bool})
    plan["tier"] = pd.Categorical(plan["tier"], categories=TIERS)
    plan["risk"] = pd.Categorical(plan["risk"], categories=RISKS)
    return plan


def _check_plan(plan: pd.DataFrame) -> None:
    """A plan ``apply_plan`` can act on, or a ``ValueError`` saying what is wrong, before any request."""
    if not isinstance(plan, pd.DataFrame):
        raise ValueError(f"a link plan is a DataFrame (plan_links()), not {type(plan).__name__}")
    missing = [c for c in PLAN_REQUIRED if c not in plan.columns]
    if missing:
        raise ValueError(f"the plan has no {', '.join(missing)} column(s); a plan needs "
                         f"{', '.join(PLAN_REQUIRED)} (plan_links() makes one)")
    for column in ROW_KEYS:
        values = plan[column]
        bad = values.isna() | (values.astype("string").str.strip() == "")
        if bad.any():
            raise ValueError(f"plan column {column} is empty on row(s) "
                             f"{', '.join(map(str, plan.index[bad.to_numpy(dtype=bool)][:5]))}")
    if "allow_unsafe" in plan.columns and not (pd.api.types.is_bool_dtype(plan["allow_unsafe"].dtype)
                                               and plan["allow_unsafe"].notna().all()):
        # "False" read back as text is truthy: only real booleans may allow a row
        raise ValueError("plan column allow_unsafe must hold True or False on every row "
                         f"(it is {plan['allow_unsafe'].dtype})")
    same = plan["primary_id"].astype("string") == plan["secondary_id"].astype("string")
    if same.any():
        raise ValueError(f"plan row(s) {', '.join(map(str, plan.index[same.to_numpy(dtype=bool)][:5]))} "
                         "link a user to itself")


@dataclass(frozen=True)
class _Row:
    """One row of a plan, as its requests and its journal records name it."""

    primary_id: str
    secondary_id: str
    provider: str
    user_id: str
    connection: Any
    risk: Any
    tier: str = "exact"
    evidence: Any = None

    @property
    def keys(self) -> dict[str, str]:
        return dict(zip(ROW_KEYS, (self.primary_id, self.secondary_id, self.provider, self.user_id),
                        strict=True))

    def outcome(self, status: str, added: list[str] | None = None,
                conflicts: list[str] | None = None) -> dict[str, Any]:
        return {**self.keys, "status": status, "metadata_added": added or [], "conflicts": conflicts or []}


@dataclass(frozen=True)
class _Allowances:
    """Which rows are refused before any request, and which the analyst allowed as they are."""

    refused: frozenset[str]
    trusted: frozenset[str]

    @classmethod
    def of(cls, plan: pd.DataFrame, allow_unsafe: Collection[str], *, dry_run: bool) -> _Allowances:
        """Unsafe rows not allowed row by row are an ``UnsafeLink`` when it is not a dry run. A row
        of a tier other than ``exact`` is unsafe whatever its risk says: a guess is never safe."""
        allowed = set(allow_unsafe)
        flags = plan["allow_unsafe"] if "allow_unsafe" in plan else pd.Series(False, index=plan.index)
        rows = list(zip(plan.itertuples(index=False), flags.tolist(), strict=True))

        def why(row: Any) -> str | None:
            tier = _text_or_none(getattr(row, "tier", None)) or "exact"
            if tier != "exact" and str(row.risk) == "safe":  # a plan edited by hand
                return f"tier {tier} is never safe"
            if str(row.risk) != "safe":
                return str(row.reasons if "reasons" in plan else row.risk)
            return None

        unsafe = [(r.secondary_id, why(r)) for r, ok in rows
                  if why(r) is not None and not ok and r.secondary_id not in allowed]
        if unsafe and not dry_run:
            listed = "; ".join(f"{sid} ({why})" for sid, why in unsafe[:5])
            raise UnsafeLink(f"{len(unsafe)} plan row(s) are unsafe and not allowed row by row: {listed}"
                             + (" ..." if len(unsafe) > 5 else ""))
        trusted = (str(r.secondary_id) for r, ok in rows if ok or r.secondary_id in allowed)
        return cls(refused=frozenset(sid for sid, _ in unsafe), trusted=frozenset(trusted))


def apply_plan(client: ManagementClient, plan: pd.DataFrame, *, dry_run: bool = True,
               journal: str | os.PathLike[str] | None = None,
               allow_unsafe: Collection[str] = (), progress: bool = False) -> pd.DataFrame:
    """Link every row of ``plan``; with ``dry_run`` (the default) only show what would happen.

    Unsafe rows (``risk`` other than ``safe``) are refused, before any request, unless the row's
    ``allow_unsafe`` is True or its ``secondary_id`` is in ``allow_unsafe``: linking on an
    unverified email is how an account is taken over. A row marked safe is checked again on the
    users as they are now (both emails verified and equal once normalised, neither blocked) and
    refused if that no longer holds. For each row: read both users, merge the
    secondary's ``user_metadata`` into the primary's (``merge_metadata``), journal "started" with
    the secondary's full profile, PATCH the primary, link, journal "done". Run it again with the
    same journal after an interruption: rows done are skipped, and a row started but not done is
    checked on the primary's identities before anything is re-sent, so nothing is linked twice.

    Returns one row per plan row: primary_id, secondary_id, provider, user_id, status,
    metadata_added, conflicts.

    Examples
    --------
    >>> plan = plan_links(candidates[candidates["risk"] == "safe"], result)  # doctest: +SKIP
    >>> apply_plan(admin, plan)                              # a dry run: what would change
    >>> apply_plan(admin, plan, dry_run=False, journal="links.jsonl")
    """
    from tqdm.auto import tqdm

    if is_spark_frame(plan):
        return _apply_spark_plan(client, plan, dry_run=dry_run, journal=journal, allow_unsafe=allow_unsafe,
                                 progress=progress)
    _check_plan(plan)
    if not dry_run:
        if journal is None:
            raise ValueError("applying a plan needs a journal path (it is what undo() reads)")
        if not Path(journal).parent.is_dir():  # found out now, not after the first row's reads
            raise FileNotFoundError(f"no directory {Path(journal).parent} for the journal")
    allowances = _Allowances.of(plan, allow_unsafe, dry_run=dry_run)
    log = Journal(journal) if journal is not None else None
    state = log.state() if log is not None else {}
    out = []
    for row in tqdm(list(plan.itertuples(index=False)), desc="links", disable=not progress):
        step = _Row(str(row.primary_id), str(row.secondary_id), str(row.provider), str(row.user_id),
                    getattr(row, "connection", None), row.risk,
                    _text_or_none(getattr(row, "tier", None)) or "exact",
                    _text_or_none(getattr(row, "evidence", None)))
        previous = state.get((step.primary_id, step.secondary_id), {})
        out.append(_apply_row(client, step, previous, log, allowances, dry_run=dry_run))
    return pd.DataFrame(out, columns=_RESULT_COLUMNS)


def _apply_spark_plan(client: ManagementClient, plan: Any, *, dry_run: bool,
                      journal: str | os.PathLike[str] | None, allow_unsafe: Collection[str],
                      progress: bool) -> pd.DataFrame:
    """A Spark plan, ``CHUNK`` rows at a time through one journal; its unsafe rows are counted on
    Spark first, so an ``UnsafeLink`` still comes before any request."""
    missing = [c for c in PLAN_REQUIRED if c not in plan.columns]
    if missing:
        raise ValueError(f"the plan has no {', '.join(missing)} column(s); a plan needs "
                         f"{', '.join(PLAN_REQUIRED)} (plan_links() makes one)")
    count, unsafe = unsafe_rows(plan, allow_unsafe)
    if count and not dry_run:
        listed = "; ".join(f"{sid} ({why})" for sid, why in unsafe)
        raise UnsafeLink(f"{count} plan row(s) are unsafe and not allowed row by row: {listed}"
                         + (" ..." if count > 5 else ""))
    done = [apply_plan(client, chunk, dry_run=dry_run, journal=journal, allow_unsafe=allow_unsafe,
                       progress=progress) for chunk in plan_chunks(plan, CHUNK)]
    return pd.concat(done, ignore_index=True) if done else pd.DataFrame(columns=_RESULT_COLUMNS)


def _apply_row(client: ManagementClient, row: _Row, previous: Mapping[str, Any], log: Journal | None,
               allowances: _Allowances, *, dry_run: bool) -> dict[str, Any]:
    """One plan row, checked and (unless ``dry_run``) linked; its outcome as a result row."""
    if previous.get("event") == "done":
        return row.outcome("already done (journal)")
    if row.secondary_id in allowances.refused:
        return row.outcome(f"would refuse: {row.risk}")
    try:
        primary = client.get_user(row.primary_id)
    except NotFound:  # deleted since the audit: nothing is sent for this row
        return row.outcome("primary not found")
    interrupted = bool(previous) and unfinished(previous)
    if holds_identity(primary, row.provider, row.user_id):
        return row.outcome("already linked", _found_linked(client, row, primary, previous, log,
                                                           interrupted=interrupted, dry_run=dry_run))
    try:
        secondary = client.get_user(row.secondary_id)
    except NotFound:  # gone since the first read: perhaps another run has just linked it
        primary = client.get_user(row.primary_id)
        if holds_identity(primary, row.provider, row.user_id):
            return row.outcome("already linked", _found_linked(client, row, primary, previous, log,
                                                               interrupted=interrupted, dry_run=dry_run))
        return row.outcome("secondary not found")
    now = None if row.secondary_id in allowances.trusted else risk_now(primary, secondary)
    if now is not None:  # the plan said safe, the tenant no longer does (or the plan was made by hand)
        return row.outcome(f"{'would refuse' if dry_run else 'refused'}: {now}")
    _, patch, conflicts = merge_metadata(primary.get("user_metadata"), secondary.get("user_metadata"))
    if dry_run:
        return row.outcome("would link", sorted(patch), conflicts)
    assert log is not None
    status, added = _link_row(client, row, primary, secondary, patch, previous if interrupted else None, log)
    return row.outcome(status, sorted(added), conflicts)


def _found_linked(client: ManagementClient, row: _Row, primary: Mapping[str, Any],
                  previous: Mapping[str, Any], log: Journal | None, *, interrupted: bool,
                  dry_run: bool) -> list[str]:
    """A row whose link is already made: its merge completed where the journal knows the secondary,
    and journaled as this run's ("done", ``recovered``) only if this run stopped mid-row: then its own
    request may have made it and nothing on the tenant says otherwise. Else "already linked": another
    run's link, which ``undo`` leaves. The metadata keys this added."""
    if dry_run or log is None:
        return []
    added = _complete_merge(client, row, primary, previous.get("secondary_profile"))
    _clear_mark(client, row, primary)  # linked: a merge mark left for this secondary is done with
    if interrupted:
        log.write({**row.keys, "event": "done", "recovered": True})
    elif previous.get("event") != "already linked" or added:
        log.write({**row.keys, "event": "already linked", "metadata_added": added})
    return added


def _complete_merge(client: ManagementClient, row: _Row, primary: Mapping[str, Any],
                    secondary: Mapping[str, Any] | None) -> list[str]:
    """Send what the (deterministic) merge of ``secondary`` still lacks on the primary; its keys."""
    if not secondary:
        return []
    _, missing, _ = merge_metadata(primary.get("user_metadata"), secondary.get("user_metadata"))
    if missing:
        client.update_user_metadata(row.primary_id, missing)
    return sorted(missing)


def _clear_mark(client: ManagementClient, row: _Row, primary: Mapping[str, Any],
                taken_back: Mapping[str, Any] | None = None) -> None:
    """Remove the secondary's merge mark from the primary (with ``taken_back`` metadata, if any)."""
    body: dict[str, Any] = {"user_metadata": dict(taken_back)} if taken_back else {}
    if MERGE_MARK + row.secondary_id in (primary.get("app_metadata") or {}):
        body["app_metadata"] = {MERGE_MARK + row.secondary_id: None}
    if body:
        client.update_user(row.primary_id, body)


def _text_or_none(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def _link_row(client: ManagementClient, row: _Row, primary: Mapping[str, Any],
              secondary: Mapping[str, Any], patch: dict[str, Any], started: Mapping[str, Any] | None,
              log: Journal) -> tuple[str, list[str]]:
    """Journal, merge the metadata, link, journal; the status and the keys merged. A row the tenant
    refuses takes back only what this run merged (and only where the primary still holds it) and the
    run goes on; a link another run made meanwhile is "already linked"; a tenant in trouble (or a
    deadline passed) stops the run with the row "stopped" (resume from the journal)."""
    mark_key = MERGE_MARK + row.secondary_id
    mark = (primary.get("app_metadata") or {}).get(mark_key)
    if started:  # a retried row keeps what was read before anything changed, in its first attempt
        before, first_patch = started["primary_metadata"], started["metadata_patch"]
    elif isinstance(mark, dict):  # another run's merge of this secondary is here, its link not made
        before = before_marked_merge(primary.get("user_metadata"), mark)
        first_patch = {**mark.get("written", {}), **patch}
    else:
        before, first_patch = primary.get("user_metadata") or {}, patch
    profile = started["secondary_profile"] if started else secondary
    log.write({**row.keys, "event": "started", "connection": row.connection, "tier": row.tier,
               "evidence": row.evidence, "risk": str(row.risk), "secondary_profile": profile,
               "primary_metadata": before, "metadata_patch": first_patch})
    try:
        if patch:  # the merge and its mark in one PATCH: no reader sees one without the other
            client.update_user(row.primary_id, {"user_metadata": patch,
                                                "app_metadata": {mark_key: merge_mark(before, first_patch)}})
        client.link(row.primary_id, provider=row.provider, user_id=row.user_id)
    except (BadRequest, NotFound, AlreadyLinked) as exc:  # this request refused: why, the primary says
        try:
            now = client.get_user(row.primary_id)
        except NotFound:
            now = {}
        if holds_identity(now, row.provider, row.user_id):  # another run linked it first: its merge is ours
            added = _complete_merge(client, row, now, profile)
            _clear_mark(client, row, now)  # the mark this run's merge left, if the linker cleared its own
            log.write({**row.keys, "event": "already linked", "metadata_added": added})
            return "already linked", sorted(set(patch) | set(added))
        taken_back = unmerge_metadata(now.get("user_metadata"), before, first_patch) if now else {}
        if now:
            _clear_mark(client, row, now, taken_back)
        log.write({**row.keys, "event": "failed", "refused": True, "error": str(exc)})
        return f"failed: {exc}", []
    except Auth0Error as exc:  # the tenant is in trouble: stop here, resume later from the journal
        log.write({**row.keys, "event": "stopped", "error": str(exc)})
        exc.add_note(f"apply_plan stopped at {row.secondary_id}: run it again with the journal "
                     f"{log.path} to resume")
        raise
    if first_patch or isinstance(mark, dict):  # linked: the merge is this run's now, the mark done with
        client.update_user(row.primary_id, {"app_metadata": {mark_key: None}})
    log.write({**row.keys, "event": "done"})
    return "linked", sorted(patch)
