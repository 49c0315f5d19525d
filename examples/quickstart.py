"""The Python API in one script: an environment, an agent and a runner; a hyperparameter changed
from code; a run folder; a backtest. docs/guide/python-api.md walks through it section by section.

    python examples/quickstart.py --steps 20000

Writes under runs/ only (a run folder and its backtest); prints the backtest's report.json last.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DATA = Path("../shared/data/binance-spot_ETHUSDT_1h_20170817_20230303.csv.gz")


def main(steps: int) -> Path:
    # --8<-- [start:build]
    from rlcore.config import resolve_configs
    from rlcore.runner import Runner, build_agent, build_envs
    from rlcore.sinks import MemorySink

    # The same keys as `--set` and `--config`: each goes to RunConfig or to PPOConfig.
    run, ppo = resolve_configs({"algo": "ppo", "env": "CartPole-v1", "steps": steps,
                                "n_envs": 8, "learning_rate": "lin:0.001->0", "gamma": 0.98})
    envs = build_envs(run, ppo)               # 8 CartPoles in one SyncVectorEnv
    agent = build_agent(run, ppo, envs)       # a PPO agent for their spaces
    runner = Runner(agent, envs, MemorySink(), run)
    runner.run(steps // 2)                    # step until the clock reads steps // 2
    # --8<-- [end:build]

    # --8<-- [start:change]
    # Every change goes through the one door: validated, applied at the clock's step, recorded.
    runner.apply_change("clip_range", "lin:0.2->0.05", source="notebook")
    runner.apply_change("gamma", 0.99, source="notebook")   # PPO recomputes its advantages
    runner.run(steps)
    for change in runner.sink.changes:
        print(change.to_dict())       # {'step': ..., 'field': 'clip_range', 'old': ..., ...}
    print("mean return of the last 100 episodes:", round(runner.recent_return(), 1))
    envs.close()
    # --8<-- [end:change]

    # --8<-- [start:train]
    from rlcore.training import train

    # A run folder (config.yaml, control.yaml, checkpoints, summary.json), as `cli.py train`.
    run, sac = resolve_configs({"algo": "sac", "env": "marketsim/CryptoFutures-v0",
                                "env_kwargs": {"data": str(DATA)}, "steps": steps,
                                "n_envs": 1, "eval_episodes": 2})
    summary, summary_path = train(run, sac)
    print(summary["status"], summary["steps"], "steps;", summary_path)
    # --8<-- [end:train]

    # --8<-- [start:backtest]
    from marketsim.evaluation.backtest_report import run_backtest

    # One deterministic episode over the first half of 2022, against flat and buy-and-hold.
    report = run_backtest([summary_path.parent], data=DATA, start="2022-01-01",
                          end="2022-07-01")
    print("report:", report.parent / "report.html")
    # --8<-- [end:backtest]
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000,
                        help="environment steps of each training (default 20000)")
    print(main(parser.parse_args().steps))
