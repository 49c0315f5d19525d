"""Online continual learning on real data: train PPO on the first bars, then replay the rest live.

    python benchmarks/bench_online.py [--data FILE] [--base-bars 8000] [--base-steps 50000]
        [--replay-bars 14400] [--every 1440m] [--tick-steps 4096] [--anchor ewc]
        [--action-type continuous|discrete] [--lr 3e-5] [--out F]

1. Trains PPO on ``CryptoFutures-v0`` over the first ``--base-bars`` bars of ``--data`` (default:
   the shared Binance ETHUSDT 1m 2023 file, read in place from ``../shared/data``).
2. Replays the next ``--replay-bars`` bars through the online loop (``rlcore.continual``): every
   ``--every`` of data time a candidate is fine-tuned on the newest window, scored on the
   hold-out window after it, and promoted if not worse than the serving agent by the margin.
3. Reports, per tick: the decision, the candidate's, serving agent's and frozen (initial) agent's
   hold-out returns on the same windows, and timings. Prints JSON, writes it to
   ``runs/bench/online-<time>.json`` (or ``--out``) and prints that path as the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from marketsim.data.load import read_candles  # noqa: E402
from marketsim.data.sources import ReplaySource  # noqa: E402
from rlcore.config import resolve_configs  # noqa: E402
from rlcore.continual import OnlineConfig, OnlineLoop, OnlineSettings, parse_duration  # noqa: E402
from rlcore.io import atomic_write_text  # noqa: E402
from rlcore.training import train  # noqa: E402

DEFAULT_DATA = ROOT / ".." / "shared" / "data" / "binance-spot_ETHUSDT_1m_20230316_20230501.csv.gz"


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns the result dict."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--base-bars", type=int, default=8000)
    ap.add_argument("--base-steps", type=int, default=50_000)
    ap.add_argument("--replay-bars", type=int, default=14_400)
    ap.add_argument("--every", default="1440m")
    ap.add_argument("--train-bars", type=int, default=2880)
    ap.add_argument("--holdout-bars", type=int, default=720)
    ap.add_argument("--episode-length", type=int, default=240)
    ap.add_argument("--tick-steps", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--rehearsal-frac", type=float, default=0.5)
    ap.add_argument("--anchor", choices=["none", "l2", "ewc"], default="ewc")
    ap.add_argument("--anchor-strength", type=float, default=1.0)
    ap.add_argument("--margin", type=float, default=0.0)
    ap.add_argument("--action-type", choices=["continuous", "discrete"], default="continuous")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs-dir", default=str(ROOT / "runs" / "bench"))
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    if not Path(a.data).exists():
        raise SystemExit(f"{a.data}: data file not found (expected the shared data folder)")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    root = Path(a.runs_dir) / f"online-{stamp}"
    root.mkdir(parents=True, exist_ok=True)
    raw = read_candles(a.data).sort_index()
    base_path = root / "base_bars.parquet"  # derived slice inside the (git-ignored) run folder
    raw.iloc[: a.base_bars].to_parquet(base_path)
    env_kwargs = {"data": str(base_path), "episode_length": a.episode_length,
                  "action_type": a.action_type}
    run, algo = resolve_configs({
        "algo": "ppo", "env": "marketsim/CryptoFutures-v0", "steps": a.base_steps, "n_envs": 4,
        "seed": a.seed, "env_kwargs": env_kwargs, "progress": False, "n_steps": 256,
        "batch_size": 256, "n_epochs": 4, "eval_episodes": 8, "runs_dir": str(root),
        "run_id": "base"})
    t0 = time.perf_counter()
    summary, _ = train(run, algo)
    t_base = time.perf_counter() - t0
    stream = raw.iloc[: a.base_bars + a.replay_bars]
    cfg = OnlineConfig(every=parse_duration(a.every), train_bars=a.train_bars,
                       holdout_bars=a.holdout_bars, warmup_bars=a.base_bars,
                       episode_length=a.episode_length, n_envs=4, anchor=a.anchor, seed=a.seed)
    st = OnlineSettings(learning_rate=a.lr, tick_steps=a.tick_steps,
                        rehearsal_frac=a.rehearsal_frac, anchor_strength=a.anchor_strength,
                        promote_margin=a.margin)
    t0 = time.perf_counter()
    loop = OnlineLoop(root / "base", ReplaySource(stream), cfg, st).start()
    loop.run()
    t_online = time.perf_counter() - t0
    promos = [json.loads(x) for x in (root / "base" / "online" / "promotions.jsonl")
              .read_text().splitlines()]
    events = root / "base" / "online" / "data_events.jsonl"
    ticks = [{
        "tick": p["tick"], "tick_time": p["tick_time"], "holdout": p["holdout_range"],
        "decision": p["decision"], "version": p["version"],
        "candidate": p.get("candidate", {}).get("return_mean"),
        "serving": p["serving"]["return_mean"], "frozen": p["frozen"]["return_mean"],
        "episodes": p["serving"]["episodes"]} for p in promos]
    served = [t["candidate"] if t["decision"] == "promoted" else t["serving"] for t in ticks]
    result = {
        "benchmark": "online", "data": os.path.basename(a.data), "args": vars(a),
        "base": {"steps": summary["steps"], "wall_s": t_base,
                 "eval_return_mean": summary.get("eval_return_mean")},
        "online": {"ticks": len(ticks), "promotions": sum(t["decision"] == "promoted"
                                                          for t in ticks),
                   "wall_s": t_online, "s_per_tick": t_online / max(len(ticks), 1),
                   "data_events": len(events.read_text().splitlines()) if events.exists() else 0,
                   "served_holdout_return_mean": float(np.mean(served)) if served else None,
                   "frozen_holdout_return_mean": float(np.mean([t["frozen"] for t in ticks]))
                   if ticks else None},
        "ticks": ticks, "run_dir": str(root / "base"),
        "machine": {"cpus": os.cpu_count(), "load": os.getloadavg()[0],
                    "python": platform.python_version()},
    }
    out = Path(a.out) if a.out else ROOT / "runs" / "bench" / f"online-{stamp}.json"
    text = json.dumps(result, indent=2, default=str)
    atomic_write_text(out, text + "\n")
    print(text)
    print(out)
    return result


if __name__ == "__main__":
    main()
