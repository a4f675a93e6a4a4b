"""AuditTable while widgets.py is being written: see the report (it moves to widgets.py)."""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
import pandas as pd

from .widgets import _ERROR_STYLE, _describe_error

__all__ = ["AuditTable"]


# -- the audit's candidates ------------------------------------------------------------------------


_AUDIT_COLUMNS = ("email", "users", "primary_id", "connections", "risk", "last_login")
_ALL = "(all)"


def _np() -> Any:
    import numpy  # the audit table's positions; imported here so the module's imports stay H4's

    return numpy


def _audit_cell(value: Any) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return "—"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return str(value)


class AuditTable(widgets.VBox):
    """Link candidates in pages of 25: filter by risk and connection, select rows into a plan, dry
    run it, apply it after a confirmation.

    Paging only slices the filtered positions (``iloc``) and redraws 25 reused rows, so a frame of
    a million candidates pages as fast as one of ten; a filter is one vectorised mask. Applying
    goes through :func:`~linking_toolkit.audit.apply_plan` with the journal given here, so
    :func:`~linking_toolkit.audit.undo` can reverse it. Unsafe rows are refused unless "allow the
    unsafe rows I selected" is ticked: each was picked by hand, row by row.

    Driven from Python too: ``set_filter(risk=..., connection=...)``, ``next_page()``,
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
        self.candidates = candidates
        self.client = client
        self.audit = audit
        self.journal = journal
        self.selected: set[Any] = set()
        self.result: pd.DataFrame | None = None
        self._message = ""
        self._busy = False
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._page = 0
        self._positions = _np().arange(len(candidates))
        self._labels = candidates.index.to_numpy()
        connections = sorted({c.strip() for text in candidates["connections"].dropna().unique()
                              for c in str(text).split(",")})
        risks = [str(r) for r in candidates["risk"].cat.categories] if hasattr(
            candidates["risk"], "cat") else sorted(candidates["risk"].dropna().unique())
        self.risk_picker = widgets.Dropdown(options=[_ALL, *risks], value=_ALL, description="Risk:")
        self.connection_picker = widgets.Dropdown(options=[_ALL, *connections], value=_ALL,
                                                  description="Connection:")
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
        self.confirm_text = widgets.HTML()
        self.confirm_button = widgets.Button(description="Confirm", button_style="danger")
        self.cancel_button = widgets.Button(description="Cancel")
        self.confirm_box = widgets.HBox([self.confirm_text, self.confirm_button, self.cancel_button],
                                        layout=widgets.Layout(display="none"))
        self.message_area = widgets.HTML()
        self.result_area = widgets.HTML()
        cell = widgets.Layout(overflow="hidden")
        self._checks = [widgets.Checkbox(value=False, indent=False, layout=widgets.Layout(width="28px"))
                        for _ in range(self.page_size)]
        self._cells = [[widgets.HTML(layout=cell) for _ in _AUDIT_COLUMNS] for _ in range(self.page_size)]
        self._page_labels: list[Any] = [None] * self.page_size
        header = [widgets.HTML("<b>✓</b>")] + [widgets.HTML(f"<b>{c}</b>") for c in _AUDIT_COLUMNS]
        self.grid = widgets.GridBox(
            header + [w for check, cells in zip(self._checks, self._cells, strict=True)
                      for w in (check, *cells)],
            layout=widgets.Layout(grid_template_columns="28px 2fr 0.5fr 2fr 2fr 1fr 1fr", grid_gap="2px 8px"))
        for slot, check in enumerate(self._checks):
            check.observe(lambda change, slot=slot: self._toggle(slot, change["new"]), names="value")
        self.risk_picker.observe(lambda _c: self._refilter(), names="value")
        self.connection_picker.observe(lambda _c: self._refilter(), names="value")
        self.prev_button.on_click(lambda _b: self.go_to(self._page - 1))
        self.next_button.on_click(lambda _b: self.go_to(self._page + 1))
        self.select_page_button.on_click(lambda _b: self.select_page())
        self.clear_button.on_click(lambda _b: self.clear_selection())
        self.dry_run_button.on_click(lambda _b: self.press_dry_run())
        self.apply_button.on_click(lambda _b: self.press_apply())
        self.confirm_button.on_click(lambda _b: self.confirm())
        self.cancel_button.on_click(lambda _b: self.cancel())
        super().__init__([
            widgets.HBox([self.risk_picker, self.connection_picker]),
            self.grid,
            widgets.HBox([self.prev_button, self.page_label, self.next_button, self.select_page_button,
                          self.clear_button]),
            widgets.HBox([self.dry_run_button, self.apply_button, self.allow_unsafe_box]),
            self.confirm_box, self.message_area, self.result_area,
        ], **kwargs)
        self._render()

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
        from .audit import plan_links

        chosen = self.candidates.loc[[label for label in self._labels if label in self.selected]] \
            if len(self.selected) < 1000 else self.candidates[self.candidates.index.isin(self.selected)]
        plan = plan_links(chosen, self.audit)
        if self.allow_unsafe_box.value:
            plan["allow_unsafe"] = True
        return plan

    @property
    def message(self) -> str:
        return self._message

    @property
    def busy(self) -> bool:
        return self._busy

    # -- actions ------------------------------------------------------------------------------------

    def set_filter(self, *, risk: str | None = None, connection: str | None = None) -> None:
        """Show only one risk and/or one connection (None: all)."""
        with self.hold_trait_notifications():
            self.risk_picker.value = risk or _ALL
            self.connection_picker.value = connection or _ALL
        self._refilter()

    def go_to(self, page: int) -> None:
        self._page = min(max(page, 0), self.pages - 1)
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
        self._run(lambda: self._apply(plan, dry_run=True))

    def press_apply(self) -> None:
        """Ask for a confirmation before linking the selection."""
        if not self._can_run():
            return
        if not self.journal:
            self._say("Applying needs a journal: AuditTable(..., journal='links.jsonl').", error=True)
            return
        plan = self.plan
        unsafe = int((plan["risk"].astype(str) != "safe").sum())
        extra = f", {unsafe} of them unsafe and allowed" if unsafe and self.allow_unsafe_box.value else ""
        self.confirm_text.value = html.escape(f"Link {len(plan)} account(s) into their primaries{extra}?")
        self.confirm_box.layout.display = "flex"
        self._pending_plan = plan

    def confirm(self) -> None:
        plan = getattr(self, "_pending_plan", None)
        self._hide_confirmation()
        if plan is not None:
            self._run(lambda: self._apply(plan, dry_run=False))

    def cancel(self) -> None:
        self._hide_confirmation()
        self._say("Nothing was linked.")

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)

    # -- internals ----------------------------------------------------------------------------------

    def _can_run(self) -> bool:
        if self.client is None:
            self._say("No Management client: AuditTable(candidates, client).", error=True)
            return False
        if not self.selected:
            self._say("Select rows first.", error=True)
            return False
        return True

    def _apply(self, plan: pd.DataFrame, *, dry_run: bool) -> str:
        from .audit import apply_plan

        result = apply_plan(self.client, plan, dry_run=dry_run, journal=self.journal)
        self.result = result
        self.result_area.value = result.to_html(index=False, max_rows=50)
        counts = result["status"].value_counts()
        summary = ", ".join(f"{n} {status}" for status, n in counts.items())
        return ("Dry run: " if dry_run else "Applied: ") + (summary or "nothing to do")

    def _run(self, work: Callable[[], str]) -> None:
        with self._lock:
            if self._busy:
                return
            self._busy = True
            self._idle.clear()
        for button in (self.dry_run_button, self.apply_button):
            button.disabled = True
        self._say("Working…")
        threading.Thread(target=self._worker, args=(work,), daemon=True, name="audit-table").start()

    def _worker(self, work: Callable[[], str]) -> None:
        try:
            message, error = work(), False
        except Exception as exc:
            message, error = _describe_error(exc), True
        with self._lock:
            self._busy = False
        for button in (self.dry_run_button, self.apply_button):
            button.disabled = False
        self._say(message, error=error)
        self._idle.set()

    def _refilter(self) -> None:
        np = _np()
        mask = np.ones(len(self.candidates), dtype=bool)
        if self.risk_picker.value != _ALL:
            mask &= (self.candidates["risk"].astype(str) == self.risk_picker.value).to_numpy()
        if self.connection_picker.value != _ALL:
            wanted = self.connection_picker.value
            mask &= self.candidates["connections"].map(
                lambda text: wanted in str(text).split(", ")).to_numpy(dtype=bool)
        self._positions = np.flatnonzero(mask)
        self._page = 0
        self._render()

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
        return (f"page {self._page + 1} of {self.pages} · {len(self._positions):,} groups · "
                f"{len(self.selected):,} selected")

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
                check.layout.visibility = "visible" if visible else "hidden"
                for cell, value in zip(self._cells[slot], rows[slot] if visible else [""] * 6, strict=True):
                    text = html.escape(_audit_cell(value)) if visible else ""
                    if cell.value != text:
                        cell.value = text
        finally:
            self._rendering = False
        self.page_label.value = self._page_text()
        self.prev_button.disabled = self._page == 0
        self.next_button.disabled = self._page >= self.pages - 1

    def _hide_confirmation(self) -> None:
        self.confirm_box.layout.display = "none"
        self.confirm_text.value = ""

    def _say(self, text: str, *, error: bool = False) -> None:
        self._message = text
        style = _ERROR_STYLE if error else ""
        self.message_area.value = f"<span style='{style}'>{html.escape(text)}</span>" if text else ""

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """The live widget, plus the current page as plain HTML for viewers without widgets."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/html"] = self.to_html()
        return bundle

    def to_html(self) -> str:
        caption = f"<p><b>Link candidates</b> {html.escape(self._page_text())}</p>"
        return caption + self.page_frame[list(_AUDIT_COLUMNS)].to_html(index=False, na_rep="—")

    def __repr__(self) -> str:
        return f"<AuditTable {len(self.candidates)} groups, {len(self.selected)} selected>"
