"""``AuditFilters``: the audit table's tier, risk and connection dropdowns, and the mask they make.

The columns are factorised once, so a filter is an ``isin`` on integer codes, never a pass over
the strings: a million candidates filter as fast as ten.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

__all__ = ["ALL", "AuditFilters"]

ALL = "(all)"
# A dropdown's description read whole ("Connection:" is cut at the default width).
WHOLE_LABEL = {"description_width": "initial"}


def _choices(column: pd.Series, found: Any) -> list[str]:
    """A column's values in their category order (else sorted), for a dropdown."""
    if hasattr(column, "cat"):
        return [str(value) for value in column.cat.categories]
    return sorted(str(value) for value in found if not pd.isna(value))


class AuditFilters(widgets.HBox):
    """Three dropdowns (tier, risk, connection; each "(all)" at first) over a candidates frame;
    ``mask()`` is the rows they let through, ``on_change(callback)`` calls back on any change.

    Examples
    --------
    >>> from linking_toolkit.widgets.audit_filters import AuditFilters
    >>> filters = AuditFilters(link_candidates(result))     # doctest: +SKIP
    >>> candidates[filters.mask()]                          # doctest: +SKIP
    """

    def __init__(self, candidates: pd.DataFrame, **kwargs: Any) -> None:
        self._risk_codes, self._risks = pd.factorize(candidates["risk"].astype(str).to_numpy())
        self._connection_codes, self._connection_sets = pd.factorize(candidates["connections"].to_numpy())
        self._tier_codes, self._tiers = pd.factorize(candidates["tier"].astype(str).to_numpy())
        connections = sorted({c.strip() for text in self._connection_sets for c in str(text).split(",")})
        self.tier_picker = widgets.Dropdown(options=[ALL, *_choices(candidates["tier"], self._tiers)],
                                            value=ALL, description="Tier:", style=WHOLE_LABEL)
        risks = _choices(candidates["risk"], candidates["risk"].unique())
        self.risk_picker = widgets.Dropdown(options=[ALL, *risks],
                                            value=ALL, description="Risk:", style=WHOLE_LABEL)
        self.connection_picker = widgets.Dropdown(options=[ALL, *connections], value=ALL,
                                                  description="Connection:", style=WHOLE_LABEL)
        super().__init__([self.tier_picker, self.risk_picker, self.connection_picker], **kwargs)

    def on_change(self, callback: Callable[[], None]) -> None:
        for picker in (self.tier_picker, self.risk_picker, self.connection_picker):
            picker.observe(lambda _change: callback(), names="value")

    def set(self, *, tier: str | None, risk: str | None, connection: str | None) -> None:
        """Pick these values (None: all)."""
        with self.hold_trait_notifications():
            self.tier_picker.value = tier or ALL
            self.risk_picker.value = risk or ALL
            self.connection_picker.value = connection or ALL

    def mask(self) -> np.ndarray:
        """True for each row (by position) that passes the three filters."""
        mask = np.ones(len(self._tier_codes), dtype=bool)
        if self.tier_picker.value != ALL:
            wanted = [i for i, tier in enumerate(self._tiers) if tier == self.tier_picker.value]
            mask &= np.isin(self._tier_codes, wanted)
        if self.risk_picker.value != ALL:
            wanted = [i for i, risk in enumerate(self._risks) if risk == self.risk_picker.value]
            mask &= np.isin(self._risk_codes, wanted)
        if self.connection_picker.value != ALL:
            wanted = [i for i, text in enumerate(self._connection_sets)
                      if self.connection_picker.value in str(text).split(", ")]
            mask &= np.isin(self._connection_codes, wanted)
        return mask
