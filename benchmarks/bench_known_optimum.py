"""Train agents on the known-optimum futures markets and score them against the exact optimum.

    python benchmarks/bench_known_optimum.py --algos ppo sac dqn a2c \
        --markets no_signal observed hidden --steps 3000 --seeds 0 --eval-episodes 20

For each market it computes the oracle's value, the uniformly random policy's and flat's
(``marketsim.optimum.oracle.benchmark_values``), runs the oracle itself through the environment,
then trains each algorithm with ``rlcore.training.train`` for ``--steps`` environment steps per
seed and reads the final deterministic evaluation on fresh seeded episodes (``summary.json``).
Scores (docs/marketsim/known-optimum.md, eqs. (14)-(15)): on a signal market
``pct_of_oracle = 100 * agent / oracle``; on the no-signal market, where the oracle's value is 0,
``loss_pct_of_random = 100 * agent / random`` (the share of a random policy's loss to costs that
the agent still loses). Prints JSON, writes it to ``<out>/known-optimum-<time>.json`` and prints
that path as the last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from marketsim.optimum import ENV_KWARGS, HIDDEN_SIGNAL_ID, NO_SIGNAL_ID, OBSERVED_SIGNAL_ID  # noqa: E402

MARKET_IDS = {"no_signal": NO_SIGNAL_ID, "observed": OBSERVED_SIGNAL_ID, "hidden": HIDDEN_SIGNAL_ID}


def parse_assignments(items: list[str]) -> dict:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}`` with YAML values (rlcore's parser)."""
    from rlcore.config import parse_assignments as parse

    return parse(items)


def market_reference(env_id: str, env_kwargs: dict, episodes: int, seed: int,
                     resolution: int) -> dict:
    """The exact values of ``env_id``'s market and the oracle's mean return in the environment."""
    import gymnasium

    from marketsim.optimum.oracle import OraclePolicy, benchmark_values, solve

    env = gymnasium.make(env_id, **env_kwargs)
    market, observed = env.unwrapped.market, env.unwrapped.observe_regime
    values = benchmark_values(market, observed, resolution)
    policy = OraclePolicy(solve(market, observed, resolution))
    returns = []
    for e in range(episodes):
        obs, info = env.reset(seed=seed + e)
        total, done = 0.0, False
        while not done:
            obs, r, terminated, truncated, info = env.step(policy.act(obs, info))
            total += r
            done = terminated or truncated
        returns.append(total)
    env.close()
    return {"values": values,
            "oracle_in_env": {"episodes": episodes, "mean": float(np.mean(returns)),
                              "se": float(np.std(returns, ddof=1) / np.sqrt(episodes))
                              if episodes > 1 else float("nan")}}


def score(mean: float, values: dict, no_signal: bool) -> dict:
    """eq. (14) on a signal market, eq. (15) on the no-signal one."""
    if no_signal:
        return {"loss_pct_of_random": 100.0 * mean / values["random"] + 0.0}  # no -0.0
    return {"pct_of_oracle": 100.0 * mean / values["oracle"] + 0.0}


def train_one(algo: str, env_id: str, env_kwargs: dict, steps: int, seed: int, n_envs: int,
              eval_episodes: int, overrides: dict, outdir: Path) -> dict:
    """One seeded training run; returns its final deterministic evaluation."""
    from rlcore.config import resolve_configs
    from rlcore.training import train

    run, cfg = resolve_configs({"algo": algo, "env": env_id, "steps": steps, "seed": seed,
                                "n_envs": n_envs, "progress": False, "runs_dir": str(outdir),
                                "eval_episodes": eval_episodes, "eval_envs": min(4, eval_episodes),
                                "env_kwargs": dict(env_kwargs), **overrides})
    t0 = time.perf_counter()
    summary, path = train(run, cfg)
    return {"seed": seed, "eval_return_mean": summary["eval_return_mean"],
            "eval_return_std": summary["eval_return_std"], "sps": summary["sps"],
            "wall_s": time.perf_counter() - t0, "summary": str(path)}


def main(argv: list[str] | None = None) -> Path:
    """Run the benchmark; returns the path of the JSON file."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--algos", nargs="+", default=["ppo", "sac", "dqn", "a2c"])
    ap.add_argument("--markets", nargs="+", default=list(MARKET_IDS), choices=list(MARKET_IDS))
    ap.add_argument("--steps", type=int, default=3000, help="environment steps per run")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--n-envs", type=int, default=4)
    ap.add_argument("--eval-episodes", type=int, default=20)
    ap.add_argument("--oracle-episodes", type=int, default=None,
                    help="episodes of the oracle run in the environment (default: eval episodes)")
    ap.add_argument("--resolution", type=int, default=100, help="belief grid (hidden market)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="run/algorithm setting for every run (e.g. learning_rate=1e-3)")
    ap.add_argument("--env-arg", dest="env_args", action="append", default=[],
                    metavar="KEY=VALUE", help="market setting (e.g. episode_length=64)")
    ap.add_argument("--out", default="runs/bench")
    a = ap.parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    outdir = Path(a.out)
    rundir = outdir / f"known-optimum-{stamp}"
    overrides, env_kwargs = parse_assignments(a.sets), parse_assignments(a.env_args)
    result = {"command": " ".join(["python", "benchmarks/bench_known_optimum.py",
                                   *(argv if argv is not None else sys.argv[1:])]),
              "steps": a.steps, "seeds": a.seeds, "eval_episodes": a.eval_episodes,
              "n_envs": a.n_envs, "overrides": overrides, "env_kwargs": env_kwargs,
              "markets": {}}
    for name in a.markets:
        env_id = MARKET_IDS[name]
        no_signal = ENV_KWARGS[env_id]["market"] == "no_signal"
        ref = market_reference(env_id, env_kwargs, a.oracle_episodes or a.eval_episodes,
                               seed=2_000_000, resolution=a.resolution)
        entry = {"env": env_id, **ref, "agents": {}}
        for algo in a.algos:
            runs = [train_one(algo, env_id, env_kwargs, a.steps, s, a.n_envs, a.eval_episodes,
                              overrides, rundir) for s in a.seeds]
            for r in runs:
                r.update(score(r["eval_return_mean"], ref["values"], no_signal))
            mean = statistics.fmean(r["eval_return_mean"] for r in runs)
            entry["agents"][algo] = {"eval_return_mean": mean,
                                     **score(mean, ref["values"], no_signal), "runs": runs}
        result["markets"][name] = entry
    text = json.dumps(result, indent=2)
    print(text)
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / f"known-optimum-{stamp}.json"
    path.write_text(text + "\n")
    print(path)
    return path


if __name__ == "__main__":
    main()
