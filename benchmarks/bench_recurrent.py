"""Benchmark: recurrent PPO on CartPole without velocities, and A2C on CartPole-v1.

Cases (``--cases``, default all):

* ``ppo-lstm``: PPO with ``net=lstm`` on ``rlcore/CartPoleNoVel-v1`` (target: eval >= 450 within
  100,000 steps), hyperparameters after rl-zoo3's RecurrentPPO entry for CartPoleNoVel-v1;
* ``ppo-mlp``: the same PPO with a feed-forward 64-64 MLP on the same environment (the baseline
  that cannot see velocities);
* ``a2c``: A2C on CartPole-v1 with rl-zoo3's hyperparameters (n_envs 8, n_steps 5, lr 7e-4,
  gamma 0.99, gae_lambda 1.0, ent_coef 0.0, RMSprop; target 500 at 500,000 steps).

Each case runs over ``--seeds`` (in ``--workers`` processes), evaluating every ``--eval-every``
steps (10 deterministic episodes). Prints JSON, writes it to ``runs/bench/recurrent-<time>.json``
(or ``--out``), and prints that file's path as the last line.

    python benchmarks/bench_recurrent.py --seeds 0 1 2 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES: dict[str, dict[str, Any]] = {
    "ppo-lstm": {"target": 450.0, "steps": 100_000, "settings": dict(
        algo="ppo", env="rlcore/CartPoleNoVel-v1", n_envs=8, net="lstm", lstm_hidden=64,
        n_steps=32, batch_size=256, n_epochs=10, learning_rate="lin:1e-3->0", gamma=0.98,
        gae_lambda=0.98, clip_range="lin:0.2->0", ent_coef=0.0)},
    "ppo-mlp": {"target": None, "steps": 100_000, "settings": dict(
        algo="ppo", env="rlcore/CartPoleNoVel-v1", n_envs=8, net="mlp", hidden=(64, 64),
        n_steps=32, batch_size=256, n_epochs=10, learning_rate="lin:1e-3->0", gamma=0.98,
        gae_lambda=0.98, clip_range="lin:0.2->0", ent_coef=0.0)},
    "a2c": {"target": 500.0, "steps": 500_000, "settings": dict(
        algo="a2c", env="CartPole-v1", n_envs=8, n_steps=5, learning_rate=7e-4, gamma=0.99,
        gae_lambda=1.0, ent_coef=0.0, optimizer="rmsprop")},
}


def run_one(case: str, seed: int, steps: int, eval_every: int) -> dict[str, Any]:
    """Train one case with one seed; returns final eval, the eval curve, steps/s and wall time."""
    import rlcore.toy_envs  # noqa: F401  (registers rlcore/CartPoleNoVel-v1)
    from rlcore.config import resolve_configs
    from rlcore.runs import RunDir
    from rlcore.training import TrainingRun

    settings = dict(CASES[case]["settings"], steps=steps, seed=seed, progress=False,
                    eval_episodes=10, eval_every=eval_every)
    run, cfg = resolve_configs(settings)
    with tempfile.TemporaryDirectory() as tmp:
        training = TrainingRun(run, cfg, RunDir(Path(tmp) / "run").create())
        curve: list[tuple[int, float]] = []
        evaluator = training.runner.evaluator

        def evaluate_and_record(agent, envs) -> dict[str, float]:
            res = evaluator(agent, envs)
            curve.append((training.runner.step, res["eval_return_mean"]))
            return res

        training.runner.evaluator = evaluate_and_record  # the curve of periodic evaluations
        t0 = time.perf_counter()
        summary = training.train()
        wall = time.perf_counter() - t0
    print(f"[bench] {case} seed {seed}: eval {summary['eval_return_mean']:.1f} "
          f"({wall:.0f} s)", file=sys.stderr, flush=True)
    return {"seed": seed, "eval_return_mean": summary["eval_return_mean"],
            "train_return_mean_100": summary["train_return_mean_100"], "sps": summary["sps"],
            "wall_s": wall, "curve": curve}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse arguments, run every case over every seed, write and print the JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=None, help="override every case's step budget")
    p.add_argument("--eval-every", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    jobs = [(c, s, a.steps or CASES[c]["steps"], a.eval_every) for c in a.cases for s in a.seeds]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, a.workers)) as pool:
        results = list(pool.map(run_one, *zip(*jobs)))
    out: dict[str, Any] = {"benchmark": "recurrent", "cpu_count": os.cpu_count(),
                           "wall_s": time.perf_counter() - t0, "cases": {}}
    for c in a.cases:
        rows = [r for (cj, *_), r in zip(jobs, results) if cj == c]
        finals = [r["eval_return_mean"] for r in rows]
        target = CASES[c]["target"]
        mean = sum(finals) / len(finals)
        out["cases"][c] = {"settings": CASES[c]["settings"], "steps": rows[0]["curve"][-1][0],
                           "target": target, "eval_return_mean": mean,
                           "meets_target": None if target is None else mean >= target,
                           "sps_mean": sum(r["sps"] for r in rows) / len(rows), "seeds": rows}
    from rlcore.io import atomic_write_text

    path = Path(a.out) if a.out else ROOT / "runs" / "bench" / (
        f"recurrent-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(out, indent=2, default=list)
    atomic_write_text(path, text + "\n")
    print(text)
    print(path)
    return out


if __name__ == "__main__":
    main()
