"""The A/B rule on replayed real bars: false rollbacks of an equal challenger, and how fast a
bad one is rolled back.

Usage: ``python benchmarks/bench_ab.py [--seeds N] [--bars N] [--out PATH]``. Prints one JSON
object, writes it to ``runs/bench/ab-<timestamp>.json`` (or ``--out``) and prints that path as
the last line.

Each seed draws a window of ``--bars`` bars of the shared ETHUSDT 1m file (2023-03-16 to
2023-05-01) and paper-trades it with the default rule (10% to the challenger, window 240,
minimum 60, threshold 20%, alpha 0.001, drawdown cap 15%):

* **equal**: champion and challenger are the same momentum policy, each with its own seeded
  noise (``marketsim.deploy.experiment.momentum_policy``): every rollback is a false one;
* **churn**: the challenger flips between +0.5 and -0.5 every bar (fees and slippage on a full
  position's notional every bar): bars until the rollback;
* **inverse**: the challenger does the opposite of the champion's momentum rule, without noise:
  a real but less blatant drop: rolled back or not, and when.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from marketsim.data import load_candles  # noqa: E402
from marketsim.deploy.experiment import ab_replay, churn_policy, momentum_policy  # noqa: E402
from rlcore.io import atomic_write_json  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "binance-spot_ETHUSDT_1m_20230316_20230501.csv.gz"


def inverse_policy(seed: int):
    """Minus the champion's momentum rule (no noise)."""
    base = momentum_policy(noise=0.0, seed=seed)
    return lambda obs: -base(obs)


def make_challenger(case: str, seed: int):
    """The challenger policy of an experiment."""
    if case == "equal":
        return momentum_policy(seed=2 * seed + 1)
    if case == "churn":
        return churn_policy(0.5)
    return inverse_policy(seed)


def main() -> None:
    """Run the three experiments and report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--bars", type=int, default=1500)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    eth = load_candles(DATA)[["open", "high", "low", "close", "volume"]]
    rng = np.random.default_rng(2024)
    starts = [int(rng.integers(0, len(eth) - args.bars)) for _ in range(args.seeds)]
    out: dict = {"data": str(DATA.name), "seeds": args.seeds, "bars": args.bars}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for case in ("equal", "churn", "inverse"):
            rows = []
            for seed, start in enumerate(starts):
                candles = eth.iloc[start:start + args.bars]
                champion = momentum_policy(seed=2 * seed)
                challenger = make_challenger(case, seed)
                s = ab_replay(candles, champion, challenger, Path(tmp) / f"{case}-{seed}")
                d = s["decision"]
                rows.append({"seed": seed, "start": str(candles.index[0]),
                             "rolled_back_at": d["bars"] if d else None,
                             "reason": d["reason"] if d else None, "psr_min": s["psr_min"],
                             "proposed": s["proposal"] is not None,
                             "equity_champion": s["variants"]["champion"]["equity_end"],
                             "equity_challenger": s["variants"]["challenger"]["equity_end"]})
                print(case, rows[-1], file=sys.stderr, flush=True)
            at = [r["rolled_back_at"] for r in rows if r["rolled_back_at"] is not None]
            out[case] = {"rollbacks": len(at), "of": len(rows),
                         "bars_to_rollback": {"min": min(at), "median": float(np.median(at)),
                                              "max": max(at)} if at else None,
                         "psr_min": min(r["psr_min"] for r in rows),
                         "proposed": sum(r["proposed"] for r in rows), "runs": rows}
    out["wall_s"] = round(time.time() - t0, 1)
    out["load_average"] = os.getloadavg()
    summary = {k: ({kk: vv for kk, vv in v.items() if kk != "runs"} if isinstance(v, dict)
                   else v) for k, v in out.items()}
    print(json.dumps(summary, indent=2))
    path = Path(args.out or ROOT / "runs" / "bench" / f"ab-{time.strftime('%Y%m%d-%H%M%S')}.json")
    atomic_write_json(path, out)
    print(path)


if __name__ == "__main__":
    main()
