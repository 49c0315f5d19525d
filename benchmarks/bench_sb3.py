"""Speed and learning against stable-baselines3: every case, ours and SB3 interleaved per seed.

    python benchmarks/bench_sb3.py                          # every case at its seed count
    python benchmarks/bench_sb3.py --cases a2c-cartpole --seeds 0 1 2
    python benchmarks/bench_sb3.py --merge runs/bench/a.json runs/bench/b.json   # one table

For each case and seed it trains our engine (``rlcore.training.train``, what ``python cli.py
train`` runs) and then stable-baselines3 at the same settings, one after the other in this one
process, so both see the same machine load. Each side records its steps per second (environment
steps over the training loop's wall time: our runner's ``sps``, SB3's ``learn()``) and per CPU
second of this process (robust to other processes on a shared machine; not for SB3's
SubprocVecEnv, whose workers are other processes), the mean
return of deterministic evaluation episodes at the end (equal environment steps for both), the
mean return of its last 100 training episodes, and a learning curve (mean training-episode return
in ten equal bins of environment steps). Torch threads: both sides on the same number, our
default (``torch_threads`` in ``config.yaml``) unless ``--threads`` says otherwise; SB3 alone
would take torch's default (all cores), which on a loaded machine measures contention, not code.

The JSON (per seed, per case means and spreads, ours / SB3 ratios) is written to ``--out``
(default ``runs/bench/sb3-<time>.json``), whose path is printed last. stable-baselines3 is an
optional benchmark dependency (``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FUTURES = "marketsim/CryptoFutures-v0"
KNOWN_OPTIMUM = "marketsim/FuturesObservedSignal-v0"


@dataclass(frozen=True)
class Case:
    """One comparison: the same environment, budget and hyperparameters on both sides.

    ``ours`` are our settings (``--set`` keys); ``sb3`` builds the SB3 model from (vec env,
    seed); ``vec`` is SB3's vector env class (``dummy`` or ``subproc``); ours always uses its own
    (the futures market is natively batched).
    """

    algo: str
    env: str
    steps: int
    n_envs: int
    ours: dict[str, Any]
    sb3: Callable[[Any, int], Any]
    vec: str = "dummy"
    eval_episodes: int = 10
    seeds: int = 5
    note: str = ""
    extra_sb3: dict[str, Any] = field(default_factory=dict)
    env_args: dict[str, Any] = field(default_factory=dict)
    """Environment keyword arguments of both sides (e.g. the action type)."""


def _lin(v: float) -> Callable[[float], float]:
    return lambda progress_remaining: progress_remaining * v


def _sb3_ppo_zoo(env, seed):
    from stable_baselines3 import PPO

    return PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
               n_epochs=20, ent_coef=0.0, learning_rate=_lin(1e-3), clip_range=_lin(0.2),
               seed=seed, verbose=0, device="cpu")


def _sb3_a2c(env, seed):
    from stable_baselines3 import A2C

    return A2C("MlpPolicy", env, seed=seed, verbose=0, device="cpu")


def _sb3_dqn_zoo(env, seed):
    from stable_baselines3 import DQN

    return DQN("MlpPolicy", env, learning_rate=_lin(2.3e-3), batch_size=64, buffer_size=100_000,
               learning_starts=1000, gamma=0.99, target_update_interval=10, train_freq=256,
               gradient_steps=128, exploration_fraction=0.16, exploration_final_eps=0.04,
               tau=0.05, policy_kwargs={"net_arch": [256, 256]}, seed=seed, verbose=0,
               device="cpu")


def _sb3_sac(env, seed):
    from stable_baselines3 import SAC

    return SAC("MlpPolicy", env, learning_rate=1e-3, seed=seed, verbose=0, device="cpu")


def _sb3_ppo_futures(env, seed):
    from stable_baselines3 import PPO

    return PPO("MlpPolicy", env, n_steps=128, batch_size=256, n_epochs=10, seed=seed, verbose=0,
               device="cpu")


_PPO_ZOO = {"n_steps": 32, "batch_size": 256, "gae_lambda": 0.8, "gamma": 0.98, "n_epochs": 20,
            "ent_coef": 0.0, "learning_rate": "lin:0.001->0", "clip_range": "lin:0.2->0"}
# DQN at rl-zoo3's CartPole-v1 settings, both sides with a Polyak target (tau 0.05) and the
# learning rate annealed to 0; ours with its defaults otherwise (double DQN, prioritised replay)
_DQN_ZOO = {"learning_rate": "lin:0.0023->0", "tau": 0.05, "batch_size": 64,
            "buffer_size": 100_000, "learning_starts": 1000, "gamma": 0.99,
            "target_update_interval": 10, "train_freq": 256, "gradient_steps": 128,
            "exploration_fraction": 0.16, "exploration_final_eps": 0.04, "hidden": [256, 256]}
_PPO_FUT = {"n_steps": 128, "batch_size": 256, "n_epochs": 10}

# --8<-- [start:cases]
CASES: dict[str, Case] = {
    "ppo-cartpole": Case("ppo", "CartPole-v1", 100_000, 8, _PPO_ZOO, _sb3_ppo_zoo, seeds=3),
    "a2c-cartpole": Case("a2c", "CartPole-v1", 100_000, 8, {}, _sb3_a2c),
    "dqn-cartpole": Case("dqn", "CartPole-v1", 50_000, 1, _DQN_ZOO, _sb3_dqn_zoo, seeds=3,
                         note="ours with its defaults: PER and double DQN"),
    "dqn-cartpole-uniform": Case("dqn", "CartPole-v1", 50_000, 1,
                                 {**_DQN_ZOO, "per": False, "double": False}, _sb3_dqn_zoo,
                                 seeds=2, note="SB3's algorithm: no PER, no double DQN"),
    "dqn-cartpole-torch-init": Case("dqn", "CartPole-v1", 50_000, 1, {**_DQN_ZOO, "init": "torch"},
                                    _sb3_dqn_zoo, seeds=3,
                                    note="our defaults with SB3's initialisation"),
    "dqn-cartpole-uniform-torch-init": Case(
        "dqn", "CartPole-v1", 50_000, 1,
        {**_DQN_ZOO, "per": False, "double": False, "init": "torch"}, _sb3_dqn_zoo, seeds=3,
        note="SB3's algorithm and SB3's initialisation (nn.Linear's default)"),
    "sac-pendulum": Case("sac", "Pendulum-v1", 10_000, 1, {"learning_rate": 1e-3}, _sb3_sac),
    "ppo-known-optimum": Case("ppo", KNOWN_OPTIMUM, 100_000, 16, _PPO_FUT, _sb3_ppo_futures,
                              env_args={"action_type": "discrete"},
                              note="docs/marketsim/known-optimum.md, observed signal, "
                                   "discrete levels; its recipe trains 1M steps"),
    "ppo-futures-8": Case("ppo", FUTURES, 50_000, 8, _PPO_FUT, _sb3_ppo_futures,
                          eval_episodes=4, seeds=2),
    "ppo-futures-64": Case("ppo", FUTURES, 100_000, 64, _PPO_FUT, _sb3_ppo_futures,
                           eval_episodes=4, seeds=2),
    "ppo-futures-256": Case("ppo", FUTURES, 200_000, 256, _PPO_FUT, _sb3_ppo_futures,
                            eval_episodes=4, seeds=2),
    "ppo-futures-64-subproc": Case("ppo", FUTURES, 100_000, 64, _PPO_FUT, _sb3_ppo_futures,
                                   vec="subproc", eval_episodes=4, seeds=1),
    "ppo-futures-256-subproc": Case("ppo", FUTURES, 200_000, 256, _PPO_FUT, _sb3_ppo_futures,
                                    vec="subproc", eval_episodes=4, seeds=1),
}
# --8<-- [end:cases]

CURVE_BINS = 10
SUBPROC_MB = 50
"""Memory of one SB3 SubprocVecEnv worker on the futures market (proportional set size, fork,
after the parent built one market: 48 MB measured with 16 workers; 165 MB when each worker
imported pandas, SciPy and pyarrow itself on its first market, 260 MB with forkserver)."""


def memory_shortfall(case: Case) -> str | None:
    """Why the machine cannot hold the case's SubprocVecEnv workers now, or None."""
    if case.vec != "subproc":
        return None
    need = case.n_envs * SUBPROC_MB + 2048
    try:
        avail = next(int(line.split()[1]) // 1024 for line in open("/proc/meminfo")
                     if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        return None
    if avail >= need:
        return None
    return (f"SB3 SubprocVecEnv with {case.n_envs} workers needs about {need:,} MB "
            f"({SUBPROC_MB} MB per worker, each imports torch); {avail:,} MB available")


def _curve(ends: list[tuple[int, float]], steps: int) -> list[float | None]:
    """Mean return of the training episodes that ended in each of ``CURVE_BINS`` equal bins of
    environment steps (None where none ended)."""
    bins: list[list[float]] = [[] for _ in range(CURVE_BINS)]
    for step, ret in ends:
        bins[min(CURVE_BINS - 1, max(0, (step - 1) * CURVE_BINS // steps))].append(ret)
    return [statistics.fmean(b) if b else None for b in bins]


def run_ours(case: Case, seed: int, outdir: Path, threads: int) -> dict[str, Any]:
    """One seeded run of our engine through ``train`` (run folder, TensorBoard and all) on
    ``threads`` torch threads."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rlcore.config import resolve_configs
    from rlcore.runs import RunDir
    from rlcore.training import TrainingRun

    run, cfg = resolve_configs({"algo": case.algo, "env": case.env, "steps": case.steps,
                                "n_envs": case.n_envs, "seed": seed, "progress": False,
                                "runs_dir": str(outdir), "eval_episodes": case.eval_episodes,
                                "checkpoint_every": 0, "env_kwargs": dict(case.env_args),
                                "torch_threads": threads, **case.ours})
    rd = RunDir(outdir / f"{case.algo}-{case.n_envs}-{seed}-{time.time_ns()}").create()
    tr = TrainingRun(run, cfg, rd)
    summary = tr.train()
    acc = EventAccumulator(str(rd.tb), size_guidance={"scalars": 0})
    acc.Reload()
    ends = [(e.step, e.value) for e in acc.Scalars("charts/episode_return")] \
        if "charts/episode_return" in acc.Tags()["scalars"] else []
    return {"seed": seed, "sps": summary["sps"], "cpu_sps": case.steps / tr.runner.cpu_s,
            "eval_return_mean": summary["eval_return_mean"],
            "train_return_mean_100": summary["train_return_mean_100"],
            "curve": _curve(ends, case.steps), "torch_threads": run.torch_threads}


def run_sb3(case: Case, seed: int, threads: int) -> dict[str, Any]:
    """One seeded run of stable-baselines3 at the case's settings, on ``threads`` torch threads."""
    import numpy as np
    import torch
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    torch.set_num_threads(threads)
    kwargs = _env_kwargs(case)
    vec_cls, vec_kw = DummyVecEnv, None
    if case.vec == "subproc":  # fork: each worker shares the parent's pages until it writes
        vec_cls, vec_kw = SubprocVecEnv, {"start_method": "fork"}
        _Maker(case.env)(**kwargs).close()  # the market's lazy imports, once, before the fork
        gc.collect()
        gc.freeze()  # the workers' collector then leaves the parent's objects' pages shared
    try:
        env = make_vec_env(_Maker(case.env), n_envs=case.n_envs, seed=seed, env_kwargs=kwargs,
                           vec_env_cls=vec_cls, vec_env_kwargs=vec_kw)
        try:
            model = case.sb3(env, seed)
            t0, c0 = time.perf_counter(), time.process_time()
            model.learn(total_timesteps=case.steps)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            ends = _sb3_episode_ends(env, case.n_envs)
        finally:
            env.close()
    finally:
        gc.unfreeze()  # a no-op unless frozen above
    eval_env = make_vec_env(_Maker(case.env), n_envs=1, seed=seed + 1_000_003, env_kwargs=kwargs)
    mean, _ = evaluate_policy(model, eval_env, n_eval_episodes=case.eval_episodes,
                              deterministic=True)
    eval_env.close()
    last = [r for _, r in sorted(ends)][-100:]
    # CPU time of this process: meaningless for SubprocVecEnv (the workers' time is not in it)
    cpu_sps = None if case.vec == "subproc" else model.num_timesteps / cpu
    return {"seed": seed, "sps": model.num_timesteps / wall, "cpu_sps": cpu_sps,
            "eval_return_mean": float(mean),
            "train_return_mean_100": float(np.mean(last)) if last else float("nan"),
            "curve": _curve(ends, case.steps), "torch_threads": threads}


class _Maker:
    """``gym.make(env_id, **kwargs)`` after importing the package that registers the id, also
    in SubprocVecEnv's worker processes (picklable)."""

    def __init__(self, env_id: str):
        self.env_id = env_id

    def __call__(self, **kwargs: Any) -> Any:
        import gymnasium as gym

        if "/" in self.env_id:
            __import__(self.env_id.split("/")[0])
        return gym.make(self.env_id, **kwargs)


def _sb3_episode_ends(env, n_envs: int) -> list[tuple[int, float]]:
    """(approximate global step, return) of every finished training episode, from the Monitor
    wrapper of each environment: an episode that ends after t steps of its environment ended near
    global step t * n_envs."""
    import numpy as np

    rets = env.env_method("get_episode_rewards")
    lens = env.env_method("get_episode_lengths")
    out = []
    for r, l in zip(rets, lens):
        for t, ret in zip(np.cumsum(l), r):
            out.append((int(t) * n_envs, float(ret)))
    return out


def _env_kwargs(case: Case) -> dict[str, Any]:
    """The environment's keyword arguments as our runner resolves them (the action type)."""
    from rlcore.config import agent_class
    from rlcore.envs import env_kwargs_for

    if case.env.startswith("marketsim/"):
        import marketsim  # noqa: F401  (registers the markets for SB3's gym.make)
    return env_kwargs_for(case.env, case.env_args, agent_class(case.algo).action_types)


def _stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def mean_std(key: str) -> tuple[float, float]:  # over the seeds that have a value
        vals = [r[key] for r in rows if r[key] == r[key]]
        if not vals:
            return float("nan"), float("nan")
        return statistics.fmean(vals), statistics.pstdev(vals) if len(vals) > 1 else 0.0

    sps, sps_sd = mean_std("sps")
    cpu = [r["cpu_sps"] for r in rows if r.get("cpu_sps")]
    ret, ret_sd = mean_std("eval_return_mean")
    tr, tr_sd = mean_std("train_return_mean_100")
    return {"sps_mean": sps, "sps_std": sps_sd,
            "cpu_sps_mean": statistics.fmean(cpu) if cpu else None, "eval_return_mean": ret,
            "eval_return_std_over_seeds": ret_sd, "train_return_mean_100": tr,
            "train_return_std_over_seeds": tr_sd}


def summarise(case: Case, ours: list[dict], sb3: list[dict]) -> dict[str, Any]:
    """Means and spreads over seeds, and the ours/SB3 ratios (per seed, then their mean)."""
    ratios = [o["sps"] / s["sps"] for o, s in zip(ours, sb3)]
    cpu_ratios = [o["cpu_sps"] / s["cpu_sps"] for o, s in zip(ours, sb3) if s.get("cpu_sps")]
    out = {"algo": case.algo, "env": case.env, "steps": case.steps, "n_envs": case.n_envs,
           "sb3_vec_env": case.vec, "settings_ours": case.ours, "note": case.note,
           "ours": {**_stats(ours), "per_seed": ours}, "sb3": {**_stats(sb3), "per_seed": sb3},
           "sps_ratio_per_seed": ratios,
           "sps_ratio_mean": statistics.fmean(ratios) if ratios else None,
           "cpu_sps_ratio_per_seed": cpu_ratios,
           "cpu_sps_ratio_mean": statistics.fmean(cpu_ratios) if cpu_ratios else None}
    return out


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import stable_baselines3
    import torch

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "stable_baselines3": stable_baselines3.__version__,
            "load_average_at_start": os.getloadavg(), "platform": platform.platform()}


def default_threads(case: Case) -> int:
    """Our default ``torch_threads`` for the case (``rlcore.config.default_torch_threads``: 1 for
    the closed form, else half the cores, at most 4), given to both sides."""
    from rlcore.config import resolve_configs

    run, _ = resolve_configs({"algo": case.algo, "env": case.env, **case.ours})
    return run.torch_threads


def main(argv: list[str] | None = None) -> Path:
    """Run the chosen cases over their seeds; write the JSON and print its path last."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="seeds (default: 0 .. the case's seed count - 1)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply every case's step budget (e.g. 0.02 for a smoke run)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads of both sides (default: our default for the case)")
    p.add_argument("--out", default=None, help="JSON output path")
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                   help="run nothing: merge these result files into one (--out) and print its "
                        "table")
    a = p.parse_args(argv)
    if a.merge:
        merged = merge(a.merge)
        out = Path(a.out) if a.out else Path("runs") / "bench" / "sb3-merged.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(merged, indent=2) + "\n")
        print(table(merged))
        print(out)
        return out
    threads = a.threads or "our default per case"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    out = Path(a.out) if a.out else Path("runs") / "bench" / f"sb3-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"command": " ".join(["python", "benchmarks/bench_sb3.py",
                                                   *(argv if argv is not None else sys.argv[1:])]),
                              "machine": machine(), "torch_threads": threads,
                              "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.cases:
            case = CASES[name]
            if a.scale != 1.0:
                case = dataclasses.replace(case, steps=max(case.n_envs * 64,
                                                           int(case.steps * a.scale)))
            short = memory_shortfall(case)
            if short:
                print(f"{name}: skipped: {short}", flush=True)
                result["cases"][name] = {"skipped": short}
                continue
            ours, sb3 = [], []
            n = a.threads or default_threads(case)
            for seed in (a.seeds if a.seeds is not None else range(case.seeds)):
                ours.append(run_ours(case, seed, Path(tmp), n))  # interleaved: same load
                sb3.append(run_sb3(case, seed, n))
                print(f"{name} seed {seed}: ours {ours[-1]['sps']:.0f} steps/s "
                      f"({ours[-1]['cpu_sps']:.0f} per CPU s) return "
                      f"{ours[-1]['eval_return_mean']:.2f} | SB3 {sb3[-1]['sps']:.0f} steps/s "
                      f"({sb3[-1]['cpu_sps'] or 0:.0f} per CPU s) return "
                      f"{sb3[-1]['eval_return_mean']:.2f}", flush=True)
            result["cases"][name] = summarise(case, ours, sb3)
            out.write_text(json.dumps(result, indent=2) + "\n")  # partial results survive
    print(table(result))
    print(out)
    return out


def merge(paths: list[str]) -> dict[str, Any]:
    """One result from several JSON files of this script (runs split by case or seed): each
    case's seeds concatenated in file order and summarised again; the machine and command of
    every file kept under ``parts``."""
    out: dict[str, Any] = {"parts": [], "cases": {}}
    seeds: dict[str, tuple[Case, list[dict], list[dict]]] = {}
    for path in paths:
        res = json.loads(Path(path).read_text())
        out["parts"].append({"file": str(path), "command": res["command"],
                             "machine": res["machine"], "torch_threads": res["torch_threads"]})
        for name, c in res["cases"].items():
            if "skipped" in c:
                out["cases"].setdefault(name, c)
                continue
            case = dataclasses.replace(CASES[name], steps=c["steps"])
            _, ours, sb3 = seeds.setdefault(name, (case, [], []))
            ours.extend(c["ours"]["per_seed"])
            sb3.extend(c["sb3"]["per_seed"])
    for name, (case, ours, sb3) in seeds.items():
        out["cases"][name] = summarise(case, ours, sb3)
    out["cases"] = {k: out["cases"][k] for k in CASES if k in out["cases"]}  # the cases' order
    return out


def _num(x: float) -> str:
    """A return: one decimal from 10 up, three significant digits below (the markets' small
    returns)."""
    return f"{x:.1f}" if abs(x) >= 10 else f"{x:.3g}"


def _ratio(per_seed: list[float]) -> str:
    """Mean ratio, and its range over seeds when there are several."""
    if not per_seed:
        return "-"
    mean = statistics.fmean(per_seed)
    if len(per_seed) == 1:
        return f"{mean:.2f}"
    return f"{mean:.2f} ({min(per_seed):.2f}-{max(per_seed):.2f})"


def table(result: dict[str, Any]) -> str:
    """The Markdown table of docs/guide/performance.md."""
    lines = ["| case | envs | steps | seeds | ours steps/s | SB3 steps/s | ratio (wall) | "
             "ratio (CPU time) | eval return ours | eval return SB3 | "
             "train return (last 100) ours / SB3 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, c in result["cases"].items():
        if "skipped" in c:
            lines.append(f"| {name} | | | | | | | | skipped: {c['skipped']} | | |")
            continue
        o, s = c["ours"], c["sb3"]
        vec = f" ({c['sb3_vec_env']})" if c["sb3_vec_env"] != "dummy" else ""
        lines.append(
            f"| {name}{vec} | {c['n_envs']} | {c['steps']:,} | {len(o['per_seed'])} | "
            f"{o['sps_mean']:,.0f} | {s['sps_mean']:,.0f} | {_ratio(c['sps_ratio_per_seed'])} | "
            f"{_ratio(c['cpu_sps_ratio_per_seed'])} | "
            f"{_num(o['eval_return_mean'])} ± {_num(o['eval_return_std_over_seeds'])} | "
            f"{_num(s['eval_return_mean'])} ± {_num(s['eval_return_std_over_seeds'])} | "
            f"{_num(o['train_return_mean_100'])} / {_num(s['train_return_mean_100'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    warnings.filterwarnings("ignore", message=".*render_mode.*")  # SB3's make_vec_env, harmless
    main()
