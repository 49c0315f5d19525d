"""The trader's append-only journal: one JSON line per decision, order event, fill and cancel.

An order is journaled *before* it is sent (``intent``, ``sent``) and after each thing that
happens to it (``ack``, ``update``, ``cancel_sent``, ``cancel_ack``, ``cancel_unknown``,
``reconciled``), each line flushed (and fsynced, for live trading) before the trader goes on.
A trader killed at any point and restarted on the same journal therefore knows every order it
may have sent, asks the exchange what became of each (by its client order id), and never sends
a decision twice: bars up to the last one decided are not decided again. A torn last line (a
kill in the middle of a write) is skipped.

Every record carries the times the next issue needs to measure latency and the spread between
actual and theoretical execution: bar close, decision, send, acknowledgement, fill or cancel
(:func:`order_timeline` joins them per order). No key or secret is ever written: records are
built from named fields, and every line is scrubbed of the secrets the journal is given.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlcore.io import json_default

__all__ = ["Journal", "Recovered", "recover", "order_timeline", "percentiles"]

REDACTED = "***"


class Journal:
    """Append JSON lines to ``path`` (created with its folder).

    Args:
        path: the journal file; an existing one is continued.
        secrets: strings that must never be written (API keys); replaced by ``***``.
        fsync: fsync every line (live trading); False only flushes (fast replays).
        clock: time source of each record's ``time``.
    """

    def __init__(self, path: str | os.PathLike, secrets: Iterable[str] = (), fsync: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._secrets = [s for s in secrets if s]
        self._fsync = fsync
        self._clock = clock
        torn = self.path.exists() and self.path.stat().st_size > 0 and \
            not self.path.read_bytes().endswith(b"\n")
        self._f = open(self.path, "a", encoding="utf-8")
        if torn:  # a kill in the middle of a line: end it, so the next record is whole
            self._f.write("\n")
            self._f.flush()

    def write(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Append one record ``{"kind": kind, "time": now, **fields}``; returns it."""
        record = {"kind": kind, "time": self._clock(), **fields}
        line = json.dumps(record, default=json_default)
        for secret in self._secrets:
            line = line.replace(secret, REDACTED)
        self._f.write(line + "\n")
        self._f.flush()
        if self._fsync:
            os.fsync(self._f.fileno())
        return record

    def read(self) -> list[dict[str, Any]]:
        """Every whole record so far (a torn line is skipped)."""
        return read_journal(self.path)

    def close(self) -> None:
        """Close the file."""
        self._f.close()


def read_journal(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a journal file, skipping torn or unreadable lines; [] if it is absent."""
    p = Path(path)
    if not p.exists():
        return []
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "kind" in rec:
            out.append(rec)
    return out


@dataclass
class Recovered:
    """What a restarted trader takes from its journal."""

    last_decided_bar: int | None = None
    """Open time (ms) of the last bar a decision was journaled for: it is not decided again."""
    open_orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Orders whose last journaled status is not terminal: client id -> last order record."""
    halted: str | None = None
    """The kill switch's reason, if it fired and was not cleared."""
    risk: dict[str, Any] = field(default_factory=dict)
    """The risk guard's state (day, day's starting equity, peak equity) at the last decision."""
    orders_seen: int = 0
    """Distinct client order ids in the journal."""


def recover(records: list[dict[str, Any]]) -> Recovered:
    """Fold journal records into what a restart needs (see :class:`Recovered`)."""
    from marketsim.live.orders import TERMINAL

    out = Recovered()
    last: dict[str, dict[str, Any]] = {}
    for rec in records:
        kind = rec.get("kind")
        if kind == "decision":
            out.last_decided_bar = rec.get("bar_open_ms")
            out.risk = rec.get("risk", out.risk)
        elif kind == "order":
            cid = rec.get("client_id")
            if cid is not None:
                last[cid] = rec
        elif kind == "halt":
            out.halted = rec.get("reason", "halted")
        elif kind == "halt_cleared":
            out.halted = None
    out.orders_seen = len(last)
    out.open_orders = {cid: r for cid, r in last.items() if r.get("status") not in TERMINAL}
    return out


def order_timeline(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per order: its times (bar close, receipt, decision, send, ack, first fill,
    timeout, cancel sent, cancel resolved), final status, fills, and the decision's close price
    against the average fill price (``slippage_bp``, positive = paid), for latency and
    execution-quality reports."""
    rows: dict[str, dict[str, Any]] = {}
    for rec in records:
        if rec.get("kind") != "order" or "client_id" not in rec:
            continue
        row = rows.setdefault(rec["client_id"], {"client_id": rec["client_id"]})
        for key, value in rec.items():
            if key.startswith("t_") and value is not None:
                row.setdefault(key, value)
        for key in ("side", "qty", "type", "price", "decision_close", "bar_open_ms",
                    "status", "filled", "avg_price", "fee", "reason"):
            if rec.get(key) is not None:
                row[key] = rec[key]
        if rec.get("event") == "update" and rec.get("last_qty") and "t_fill" not in row:
            row["t_fill"] = rec["time"]
    for row in rows.values():
        ref, avg = row.get("decision_close"), row.get("avg_price")
        if ref and avg:
            sign = 1.0 if row.get("side") == "buy" else -1.0
            row["slippage_bp"] = sign * (avg / ref - 1.0) * 1e4
    return list(rows.values())


def percentiles(values: Iterable[float], qs: tuple[float, ...] = (50, 99)) -> dict[str, float]:
    """``{"p50": ..., "p99": ..., "n": ...}`` of the values (milliseconds in, as given)."""
    import numpy as np

    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    out: dict[str, float] = {"n": int(arr.size)}
    for q in qs:
        out[f"p{q:g}"] = float(np.percentile(arr, q)) if arr.size else float("nan")
    if arr.size:
        out["max"] = float(arr.max())
    return out
