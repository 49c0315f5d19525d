"""Print real ETHUSDT 1m statistics next to those of ``default_candles`` (a markdown table).

Run ``python -m marketsim.data.calibrate [CSV ...]``; without arguments it reads the shared
ETHUSDT 1-minute files from ``../shared/data``. The table is the one in docs/marketsim/data.md,
section "Calibrating the default dataset".
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from marketsim.data.load import read_candles
from marketsim.data.stats import candle_stats
from marketsim.synthetic import default_candles

DEFAULT_FILES = (
    "binance-spot_ETHUSDT_1m_20210402_20210615.csv.gz",
    "binance-spot_ETHUSDT_1m_20230316_20230501.csv.gz",
)


def calibration_table(paths: list[Path], seeds: tuple[int, ...] = (1, 2, 3)) -> str:
    """Markdown table: one column per real file, then the synthetic mean over ``seeds``."""
    columns: list[tuple[str, dict[str, float]]] = []
    n_bars = 0
    for p in paths:
        real = read_candles(p)
        n_bars = max(n_bars, len(real))
        columns.append((p.name.split("_1m_")[1].split(".")[0], candle_stats(real)))
    synth = [candle_stats(default_candles(n_bars, seed=s)) for s in seeds]
    mean = {k: float(np.mean([s[k] for s in synth])) for k in synth[0]}
    columns.append((f"default_candles (mean of seeds {list(seeds)})", mean))
    header = "| statistic | " + " | ".join(name for name, _ in columns) + " |"
    lines = [header, "|---" * (len(columns) + 1) + "|"]
    for key in synth[0]:
        lines.append(f"| `{key}` | " + " | ".join(f"{c[key]:.4g}" for _, c in columns) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    """Entry point: print the table for the given files or the shared defaults."""
    root = Path.cwd() / ".." / "shared" / "data"
    paths = [Path(a) for a in argv] or [root / f for f in DEFAULT_FILES]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise SystemExit(f"missing data files: {missing}")
    print(calibration_table(paths))


if __name__ == "__main__":
    main(sys.argv[1:])
