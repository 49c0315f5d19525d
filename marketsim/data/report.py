"""The cleaning report: every change :func:`~marketsim.data.clean.clean_candles` made.

See docs/marketsim/data.md, section "Cleaning".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Gap:
    """A run of missing bars: ``bars`` bars from ``start`` to ``end`` (ISO UTC, inclusive)."""

    start: str
    end: str
    bars: int


@dataclass
class CleaningReport:
    """What cleaning changed, as counts and per-row records (JSON-serialisable).

    Attributes:
        timeframe: the grid the frame was cleaned onto.
        rows_in / rows_out: rows before and after cleaning.
        timezone_in: the input's time zone ("UTC", "naive, taken as UTC", or the zone converted).
        out_of_order: positions where a timestamp was earlier than the one before it.
        duplicates_dropped: rows removed because an equal timestamp came later in the input
            (the later row wins); duplicate_conflicts: how many of those differed in value.
        off_grid_rows: rows whose time was not on the grid; they were aggregated into
            ``bars_from_off_grid`` grid bars (open first, high max, low min, close last,
            volume sum).
        gaps: runs of missing bars that were filled; filled_rows: their total.
        repairs: one record per changed cell: timestamp, kind, column, old, new.
        flags: suspicious bars reported but not changed: timestamp, kind, value, threshold.
        thresholds: the thresholds used.
    """

    timeframe: str
    rows_in: int = 0
    rows_out: int = 0
    timezone_in: str = "UTC"
    out_of_order: int = 0
    duplicates_dropped: int = 0
    duplicate_conflicts: int = 0
    off_grid_rows: int = 0
    bars_from_off_grid: int = 0
    gaps: list[Gap] = field(default_factory=list)
    filled_rows: int = 0
    repairs: list[dict[str, Any]] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)
    thresholds: dict[str, Any] = field(default_factory=dict)

    def repair_counts(self) -> dict[str, int]:
        """Number of repaired cells per repair kind."""
        return dict(Counter(r["kind"] for r in self.repairs))

    def flag_counts(self) -> dict[str, int]:
        """Number of flagged bars per flag kind."""
        return dict(Counter(f["kind"] for f in self.flags))

    @property
    def changed(self) -> bool:
        """True when cleaning changed anything at all."""
        return bool(
            self.out_of_order
            or self.duplicates_dropped
            or self.off_grid_rows
            or self.filled_rows
            or self.repairs
            or self.timezone_in != "UTC"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (inverse: :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CleaningReport:
        """Rebuild a report from :meth:`to_dict` output."""
        d = dict(data)
        d["gaps"] = [Gap(**g) for g in d.get("gaps", [])]
        return cls(**d)

    def summary(self, max_gaps: int = 10) -> str:
        """A short human-readable summary (used by ``cli.py data info`` and the docs)."""
        lines = [
            f"timeframe {self.timeframe}: {self.rows_in} rows in, {self.rows_out} rows out",
            f"time zone in: {self.timezone_in}",
            f"out of order: {self.out_of_order}; duplicates dropped: {self.duplicates_dropped}"
            f" ({self.duplicate_conflicts} conflicting); off-grid rows: {self.off_grid_rows}",
            f"gaps: {len(self.gaps)}, filled rows: {self.filled_rows}",
        ]
        for g in self.gaps[:max_gaps]:
            lines.append(f"  gap {g.start} .. {g.end} ({g.bars} bars)")
        if len(self.gaps) > max_gaps:
            lines.append(f"  ... {len(self.gaps) - max_gaps} more gaps")
        lines.append(f"repairs: {self.repair_counts() or 'none'}")
        lines.append(f"flags: {self.flag_counts() or 'none'}")
        return "\n".join(lines)
