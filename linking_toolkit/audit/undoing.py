"""``undo``: reverse what one journal's run of ``apply_plan`` did, and nothing else.

Two analysts may apply overlapping plans at once; each journal then records, row by row, which
links its own run made ("done") and which it found made by the other ("already linked"). Undo
reverses only the first kind, so one analyst's undo never removes the other's links, and it puts
back everything the journal holds of the secondary, so apply + undo gives the tenant back.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import BadRequest, NotFound
from ..identities import holds_identity
from .journal import ROW_KEYS, Journal, unfinished
from .merge import MERGE_MARK, unmerge_metadata

if TYPE_CHECKING:
    from ..management import ManagementClient

__all__ = ["RESTORED_FIELDS", "UNDO_COLUMNS", "undo"]

UNDO_COLUMNS = ["primary_id", "secondary_id", "status"]
# The secondary's root attributes undo puts back when the user Auth0 recreates at the unlink
# differs (Auth0's PATCH /users accepts them); its metadata always.
RESTORED_FIELDS = ("blocked", "email_verified", "given_name", "family_name", "name", "nickname", "picture")


def undo(client: ManagementClient, journal: str | os.PathLike[str], *,
         progress: bool = False) -> pd.DataFrame:
    """Undo the links this journal's run made, newest first; one result row per journal row.

    For a link this run made ("done", or a row it stopped in and found linked when it resumed:
    from the tenant that cannot be told apart from its own): unlink, put back the secondary's
    ``user_metadata``, ``app_metadata`` and root attributes (:data:`RESTORED_FIELDS`) as the
    journal holds them, and take back from the primary only what this run's merge wrote (where it
    still holds it). A row another run linked is left as it is ("left: linked by another run");
    a refused row has nothing to undo; a stopped row never linked gets its merge taken back.

    Resumable: rows already "undone" are skipped, and an unlink the tenant already did counts.
    The restored secondary is a new user with the old id (Auth0 recreates it from the identity):
    its created_at, updated_at, last_login and logins_count start again, as on Auth0.

    Examples
    --------
    >>> undone = undo(admin, "links.jsonl")                 # doctest: +SKIP
    >>> undone["status"].value_counts()                     # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    log = Journal(journal)
    if not log.path.exists():  # a mistyped path must not look like "nothing to undo"
        raise FileNotFoundError(f"no journal at {log.path}")
    out = []
    for entry in tqdm(list(reversed(log.state().values())), desc="undo", disable=not progress):
        keys = {k: entry[k] for k in ROW_KEYS}
        out.append({"primary_id": keys["primary_id"], "secondary_id": keys["secondary_id"],
                    "status": _undo_row(client, entry, log)})
    return pd.DataFrame(out, columns=UNDO_COLUMNS)


def _undo_row(client: ManagementClient, entry: Mapping[str, Any], log: Journal) -> str:
    """Reverse one journal row if this run did it; what happened, as undo's result says it."""
    event = entry.get("event")
    if event == "undone":
        return "already undone"
    if event == "already linked":
        return "left: linked by another run"
    if event != "done" and not unfinished(entry):
        return "nothing to undo: the tenant refused the link"
    keys = {k: entry[k] for k in ROW_KEYS}
    primary_id, secondary_id, provider, short = keys.values()
    try:
        primary = client.get_user(primary_id)
    except NotFound:
        return "left: the primary user no longer exists"
    linked = holds_identity(primary, provider, short)
    ours = event == "done" or linked  # a stopped row found linked is counted as this run's, as on resume
    if ours and linked:
        client.unlink(primary_id, provider, short)
    if ours:
        _restore_secondary(client, secondary_id, entry.get("secondary_profile") or {})
    taken_back: dict[str, Any] = {}
    undo_patch = unmerge_metadata(primary.get("user_metadata"), entry.get("primary_metadata"),
                                  entry.get("metadata_patch"))
    if undo_patch:
        taken_back["user_metadata"] = undo_patch
    if MERGE_MARK + secondary_id in (primary.get("app_metadata") or {}):  # a stop left it: the merge is gone
        taken_back["app_metadata"] = {MERGE_MARK + secondary_id: None}
    if taken_back:
        client.update_user(primary_id, taken_back)
    log.write({**keys, "event": "undone"})
    return "undone" if ours else "undone: never linked, merge taken back"


def _restore_secondary(client: ManagementClient, secondary_id: str, profile: Mapping[str, Any]) -> None:
    """Put back what the journal holds of the secondary on the user Auth0 recreated at the unlink."""
    try:
        now = client.get_user(secondary_id)
    except NotFound:
        return
    restore: dict[str, Any] = {k: profile[k] for k in ("user_metadata", "app_metadata")
                               if profile.get(k) and now.get(k) != profile[k]}
    roots = {k: profile[k] for k in RESTORED_FIELDS if k in profile and now.get(k) != profile[k]}
    if roots:
        try:
            client.update_user(secondary_id, {**restore, **roots})
            return
        except BadRequest:  # a connection that refuses a root attribute: the metadata at least
            pass
    if restore:
        with contextlib.suppress(NotFound):
            client.update_user(secondary_id, restore)
