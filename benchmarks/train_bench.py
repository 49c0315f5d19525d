"""Train an algorithm on an environment over several seeds; optionally the same with stable-baselines3.

    python benchmarks/train_bench.py --algo ppo --env CartPole-v1 --steps 100000 --n-envs 8 \
        --seeds 0 1 2 --preset zoo --sb3

Prints JSON (steps per second and evaluation return per seed, for us and for SB3), writes it
to ``runs/bench/train-<algo>-<env>-<time>.json`` and prints that path as the last line.
stable-baselines3 is an optional benchmark dependency (``pip install -e .[bench]``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# rl-zoo3 hyperparameters, in our names; SB3 gets the same values in its names below.
PRESETS = {
    ("ppo", "CartPole-v1"): {
        "n_steps": 32, "batch_size": 256, "gae_lambda": 0.8, "gamma": 0.98, "n_epochs": 20,
        "ent_coef": 0.0, "learning_rate": "lin:0.001->0", "clip_range": "lin:0.2->0"},
    ("sac", "Pendulum-v1"): {"learning_rate": 1e-3},
    # DQN: rl-zoo3's CartPole-v1 entry, plus two changes of ours (see docs/algorithms/dqn.md,
    # "Results"): the learning rate anneals to 0 and the target follows by Polyak tau 0.05.
    ("dqn", "CartPole-v1"): {
        "learning_rate": "lin:0.0023->0", "tau": 0.05, "batch_size": 64, "buffer_size": 100_000,
        "learning_starts": 1000, "gamma": 0.99, "target_update_interval": 10,
        "train_freq": 256, "gradient_steps": 128, "exploration_fraction": 0.16,
        "exploration_final_eps": 0.04, "hidden": [256, 256]},
    ("a2c", "CartPole-v1"): {"ent_coef": 0.0},
}


def ours(algo: str, env: str, steps: int, n_envs: int, seed: int, preset: dict, outdir: Path,
         eval_episodes: int) -> dict:
    """One seeded training run of our engine; returns sps and evaluation figures."""
    from rlcore.config import resolve_configs
    from rlcore.training import train

    run, cfg = resolve_configs({"algo": algo, "env": env, "steps": steps, "n_envs": n_envs,
                                "seed": seed, "progress": False, "runs_dir": str(outdir),
                                "eval_episodes": eval_episodes, **preset})
    t0 = time.perf_counter()
    summary, path = train(run, cfg)
    return {"seed": seed, "sps": summary["sps"], "wall_s": time.perf_counter() - t0,
            "eval_return_mean": summary["eval_return_mean"],
            "eval_return_std": summary["eval_return_std"], "summary": str(path)}


def sb3_ppo_cartpole(steps: int, n_envs: int, seed: int, eval_episodes: int) -> dict:
    """stable-baselines3 PPO with the rl-zoo3 CartPole-v1 hyperparameters."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(1)

    def lin(v):
        return lambda progress_remaining: progress_remaining * v

    env = make_vec_env("CartPole-v1", n_envs=n_envs, seed=seed)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
                n_epochs=20, ent_coef=0.0, learning_rate=lin(1e-3), clip_range=lin(0.2),
                seed=seed, verbose=0, device="cpu")
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - t0
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=seed + 1_000_003)
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=eval_episodes,
                                deterministic=True)
    return {"seed": seed, "sps": steps / wall, "wall_s": wall, "eval_return_mean": float(mean),
            "eval_return_std": float(std)}


def _sb3_run(make_model, env_id: str, steps: int, n_envs: int, seed: int,
             eval_episodes: int) -> dict:
    """Train an SB3 model built by ``make_model(env)`` and evaluate it deterministically."""
    import torch
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    torch.set_num_threads(1)
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    model = make_model(env)
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - t0
    eval_env = make_vec_env(env_id, n_envs=1, seed=seed + 1_000_003)
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=eval_episodes,
                                deterministic=True)
    return {"seed": seed, "sps": steps / wall, "wall_s": wall, "eval_return_mean": float(mean),
            "eval_return_std": float(std)}


def sb3_sac_pendulum(steps: int, n_envs: int, seed: int, eval_episodes: int) -> dict:
    """stable-baselines3 SAC with the rl-zoo3 Pendulum-v1 hyperparameters (lr 1e-3)."""
    from stable_baselines3 import SAC

    return _sb3_run(lambda env: SAC("MlpPolicy", env, learning_rate=1e-3, seed=seed, verbose=0,
                                    device="cpu"), "Pendulum-v1", steps, n_envs, seed, eval_episodes)


def sb3_dqn_cartpole(steps: int, n_envs: int, seed: int, eval_episodes: int) -> dict:
    """stable-baselines3 DQN with the rl-zoo3 CartPole-v1 hyperparameters."""
    from stable_baselines3 import DQN

    return _sb3_run(lambda env: DQN(
        "MlpPolicy", env, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
        learning_starts=1000, gamma=0.99, target_update_interval=10, train_freq=256,
        gradient_steps=128, exploration_fraction=0.16, exploration_final_eps=0.04,
        policy_kwargs={"net_arch": [256, 256]}, seed=seed, verbose=0, device="cpu"),
        "CartPole-v1", steps, n_envs, seed, eval_episodes)


def sb3_a2c_cartpole(steps: int, n_envs: int, seed: int, eval_episodes: int) -> dict:
    """stable-baselines3 A2C with the rl-zoo3 CartPole-v1 hyperparameters (8 envs, ent 0)."""
    from stable_baselines3 import A2C

    return _sb3_run(lambda env: A2C("MlpPolicy", env, ent_coef=0.0, seed=seed, verbose=0,
                                    device="cpu"), "CartPole-v1", steps, n_envs, seed, eval_episodes)


SB3 = {("ppo", "CartPole-v1"): sb3_ppo_cartpole, ("sac", "Pendulum-v1"): sb3_sac_pendulum,
       ("dqn", "CartPole-v1"): sb3_dqn_cartpole, ("a2c", "CartPole-v1"): sb3_a2c_cartpole}


def aggregate(rows: list[dict]) -> dict:
    """Mean and std over seeds of sps and evaluation return."""
    sps = [r["sps"] for r in rows]
    ret = [r["eval_return_mean"] for r in rows]
    return {"sps_mean": statistics.fmean(sps), "eval_return_mean": statistics.fmean(ret),
            "eval_return_std_over_seeds": statistics.pstdev(ret), "per_seed": rows}


def main(argv: list[str] | None = None) -> Path:
    """Parse arguments, run, print JSON and the path of the JSON file."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--algo", default="ppo")
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--n-envs", type=int, default=8)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--preset", choices=["zoo", "none"], default="zoo")
    p.add_argument("--set", nargs="*", default=[], help="extra key=value settings")
    p.add_argument("--sb3", action="store_true", help="also run stable-baselines3")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--out", default=None, help="JSON output path")
    a = p.parse_args(argv)
    from rlcore.config import parse_assignments

    preset = dict(PRESETS.get((a.algo, a.env), {})) if a.preset == "zoo" else {}
    preset.update(parse_assignments(a.set))
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    outdir = Path("runs") / "bench"
    result = {"algo": a.algo, "env": a.env, "steps": a.steps, "n_envs": a.n_envs,
              "preset": preset, "machine_cores": __import__("os").cpu_count()}
    fn = SB3.get((a.algo, a.env)) if a.sb3 else None
    if a.sb3 and fn is None:
        result["sb3"] = {"error": f"no stable-baselines3 reference for {a.algo} on {a.env}"}
    rows_ours, rows_sb3 = [], []
    for s in a.seeds:  # interleaved, so both see the same machine load
        rows_ours.append(ours(a.algo, a.env, a.steps, a.n_envs, s, preset,
                              outdir / f"{stamp}-runs", a.eval_episodes))
        if fn is not None:
            rows_sb3.append(fn(a.steps, a.n_envs, s, a.eval_episodes))
    result["ours"] = aggregate(rows_ours)
    if rows_sb3:
        result["sb3"] = aggregate(rows_sb3)
        result["sps_ratio_ours_over_sb3"] = result["ours"]["sps_mean"] / result["sb3"]["sps_mean"]
    out = Path(a.out) if a.out else outdir / f"train-{a.algo}-{a.env.replace('/', '-')}-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    out.write_text(text + "\n")
    print(text)
    print(out)
    return out


if __name__ == "__main__":
    main()
