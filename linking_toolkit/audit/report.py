"""How an audit reads at a glance: its counts as styled tables with bars, and as a chart.

Every function here takes an ``Audit`` or a candidates frame and only presents it; the counts
themselves are the frames' (``Audit.identities_per_connection()``, ``Audit.users_by_identity_count()``)
or ``link_candidates``'s. A styled table's plain-text form is the table itself, and its HTML ids are
fixed, so a notebook's saved output repeats from run to run.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from .candidates import link_candidates
from .frames import Audit

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from pandas.io.formats.style import Styler

__all__ = [
    "candidates_by_risk",
    "candidates_by_tier",
    "connections_summary",
    "identity_count_summary",
    "plot_audit",
    "plot_evidence",
]


def connections_summary(result: Audit) -> Styler:
    """Identities per connection (main and linked) as a styled table with bars.

    Examples
    --------
    >>> from linking_toolkit.audit.frames import audit_records
    >>> result = audit_records([
    ...     {"user_id": "auth0|1", "email": "ada@example.org", "email_verified": True,
    ...      "identities": [{"provider": "auth0", "user_id": "1",
    ...                      "connection": "Username-Password-Authentication"}]},
    ...     {"user_id": "google-oauth2|2", "email": "Ada@example.org", "email_verified": True,
    ...      "identities": [{"provider": "google-oauth2", "user_id": "2", "connection": "google-oauth2"}]}])
    >>> from linking_toolkit.audit.report import connections_summary
    >>> connections_summary(result).data.loc["google-oauth2"].to_dict()
    {'main': 1, 'linked': 0, 'identities': 1}
    """
    return _bars(result.identities_per_connection(), "Identities per connection")


def identity_count_summary(result: Audit) -> Styler:
    """Users by number of identities (1, 2, 3+) as a styled table with bars.

    Examples
    --------
    >>> from linking_toolkit.audit.frames import audit_records
    >>> result = audit_records([
    ...     {"user_id": "auth0|1", "email": "ada@example.org", "email_verified": True,
    ...      "identities": [{"provider": "auth0", "user_id": "1",
    ...                      "connection": "Username-Password-Authentication"}]},
    ...     {"user_id": "google-oauth2|2", "email": "Ada@example.org", "email_verified": True,
    ...      "identities": [{"provider": "google-oauth2", "user_id": "2", "connection": "google-oauth2"}]}])
    >>> from linking_toolkit.audit.report import identity_count_summary
    >>> identity_count_summary(result).data["users"].to_dict()
    {'1': 2, '2': 0, '3+': 0}
    """
    return _bars(result.users_by_identity_count(), "Users by number of identities")


def candidates_by_risk(candidates: pd.DataFrame) -> Styler:
    """Candidate groups and the users in them, per risk, as a styled table with bars.

    Examples
    --------
    >>> from linking_toolkit.audit.frames import audit_records
    >>> result = audit_records([
    ...     {"user_id": "auth0|1", "email": "ada@example.org", "email_verified": True,
    ...      "identities": [{"provider": "auth0", "user_id": "1",
    ...                      "connection": "Username-Password-Authentication"}]},
    ...     {"user_id": "google-oauth2|2", "email": "Ada@example.org", "email_verified": True,
    ...      "identities": [{"provider": "google-oauth2", "user_id": "2", "connection": "google-oauth2"}]}])
    >>> from linking_toolkit.audit import link_candidates
    >>> candidates = link_candidates(result)
    >>> from linking_toolkit.audit.report import candidates_by_risk
    >>> candidates_by_risk(candidates).data.loc["safe"].tolist()     # groups, users
    [1, 2]
    """
    return _bars(_risk_table(candidates), "Link candidates by risk")


def candidates_by_tier(candidates: pd.DataFrame) -> Styler:
    """Candidate groups and the users in them, per tier, as a styled table with bars.

    Examples
    --------
    >>> from linking_toolkit.audit.frames import audit_records
    >>> result = audit_records([
    ...     {"user_id": "auth0|1", "email": "ada@example.org", "email_verified": True,
    ...      "identities": [{"provider": "auth0", "user_id": "1",
    ...                      "connection": "Username-Password-Authentication"}]},
    ...     {"user_id": "google-oauth2|2", "email": "Ada@example.org", "email_verified": True,
    ...      "identities": [{"provider": "google-oauth2", "user_id": "2", "connection": "google-oauth2"}]}])
    >>> from linking_toolkit.audit import link_candidates
    >>> candidates = link_candidates(result)
    >>> from linking_toolkit.audit.report import candidates_by_tier
    >>> candidates_by_tier(candidates).data["groups"].to_dict()
    {'exact': 1, 'alias': 0, 'phone': 0, 'probable': 0}
    """
    table = candidates.groupby("tier", observed=False).agg(groups=("email", "size"), users=("users", "sum"))
    return _bars(table, "Link candidates by tier")


def _risk_table(candidates: pd.DataFrame) -> pd.DataFrame:
    """Groups and users per risk, every risk present (a zero row says that risk was checked)."""
    return candidates.groupby("risk", observed=False).agg(groups=("email", "size"), users=("users", "sum"))


def _bars(table: pd.DataFrame, caption: str) -> Styler:
    from pandas.io.formats.style import Styler

    class SummaryStyler(Styler):
        """A Styler whose plain-text form is the table itself (not a memory address), so a
        notebook's saved output repeats from run to run."""

        def __repr__(self) -> str:
            return f"{caption}\n{self.data.to_string()}"

    numeric = list(table.select_dtypes("number").columns)
    # A fixed uuid (from the caption) instead of a random one, for the same reason.
    uuid = "".join(ch if ch.isalnum() else "_" for ch in caption.lower())
    # One scale for every column, never empty (an all-zero column would divide by zero).
    top = max(1.0, float(table[numeric].to_numpy().max())) if numeric and len(table) else 1.0
    # Escaped: a label can come from the tenant (a connection's name), and a Styler does not escape.
    return (SummaryStyler(table, uuid=uuid).bar(subset=numeric, color="#8fb8de", vmin=0, vmax=top)
            .format(escape="html").format("{:,}", subset=numeric).format_index(escape="html")
            .set_caption(html.escape(caption)))


def plot_audit(result: Audit, candidates: pd.DataFrame | None = None) -> Figure:
    """The audit's two counts that a glance should answer, as horizontal bar charts.

    Left, link candidate groups by risk: how much could be linked safely against how much needs
    a person to look first. Right, users by number of identities: how much is linked already.
    Every bar carries its count, so a small bar next to a large one still reads. ``candidates``
    is ``link_candidates(result)``, computed when not given.

    Returns the matplotlib ``Figure``, already closed in pyplot: a notebook shows it once, as
    the cell's result, and a script can ``fig.savefig(path)``.

    Examples
    --------
    >>> plot_audit(result, candidates).savefig("audit.png")       # doctest: +SKIP
    """
    import matplotlib.pyplot as plt  # here, not at import: only the chart needs matplotlib

    by_risk = _risk_table(link_candidates(result) if candidates is None else candidates)
    by_count = result.users_by_identity_count()
    # Through pyplot (not Figure()) so that Jupyter's inline backend loads and renders it.
    fig, (risk_ax, count_ax) = plt.subplots(1, 2, figsize=(10, 3), layout="constrained")
    fig.suptitle(f"Audit of {len(result.users):,} users")

    # safe first and on top, the risks below in RISKS order
    labels = [str(risk) for risk in by_risk.index]
    bars = risk_ax.barh(labels, by_risk["groups"].tolist(),
                        color=["#4c9a5b" if risk == "safe" else "#d98b3a" for risk in labels])
    risk_ax.bar_label(bars, labels=[f"{g:,} ({u:,} users)" for g, u in
                                    zip(by_risk["groups"].tolist(), by_risk["users"].tolist(),
                                        strict=True)], padding=3)
    risk_ax.set(title="Link candidate groups by risk", xlabel="candidate groups", ylabel="risk")

    bars = count_ax.barh([str(n) for n in by_count.index], by_count["users"].tolist(), color="#8fb8de")
    count_ax.bar_label(bars, labels=[f"{n:,}" for n in by_count["users"].tolist()], padding=3)
    count_ax.set(title="Users by number of identities", xlabel="users", ylabel="identities per user")

    for ax in (risk_ax, count_ax):
        ax.invert_yaxis()  # read top-down, in the tables' order
        ax.margins(x=0.3)  # room for the count labels right of the longest bar
        ax.set_xlim(left=0)
    plt.close(fig)  # out of pyplot's registry: the inline backend would draw it a second time
    return fig


def plot_evidence(group: pd.Series | Mapping[str, Any]) -> Figure:
    """Why a group matched: each comparison's contribution to its match weight, as bars.

    ``group`` is one row of ``link_candidates`` (``candidates.loc[i]``). For a ``probable`` group
    the bars are the match weights (log2 of the Bayes factor) of its weakest pair, from the prior
    (how likely two users of this tenant are one person before any comparison) to the total, whose
    match probability is the title's: a bar to the right is evidence for one person, to the left
    against. A rule tier's group has one bar: the rule that holds, at probability 1.

    Examples
    --------
    >>> from linking_toolkit.audit.frames import audit_records
    >>> result = audit_records([
    ...     {"user_id": "auth0|1", "email": "ada@example.org", "email_verified": True,
    ...      "identities": [{"provider": "auth0", "user_id": "1",
    ...                      "connection": "Username-Password-Authentication"}]},
    ...     {"user_id": "google-oauth2|2", "email": "Ada@example.org", "email_verified": True,
    ...      "identities": [{"provider": "google-oauth2", "user_id": "2", "connection": "google-oauth2"}]}])
    >>> from linking_toolkit.audit import link_candidates
    >>> candidates = link_candidates(result)
    >>> from linking_toolkit.audit.report import plot_evidence
    >>> figure = plot_evidence(candidates.loc[0])
    >>> print(figure.axes[0].get_title())
    exact group of 2 users, match probability 1.000
    same email ada@example.org
    """
    import matplotlib.pyplot as plt

    weights = group.get("weights")
    tier = str(group.get("tier"))
    fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
    if weights:
        labels = list(weights)
        values = [float(weights[k]) for k in labels]
        labels.append("total")
        values.append(sum(values))
        colours = ["#4c9a5b" if v > 0 else "#c0504d" for v in values[:-1]] + ["#555555"]
        bars = ax.barh(labels, values, color=colours)
        ax.bar_label(bars, labels=[f"{v:+.1f}" for v in values], padding=3)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set(xlabel="match weight (log2 Bayes factor)")
        ax.margins(x=0.2)
    else:
        bars = ax.barh([tier], [1.0], color="#4c9a5b")
        ax.bar_label(bars, labels=["rule holds"], padding=3)
        ax.set(xlim=(0, 1.5), xlabel="a rule tier: no weights, the rule holds or not")
    ax.invert_yaxis()
    ax.set_title(f"{tier} group of {group.get('users')} users, match probability "
                 f"{float(group.get('match_probability', 1.0)):.3f}\n{group.get('evidence') or ''}",
                 fontsize=9)
    plt.close(fig)
    return fig
