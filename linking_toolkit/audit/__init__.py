"""Audit a whole tenant: every identity as a frame, link candidates, safe link plans with undo.

The rules (what a record becomes, how emails are compared, which account is proposed as primary,
when a group is safe, how metadata is merged) are plain functions on data; the functions that talk
to a tenant (``audit_tenant``, ``apply_plan``, ``undo``) only fetch, call those rules and write a
journal. One room per job, each importing only the rooms above it in this list:

- ``engine``: DuckDB reading exports and records, the frames' dtypes, the candidates' SQL;
- ``frames``: the ``Audit`` value, SQL over it, saving and reopening it, ``normalise_email``;
- ``rules``, ``probable``, ``clusters``: the tiers beyond one email (provider aliases, phones,
  a splink model and its groups);
- ``candidates``: groups of users by tier, the proposed primary, the risks;
- ``report``: styled summaries and the chart;
- ``fetch``: reading a tenant (paging, an export job, or a partitioned search) or an export file;
- ``journal``: the file ``apply_plan`` writes and ``undo`` reads;
- ``merge``: the metadata merge of a link and its inverse;
- ``plan``: link plans and ``apply_plan``;
- ``undoing``: ``undo``, which reverses only what its own journal's run did;
- ``dialect``, ``spark_engine``, ``spark_audit``, ``spark_candidates``, ``spark_plan``: the same
  audit on Spark (``audit_export_file(path, engine="spark")``), its SQL transpiled from DuckDB's.

Examples
--------
>>> from linking_toolkit.audit import audit_tenant, link_candidates, plan_links, apply_plan  # doctest: +SKIP
>>> result = audit_tenant(admin)
>>> plan = plan_links(link_candidates(result), result)
>>> apply_plan(admin, plan)                      # a dry run: what would happen
"""

from .candidates import (
    DATABASE_PROVIDER,
    DEFAULT_PRIMARY_RANK,
    RISKS,
    RULE_TIERS,
    TIERS,
    link_candidates,
    risk_now,
)
from .fetch import METHODS, IncompleteAudit, audit_export_file, audit_tenant, export_format
from .frames import AUDIT_FIELDS, Audit, audit_records, normalise_email
from .journal import Journal
from .merge import merge_metadata, unmerge_metadata
from .plan import PLAN_COLUMNS, apply_plan, plan_links
from .report import (
    candidates_by_risk,
    candidates_by_tier,
    connections_summary,
    identity_count_summary,
    plot_audit,
    plot_evidence,
)
from .spark_audit import SparkAudit
from .undoing import undo

__all__ = [
    "AUDIT_FIELDS",
    "DATABASE_PROVIDER",
    "DEFAULT_PRIMARY_RANK",
    "METHODS",
    "PLAN_COLUMNS",
    "RISKS",
    "RULE_TIERS",
    "TIERS",
    "Audit",
    "IncompleteAudit",
    "Journal",
    "SparkAudit",
    "apply_plan",
    "audit_export_file",
    "audit_records",
    "audit_tenant",
    "candidates_by_risk",
    "candidates_by_tier",
    "connections_summary",
    "export_format",
    "identity_count_summary",
    "link_candidates",
    "merge_metadata",
    "normalise_email",
    "plan_links",
    "plot_audit",
    "plot_evidence",
    "risk_now",
    "undo",
    "unmerge_metadata",
]
