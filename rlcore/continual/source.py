"""What the online loop needs from a data source, and the parsers of its time settings.

The loop (:class:`rlcore.continual.OnlineLoop`) knows no market and no exchange: it asks a
:class:`Source` for the bars that closed by tick time ``T`` and saves the source's position with
its own state. The candle sources that satisfy this protocol (a stored file replayed as if live, a
live ccxt feed) live in :mod:`marketsim.data.sources`; a new feed only has to implement the
methods below.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import pandas as pd

__all__ = ["SourceEvent", "Source", "parse_duration", "parse_speed"]


class SourceEvent(Protocol):
    """One decision a source took about incoming data (a dropped duplicate, a filled gap)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; the loop writes it to ``online/data_events.jsonl``."""
        ...


class Source(Protocol):
    """A feed of bars, polled once per tick.

    A replayed source runs on simulated time: the loop starts at :meth:`first_tick`, advances its
    clock by ``every`` per tick and stops after :attr:`end`. A live source returns None from all
    three time methods: the loop ticks on the wall clock and never ends by itself.
    """

    @property
    def position(self) -> pd.Timestamp | None:
        """Open time of the last bar handed on (None before the first)."""
        ...

    def poll(self, now: pd.Timestamp) -> tuple[pd.DataFrame, Sequence[SourceEvent]]:
        """The new bars that closed by ``now`` (after :attr:`position`), and the events logged."""
        ...

    def first_tick(self, warmup: int) -> pd.Timestamp | None:
        """Replay: the time by which ``warmup`` bars have closed (the first tick); live: None."""
        ...

    @property
    def end(self) -> pd.Timestamp | None:
        """Replay: the close time of the last bar (no new data after it); live: None."""
        ...

    def closed_bars(self, now: pd.Timestamp) -> pd.DataFrame | None:
        """Bars that closed by ``now``, without moving the position (None if the source holds
        no history); used to build an environment before the first poll."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """The position, for the loop's state file."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue after a position saved by :meth:`state_dict`."""
        ...


def parse_duration(text: str) -> pd.Timedelta:
    """``60m``, ``1h``, ``30s``, ``1d`` -> Timedelta; ValueError naming the value otherwise."""
    units = {"s": "s", "m": "min", "h": "h", "d": "D"}
    t = str(text).strip()
    if len(t) < 2 or t[-1] not in units:
        raise ValueError(f"--every {text!r}: expected a number and a unit s, m, h or d (e.g. 60m)")
    try:
        n = float(t[:-1])
    except ValueError:
        raise ValueError(f"--every {text!r}: {t[:-1]!r} is not a number") from None
    if not n > 0:
        raise ValueError(f"--every {text!r}: expected a positive duration")
    return pd.Timedelta(n, unit=units[t[-1]])


def parse_speed(text: str) -> float:
    """``600x`` -> 600.0 (simulated seconds per wall second); ``max`` or ``inf`` -> no sleeping."""
    t = str(text).strip().lower()
    if t in ("max", "inf"):
        return float("inf")
    t = t[:-1] if t.endswith("x") else t
    try:
        v = float(t)
    except ValueError:
        raise ValueError(f"--speed {text!r}: expected e.g. 600x, 1x or max") from None
    if not v > 0:
        raise ValueError(f"--speed {text!r}: expected a positive factor")
    return v
