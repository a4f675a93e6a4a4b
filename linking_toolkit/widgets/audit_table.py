"""``AuditTable``: an audit's link candidates in pages, selected into a plan, dry run, applied.

Paging only slices the filtered positions and redraws 25 reused rows, so a million candidates
page as fast as ten. Plans and their application are :mod:`linking_toolkit.audit`'s; the table
only arranges, selects and calls.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
from ipywidgets.widgets.widget_bool import CheckboxStyle
from ipywidgets.widgets.widget_button import ButtonStyle
from ipywidgets.widgets.widget_string import HTMLStyle

from ._worker import BackgroundWorker, ConfirmBox, WorkerStatus, readable_grid
from .audit_feedback import AuditFeedback
from .audit_filters import AuditFilters

__all__ = ["AuditTable"]

_AUDIT_COLUMNS = ("email", "users", "primary_id", "connections", "tier", "risk", "last_login")
# What apply_plan answers for a secondary that is now linked into its primary.
_LINKED = ("linked", "already linked", "already done (journal)")
# Sized to their content: a checkbox, then the columns above (connections at most about one
# connection wide, one a line, so an email and an id keep their room), then "Why?".
_GRID_COLUMNS = "max-content auto auto auto fit-content(34ch) auto auto auto max-content"


def _audit_cell(value: Any) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return "—"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return str(value)


class AuditTable(WorkerStatus, widgets.VBox):
    """Link candidates in pages of 25: filter by tier, risk and connection, ask why a group matched,
    select rows into a plan, dry run it, apply it after a confirmation.

    Paging only slices the filtered positions (``iloc``) and redraws 25 reused rows, so a frame of
    a million candidates pages as fast as one of ten; a filter is one vectorised mask. Applying
    goes through :func:`~linking_toolkit.audit.apply_plan` with the journal given here, so
    :func:`~linking_toolkit.audit.undo` can reverse it. Unsafe rows are refused unless "allow the
    unsafe rows I selected" is ticked: each was picked by hand, row by row.

    The answers appear at the top, next to the buttons and above the rows: the message, a dry
    run's or an apply's results, and a row's "Why?" (the group's evidence and its chart,
    :func:`~linking_toolkit.audit.plot_evidence`); a new filter or page clears them. Groups that
    an apply linked leave the candidates at once (``linked`` holds their labels).

    Driven from Python too: ``set_filter(tier=..., risk=..., connection=...)``, ``why(label)``,
    ``next_page()``,
    ``select(labels)`` / ``select_page()``, ``press_dry_run()``, ``press_apply()`` then
    ``confirm()``, ``wait_idle()``; read ``page_frame``, ``plan``, ``result`` and ``message``.

    Examples
    --------
    >>> table = AuditTable(candidates, admin, audit=result, journal="links.jsonl")  # doctest: +SKIP
    >>> table                                                                      # doctest: +SKIP
    """

    page_size = 25

    def __init__(self, candidates: pd.DataFrame, client: Any = None, *, audit: Any = None,
                 journal: str | None = None, **kwargs: Any) -> None:
        if "tier" not in candidates.columns:  # a frame made before the tiers: every group is exact
            candidates = candidates.assign(tier="exact")
        self.candidates = candidates
        self.client = client
        self.audit = audit
        self.journal = journal
        self.selected: set[Any] = set()
        self.linked: set[Any] = set()
        self._unlinked = np.ones(len(candidates), dtype=bool)  # by position: False once linked
        self.result: pd.DataFrame | None = None
        self._pending_plan: pd.DataFrame | None = None
        self._page = 0
        self._positions = np.arange(len(candidates))
        self.filters = AuditFilters(candidates)
        self.tier_picker = self.filters.tier_picker
        self.risk_picker = self.filters.risk_picker
        self.connection_picker = self.filters.connection_picker
        self.prev_button = widgets.Button(description="◀", tooltip="previous page",
                                          layout=widgets.Layout(width="40px"))
        self.next_button = widgets.Button(description="▶", tooltip="next page",
                                          layout=widgets.Layout(width="40px"))
        self.page_label = widgets.Label()
        self.select_page_button = widgets.Button(description="Select page")
        self.clear_button = widgets.Button(description="Clear selection")
        self.allow_unsafe_box = widgets.Checkbox(value=False, indent=False,
                                                 description="allow the unsafe rows I selected")
        self.dry_run_button = widgets.Button(description="Dry run", icon="eye")
        self.apply_button = widgets.Button(description="Apply…", icon="link", button_style="warning")
        self.confirm_box = ConfirmBox(self.confirm, self.cancel)
        self.confirm_text = self.confirm_box.text
        self.confirm_button = self.confirm_box.confirm_button
        self.cancel_button = self.confirm_box.cancel_button
        self.feedback = AuditFeedback()
        self.message_area = self.feedback.message_area
        self.worker = BackgroundWorker(self.message_area, set_disabled=self._set_disabled,
                                       thread_name="audit-table")
        self.result_area = self.feedback.result_area
        self.why_text = self.feedback.why_text
        self.why_image = self.feedback.why_image
        self.grid = self._make_grid()
        # users, tier and last_login never wrap; emails, ids and connections wrap rather than clip.
        self.grid_style = readable_grid(self.grid, "lt-audit-grid", len(_AUDIT_COLUMNS) + 2, whole=(3, 6, 8))
        self.filters.on_change(self._refilter)
        self.prev_button.on_click(lambda _b: self.go_to(self._page - 1))
        self.next_button.on_click(lambda _b: self.go_to(self._page + 1))
        self.select_page_button.on_click(lambda _b: self.select_page())
        self.clear_button.on_click(lambda _b: self.clear_selection())
        self.dry_run_button.on_click(lambda _b: self.press_dry_run())
        self.apply_button.on_click(lambda _b: self.press_apply())
        # The controls and what they answer on top, the rows under them: an answer is never 25 rows
        # away from the button that asked for it.
        self.top_area = widgets.VBox([
            self.filters,
            widgets.HBox([self.dry_run_button, self.apply_button, self.allow_unsafe_box]),
            self.confirm_box, self.feedback,
        ])
        super().__init__([
            self.top_area, self.grid_style, self.grid,
            widgets.HBox([self.prev_button, self.page_label, self.next_button, self.select_page_button,
                          self.clear_button]),
        ], **kwargs)
        self._render()

    def _make_grid(self) -> widgets.GridBox:
        """The page's grid: a header, then ``page_size`` row slots (a box and a cell per column),
        made once and refilled by ``_render`` on every page."""
        # One layout and one style shared by all the cells, checkboxes and buttons (and a hidden
        # layout for the empty slots of a last page): a widget made without them makes two more
        # widgets of its own, each one more message to the page. The table was 596 widgets.
        cell, cell_style = widgets.Layout(), HTMLStyle()  # no overflow rule: a cell wraps, never clips
        self._check_layouts = {True: widgets.Layout(width="28px"),
                               False: widgets.Layout(width="28px", visibility="hidden")}
        self._why_layouts = {True: widgets.Layout(width="56px"),
                             False: widgets.Layout(width="56px", visibility="hidden")}
        check_style, button_style = CheckboxStyle(), ButtonStyle()
        self._checks = [widgets.Checkbox(value=False, indent=False, layout=self._check_layouts[True],
                                         style=check_style) for _ in range(self.page_size)]
        self._cells = [[widgets.HTML(layout=cell, style=cell_style) for _ in _AUDIT_COLUMNS]
                       for _ in range(self.page_size)]
        self._why_buttons = [widgets.Button(description="Why?", tooltip="why this group matched",
                                            layout=self._why_layouts[True], style=button_style)
                             for _ in range(self.page_size)]
        self._page_labels: list[Any] = [None] * self.page_size
        for slot, check in enumerate(self._checks):
            check.observe(lambda change, slot=slot: self._toggle(slot, change["new"]), names="value")
            self._why_buttons[slot].on_click(lambda _b, slot=slot: self._why_slot(slot))
        header = [widgets.HTML(text, layout=cell, style=cell_style)
                  for text in ("<b>✓</b>", *(f"<b>{c}</b>" for c in _AUDIT_COLUMNS), "")]
        return widgets.GridBox(
            header + [w for check, cells, why in zip(self._checks, self._cells, self._why_buttons,
                                                     strict=True)
                      for w in (check, *cells, why)],
            layout=widgets.Layout(grid_template_columns=_GRID_COLUMNS,
                                  grid_gap="2px 12px"))

    # -- what a person sees ---------------------------------------------------------------------------

    @property
    def pages(self) -> int:
        return max(1, -(-len(self._positions) // self.page_size))

    @property
    def page(self) -> int:
        return self._page

    @property
    def filtered(self) -> int:
        """How many candidates pass the filters."""
        return len(self._positions)

    @property
    def page_frame(self) -> pd.DataFrame:
        """The rows of the current page (an ``iloc`` slice: never the whole frame)."""
        start = self._page * self.page_size
        return self.candidates.iloc[self._positions[start:start + self.page_size]]

    @property
    def plan(self) -> pd.DataFrame:
        """The selected groups as a link plan (``plan_links``), in the frame's order."""
        from ..audit import plan_links

        chosen = self.candidates[self.candidates.index.isin(list(self.selected))]
        plan = plan_links(chosen, self.audit)
        if self.allow_unsafe_box.value:
            plan["allow_unsafe"] = True
        return plan

    @property
    def checks(self) -> list[widgets.Checkbox]:
        """The selection box of each row slot of the page (25, reused across pages)."""
        return self._checks

    @property
    def cells(self) -> list[list[widgets.HTML]]:
        """The cells of each row slot of the page, one per column."""
        return self._cells

    # -- actions ------------------------------------------------------------------------------------

    @property
    def why_buttons(self) -> list[widgets.Button]:
        """The "Why?" button of each row slot of the page."""
        return self._why_buttons

    def set_filter(self, *, tier: str | None = None, risk: str | None = None,
                   connection: str | None = None) -> None:
        """Show only one tier, one risk and/or one connection (None: all)."""
        self.filters.set(tier=tier, risk=risk, connection=connection)
        self._refilter()

    def why(self, label: Any) -> None:
        """Show why the group ``label`` (an index label) matched, at the top: its evidence and chart."""
        self.feedback.show_why(self.candidates.loc[label])

    def go_to(self, page: int) -> None:
        page = min(max(page, 0), self.pages - 1)
        if page != self._page:
            self._clear_answers()
        self._page = page
        self._render()

    def next_page(self) -> None:
        self.go_to(self._page + 1)

    def prev_page(self) -> None:
        self.go_to(self._page - 1)

    def select(self, labels: Sequence[Any]) -> None:
        """Add candidate rows (index labels) to the selection."""
        self.selected.update(labels)
        self._render()

    def select_page(self) -> None:
        self.select(list(self.page_frame.index))

    def clear_selection(self) -> None:
        self.selected.clear()
        self._render()

    def press_dry_run(self) -> None:
        """Show what applying the selection would do (reads the tenant; changes nothing)."""
        if not self._can_run():
            return
        plan = self.plan
        self.worker.run(lambda: self._apply(plan, dry_run=True))

    def press_apply(self) -> None:
        """Ask for a confirmation before linking the selection."""
        if not self._can_run():
            return
        if not self.journal:
            self.worker.say("Applying needs a journal: AuditTable(..., journal='links.jsonl').", error=True)
            return
        plan = self.plan
        unsafe = int((plan["risk"].astype(str) != "safe").sum())
        extra = f", {unsafe} of them unsafe and allowed" if unsafe and self.allow_unsafe_box.value else ""
        self._pending_plan = plan
        self.confirm_box.ask(f"Link {len(plan)} account(s) into their primaries{extra}?")

    def confirm(self) -> None:
        plan, self._pending_plan = self._pending_plan, None
        self.confirm_box.hide()
        if plan is not None:
            self.worker.run(lambda: self._apply(plan, dry_run=False))

    def cancel(self) -> None:
        self._pending_plan = None
        self.confirm_box.hide()
        self.worker.say("Nothing was linked.")

    # -- internals ----------------------------------------------------------------------------------

    def _can_run(self) -> bool:
        if self.client is None:
            self.worker.say("No Management client: AuditTable(candidates, client).", error=True)
            return False
        if not self.selected:
            self.worker.say("Select rows first.", error=True)
            return False
        return True

    def _apply(self, plan: pd.DataFrame, *, dry_run: bool) -> str:
        from ..audit import apply_plan

        result = apply_plan(self.client, plan, dry_run=dry_run, journal=self.journal)
        self.result = result
        self.feedback.show_result(result, dry_run=dry_run)
        if not dry_run:
            self._drop_linked(result)
        counts = result["status"].value_counts()
        summary = ", ".join(f"{n} {status}" for status, n in counts.items())
        return ("Dry run: " if dry_run else "Applied: ") + (summary or "nothing to do")

    def _set_disabled(self, disabled: bool) -> None:
        for button in (self.dry_run_button, self.apply_button):
            button.disabled = disabled

    def _drop_linked(self, result: pd.DataFrame) -> None:
        """Take the groups whose every secondary is now linked out of the candidates shown."""
        done = set(result.loc[result["status"].isin(_LINKED), "secondary_id"].astype(str))
        if not done:
            return
        chosen = self.candidates.index.isin(list(self.selected))
        for position in np.flatnonzero(chosen & self._unlinked):
            group = self.candidates.iloc[position]
            secondaries = [u for u in group["user_ids"] if u != group["primary_id"]]
            if secondaries and all(u in done for u in secondaries):
                self._unlinked[position] = False
                label = self.candidates.index[position]
                self.linked.add(label)
                self.selected.discard(label)
        self._refilter(clear=False, keep_page=True)

    def _clear_answers(self) -> None:
        """What the buttons answered no longer matches the rows: clear it (not a running action's line)."""
        self.feedback.clear()
        if not self.worker.busy:
            self.worker.say("")

    def _refilter(self, *, clear: bool = True, keep_page: bool = False) -> None:
        if clear:
            self._clear_answers()
        mask = self._unlinked & self.filters.mask()
        self._positions = np.flatnonzero(mask)
        self._page = min(self._page, self.pages - 1) if keep_page else 0
        self._render()

    def _why_slot(self, slot: int) -> None:
        if self._page_labels[slot] is not None:
            self.why(self._page_labels[slot])

    def _toggle(self, slot: int, value: bool) -> None:
        label = self._page_labels[slot]
        if label is None or self._rendering:
            return
        if value:
            self.selected.add(label)
        else:
            self.selected.discard(label)
        self.page_label.value = self._page_text()

    def _page_text(self) -> str:
        linked = f" · {len(self.linked):,} linked" if self.linked else ""
        return (f"page {self._page + 1} of {self.pages} · {len(self._positions):,} groups · "
                f"{len(self.selected):,} selected{linked}")

    _rendering = False

    def _render(self) -> None:
        frame = self.page_frame
        rows = list(frame[list(_AUDIT_COLUMNS)].itertuples(index=False, name=None))
        labels = list(frame.index)
        self._rendering = True
        try:
            for slot in range(self.page_size):
                visible = slot < len(rows)
                self._page_labels[slot] = labels[slot] if visible else None
                check = self._checks[slot]
                check.value = visible and labels[slot] in self.selected
                check.layout = self._check_layouts[visible]  # a message only when it changes
                self._why_buttons[slot].layout = self._why_layouts[visible]
                values = rows[slot] if visible else [""] * len(_AUDIT_COLUMNS)
                for cell, value in zip(self._cells[slot], values, strict=True):
                    text = html.escape(_audit_cell(value)) if visible else ""
                    if cell.value != text:
                        cell.value = text
        finally:
            self._rendering = False
        self.page_label.value = self._page_text()
        self.prev_button.disabled = self._page == 0
        self.next_button.disabled = self._page >= self.pages - 1

    def to_html(self) -> str:
        """The current page as a static HTML table (for a report; the widget itself shows no
        fallback, so no frontend can show a table without its buttons)."""
        caption = f"<p><b>Link candidates</b> {html.escape(self._page_text())}</p>"
        return caption + self.page_frame[list(_AUDIT_COLUMNS)].to_html(index=False, na_rep="—")

    def __repr__(self) -> str:
        # The plain-text form a saved notebook shows before the cell runs: what to do, and what is there.
        return (f"Audit table: run this cell to see it ({len(self._positions):,} link candidate groups, "
                f"{len(self.selected):,} selected)")
