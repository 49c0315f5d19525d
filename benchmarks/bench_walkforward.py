"""Walk-forward report on the shared real data: PPO and SAC on the futures environment against
buy-and-hold and flat. Measures wall time, prints JSON (out-of-sample metrics per strategy and
fold returns), writes it to runs/bench/walkforward-<UTC time>.json (or --out) and prints that
path last. The full report (PNG, HTML, per-fold runs) is in --wf-out.

    python benchmarks/bench_walkforward.py            # 6 folds, 2 workers
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT / ".." / "shared" / "data" / "binance-spot_ETHUSDT_1h_20170817_20230303.csv.gz"


def main() -> None:
    """Parse arguments, run the walk-forward, write and print the summary JSON."""
    from marketsim.evaluation.walkforward import WalkForwardSpec, run_walkforward
    from rlcore.io import atomic_write_text

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--start", default="2021-11-01")
    ap.add_argument("--end", default="2022-07-01")
    ap.add_argument("--train", default="60d")
    ap.add_argument("--test", default="30d")
    ap.add_argument("--step", default="30d")
    ap.add_argument("--ppo-steps", type=int, default=20_000)
    ap.add_argument("--sac-steps", type=int, default=3_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-folds", type=int, default=None)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    ap.add_argument("--wf-out", default=str(ROOT / "runs" / f"walkforward-bench-{stamp}"))
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / f"walkforward-{stamp}.json"))
    a = ap.parse_args()
    if not Path(a.data).exists():
        sys.exit(f"--data {a.data}: file not found (the shared data folder is needed)")
    t0 = time.perf_counter()
    summary: dict = {"data": os.path.relpath(a.data, ROOT), "start": a.start, "end": a.end,
                     "train": a.train, "test": a.test, "step": a.step, "workers": a.workers,
                     "cpu_count": os.cpu_count(), "loadavg_1m": os.getloadavg()[0],
                     }
    sets = (("eval_episodes", 1), ("eval_envs", 1), ("ppo.n_envs", 8), ("sac.n_envs", 1),
            ("sac.steps", a.sac_steps), ("sac.learning_starts", 1000), ("sac.batch_size", 128),
            ("sac.train_freq", 2))
    spec = WalkForwardSpec(data=a.data, out=a.wf_out, algos=("ppo", "sac"), train=a.train,
                           test=a.test, step=a.step, steps=a.ppo_steps, sets=sets,
                           start=a.start, end=a.end, max_folds=a.max_folds, workers=a.workers)
    path = run_walkforward(spec)
    rep = json.loads(path.read_text())
    summary.update(report=os.path.relpath(path, ROOT), oos=rep["oos"], n_folds=rep["n_folds"],
                   ppo_steps_per_fold=a.ppo_steps, sac_steps_per_fold=a.sac_steps,
                   oos_start=rep["oos_start"], oos_end=rep["oos_end"])
    summary["folds"] = [{"test_start": f["test_start"][:10],
                         **{k: round(v["total_return"], 4) for k, v in f["metrics"].items()}}
                        for f in rep["folds"]]
    summary["wall_s"] = time.perf_counter() - t0
    text = json.dumps(summary, indent=2, sort_keys=True, default=str)
    print(text)
    atomic_write_text(a.out, text + "\n")
    print(a.out)


if __name__ == "__main__":
    main()
