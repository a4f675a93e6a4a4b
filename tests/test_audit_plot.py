"""The audit's chart: its bars are the summaries' counts, its labels name the risks."""

from __future__ import annotations

import matplotlib
import pytest
from test_audit_rules import user

from linking_toolkit.audit import RISKS, Audit, audit_records, candidates_by_risk, link_candidates, plot_audit

# The non-interactive backend, as a run without a display or a kernel picks by itself.
matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle


@pytest.fixture(scope="module")
def known() -> Audit:
    """Two safe groups (one of three users), one group per other risk, one lone user holding links."""
    github = {"connection": "github", "provider": "github", "user_id": "9", "isSocial": True}
    return audit_records([
        user("auth0|a1", "ann@example.com"), user("google-oauth2|a2", "ANN@example.com"),
        user("auth0|h1", "hal@example.com"), user("github|h2", "hal@example.com"),
        user("facebook|h3", "hal@example.com"),
        user("auth0|b1", "bob@example.com", verified=False), user("github|b2", "bob@example.com"),
        user("facebook|c1", "cy@example.com", blocked=True), user("github|c2", "cy@example.com"),
        user("github|d1", "di@example.com"), user("github|d2", "di@example.com"),
        user("auth0|e1", "eve@example.com", linked=[{"provider": "github", "user_id": "e9"}]),
        user("facebook|e2", "eve@example.com", linked=[{"provider": "google-oauth2", "user_id": "e8"},
                                                      {"provider": "github", "user_id": "e7"}]),
        user("auth0|z1", "zoe@example.com", linked=[github]),
    ])


def bars(ax: Axes) -> dict[str, float]:
    """What a reader sees on a horizontal bar chart: each y label and its bar's length."""
    rectangles = [patch for patch in ax.patches if isinstance(patch, Rectangle)]
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    assert len(rectangles) == len(labels)
    # a bar sits on its tick: match them by position, not by drawing order
    ticks = dict(zip(list(ax.get_yticks()), labels, strict=True))
    return {ticks[round(r.get_y() + r.get_height() / 2)]: r.get_width() for r in rectangles}


def test_the_chart_shows_candidate_groups_by_risk_and_users_by_identity_count(known: Audit) -> None:
    candidates = link_candidates(known)
    fig = plot_audit(known, candidates)
    risk_ax, count_ax = fig.axes

    # exactly the counts of the styled summaries, every risk named, safe on top
    assert bars(risk_ax) == candidates_by_risk(candidates).data["groups"].to_dict()
    assert bars(risk_ax) == {"safe": 2, "unverified email": 1, "blocked user": 1,
                             "several users hold links": 1, "same connection twice": 1,
                             "review: same mailbox by its provider's rules": 0, "review: same phone": 0,
                             "review: probable match": 0}
    # in the table's order, read top-down (lowest y on top of an inverted axis)
    by_position = sorted(risk_ax.get_yticklabels(), key=lambda tick: tick.get_position()[1])
    assert [tick.get_text() for tick in by_position] == RISKS and risk_ax.yaxis_inverted()
    assert bars(count_ax) == known.users_by_identity_count()["users"].to_dict() == {"1": 11, "2": 2, "3+": 1}
    # each bar carries its count, so a short bar still reads
    assert [t.get_text() for t in risk_ax.texts][:2] == ["2 (5 users)", "1 (2 users)"]
    assert [t.get_text() for t in count_ax.texts] == ["11", "2", "1"]

    assert fig.get_suptitle() == "Audit of 14 users"
    assert risk_ax.get_title() and risk_ax.get_xlabel() == "candidate groups" and risk_ax.get_ylabel()
    assert count_ax.get_title() and count_ax.get_xlabel() == "users" and count_ax.get_ylabel()
    # closed in pyplot: a notebook renders the returned figure once, not a second time
    assert fig.number not in plt.get_fignums()


def test_the_chart_computes_the_candidates_when_not_given_and_draws_an_empty_tenant(known: Audit) -> None:
    assert bars(plot_audit(known).axes[0]) == bars(plot_audit(known, link_candidates(known)).axes[0])

    empty = audit_records([])
    fig = plot_audit(empty)  # zero bars, no warning (pytest turns warnings into errors)
    assert bars(fig.axes[0]) == dict.fromkeys(RISKS, 0)
    assert bars(fig.axes[1]) == {"1": 0, "2": 0, "3+": 0}
    fig.canvas.draw()  # the layout and the labels render with nothing to scale them on


def test_a_summary_table_shows_markup_in_its_labels_as_text(known: Audit) -> None:
    """A Styler escapes nothing by itself; a label can come from the tenant, so the tables escape."""
    from linking_toolkit.audit import candidates_by_tier

    candidates = link_candidates(known).astype({"tier": "object"})
    candidates.loc[candidates.index[0], "tier"] = "<script>alert(1)</script>"
    html = candidates_by_tier(candidates).to_html()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
