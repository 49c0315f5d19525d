"""Tuning benchmarks (docs/guide/tuning.md, "Results"): small by design, so their budgets are
printed with their figures.

- ``tuned``: tune PPO on an environment (``python cli.py tune``'s study, median over seeds), then
  train the default and the tuned configuration on seeds the study never used and compare their
  final evaluations. On the known-optimum market the comparison runs through
  ``benchmarks/bench_known_optimum.py``, which scores each as a percentage of the oracle on the
  same episodes.
- ``workers``: trials per hour of one study with 1 and 2 worker processes on one journal.
- ``pbt``: population-based training against the same population with its values fixed, at
  equal compute (members x steps).

Prints JSON and, last, the path of the JSON file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlcore.tune.space import default_space, space_to_dict  # noqa: E402
from rlcore.tune.spec import TuneSpec  # noqa: E402

KNOWN = "marketsim/FuturesObservedSignal-v0"


def _final(overrides: dict[str, Any], params: dict[str, Any], seeds: list[int]) -> list[float]:
    from rlcore.tune.objective import train_and_evaluate, trial_configs

    out = []
    for s in seeds:
        run, algo = trial_configs(overrides, params, s)
        out.append(float(train_and_evaluate(run, algo, lambda r, k: None)["eval_return_mean"]))
    return out


def _tune(name: str, overrides: dict[str, Any], space: dict, a: argparse.Namespace,
          workers: int = 1, pruner: str = "median") -> tuple[Any, float, TuneSpec]:
    from rlcore.tune.backends import run_workers
    from rlcore.tune.report import write_results
    from rlcore.tune.study import open_study

    folder = Path(a.out) / name
    shutil.rmtree(folder, ignore_errors=True)
    spec = TuneSpec(folder=str(folder), study=name, overrides=overrides, space=space,
                    trials=a.trials, seeds=tuple(range(a.tune_seeds)), pruner=pruner,
                    startup_trials=a.startup_trials)
    t0 = time.perf_counter()
    run_workers(spec, workers)
    wall = time.perf_counter() - t0
    study = open_study(spec)
    write_results(study, spec)
    return study, wall, spec


def case_tuned(env: str, a: argparse.Namespace) -> dict[str, Any]:
    """Tune PPO on ``env``; default vs tuned on held-out seeds."""
    env_kwargs = {"action_type": "discrete"} if env == KNOWN else {}
    overrides = {"algo": "ppo", "env": env, "steps": a.steps, "n_envs": a.n_envs,
                 "eval_every": a.steps // 4, "eval_episodes": a.eval_episodes,
                 "eval_envs": min(4, a.eval_episodes), "torch_threads": 1,
                 "env_kwargs": env_kwargs}
    space = space_to_dict(default_space("ppo"))
    space["n_steps"] = {"type": "int", "low": 64, "high": 1024, "log": True}  # small budgets
    study, wall, _ = _tune(f"tuned-{env.replace('/', '-')}", overrides, space, a)
    best = study.best_trial.params
    seeds = list(range(100, 100 + a.eval_seeds))
    out: dict[str, Any] = {"env": env, "trials": a.trials, "tune_seeds": a.tune_seeds,
                           "steps": a.steps, "study_wall_s": wall, "best_params": best,
                           "best_study_score": study.best_value,
                           "pruned": sum(t.state.name == "PRUNED" for t in study.trials),
                           "eval_seeds": seeds}
    if env == KNOWN:
        for label, params in (("default", {}), ("tuned", best)):
            cmd = [sys.executable, "benchmarks/bench_known_optimum.py", "--algos", "ppo",
                   "--markets", "observed", "--steps", str(a.steps), "--n-envs",
                   str(a.n_envs), "--env-arg", "action_type=discrete", "--eval-episodes",
                   str(a.eval_episodes), "--out", str(Path(a.out) / "known"),
                   "--seeds", *map(str, seeds), *sum((["--set", f"{k}={v}"]
                                                      for k, v in params.items()), [])]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            path = res.stdout.strip().splitlines()[-1]
            agent = json.loads(Path(path).read_text())["markets"]["observed"]["agents"]["ppo"]
            out[label] = {"pct_of_oracle_same_episodes": agent.get("pct_of_oracle_same_episodes"),
                          "pct_of_oracle": agent["pct_of_oracle"],
                          "per_seed": [r.get("pct_of_oracle_same_episodes")
                                       for r in agent["runs"]], "json": path}
    else:
        for label, params in (("default", {}), ("tuned", best)):
            scores = _final(overrides, params, seeds)
            out[label] = {"eval_return_mean": statistics.fmean(scores), "per_seed": scores}
    return out


def case_workers(a: argparse.Namespace) -> dict[str, Any]:
    """Trials per hour with 1 and 2 workers (CartPole, no pruning: equal trials)."""
    overrides = {"algo": "ppo", "env": "CartPole-v1", "steps": a.worker_steps, "n_envs": 4,
                 "eval_every": 0, "eval_episodes": 2, "eval_envs": 2, "torch_threads": 1}
    space = space_to_dict(default_space("ppo"))
    space["n_steps"] = {"type": "int", "low": 32, "high": 256, "log": True}
    out = {"steps_per_trial": a.worker_steps, "trials": a.trials}
    a1 = argparse.Namespace(**{**vars(a), "tune_seeds": 1})
    for w in (1, 2):
        _, wall, _ = _tune(f"workers-{w}", overrides, space, a1, workers=w, pruner="none")
        out[f"workers_{w}"] = {"wall_s": wall, "trials_per_hour": 3600 * a.trials / wall}
    return out


def case_pbt(a: argparse.Namespace) -> dict[str, Any]:
    """PBT vs the same population with fixed values, equal compute."""
    from rlcore.tune.pbt import run_pbt

    overrides = {"algo": "ppo", "env": a.pbt_env, "steps": a.pbt_steps, "n_envs": 4,
                 "n_steps": 128, "eval_episodes": a.eval_episodes,
                 "eval_envs": min(4, a.eval_episodes), "torch_threads": 1}
    space = {"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
             "gamma": {"type": "float", "low": 0.9, "high": 0.9999},
             "clip_range": {"type": "float", "low": 0.1, "high": 0.3}}
    out: dict[str, Any] = {"env": a.pbt_env, "population": a.population,
                           "steps_per_member": a.pbt_steps, "interval": a.pbt_interval,
                           "seeds": a.pbt_seeds}
    hist: list[dict[str, Any]] = []
    for label, exploit in (("pbt", True), ("fixed", False)):
        rows = []
        for s in range(a.pbt_seeds):
            folder = Path(a.out) / f"{label}-{s}"
            shutil.rmtree(folder, ignore_errors=True)
            r = run_pbt(overrides, space, folder, a.population, a.pbt_interval, seed=s,
                        exploit=exploit, echo=lambda line: None)
            hist.append(r)
            rows.append({"best": r["best_score"],
                         "mean": statistics.fmean(r["final"].values())})
        out[f"{label}_history"] = [r_["history"] for r_ in hist]
        hist.clear()
        out[label] = {"best_member_mean": statistics.fmean(x["best"] for x in rows),
                      "population_mean": statistics.fmean(x["mean"] for x in rows),
                      "per_seed": rows}
    if a.plot:
        plot_pbt(out, a.plot)
    return out


def plot_pbt(out: dict[str, Any], path: str) -> None:
    """Population mean and best member per round, PBT against the fixed population."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    for label, color in (("pbt", "C0"), ("fixed", "C1")):
        for s, history in enumerate(out[f"{label}_history"]):
            steps = sorted({h["step"] for h in history})
            mean = [statistics.fmean(h["score"] for h in history if h["step"] == t) for t in steps]
            best = [max(h["score"] for h in history if h["step"] == t) for t in steps]
            name = "PBT" if label == "pbt" else "fixed values"
            ax.plot(steps, mean, color=color, lw=1.8, label=f"{name}: population mean" if s == 0
                    else None)
            ax.plot(steps, best, color=color, lw=0.8, ls="--",
                    label=f"{name}: best member" if s == 0 else None)
    ax.set_xlabel("environment steps per member")
    ax.set_ylabel("evaluation return")
    ax.set_title(f"{out['env']}: {out['population']} members, seeds 0..{out['seeds'] - 1}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> Path:
    """Run the chosen cases; write and print the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", default=["pendulum", "known", "workers", "pbt"],
                    choices=["pendulum", "known", "workers", "pbt"])
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--steps", type=int, default=30_000, help="steps per run (tuned cases)")
    ap.add_argument("--tune-seeds", type=int, default=2, help="seeds per trial")
    ap.add_argument("--eval-seeds", type=int, default=3, help="held-out seeds, default vs tuned")
    ap.add_argument("--n-envs", type=int, default=8)
    ap.add_argument("--eval-episodes", type=int, default=8)
    ap.add_argument("--startup-trials", type=int, default=4)
    ap.add_argument("--worker-steps", type=int, default=4096)
    ap.add_argument("--pbt-env", default="CartPole-v1")
    ap.add_argument("--pbt-steps", type=int, default=30_000)
    ap.add_argument("--pbt-interval", type=int, default=5120)
    ap.add_argument("--population", type=int, default=4)
    ap.add_argument("--pbt-seeds", type=int, default=1)
    ap.add_argument("--plot", default=None, help="PNG of the PBT case's rounds")
    ap.add_argument("--out", default="runs/bench-tune")
    a = ap.parse_args(argv)
    result: dict[str, Any] = {"command": " ".join(["python", "benchmarks/bench_tune.py",
                                                   *(argv if argv is not None else sys.argv[1:])])}
    for case in a.cases:
        t0, c0 = time.perf_counter(), time.process_time()
        if case == "pendulum":
            result[case] = case_tuned("Pendulum-v1", a)
        elif case == "known":
            result[case] = case_tuned(KNOWN, a)
        elif case == "workers":
            result[case] = case_workers(a)
        else:
            result[case] = case_pbt(a)
        result[case]["wall_s"] = time.perf_counter() - t0
        result[case]["cpu_s_main_process"] = time.process_time() - c0
    text = json.dumps(result, indent=2)
    print(text)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bench-tune-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(text + "\n")
    print(path)
    return path


if __name__ == "__main__":
    main()
