"""The metadata merge of a link, and its exact inverse: plain functions on two ``user_metadata`` dicts.

Auth0 drops a secondary's ``user_metadata`` at the link, so ``apply_plan`` merges it into the
primary's first. The merge is deterministic (the same two users give the same PATCH, whoever sends
it), which is what lets two runs of one plan at once agree. The inverse takes back only what one
merge wrote, key by key and, inside a dict, inner key by inner key, and only where the primary still
holds the value that merge wrote: undoing one link never erases what another link (or run) added.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MERGE_MARK", "before_marked_merge", "merge_mark", "merge_metadata", "unmerge_metadata"]

# The primary's app_metadata key, per secondary, that says "this secondary's merge is on me, its link
# not made yet": written in the merge's own PATCH, removed by whoever makes the link. A run that reads
# the primary in between learns what the merge wrote and what was there before, so the run that
# links owns the merge (and its undo takes it back) whichever run sent it.
MERGE_MARK = "linking_toolkit_merge:"


def merge_mark(before: Mapping[str, Any] | None, written: Mapping[str, Any]) -> dict[str, Any]:
    """The mark a merge leaves on the primary: what it wrote and what those keys held before.

    Examples
    --------
    >>> from linking_toolkit.audit.merge import merge_mark
    >>> merge_mark({"plan": "pro"}, {"plan": "team", "nickname": "ada"})
    {'written': {'plan': 'team', 'nickname': 'ada'}, 'before': {'plan': 'pro'}}
    """
    prior = dict(before or {})
    return {"written": dict(written), "before": {k: prior[k] for k in written if k in prior}}


def before_marked_merge(current: Mapping[str, Any] | None, mark: Mapping[str, Any]) -> dict[str, Any]:
    """The primary's ``user_metadata`` as it was before the marked merge (where it still holds it).

    Examples
    --------
    >>> before_marked_merge({"a": 1, "x": 2}, merge_mark({"a": 1}, {"x": 2}))
    {'a': 1}
    """
    out = dict(current or {})
    for key, value in (mark.get("written") or {}).items():
        if out.get(key) != value:
            continue  # changed since: not the merge's any more
        if key in (mark.get("before") or {}):
            out[key] = mark["before"][key]
        else:
            del out[key]
    return out


def merge_metadata(primary: Mapping[str, Any] | None, secondary: Mapping[str, Any] | None,
                   ) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Merge a secondary's ``user_metadata`` into the primary's before a link (Auth0 drops it).

    The rule: the primary's keys win; keys only the secondary has are added; when both hold a
    dict under one key, the two dicts are merged one level deep by the same rule. Returns
    ``(merged, patch, conflicts)``: the result, the top-level keys to send in a PATCH (Auth0
    replaces each top-level key it is sent), and the keys where the secondary's value was dropped.

    Examples
    --------
    >>> merge_metadata({"lang": "en", "prefs": {"a": 1}}, {"lang": "fr", "prefs": {"b": 2}, "x": 1})
    ({'lang': 'en', 'prefs': {'b': 2, 'a': 1}, 'x': 1}, {'prefs': {'b': 2, 'a': 1}, 'x': 1}, ['lang'])
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


def unmerge_metadata(current: Mapping[str, Any] | None, before: Mapping[str, Any] | None,
                     written: Mapping[str, Any] | None) -> dict[str, Any]:
    """The PATCH that takes back what one merge wrote (``written``, sent over ``before``) from the
    primary's ``current`` metadata; empty when nothing of it is left to take back.

    A key the merge added is removed if it still holds the value written; inside a dict, only the
    inner keys the merge added, and only those still holding its value (a dict left empty goes,
    as it did not exist before). A value someone changed since, or a key another merge added, stays.

    Examples
    --------
    >>> before = {"prefs": {"lang": "en"}}
    >>> written = {"prefs": {"lang": "en", "a": 1}, "x": 1}
    >>> unmerge_metadata({"prefs": {"lang": "en", "a": 1, "b": 2}, "x": 1}, before, written)
    {'prefs': {'lang': 'en', 'b': 2}, 'x': None}
    """
    now = dict(current or {})
    prior = dict(before or {})
    undo: dict[str, Any] = {}
    for key, value in (written or {}).items():
        if key not in now:
            continue
        had = prior.get(key, {}) if key in prior else None
        if isinstance(value, dict) and isinstance(now[key], dict) and (had is None or isinstance(had, dict)):
            added = {k: v for k, v in value.items() if had is None or k not in had}
            kept = {k: v for k, v in now[key].items() if not (k in added and added[k] == v)}
            if kept != now[key]:
                undo[key] = kept if kept or had is not None else None  # None removes the key
        elif key not in prior and now[key] == value:
            undo[key] = None
    return undo
