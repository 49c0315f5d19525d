"""Benchmark market data: rows/s for cleaning and for store write/read on 1M 1-minute candles.

Usage: ``python benchmarks/bench_data.py [--rows 1000000] [--repeats 3] [--out FILE]``.
Prints a JSON object, writes it to ``runs/bench/data-<timestamp>.json`` (or ``--out``) and
prints that path as the last line. The input is ``default_candles`` with 1% of the rows
removed in random runs (gaps), 0.1% duplicated and the order partly shuffled, so cleaning does
real work. Timings are the best of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from marketsim.data import DataStore, clean_candles  # noqa: E402
from marketsim.data.store import atomic_write_bytes  # noqa: E402
from marketsim.synthetic import default_candles  # noqa: E402


def messy_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` 1-minute candles with gaps, duplicates and some disorder."""
    df = default_candles(rows, seed=seed)
    rng = np.random.default_rng(seed)
    keep = np.ones(rows, dtype=bool)
    starts = rng.choice(rows - 20, size=rows // 1000, replace=False)
    for s in starts:  # ~1% of rows removed in runs of 1-19 bars
        keep[s : s + rng.integers(1, 20)] = False
    df = df[keep]
    dups = df.iloc[rng.choice(len(df), size=len(df) // 1000, replace=False)]
    df = pd.concat([df, dups])
    order = np.arange(len(df))
    block = rng.choice(len(df) - 100, size=100, replace=False)
    for b in block:  # shuffle 100 small windows
        order[b : b + 10] = order[b : b + 10][::-1]
    return df.iloc[order]


def best_of(fn, repeats: int) -> tuple[float, object]:
    """Best wall time of ``repeats`` calls and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    """Run the benchmark and write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    raw = messy_frame(args.rows)
    t_clean, (cleaned, report) = best_of(lambda: clean_candles(raw, "1m"), args.repeats)
    month = cleaned.iloc[: 31 * 24 * 60]
    with tempfile.TemporaryDirectory() as tmp:
        store = DataStore(tmp)
        t_write, path = best_of(
            lambda: store.write(cleaned, "bench", "ETH/USDT", "1m", "bench", report), args.repeats
        )
        size = os.path.getsize(path)
        t_read, back = best_of(lambda: store.read("bench", "ETH/USDT", "1m"), args.repeats)
        assert len(back) == len(cleaned)
        store.write(month, "bench", "ETH/USDT", "1m-month", "bench")
        t_month, _ = best_of(lambda: store.read("bench", "ETH/USDT", "1m-month"), args.repeats)
    result = {
        "benchmark": "data",
        "when": datetime.now(timezone.utc).isoformat(),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "pandas": pd.__version__,
            "numpy": np.__version__,
        },
        "rows_in": int(len(raw)),
        "rows_out": int(len(cleaned)),
        "filled_rows": report.filled_rows,
        "duplicates_dropped": report.duplicates_dropped,
        "clean_seconds": round(t_clean, 4),
        "clean_rows_per_s": round(len(raw) / t_clean),
        "store_write_seconds": round(t_write, 4),
        "store_write_rows_per_s": round(len(cleaned) / t_write),
        "store_read_seconds": round(t_read, 4),
        "store_read_rows_per_s": round(len(cleaned) / t_read),
        "store_file_bytes": size,
        "month_rows": int(len(month)),
        "month_read_seconds": round(t_month, 4),
        "repeats": args.repeats,
    }
    text = json.dumps(result, indent=2)
    print(text)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else Path("runs") / "bench" / f"data-{stamp}.json"
    atomic_write_bytes(out, (text + "\n").encode())
    print(out)


if __name__ == "__main__":
    main()
