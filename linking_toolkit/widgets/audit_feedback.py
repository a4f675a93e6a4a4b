"""``AuditFeedback``: what the audit table's buttons answer, shown next to them, above the rows.

The message line, a dry run's or an apply's result table, and a row's "Why?" panel (its evidence
and its chart). One area, cleared at once when what it answered is no longer on screen (the
filter or the page changed), so nothing stays that no longer matches the rows below it.
"""

from __future__ import annotations

import html
import io
from typing import Any

import ipywidgets as widgets
import pandas as pd

__all__ = ["AuditFeedback"]


class AuditFeedback(widgets.VBox):
    """The message line, the results of a dry run or an apply, and the "Why?" panel of one group.

    ``message_area`` is the worker's; ``show_result(frame)`` and ``show_why(group)`` fill the other
    two, ``clear()`` empties them.

    Examples
    --------
    >>> from linking_toolkit.widgets.audit_feedback import AuditFeedback
    >>> feedback = AuditFeedback()          # AuditTable shows it above its rows   # doctest: +SKIP
    >>> feedback.clear()                    # a new filter or page empties it      # doctest: +SKIP
    """

    def __init__(self, **kwargs: Any) -> None:
        self.message_area = widgets.HTML()
        self.result_area = widgets.HTML()
        self.why_text = widgets.HTML()
        self.why_image = widgets.Image(format="png", layout=widgets.Layout(max_width="640px"))
        self.why_image.layout.display = "none"
        self.why_panel = widgets.VBox([self.why_text, self.why_image])
        super().__init__([self.message_area, self.result_area, self.why_panel], **kwargs)

    @property
    def why_shown(self) -> bool:
        """True while a group's "Why?" is shown."""
        return bool(self.why_text.value)

    def show_result(self, result: pd.DataFrame, *, dry_run: bool) -> None:
        """A dry run's or an apply's result rows, under a caption that says which it was."""
        caption = "Dry run: what applying would do" if dry_run else "Applied"
        self.result_area.value = (f"<p><b>{caption}</b> ({len(result)} row(s))</p>"
                                  + result.to_html(index=False, max_rows=50))

    def show_why(self, group: pd.Series) -> None:
        """Why ``group`` (one row of ``link_candidates``) matched: its evidence and its chart."""
        from ..audit import plot_evidence

        self.why_text.value = (f"<b>Why {html.escape(str(group['tier']))}</b>: "
                               f"{html.escape(str(group.get('evidence') or group['risk']))} "
                               f"(match probability {float(group.get('match_probability', 1.0)):.3f}; "
                               f"{html.escape(', '.join(group['user_ids']))})")
        figure = plot_evidence(group)
        png = io.BytesIO()
        figure.savefig(png, format="png", dpi=80)
        self.why_image.value = png.getvalue()
        self.why_image.layout.display = None

    def clear(self) -> None:
        """Empty the results and the Why panel."""
        if self.result_area.value:
            self.result_area.value = ""
        if self.why_text.value:
            self.why_text.value = ""
            self.why_image.value = b""
            self.why_image.layout.display = "none"
