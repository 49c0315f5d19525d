"""Walk-forward on real data: PPO and SAC (several seeds each, the known-optimum recipes) and
their ensemble against flat and buy-and-hold, per symbol, out of sample.

For each ``--data`` file the folds come from the file's own span (``--align end``: the last
test window ends at the file's last bar, earlier folds slide back by ``--step`` while their
train window fits), so any candle file works; nothing here names a month. Every fold trains
``--seeds`` PPO and SAC agents with the recipes of docs/marketsim/known-optimum.md (PPO:
library defaults on the discrete levels short/flat/long, 16 environments; SAC: 64-64 networks,
alpha 0.001, one gradient step per 4 environment steps, 4 environments), shortened to
``--ppo-steps`` and ``--sac-steps``; the settings are not chosen on any test window. Each fold's
test window is traded by every agent, by the ensemble (the mean of all the fold's agents'
target positions), by flat and by buy-and-hold, through the same environment and costs.

With ``--validation 90d`` (the default) each fold's training window is cut in two
(docs/guide/evaluation.md, eq. (17)): the candidates (PPO, PPO with its no-signal recipe
``ppo-ns`` and SAC, every seed) train on the first part only and are backtested on the last 90
days; the strategy ``validated`` trades, in the test window, the candidate with the best
validation return after costs if it is positive, and stays flat otherwise (eq. (18)).
``--validation none`` is the earlier design (PPO and SAC on the whole training window).

Prints JSON (per symbol: out-of-sample metrics of each strategy on the chained test windows,
with the Sharpe ratio's stationary-bootstrap 95% interval, Calmar, max drawdown, profitable
days, fees, funding and ruined folds; each fold's figures), writes it to
runs/bench/walkforward-<UTC time>.json (or --out) and prints that path last. Full reports (HTML,
PNG, per-fold runs) are under --wf-out/<symbol>.

    python benchmarks/bench_walkforward.py            # 2 symbols x 4 folds x 9 agents
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = ROOT / ".." / "shared" / "data"
DATA = [SHARED / "binance-spot_ETHUSDT_1h_20170817_20230303.csv.gz",
        SHARED / "binance-spot_BTCUSDT_1h_20170817_20230303.csv.gz"]

# --8<-- [start:recipes]
RECIPE_SETS = (
    ("eval_episodes", 1), ("eval_envs", 1),
    # PPO (known-optimum recipe): library defaults on discrete levels, 16 environments
    ("ppo.n_envs", 16),
    # SAC (known-optimum recipe): 64-64, alpha0 1e-3, 1 gradient step per vector step of 4 envs
    ("sac.n_envs", 4), ("sac.hidden", [64, 64]), ("sac.alpha", 0.001),
    ("sac.gradient_steps", 1), ("sac.buffer_size", 200_000),
)
"""Training settings of every fold (``<algo>.key`` applies to one algorithm)."""
RECIPE_ENV = {"ppo": "discrete", "sac": "continuous"}
"""Action type of each algorithm's environment (the recipes' action designs)."""
VARIANTS = (
    # PPO's no-signal recipe: a short discount and a step size annealed to 0
    ("ppo-ns", "ppo", (("gamma", 0.5), ("gae_lambda", 0.9), ("learning_rate", "lin:3e-4->0"))),
)
"""Candidates besides PPO and SAC: ``(label, algorithm, settings)``."""
# --8<-- [end:recipes]


def symbol_of(path: str | Path) -> str:
    """A short name for a data file: its ``_SYMBOL_`` part when it has one, else its stem."""
    name = Path(path).name
    m = re.search(r"_([A-Z0-9-]{5,})_", name)
    return m.group(1) if m else name.split(".")[0]


def seed_summary(oos: dict, algo: str) -> dict:
    """Mean, lowest and highest of the headline metrics over one algorithm's seeds."""
    keys = ("total_return", "sharpe", "calmar", "max_drawdown", "profitable_days", "fees",
            "funding", "ruined_folds")
    runs = [v for k, v in oos.items() if k == algo or k.startswith(f"{algo}-s")]
    out = {}
    for key in keys:
        xs = [float(r[key]) for r in runs]
        out[key] = {"mean": sum(xs) / len(xs), "min": min(xs), "max": max(xs)}
    out["seeds"] = len(runs)
    return out


def main() -> None:
    """Parse arguments, run one walk-forward per data file, write and print the summary."""
    from marketsim.evaluation.walkforward import WalkForwardSpec, run_walkforward
    from rlcore.io import atomic_write_text

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=[str(p) for p in DATA],
                    help="candle files, one walk-forward each")
    ap.add_argument("--train", default="540d")
    ap.add_argument("--test", default="365d")
    ap.add_argument("--step", default="365d")
    ap.add_argument("--align", choices=("start", "end"), default="end")
    ap.add_argument("--max-folds", type=int, default=4)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--ppo-steps", type=int, default=100_000)
    ap.add_argument("--sac-steps", type=int, default=12_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--validation", default="90d",
                    help="validation span at the end of each training window: candidates train "
                         "before it, the gate picks on it ('none': no validation, no no-signal "
                         "PPO, the previous run's design)")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    ap.add_argument("--wf-out", default=str(ROOT / "runs" / f"walkforward-bench-{stamp}"))
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / f"walkforward-{stamp}.json"))
    a = ap.parse_args()
    for d in a.data:
        if not Path(d).exists():
            sys.exit(f"--data {d}: file not found (the shared data folder is needed)")
    t0 = time.perf_counter()
    sets = RECIPE_SETS + (("sac.steps", a.sac_steps),)
    validation = None if a.validation.lower() in ("none", "0", "off") else a.validation
    variants = VARIANTS if validation else ()
    summary: dict = {"train": a.train, "test": a.test, "step": a.step, "align": a.align,
                     "max_folds": a.max_folds, "seeds": a.seeds, "ppo_steps": a.ppo_steps,
                     "sac_steps": a.sac_steps, "workers": a.workers,
                     "cpu_count": os.cpu_count(), "loadavg_1m": os.getloadavg()[0],
                     "settings": {k: v for k, v in sets}, "action_types": RECIPE_ENV,
                     "validation": validation, "variants": [list(v) for v in variants],
                     "symbols": {}}
    for i, d in enumerate(a.data):
        sym = symbol_of(d)
        if sym in summary["symbols"]:  # two files of one symbol (two bar sizes, two venues)
            sym = f"{sym}-{i}"
        t1 = time.perf_counter()
        spec = WalkForwardSpec(
            data=d, out=str(Path(a.wf_out) / sym), algos=("ppo", "sac"), train=a.train,
            test=a.test, step=a.step, steps=a.ppo_steps, sets=sets,
            max_folds=a.max_folds, workers=a.workers, seeds=tuple(a.seeds), ensemble=True,
            align=a.align, n_boot=a.n_boot, variants=variants, validation=validation,
            algo_env_args=tuple((k, (("action_type", v),)) for k, v in RECIPE_ENV.items()))
        try:
            path = run_walkforward(spec, progress=lambda line: print(line, file=sys.stderr,
                                                                     flush=True))
        except ValueError as e:  # a file too short for one fold, a bad setting
            sys.exit(f"--data {d}: {e}")
        rep = json.loads(path.read_text())
        keep = ("total_return", "annual_return", "sharpe", "sharpe_lo", "sharpe_hi", "calmar",
                "max_drawdown", "profitable_days", "fees", "funding", "slippage", "turnover",
                "trades", "n_days", "ruined", "ruined_at", "ruined_folds")
        summary["symbols"][sym] = {
            "data": os.path.relpath(d, ROOT), "report": os.path.relpath(path, ROOT),
            "n_folds": rep["n_folds"], "oos_start": rep["oos_start"], "oos_end": rep["oos_end"],
            "oos": {k: {m: v.get(m) for m in keep} for k, v in rep["oos"].items()},
            "seed_summary": {al: seed_summary(rep["oos"], al)
                             for al in ("ppo", "sac", *(v[0] for v in variants))},
            "folds": [{"test_start": f["test_start"][:10], "test_end": f["test_end"][:10],
                       "train_start": f["train_start"][:10],
                       **{k: {m: v.get(m) for m in ("total_return", "max_drawdown", "sharpe",
                                                    "ruined", "ruined_at")}
                          for k, v in f["metrics"].items()},
                       **({"validation": f["validation"]} if "validation" in f else {})}
                      for f in rep["folds"]],
            "wall_s": time.perf_counter() - t1}
    summary["wall_s"] = time.perf_counter() - t0
    text = json.dumps(summary, indent=2, sort_keys=True, default=str)
    print(text)
    atomic_write_text(a.out, text + "\n")
    print(a.out)


if __name__ == "__main__":
    main()
