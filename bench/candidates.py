"""The candidate tiers against a synthetic tenant's ground truth, and their time beside the exact tier.

* Quality at ``--users`` (100 000): each tier's groups as pairs of users, against the pairs of
  the people ``SyntheticTenant`` made: precision (the share of a tier's pairs that are one person,
  of any kind) and recall (the share of that tier's own kind of duplicate it found), at the
  default threshold and, for the probable tier, a sweep of thresholds.
* Time at ``--time-users`` (1 000 000): ``link_candidates`` with every tier, with the rule tiers,
  and with the exact tier alone (the baseline: the audit's candidates before the tiers), on one
  audit read once; ``--repeat`` runs each, the best is printed with its ratio to the baseline.

The synthetic duplicates are written by rules (a person's number in each local part, typos of
one letter, nicknames from a list): a real tenant's are messier, and its figures will be lower.

    .venv/bin/python bench/candidates.py
    .venv/bin/python bench/candidates.py --users 20000 --time-users 100000
"""

from __future__ import annotations

import argparse
import gc
import itertools
import time
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from linking_toolkit import ManagementClient, connect
from linking_toolkit.audit import RULE_TIERS, Audit, audit_tenant, link_candidates
from linking_toolkit.audit.probable import DEFAULT_THRESHOLD
from linking_toolkit.sandbox import Sandbox
from linking_toolkit.sandbox.seed import SyntheticTenant

PHONE_PATHS = ["user_metadata.phone"]  # where the synthetic tenants keep a second phone
TARGETS = ("targets: rule tiers precision 1.0; probable precision >= 0.95 at recall >= 0.80; "
           "all tiers <= 60 s at 1M")


def pairs(groups: Iterable[Sequence[str]]) -> set[tuple[str, str]]:
    return {tuple(sorted(p)) for g in groups for p in itertools.combinations(g, 2)}  # type: ignore[misc]


def demo_groups(sandbox: Sandbox) -> list[list[str]]:
    """The demo people's users that share an email: duplicates too, outside the synthetic truth."""
    assert sandbox.context is not None
    with sandbox.context.store.read() as db:
        rows = db.execute("SELECT email, user_id FROM users WHERE email LIKE '%@example.com'").fetchall()
    by_email: dict[str, list[str]] = {}
    for email, user_id in rows:
        by_email.setdefault(email, []).append(user_id)
    return [sorted(ids) for ids in by_email.values() if len(ids) > 1]


def audit_of(users: int, seed: int) -> tuple[Audit, SyntheticTenant, float]:
    """A synthetic sandbox of ``users``, audited through its export job, and its ground truth (the
    demo people's shared emails added to the exact groups)."""
    with Sandbox(seed=seed, users=users) as sandbox:
        assert sandbox.context is not None
        truth = SyntheticTenant.from_store(sandbox.context.store)
        assert truth is not None
        truth.safe_groups = truth.safe_groups + demo_groups(sandbox)
        with connect(sandbox=sandbox, quiet=True) as tenant, \
                ManagementClient.from_client_credentials(tenant) as admin:
            start = time.perf_counter()
            result = audit_tenant(admin, progress=False, phone_paths=PHONE_PATHS)
            return result, truth, time.perf_counter() - start


def quality(users: int, seed: int) -> None:
    result, truth, read_s = audit_of(users, seed)
    print(f"\nQuality at {len(result.users):,} users (audit read in {read_s:.1f} s); {TARGETS}")
    found = link_candidates(result, tiers="all", default_region=truth.phone_region, threshold=0.5)
    kinds = {"exact": pairs(truth.safe_groups + truth.unsafe_groups), "alias": pairs(truth.alias_groups),
             "phone": pairs(truth.phone_groups), "probable": pairs(truth.probable_groups)}
    every = set().union(*kinds.values())
    negatives = {tuple(sorted(p[:2])) for p in truth.negative_pairs}
    print(f"  {'tier':9} {'groups':>7} {'pairs':>7} {'true kind':>9} {'precision':>9} {'recall':>7} "
          f"{'hard neg.':>9}")
    for tier in ("exact", "alias", "phone", "probable"):
        chosen = found[(found["tier"] == tier)
                       & ((tier != "probable") | (found["match_probability"] >= DEFAULT_THRESHOLD))]
        predicted = pairs(chosen["user_ids"])
        precision = len(predicted & every) / len(predicted) if predicted else float("nan")
        recall = len(predicted & kinds[tier]) / len(kinds[tier]) if kinds[tier] else float("nan")
        print(f"  {tier:9} {len(chosen):7,} {len(predicted):7,} {len(kinds[tier]):9,} {precision:9.3f} "
              f"{recall:7.3f} {len(predicted & negatives):9,}")
    probable = found[found["tier"] == "probable"]
    print("  probable tier by threshold (the default marked *):")
    for threshold in (0.5, 0.9, 0.95, DEFAULT_THRESHOLD, 0.999, 0.9999):
        predicted = pairs(probable[probable["match_probability"] >= threshold]["user_ids"])
        precision = len(predicted & every) / len(predicted) if predicted else float("nan")
        mark = "*" if threshold == DEFAULT_THRESHOLD else " "
        print(f"   {mark}{threshold:<8} pairs {len(predicted):6,} precision {precision:.3f} "
              f"recall {len(predicted & kinds['probable']) / len(kinds['probable']):.3f}")


def best_of(repeat: int, step: Any) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        value = step()
        best = min(best, time.perf_counter() - start)
    return best, value


def timing(users: int, seed: int, repeat: int) -> None:
    result, truth, read_s = audit_of(users, seed)
    print(f"\nTime at {len(result.users):,} users (audit read once, in {read_s:.1f} s), best of {repeat}:")
    runs: dict[str, tuple[float, pd.DataFrame]] = {}
    for name, tiers in (("exact tier alone (baseline)", ["exact"]), ("rule tiers", list(RULE_TIERS)),
                        ("all tiers (splink on DuckDB)", "all")):
        runs[name] = best_of(repeat, lambda tiers=tiers: link_candidates(
            result, tiers=tiers, default_region=truth.phone_region))
    base = runs["exact tier alone (baseline)"][0]
    print(f"  {'':32} {'wall s':>8} {'groups':>9} {'ratio':>7}")
    for name, (seconds, found) in runs.items():
        print(f"  {name:32} {seconds:8.2f} {len(found):9,} {seconds / base:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000, help="users for the quality figures")
    parser.add_argument("--time-users", type=int, default=1_000_000, help="users for the timing")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    quality(args.users, args.seed)
    timing(args.time_users, args.seed, args.repeat)


if __name__ == "__main__":
    main()
