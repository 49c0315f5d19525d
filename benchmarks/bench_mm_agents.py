"""RL agents on MarketMaking-v0 against the analytic optimum (issue 6's agent benchmarks).

Model mode: PPO, A2C, DQN and SAC are trained with the engine's runner, then evaluated with
deterministic actions on 1,000 fresh paths, episode i seeded ``seed + i`` exactly as
``marketsim.mm.baselines.run_baseline`` seeds its episodes, so every strategy meets the same
paths. Score: mean reward (docs/marketsim/market-making.md, eq. (16)) as a percentage of the
Cartea-Jaimungal optimum's (eqs. (9)-(10)); also PnL mean/std, terminal-inventory std, and the
paired per-path reward difference to the optimum with its standard error.

Replay mode: real 1m ETHUSDT candles, split in time. The fixed-gamma AS with the best mean
reward in sample (first part) is chosen, the agents are trained in sample, and everything is
evaluated out of sample (last part). Each environment fits sigma, A, k on the ``calib_bars``
bars before its first possible episode start, which for the out-of-sample environment are the
last in-sample bars.

Usage: python benchmarks/bench_mm_agents.py [--algos ppo,a2c,dqn,sac] [--scale 1.0]
       [--replay-scale 0.4] [--episodes 1000] [--no-model] [--no-replay]
       [--set ALGO.KEY=VALUE ...] [--out FILE]
Prints a JSON object and, as its last line, the path of the JSON file it wrote
(default runs/bench/mm_agents-<timestamp>.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from marketsim.mm.baselines import make_strategy, run_baseline  # noqa: E402
from marketsim.mm.vector import MarketMakingVectorEnv  # noqa: E402
from rlcore.config import parse_value, resolve_configs  # noqa: E402
from rlcore.envs import make_vector_env  # noqa: E402
from rlcore.saved import load_run_agent  # noqa: E402
from rlcore.training import train  # noqa: E402

ENV_ID = "marketsim/MarketMaking-v0"
DATA_FILE = ROOT / ".." / "shared" / "data" / "binance-spot_ETHUSDT_1m_20230316_20230501.csv.gz"
AS_GRID = tuple(float(g) for g in np.geomspace(1e-3, 1.0, 13))
"""Fixed gammas scanned for the best fixed-gamma AS (contains the default discrete set's range)."""
TRAIN_SEED = 100_000
"""Run seed of training: its environments are seeded 100000.., never 0..999 (the test paths)."""


@dataclass(frozen=True)
class AgentSpec:
    """One agent of the benchmark (its key in ``SPECS`` names its row): algorithm, action type,
    budget and settings for the runner."""

    algo: str
    """Engine algorithm name (ppo, a2c, dqn, sac)."""
    action_type: str
    """``discrete`` (gamma from ``gammas``) or ``continuous`` (gamma, k, sigma, horizon)."""
    steps: int
    """Environment steps of training (before ``--scale``)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Run and algorithm settings (the keys of ``--set``)."""


# --8<-- [start:agent-specs]
SPECS: dict[str, AgentSpec] = {
    "ppo": AgentSpec("ppo", "continuous", 200_000, {
        "n_envs": 16, "n_steps": 200, "batch_size": 800, "n_epochs": 5, "learning_rate": 3e-4,
        "gamma": 0.999, "gae_lambda": 0.95, "log_std_init": -1.0, "normalize_obs": True,
        "normalize_reward": True}),
    "a2c": AgentSpec("a2c", "discrete", 150_000, {
        "n_envs": 16, "n_steps": 50, "learning_rate": 1e-4, "optimizer": "adam",
        "gamma": 0.99, "gae_lambda": 0.95, "normalize_advantage": True,
        "normalize_obs": True, "normalize_reward": True}),
    "a2c_continuous": AgentSpec("a2c", "continuous", 150_000, {
        "n_envs": 16, "n_steps": 20, "learning_rate": 3e-4, "optimizer": "adam",
        "gamma": 0.999, "gae_lambda": 0.95, "log_std_init": -1.0, "normalize_advantage": True,
        "normalize_obs": True, "normalize_reward": True}),
    "dqn": AgentSpec("dqn", "discrete", 100_000, {
        "n_envs": 8, "gamma": 0.99, "learning_rate": 1e-4, "batch_size": 128, "train_freq": 1,
        "target_update_interval": 2000, "learning_starts": 2000, "exploration_fraction": 0.3,
        "exploration_final_eps": 0.02, "normalize_obs": True, "log_every": 5000}),
    "sac": AgentSpec("sac", "continuous", 40_000, {
        "n_envs": 8, "gamma": 0.99, "hidden": [128, 128], "batch_size": 256,
        "learning_starts": 2000, "normalize_obs": True, "log_every": 5000}),
}
# --8<-- [end:agent-specs]


# ------------------------------------------------------------------------- per-path statistics
def summarise(paths: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean/std of per-path arrays with the keys of ``run_baseline``'s summary."""
    n = paths["reward"].size
    ddof = 1 if n > 1 else 0
    return {
        "episodes": int(n),
        "reward_mean": float(paths["reward"].mean()),
        "reward_std": float(paths["reward"].std(ddof=ddof)),
        "pnl_mean": float(paths["pnl"].mean()),
        "pnl_std": float(paths["pnl"].std(ddof=ddof)),
        "inventory_mean": float(paths["inventory"].mean()),
        "inventory_std": float(paths["inventory"].std(ddof=ddof)),
        "spread_mean": float(paths["spread"].mean()),
        "fills_mean": float(paths["fills"].mean()),
    }


# --8<-- [start:paired]
def paired(agent: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Mean per-path difference ``agent - reference`` on common paths, with its standard error."""
    # docs/marketsim/market-making-agents.md, eq. (2)
    d = np.asarray(agent, dtype=float) - np.asarray(reference, dtype=float)
    se = float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else float("nan")
    return {"diff_mean": float(d.mean()), "diff_se": se}


def percent_of(value: float, reference: float) -> float | None:
    """``100 * value / reference``; None when the reference is not positive (no meaningful %)."""
    # docs/marketsim/market-making-agents.md, eq. (1)
    return 100.0 * value / reference if reference > 0 else None
# --8<-- [end:paired]


def _rollout(step, n: int, n_steps: int) -> dict[str, np.ndarray]:
    """Run ``n`` aligned episodes of ``n_steps`` steps; ``step()`` returns (reward, term,
    trunc, info) of one vector step. Returns per-path reward sums and terminal values."""
    reward, fills, spread = np.zeros(n), np.zeros(n), np.zeros(n)
    gamma = np.zeros(n)
    for _ in range(n_steps):
        r, term, trunc, info = step()
        reward += r
        fills += info["fills"]
        spread += info["spread"]
        gamma += info.get("gamma", np.zeros(n))
    if not np.all(term | trunc):
        raise RuntimeError(f"episodes did not end after n_steps = {n_steps} steps")
    return {"reward": reward, "pnl": np.asarray(info["pnl"], dtype=float),
            "inventory": np.asarray(info["inventory"], dtype=float), "fills": fills,
            "spread": spread / n_steps, "gamma": gamma / n_steps}


def baseline_paths(strategy: str, gamma: float, episodes: int, seed: int,
                   env_kwargs: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per-path results of an analytic strategy; episode i is seeded ``seed + i`` (as
    ``run_baseline`` with one batch)."""
    env = MarketMakingVectorEnv(num_envs=episodes, **env_kwargs)
    quote = make_strategy(strategy, gamma, env)
    env.reset(seed=seed)

    def step():
        _, r, term, trunc, info = env.step_quotes(*quote(env))
        return r, term, trunc, info

    return _rollout(step, episodes, env.config.n_steps)


# --8<-- [start:agent-paths]
def agent_paths(agent: Any, run_cfg: Any, norm_state: dict[str, Any], episodes: int, seed: int,
                env_kwargs: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Per-path results of a trained agent acting deterministically; episode i is seeded
    ``seed + i``. ``env_kwargs`` replaces the run's environment (e.g. out-of-sample data);
    the observation normaliser keeps its training statistics, frozen."""
    kwargs = dict(run_cfg.env_kwargs if env_kwargs is None else env_kwargs)
    bundle = make_vector_env(run_cfg.env, episodes, "sync", kwargs, run_cfg.frame_stack,
                             run_cfg.normalize_obs, False)
    if bundle.obs_norm is not None:
        bundle.load_norm_state(norm_state)
        bundle.obs_norm.update_running_mean = False
    env = bundle.env
    obs, _ = env.reset(seed=seed)
    box = {"obs": obs, "state": agent.initial_state(episodes),
           "start": np.ones(episodes, dtype=bool)}

    def step():
        res = agent.act(box["obs"], box["state"], box["start"], deterministic=True)
        box["obs"], r, term, trunc, info = env.step(res.actions)
        box["state"], box["start"] = res.state, np.zeros(episodes, dtype=bool)
        return r, term, trunc, info

    try:
        return _rollout(step, episodes, env.unwrapped.config.n_steps)
    finally:
        bundle.close()
# --8<-- [end:agent-paths]


# ------------------------------------------------------------------------- training
def train_agent(spec: AgentSpec, env_kwargs: dict[str, Any], runs_dir: Path, scale: float,
                tag: str) -> tuple[Path, dict[str, Any]]:
    """Train ``spec`` with the engine's runner; return (run folder, runner summary)."""
    overrides = {"algo": spec.algo, "env": ENV_ID, "seed": TRAIN_SEED,
                 "steps": max(1, int(spec.steps * scale)), "runs_dir": str(runs_dir),
                 "run_id": f"{tag}-{spec.algo}-{spec.action_type}", "progress": False,
                 "eval_episodes": 16, "eval_envs": 16,
                 "env_kwargs": {**env_kwargs, "action_type": spec.action_type}, **spec.settings}
    run_cfg, algo_cfg = resolve_configs(overrides)
    summary, _ = train(run_cfg, algo_cfg)
    return runs_dir / run_cfg.run_id, summary


def evaluate_trained(run_dir: Path, episodes: int, seed: int,
                     env_kwargs: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Load a run's latest checkpoint and evaluate it with :func:`agent_paths`."""
    agent, run_cfg, _, ckpt = load_run_agent(run_dir)
    action_type = run_action_type(run_cfg)
    kwargs = run_cfg.env_kwargs if env_kwargs is None else env_kwargs
    return agent_paths(agent, run_cfg, ckpt["norm"], episodes, seed,
                       {**kwargs, "action_type": action_type})


def run_action_type(run_cfg: Any) -> str:
    """The action type a run trained with: its ``action_type`` env kwarg, else the runner's
    default for marketsim environments (discrete for DQN, continuous otherwise)."""
    default = "discrete" if run_cfg.algo == "dqn" else "continuous"
    return run_cfg.env_kwargs.get("action_type", default)


def agent_row(spec: AgentSpec, run_dir: Path, train_summary: dict[str, Any],
              paths: dict[str, np.ndarray], reference: dict[str, np.ndarray],
              train_wall: float) -> dict[str, Any]:
    """The JSON row of one agent: summary, score against ``reference``, training facts."""
    row = {"algo": spec.algo, "action_type": spec.action_type, **summarise(paths),
           "gamma_mean": float(paths["gamma"].mean()),
           "reward_pct_of_reference": percent_of(float(paths["reward"].mean()),
                                                 float(reference["reward"].mean())),
           "vs_reference": paired(paths["reward"], reference["reward"]),
           "train_steps": int(train_summary["steps"]), "train_wall_s": round(train_wall, 1),
           "train_sps": round(float(train_summary["sps"])), "run_dir": str(run_dir),
           "settings": spec.settings}
    return row


# ------------------------------------------------------------------------- the two sections
def as_grid(episodes: int, seed: int, env_kwargs: dict[str, Any]) -> dict[float, dict]:
    """``run_baseline`` summaries of fixed-gamma AS over ``AS_GRID``."""
    return {g: run_baseline("as", g, episodes, seed=seed, **env_kwargs) for g in AS_GRID}


def best_gamma(grid: dict[float, dict]) -> float:
    """The gamma with the highest mean reward."""
    return max(grid, key=lambda g: grid[g]["reward_mean"])


def model_section(algos: list[str], episodes: int, scale: float, runs_dir: Path,
                  seed: int = 0) -> dict[str, Any]:
    """Model mode: agents against the Cartea-Jaimungal optimum and the best fixed-gamma AS."""
    env_kwargs: dict[str, Any] = {"mode": "model"}
    cj = baseline_paths("cj", 0.1, episodes, seed, env_kwargs)
    grid = as_grid(episodes, seed, env_kwargs)
    g_best = best_gamma(grid)
    as_best = baseline_paths("as", g_best, episodes, seed, env_kwargs)
    cj_mean = float(cj["reward"].mean())
    out: dict[str, Any] = {
        "env_kwargs": env_kwargs, "eval_seeds": [seed, seed + episodes - 1],
        "cj_optimum": summarise(cj),
        "as_best": {"gamma": g_best, **summarise(as_best),
                    "reward_pct_of_cj": percent_of(float(as_best["reward"].mean()), cj_mean)},
        "as_grid_reward_mean": {f"{g:.4g}": round(s["reward_mean"], 3) for g, s in grid.items()},
        "agents": {},
    }
    for name in algos:
        spec = SPECS[name]
        t0 = time.perf_counter()
        run_dir, summary = train_agent(spec, env_kwargs, runs_dir, scale, "model")
        wall = time.perf_counter() - t0
        paths = evaluate_trained(run_dir, episodes, seed)
        row = agent_row(spec, run_dir, summary, paths, cj, wall)
        row["vs_as_best"] = paired(paths["reward"], as_best["reward"])
        out["agents"][name] = row
        _say(f"model {name}: {row['reward_pct_of_reference']:.2f}% of CJ, train {wall:.0f} s")
    return out


def split_candles(source: Path, folder: Path, in_sample: float,
                  calib_bars: int) -> tuple[Path, Path, dict[str, Any]]:
    """Write the in-sample rows and the out-of-sample rows (led by the last ``calib_bars``
    in-sample rows, used only to calibrate) as two CSV files in ``folder``."""
    with gzip.open(source, "rt") as handle:
        header, *rows = handle.read().splitlines()
    if not rows:
        raise ValueError(f"{source}: no candle rows")
    split = int(len(rows) * in_sample)
    if split <= calib_bars or len(rows) - split < 2:
        raise ValueError(f"{source}: {len(rows)} rows cannot be split at {in_sample}")
    parts = {"in_sample": rows[:split], "out_of_sample": rows[split - calib_bars:]}
    paths = {}
    for name, part in parts.items():
        path = folder / f"{name}.csv"
        path.write_text("\n".join([header, *part]) + "\n")
        paths[name] = path
    info = {"file": source.name, "rows": len(rows), "split_row": split,
            "in_sample_first": rows[0].split(",")[1],
            "in_sample_last": rows[split - 1].split(",")[1],
            "out_of_sample_first": rows[split].split(",")[1],
            "out_of_sample_last": rows[-1].split(",")[1]}
    return paths["in_sample"], paths["out_of_sample"], info


def replay_section(algos: list[str], episodes: int, scale: float, runs_dir: Path,
                   data_file: Path, in_sample: float = 0.7, seed: int = 0) -> dict[str, Any]:
    """Replay mode: best fixed-gamma AS chosen in sample; agents trained in sample; all
    evaluated out of sample."""
    calib = 1000
    with tempfile.TemporaryDirectory(prefix="mm_agents_") as tmp:
        is_path, oos_path, info = split_candles(data_file, Path(tmp), in_sample, calib)
        is_kw = {"mode": "replay", "data_path": str(is_path), "calib_bars": calib}
        oos_kw = {"mode": "replay", "data_path": str(oos_path), "calib_bars": calib}
        grid_is = as_grid(episodes, seed, is_kw)
        g_is = best_gamma(grid_is)
        as_oos = baseline_paths("as", g_is, episodes, seed, oos_kw)
        grid_oos = as_grid(episodes, seed, oos_kw)
        cj_oos = baseline_paths("cj", 0.1, episodes, seed, oos_kw)
        out: dict[str, Any] = {
            "data": info, "in_sample_fraction": in_sample, "calib_bars": calib,
            "eval_seeds": [seed, seed + episodes - 1],
            "as_best_in_sample": {"gamma": g_is, "in_sample": {
                k: grid_is[g_is][k] for k in ("reward_mean", "pnl_mean", "pnl_std")},
                "out_of_sample": summarise(as_oos)},
            "as_grid_reward_mean_in_sample": {f"{g:.4g}": round(s["reward_mean"], 3)
                                              for g, s in grid_is.items()},
            "as_grid_reward_mean_out_of_sample_hindsight": {
                f"{g:.4g}": round(s["reward_mean"], 3) for g, s in grid_oos.items()},
            "cj_out_of_sample": summarise(cj_oos),
            "agents": {},
        }
        for name in algos:
            spec = SPECS[name]
            t0 = time.perf_counter()
            run_dir, summary = train_agent(spec, is_kw, runs_dir, scale, "replay")
            wall = time.perf_counter() - t0
            paths = evaluate_trained(run_dir, episodes, seed, oos_kw)
            row = agent_row(spec, run_dir, summary, paths, as_oos, wall)
            out["agents"][name] = row
            _say(f"replay {name}: reward {row['reward_mean']:.2f} vs AS "
                 f"{out['as_best_in_sample']['out_of_sample']['reward_mean']:.2f}")
    return out


# ------------------------------------------------------------------------- script
def write_atomic(path: Path, data: dict) -> None:
    """Write JSON atomically: temp file in the same folder, fsync, os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _say(msg: str) -> None:
    """Progress to stderr (stdout carries the JSON)."""
    print(msg, file=sys.stderr, flush=True)


def parse_algos(text: str) -> list[str]:
    """``"ppo,dqn"`` -> ``["ppo", "dqn"]``; ValueError naming an unknown algorithm."""
    algos = [a.strip() for a in text.split(",") if a.strip()]
    bad = [a for a in algos if a not in SPECS]
    if bad or not algos:
        raise ValueError(f"--algos: unknown {bad or text!r}; expected names from {list(SPECS)}")
    return algos


def apply_sets(specs: dict[str, AgentSpec], items: list[str]) -> dict[str, AgentSpec]:
    """Apply ``algo.key=value`` overrides (values parsed as YAML) to copies of ``specs``;
    ``algo.steps=N`` sets the budget. ValueError names a malformed item."""
    out = dict(specs)
    for item in items:
        target, sep, raw = item.partition("=")
        algo, dot, key = target.partition(".")
        if not sep or not dot or algo not in out or not key:
            raise ValueError(f"--set {item!r}: expected algo.key=value with algo in {list(out)}")
        value = parse_value(raw)
        spec = out[algo]
        if key == "steps":
            out[algo] = dataclasses.replace(spec, steps=int(value))
        elif key == "action_type":
            out[algo] = dataclasses.replace(spec, action_type=str(value))
        else:
            out[algo] = dataclasses.replace(spec, settings={**spec.settings, key: value})
    return out


def main() -> None:
    """Run the benchmark and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", default=",".join(SPECS), help="comma-separated agents")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply training steps")
    parser.add_argument("--replay-scale", type=float, default=0.4,
                        help="multiply training steps in the replay section (after --scale)")
    parser.add_argument("--episodes", type=int, default=1000, help="evaluation paths")
    parser.add_argument("--no-replay", action="store_true", help="skip the replay section")
    parser.add_argument("--no-model", action="store_true", help="skip the model section")
    parser.add_argument("--data", type=Path, default=DATA_FILE, help="1m candle file (replay)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output file")
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        metavar="ALGO.KEY=VALUE", help="override a setting, e.g. a2c.gamma=0.99")
    args = parser.parse_args()
    try:
        algos = parse_algos(args.algos)
        SPECS.update(apply_sets(SPECS, args.sets))
    except ValueError as err:
        parser.error(str(err))
    if args.scale <= 0 or args.replay_scale <= 0 or args.episodes < 2:
        parser.error("--scale and --replay-scale must be > 0 and --episodes >= 2")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or ROOT / "runs" / "bench" / f"mm_agents-{stamp}.json"
    runs_dir = out.parent / f"{out.stem}-runs"
    result: dict[str, Any] = {
        "benchmark": "mm_agents", "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "load_avg_1m_before": round(os.getloadavg()[0], 2), "algos": algos,
        "scale": args.scale, "replay_scale": args.replay_scale, "episodes": args.episodes,
        "train_seed": TRAIN_SEED,
        "specs": {a: dataclasses.asdict(SPECS[a]) for a in algos}, "runs_dir": str(runs_dir)}
    t0 = time.perf_counter()
    if not args.no_model:
        result["model"] = model_section(algos, args.episodes, args.scale, runs_dir)
    if not args.no_replay:
        if args.data.exists():
            result["replay"] = replay_section(algos, args.episodes,
                                              args.scale * args.replay_scale, runs_dir,
                                              args.data.resolve())
        else:
            result["replay"] = {"skipped": f"data file {args.data} not found"}
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    result["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    write_atomic(out, result)
    print(json.dumps(result, indent=2))
    print(out)


if __name__ == "__main__":
    main()
