"""Probable pairs into groups: connected components of the pairs a model scored above its threshold,
each group with its weakest pair's probability, evidence in words and match weights.

A group is as strong as its weakest pair: A-B at 0.999 and B-C at 0.991 make a group of three at
0.991, and it is that pair the evidence describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from .probable import COMPARISONS

__all__ = ["Clusters", "cluster_pairs", "pair_evidence"]

_MEMBER_SCHEMA = pa.schema([("tier", pa.string()), ("key", pa.string()), ("match_probability", pa.float64()),
                            ("evidence", pa.string()), ("user_id", pa.string())])


@dataclass
class Clusters:
    """``members`` (tier, key, match_probability, evidence, user_id: one row per user of a group)
    and ``weights`` (by group key: the weakest pair's match weight per comparison and the prior).

    Examples
    --------
    >>> from linking_toolkit.audit.clusters import cluster_pairs
    >>> clusters = cluster_pairs(pairs)                 # doctest: +SKIP
    >>> clusters.members.column_names
    ['tier', 'key', 'match_probability', 'evidence', 'user_id']
    """

    members: pa.Table
    weights: dict[str, dict[str, float]]


def pair_evidence(pair: dict[str, Any], similarity: dict[str, float | None]) -> str:
    """A scored pair in words: ``"given name 0.97, family name 1.00, email local part 0.91, same
    domain"``; a comparison one side lacks is left out.

    Examples
    --------
    >>> from linking_toolkit.audit.clusters import pair_evidence
    >>> pair = {"given_l": "Ada", "given_r": "Ada", "domain_l": "example.org", "domain_r": "example.org"}
    >>> pair_evidence(pair, {"given": 1.0, "domain": None})
    'given name 1.00, same domain'
    """
    words = []
    for column, label in COMPARISONS.items():
        left, right = pair.get(f"{column}_l"), pair.get(f"{column}_r")
        if left is None or right is None:
            continue
        if column in ("domain", "phone"):
            words.append(f"same {label}" if left == right else f"other {label}")
        else:
            words.append(f"{label} {similarity[column] or 0.0:.2f}")
        digits = {"local": "digits", "username": "username_digits"}.get(column)
        if digits and pair.get(f"{digits}_l") and pair.get(f"{digits}_r"):
            words.append("same number" if pair[f"{digits}_l"] == pair[f"{digits}_r"] else "other number")
    return ", ".join(words)


def _find(parent: dict[str, str], node: str) -> str:
    root = node
    while parent[root] != root:
        root = parent[root]
    while parent[node] != root:  # path compression
        parent[node], node = root, parent[node]
    return root


def cluster_pairs(pairs: pa.Table) -> Clusters:
    """Groups of ``pairs`` (splink's predictions with ``sim_<column>`` similarities added).

    Examples
    --------
    >>> from linking_toolkit.audit.clusters import cluster_pairs
    >>> from linking_toolkit.audit.probable import probable_pairs
    >>> clusters = cluster_pairs(probable_pairs(engine.connection))      # doctest: +SKIP
    >>> clusters.members.num_rows                       # one row per user of a group
    """
    rows = pairs.to_pylist()
    parent: dict[str, str] = {}
    for row in rows:
        left, right = row["unique_id_l"], row["unique_id_r"]
        parent.setdefault(left, left)
        parent.setdefault(right, right)
        a, b = _find(parent, left), _find(parent, right)
        if a != b:
            parent[max(a, b)] = min(a, b)
    weakest: dict[str, dict[str, Any]] = {}
    for row in rows:
        root = _find(parent, row["unique_id_l"])
        if root not in weakest or row["match_probability"] < weakest[root]["match_probability"]:
            weakest[root] = row
    members: dict[str, list[Any]] = {name: [] for name in _MEMBER_SCHEMA.names}
    weights: dict[str, dict[str, float]] = {}
    sizes: dict[str, int] = {}
    for node in parent:
        sizes[_find(parent, node)] = sizes.get(_find(parent, node), 0) + 1
    for node in sorted(parent):
        root = _find(parent, node)
        pair = weakest[root]
        similarity = {c: pair.get(f"sim_{c}") for c in COMPARISONS}
        evidence = pair_evidence(pair, similarity)
        if sizes[root] > 2:
            evidence = f"weakest pair: {evidence}"
        row = {"tier": "probable", "key": root, "match_probability": pair["match_probability"],
               "evidence": evidence, "user_id": node}
        for name, value in row.items():
            members[name].append(value)
        if root not in weights:
            # a comparison's weight with its term-frequency adjustment (a rare name counts more)
            parts = {label: float(pair.get(f"mw_{column}") or 0.0)
                     + float(pair.get(f"mw_tf_adj_{column}") or 0.0) for column, label in COMPARISONS.items()}
            weights[root] = {"prior": float(pair["match_weight"]) - sum(parts.values()), **parts}
    return Clusters(pa.table(members, schema=_MEMBER_SCHEMA), weights)
