"""Train agents on the known-optimum futures markets and score them against the exact optimum.

    python benchmarks/bench_known_optimum.py --preset recipe --algos ppo sac \
        --markets observed --seeds 0 1 2

    python benchmarks/bench_known_optimum.py --algos ppo sac dqn a2c \
        --markets no_signal observed hidden --steps 3000 --seeds 0 --eval-episodes 20

For each market it computes the oracle's value, the uniformly random policy's and flat's
(``marketsim.optimum.oracle.benchmark_values``), runs the oracle itself through the environment,
then trains each algorithm with ``rlcore.training.train`` for ``--steps`` environment steps per
seed and reads the final deterministic evaluation on fresh seeded episodes (``summary.json``).
``--preset recipe`` takes each (algorithm, market)'s settings, budget and number of
environments from ``PRESETS`` (docs/marketsim/known-optimum.md, "Agents that reach the
optimum"); ``--steps``, ``--n-envs``, ``--set`` and ``--env-arg`` given on the command line win.

Scores (docs/marketsim/known-optimum.md, eqs. (14)-(15)): on a signal market
``pct_of_oracle = 100 * agent / oracle``; on the no-signal market, where the oracle's value is 0,
``loss_pct_of_random = 100 * agent / random`` (the share of a random policy's loss to costs that
the agent still loses). On a signal market the oracle is also run on the very episodes of each
agent's evaluation (the same seeds give the same price paths), which gives
``pct_of_oracle_same_episodes`` and the standard error of the paired difference: a far less noisy
figure than the agent's mean alone. Prints JSON, writes it to ``<out>/known-optimum-<time>.json``
and prints that path as the last line. ``--jobs N`` trains N runs at once in separate processes
(on a machine with that many free cores).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from marketsim.optimum import ENV_KWARGS, HIDDEN_SIGNAL_ID, NO_SIGNAL_ID, OBSERVED_SIGNAL_ID  # noqa: E402

MARKET_IDS = {"no_signal": NO_SIGNAL_ID, "observed": OBSERVED_SIGNAL_ID, "hidden": HIDDEN_SIGNAL_ID}

EVAL_SEED_OFFSET = 1_000_003
"""``rlcore.runner.make_evaluator`` evaluates a run of seed s on environments seeded
``s + EVAL_SEED_OFFSET + i``; the paired oracle replays the same episodes."""

AGENTS = {"ppo": "ppo", "sac": "sac", "dqn": "dqn", "a2c": "a2c", "ppo-lstm": "ppo",
          "ppo-stack": "ppo"}
"""Agent name (``--algos``) -> rlcore algorithm: ``ppo-lstm`` and ``ppo-stack`` are PPO with a
recurrent network and with stacked frames (their settings are in ``PRESETS``)."""

# --8<-- [start:presets]
_PPO = {"steps": 1_000_000, "n_envs": 16, "env_args": {"action_type": "discrete"},
        "settings": {}}  # PPO's library defaults on the three levels as discrete actions
_SAC = {"steps": 200_000, "n_envs": 4, "env_args": {"action_type": "continuous"},
        "settings": {"hidden": [64, 64], "alpha": 0.001, "gradient_steps": 1}}
PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    ("ppo", "observed"): _PPO,
    # no signal: a short discount and an annealed step size, or PPO chases noise (docs)
    ("ppo", "no_signal"): {**_PPO, "settings": {"gamma": 0.5, "gae_lambda": 0.9,
                                                "learning_rate": "lin:3e-4->0"}},
    ("ppo", "hidden"): _PPO,
    ("ppo-stack", "hidden"): {**_PPO, "settings": {"frame_stack": 4}},
    ("ppo-lstm", "hidden"): {**_PPO, "steps": 300_000,
                             "settings": {"net": "lstm", "lstm_hidden": 64, "n_epochs": 4}},
    ("sac", "observed"): _SAC,
    ("sac", "no_signal"): _SAC,
}
"""(agent, market) -> the recipe: ``steps``, ``n_envs``, run/algorithm ``settings`` and
``env_args`` (docs/marketsim/known-optimum.md, "Agents that reach the optimum")."""
# --8<-- [end:presets]


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


class PairedOracle:
    """The oracle's returns on the episodes an agent's evaluation sees.

    ``rlcore.stepping.evaluate_agent`` runs ``ceil(episodes / N)`` episodes in each of N
    environments seeded ``seed + i`` and keeps the first ``episodes`` in environment order; an
    environment's k-th episode is the k-th price path its generator draws, whatever the agent
    does. This replays those paths with the oracle (cached per environment seed).
    """

    def __init__(self, env_id: str, env_kwargs: dict, resolution: int):
        import gymnasium

        from marketsim.optimum.oracle import OraclePolicy, solve

        kwargs = {**env_kwargs, "action_type": "discrete"}  # the oracle acts by level index
        self.env = gymnasium.make(env_id, **kwargs)
        u = self.env.unwrapped
        self.policy = OraclePolicy(solve(u.market, u.observe_regime, resolution))
        self.cache: dict[int, list[float]] = {}

    def _env_returns(self, seed: int, count: int) -> list[float]:
        """The oracle's returns on the first ``count`` episodes of an environment seeded ``seed``."""
        have = self.cache.setdefault(seed, [])
        if len(have) < count:  # replay from the seed: the generator's draws restart with it
            have.clear()
            for k in range(count):
                obs, info = self.env.reset(seed=seed if k == 0 else None)
                self.policy.reset()
                total, done = 0.0, False
                while not done:
                    obs, r, terminated, truncated, info = self.env.step(self.policy.act(obs, info))
                    total += r
                    done = terminated or truncated
                have.append(total)
        return have[:count]

    def returns(self, seed: int, n_envs: int, episodes: int) -> np.ndarray:
        """The oracle's returns on the episodes of ``evaluate_agent(..., episodes, seed)``."""
        per_env = -(-episodes // n_envs)
        out = [r for i in range(n_envs) for r in self._env_returns(seed + i, per_env)]
        return np.array(out[:episodes])


def score(mean: float, values: dict, no_signal: bool, suffix: str = "") -> dict:
    """eq. (14) on a signal market, eq. (15) on the no-signal one."""
    if no_signal:  # + 0.0: no -0.0
        return {"loss_pct_of_random" + suffix: 100.0 * mean / values["random"] + 0.0}
    return {"pct_of_oracle" + suffix: 100.0 * mean / values["oracle"] + 0.0}


def expected_score(run: dict, values: dict, no_signal: bool) -> dict:
    """eqs. (14)-(15) on the conditional expected returns (eq. (16)), with standard errors."""
    out = score(run["expected_return_mean"], values, no_signal, "_expected")
    ref = values["random"] if no_signal else values["oracle"]
    key = "loss_pct_of_random" if no_signal else "pct_of_oracle"
    out[key + "_expected_se"] = abs(100.0 * run["expected_return_se"] / ref)
    return out


def episode_returns(run_dir: Path, episodes: int, seed: int, n_envs: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The saved agent's return in each episode of its final evaluation, in the order that
    ``rlcore.stepping.evaluate_agent`` keeps them (their mean is the summary's
    eval_return_mean), and each episode's *conditional expected return* (below).

    Given the regime ``z_t`` and everything before, the next return is drawn from ``F[z_t]``
    whatever the agent does, so ``E[ln(1 + x_t R_{t+1}) | past, z_t] = sum_j F[z_t, j]
    ln(1 + x_t r_j)``. Summing that, minus the turnover penalty the agent paid, over an episode
    gives a number with the same expectation as the episode's return (eq. (16) of
    docs/marketsim/known-optimum.md) without the noise of the returns the market drew.
    """
    from marketsim.optimum.model import expected_log_growth
    from rlcore.runner import build_envs
    from rlcore.saved import load_run_agent
    from rlcore.stepping import VectorStepper, finished_episodes

    agent, run_cfg, algo_cfg, ckpt = load_run_agent(run_dir)
    # the batched env even for one environment: its current_info() and market are read below
    # (the same trajectories as the plain env that the run's own evaluation steps)
    envs = build_envs(run_cfg, algo_cfg, n_envs, train=False, batched=True)
    envs.load_norm_state(ckpt["norm"])
    if envs.obs_norm is not None:
        envs.obs_norm.update_running_mean = False
    per_env = -(-episodes // n_envs)
    done: list[list[tuple[float, float]]] = [[] for _ in range(n_envs)]
    try:
        venv = envs.env.unwrapped
        stepper = VectorStepper(envs.env)
        stepper.reset(agent, seed=seed)
        prev = venv.current_info()
        expected = np.zeros(n_envs)
        while min(len(d) for d in done) < per_env:
            _, info = stepper.step(agent, deterministic=True)
            stepped = info["episode_step"] > 0  # the others were reset at this step
            x = info["position"] * prev["price"] / prev["equity"]  # exposure held over the bar
            growth = expected_log_growth(venv.market, prev["regime"], x)
            expected += np.where(stepped, growth - info["turnover_penalty"], 0.0)
            prev = info
            for e in finished_episodes(info):
                if len(done[e.env]) < per_env:
                    done[e.env].append((e.ret, float(expected[e.env])))
                expected[e.env] = 0.0
    finally:
        envs.close()
    kept = [r for per in done for r in per][:episodes]
    return np.array([r for r, _ in kept]), np.array([c for _, c in kept])


def train_one(algo: str, env_id: str, env_kwargs: dict, steps: int, seed: int, n_envs: int,
              eval_episodes: int, eval_envs: int, overrides: dict, outdir: str
              ) -> tuple[dict, np.ndarray]:
    """One seeded training run: its final deterministic evaluation, and the return of each of
    its evaluation episodes."""
    from rlcore.config import resolve_configs
    from rlcore.training import train

    settings = {"algo": algo, "env": env_id, "steps": steps, "seed": seed, "n_envs": n_envs,
                "progress": False, "runs_dir": outdir, "eval_episodes": eval_episodes,
                "eval_envs": min(eval_envs, eval_episodes), "env_kwargs": dict(env_kwargs),
                "torch_threads": 1, **overrides}
    run, cfg = resolve_configs(settings)
    t0 = time.perf_counter()
    summary, path = train(run, cfg)
    wall = time.perf_counter() - t0
    n_eval = max(1, min(run.eval_envs, run.eval_episodes))
    returns, expected = episode_returns(Path(path).parent, run.eval_episodes,
                                        run.seed + EVAL_SEED_OFFSET, n_eval)
    n = len(expected)
    return ({"seed": seed, "eval_return_mean": summary["eval_return_mean"],
             "eval_return_std": summary["eval_return_std"], "eval_episodes": len(returns),
             "replayed_mean": float(returns.mean()),
             "expected_return_mean": float(expected.mean()),
             "expected_return_se": float(expected.std(ddof=1) / math.sqrt(n)) if n > 1
             else math.nan,
             "sps": summary["sps"], "wall_s": wall, "summary": str(path),
             "eval_seed": run.seed + EVAL_SEED_OFFSET, "eval_envs": n_eval}, returns)


def paired_score(run: dict, returns: np.ndarray, oracle: PairedOracle) -> dict:
    """The oracle on the run's evaluation episodes: its mean, the agent's mean as a share of it,
    and the standard error of that share (from the paired differences agent - oracle)."""
    ref = oracle.returns(run["eval_seed"], run["eval_envs"], run["eval_episodes"])
    mean = float(ref.mean())
    diff = returns - ref
    se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else math.nan
    return {"oracle_same_episodes_mean": mean,
            "pct_of_oracle_same_episodes": 100.0 * float(returns.mean()) / mean,
            "pct_of_oracle_same_episodes_se": 100.0 * se / mean}


def recipe(algo: str, market: str, args: argparse.Namespace) -> dict[str, Any]:
    """Steps, n_envs, settings and env_args of one (algorithm, market) under the CLI's choices."""
    if args.preset == "recipe" and (algo, market) not in PRESETS:
        raise SystemExit(f"--preset recipe: no recipe for {algo} on {market}")
    if args.preset != "recipe" and AGENTS[algo] != algo:
        raise SystemExit(f"--algos {algo}: a recipe's agent; use --preset recipe")
    base = PRESETS.get((algo, market), {}) if args.preset == "recipe" else {}
    return {"steps": args.steps or base.get("steps", 3000),
            "n_envs": args.n_envs or base.get("n_envs", 4),
            "settings": {**base.get("settings", {}), **parse_assignments(args.sets)},
            "env_args": {**base.get("env_args", {}), **parse_assignments(args.env_args)}}


def main(argv: list[str] | None = None) -> Path:
    """Run the benchmark; returns the path of the JSON file."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--algos", nargs="+", default=["ppo", "sac", "dqn", "a2c"],
                    choices=list(AGENTS), help="agents (ppo-lstm, ppo-stack: PPO variants)")
    ap.add_argument("--markets", nargs="+", default=list(MARKET_IDS), choices=list(MARKET_IDS))
    ap.add_argument("--preset", choices=["none", "recipe"], default="none",
                    help="recipe: each (algo, market)'s settings and budget from PRESETS")
    ap.add_argument("--steps", type=int, default=None,
                    help="environment steps per run (default: the preset's, else 3000)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--n-envs", type=int, default=None, help="default: the preset's, else 4")
    ap.add_argument("--eval-episodes", type=int, default=20)
    ap.add_argument("--eval-envs", type=int, default=4)
    ap.add_argument("--oracle-episodes", type=int, default=None,
                    help="episodes of the oracle run in the environment (default: eval episodes)")
    ap.add_argument("--resolution", type=int, default=100, help="belief grid (hidden market)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="run/algorithm setting for every run (e.g. learning_rate=1e-3)")
    ap.add_argument("--env-arg", dest="env_args", action="append", default=[],
                    metavar="KEY=VALUE", help="market setting (e.g. episode_length=64)")
    ap.add_argument("--jobs", type=int, default=1, help="training runs at once (processes)")
    ap.add_argument("--out", default="runs/bench")
    ap.add_argument("--progress-file", default=None,
                    help="append each finished run (agent, market, figures, the return of "
                    "each evaluation episode) as a JSON line")
    a = ap.parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    outdir = Path(a.out)
    rundir = outdir / f"known-optimum-{stamp}"
    result: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/bench_known_optimum.py",
                             *(argv if argv is not None else sys.argv[1:])]),
        "seeds": a.seeds, "eval_episodes": a.eval_episodes, "eval_envs": a.eval_envs,
        "preset": a.preset, "markets": {}}
    jobs: list[tuple[str, str, dict, Any]] = []
    pool = ProcessPoolExecutor(a.jobs) if a.jobs > 1 else None
    try:
        for name in a.markets:
            env_id = MARKET_IDS[name]
            for algo in a.algos:
                rc = recipe(algo, name, a)
                for s in a.seeds:
                    args = (AGENTS[algo], env_id, rc["env_args"], rc["steps"], s, rc["n_envs"],
                            a.eval_episodes, a.eval_envs, rc["settings"], str(rundir))
                    fut = pool.submit(train_one, *args) if pool else None
                    jobs.append((name, algo, rc, fut if pool else args))
        done: dict[int, tuple[dict, np.ndarray]] = {}
        order = {id(job): i for i, (_, _, _, job) in enumerate(jobs)}
        pending = [job for *_, job in jobs]
        finished = as_completed(pending) if pool else pending
        for job in finished:
            i = order[id(job)]
            done[i] = job.result() if pool else train_one(*job)
            if a.progress_file:
                name, algo = jobs[i][:2]
                with open(a.progress_file, "a") as f:
                    f.write(json.dumps({"agent": algo, "market": name, **done[i][0],
                                        "returns": done[i][1].tolist()}) + "\n")
        runs: dict[tuple[str, str], list[tuple[dict, np.ndarray]]] = {}
        for i, (name, algo, _rc, _job) in enumerate(jobs):
            runs.setdefault((name, algo), []).append(done[i])
    finally:
        if pool:
            pool.shutdown()
    for name in a.markets:
        env_id = MARKET_IDS[name]
        no_signal = ENV_KWARGS[env_id]["market"] == "no_signal"
        env_args = parse_assignments(a.env_args)
        market_args = {k: v for k, v in env_args.items() if k != "action_type"}
        ref = market_reference(env_id, market_args, a.oracle_episodes or a.eval_episodes,
                               seed=2_000_000, resolution=a.resolution)
        paired = None if no_signal else PairedOracle(env_id, market_args, a.resolution)
        entry = {"env": env_id, **ref, "agents": {}}
        for algo in a.algos:
            rc = next(rc for n, al, rc, _ in jobs if n == name and al == algo)
            rs = []
            for r, returns in runs[(name, algo)]:
                r.update(score(r["eval_return_mean"], ref["values"], no_signal))
                r.update(expected_score(r, ref["values"], no_signal))
                if paired is not None:
                    r.update(paired_score(r, returns, paired))
                rs.append(r)
            mean = statistics.fmean(r["eval_return_mean"] for r in rs)
            agg = {"eval_return_mean": mean, **score(mean, ref["values"], no_signal),
                   **score(statistics.fmean(r["expected_return_mean"] for r in rs),
                           ref["values"], no_signal, "_expected")}
            if paired is not None:
                agg["pct_of_oracle_same_episodes"] = statistics.fmean(
                    r["pct_of_oracle_same_episodes"] for r in rs)
            agg["wall_s_mean"] = statistics.fmean(r["wall_s"] for r in rs)
            entry["agents"][algo] = {**agg, "recipe": rc, "runs": rs}
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
