"""Link plans: one row per secondary user, checked, applied with a journal, and undone from it.

A plan is a frame an analyst can read and edit (``plan_links``). ``apply_plan`` refuses unsafe
rows before any request, checks each safe row again on the users as they are now, merges the
secondary's ``user_metadata`` into the primary's (``merge_metadata``: Auth0 drops it at the link)
and journals every step, so an interrupted run resumes without linking twice and ``undo`` can put
every user back as it was.
"""

from __future__ import annotations

import contextlib
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
from .journal import ROW_KEYS, UNFINISHED, Journal

if TYPE_CHECKING:
    from ..management import ManagementClient

__all__ = [
    "PLAN_COLUMNS",
    "PLAN_REQUIRED",
    "apply_plan",
    "merge_metadata",
    "plan_links",
    "undo",
]

PLAN_COLUMNS = [*ROW_KEYS, "connection", "tier", "risk", "reasons", "evidence", "allow_unsafe"]
# What apply_plan needs of a plan made by hand.
PLAN_REQUIRED = [*ROW_KEYS, "risk"]
_RESULT_COLUMNS = [*ROW_KEYS, "status", "metadata_added", "conflicts"]


def plan_links(candidates: pd.DataFrame, result: Audit | None = None) -> pd.DataFrame:
    """A link plan: one row per secondary (every user of a group but its ``primary_id``).

    Columns: primary_id, secondary_id, provider and user_id (the secondary's main identity, what
    the link request names), connection, tier, risk, reasons, evidence, allow_unsafe (False: set it
    to True on a row, after checking that person, to let ``apply_plan`` link an unsafe row; a row
    of any tier but ``exact`` is never safe).
    ``result`` gives each secondary's main identity; without it the user id is split at its
    first ``|`` (Auth0's ``provider|id``).
    """
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


def merge_metadata(primary: Mapping[str, Any] | None, secondary: Mapping[str, Any] | None,
                   ) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Merge a secondary's ``user_metadata`` into the primary's before a link (Auth0 drops it).

    The rule: the primary's keys win; keys only the secondary has are added; when both hold a
    dict under one key, the two dicts are merged one level deep by the same rule. Returns
    ``(merged, patch, conflicts)``: the result, the top-level keys to send in a PATCH (Auth0
    replaces each top-level key it is sent), and the keys where the secondary's value was dropped.
    """
    merged = dict(primary or {})
    patch: dict[str, Any] = {}
    conflicts: list[str] = []
    for key, value in (secondary or {}).items():
        if key not in merged:
            merged[key] = patch[key] = value
        elif isinstance(merged[key], dict) and isinstance(value, dict):
            inner = {**value, **merged[key]}
            conflicts += [f"{key}.{k}" for k in value if k in merged[key] and merged[key][k] != value[k]]
            if inner != merged[key]:
                merged[key] = patch[key] = inner
        elif merged[key] != value:
            conflicts.append(key)
    return merged, patch, conflicts


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
    """
    from tqdm.auto import tqdm

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
    interrupted = previous.get("event") in UNFINISHED
    # linked already (by us before a crash, or by anyone)
    if holds_identity(primary, row.provider, row.user_id):
        if log is not None and not dry_run and interrupted:
            log.write({**row.keys, "event": "done", "recovered": True})
        return row.outcome("already linked")
    try:
        secondary = client.get_user(row.secondary_id)
    except NotFound:
        return row.outcome("secondary not found")
    now = None if row.secondary_id in allowances.trusted else risk_now(primary, secondary)
    if now is not None:  # the plan said safe, the tenant no longer does (or the plan was made by hand)
        return row.outcome(f"{'would refuse' if dry_run else 'refused'}: {now}")
    _, patch, conflicts = merge_metadata(primary.get("user_metadata"), secondary.get("user_metadata"))
    if dry_run:
        return row.outcome("would link", sorted(patch), conflicts)
    assert log is not None
    status = _link_row(client, row, primary, secondary, patch, previous if interrupted else None, log)
    return row.outcome(status, sorted(patch), conflicts)


def _text_or_none(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def _link_row(client: ManagementClient, row: _Row, primary: Mapping[str, Any],
              secondary: Mapping[str, Any], patch: dict[str, Any], started: Mapping[str, Any] | None,
              log: Journal) -> str:
    """Journal, merge the metadata, link, journal; the status. A row the tenant refuses gives the
    merged keys back and the run goes on; a tenant in trouble stops it (resume from the journal)."""
    # A retried row keeps what was read before anything changed, in its first attempt.
    before = started["primary_metadata"] if started else primary.get("user_metadata") or {}
    first_patch = started["metadata_patch"] if started else patch
    log.write({**row.keys, "event": "started", "connection": row.connection, "tier": row.tier,
               "evidence": row.evidence, "risk": str(row.risk),
               "secondary_profile": started["secondary_profile"] if started else secondary,
               "primary_metadata": before, "metadata_patch": first_patch})
    try:
        if patch:
            client.update_user_metadata(row.primary_id, patch)
        client.link(row.primary_id, provider=row.provider, user_id=row.user_id)
    except (BadRequest, NotFound, AlreadyLinked) as exc:  # this row refused: go on with the next
        if first_patch:  # the link will not happen: the primary gives the merged keys back
            client.update_user_metadata(row.primary_id, {k: before.get(k) for k in first_patch})
        log.write({**row.keys, "event": "failed", "error": str(exc)})
        return f"failed: {exc}"
    except Auth0Error as exc:  # the tenant is in trouble: stop here, resume later from the journal
        log.write({**row.keys, "event": "failed", "error": str(exc)})
        raise
    log.write({**row.keys, "event": "done"})
    return "linked"


def undo(client: ManagementClient, journal: str | os.PathLike[str], *,
         progress: bool = False) -> pd.DataFrame:
    """Undo the links a journal records, newest first: unlink, then restore the secondary's
    ``user_metadata`` / ``app_metadata`` and the primary's metadata keys the merge changed.

    Resumable too: rows already "undone" are skipped, and an unlink the tenant already did counts.
    The restored secondary is a new user with the old id (Auth0 recreates it from the identity):
    its created_at, last_login and logins_count start again, as on Auth0.
    """
    from tqdm.auto import tqdm

    log = Journal(journal)
    if not log.path.exists():  # a mistyped path must not look like "nothing to undo"
        raise FileNotFoundError(f"no journal at {log.path}")
    state = log.state()
    out = []
    entries = [e for e in state.values() if e.get("event") in ("done", *UNFINISHED)]
    for entry in tqdm(list(reversed(entries)), desc="undo", disable=not progress):
        keys = {k: entry[k] for k in ROW_KEYS}
        primary_id, secondary_id, provider, short = keys.values()
        primary = client.get_user(primary_id)
        if holds_identity(primary, provider, short):  # else never linked, or unlinked by a previous undo
            client.unlink(primary_id, provider, short)
        profile = entry.get("secondary_profile") or {}
        restore = {k: profile[k] for k in ("user_metadata", "app_metadata") if profile.get(k)}
        if restore:
            with contextlib.suppress(NotFound):
                client.update_user(secondary_id, restore)
        before = entry.get("primary_metadata") or {}
        patch = entry.get("metadata_patch") or {}
        undo_patch = {k: before.get(k) for k in patch}  # None removes a key the merge added
        if undo_patch:
            client.update_user_metadata(primary_id, undo_patch)
        log.write({**keys, "event": "undone"})
        out.append({"primary_id": primary_id, "secondary_id": secondary_id, "status": "undone"})
    return pd.DataFrame(out, columns=["primary_id", "secondary_id", "status"])
