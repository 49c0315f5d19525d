"""Environment steps per second of MarketMaking-v0: single env and batched N = 1, 64, 1024.

Usage: python benchmarks/bench_mm_env.py [--steps 20000] [--out FILE]
Prints a JSON object and, as its last line, the path of the JSON file it wrote
(default runs/bench/mm_env-<timestamp>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from marketsim.mm.env import MarketMakingEnv  # noqa: E402
from marketsim.mm.vector import MarketMakingVectorEnv  # noqa: E402


def bench_single(action_type: str, steps: int) -> float:
    """Steps per second of one ``MarketMakingEnv`` with a fixed action, resets included."""
    env = MarketMakingEnv(action_type=action_type)
    env.reset(seed=0)
    action = 2 if action_type == "discrete" else env.action_space.sample() * 0
    start = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(action)
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - start)


def bench_vector(action_type: str, num_envs: int, env_steps: int) -> float:
    """Environment steps per second (num_envs x vector steps / second) of the batched env."""
    env = MarketMakingVectorEnv(num_envs=num_envs, action_type=action_type)
    env.reset(seed=0)
    if action_type == "discrete":
        actions = np.full(num_envs, 2)
    else:
        actions = np.zeros((num_envs,) + env.single_action_space.shape, dtype=np.float32)
    n = max(env_steps // num_envs, 50)
    start = time.perf_counter()
    for _ in range(n):
        env.step(actions)
    return n * num_envs / (time.perf_counter() - start)


def write_atomic(path: Path, data: dict) -> None:
    """Write JSON atomically: temp file in the same folder, fsync, os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def main() -> None:
    """Run the benchmark and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000, help="environment steps per case")
    parser.add_argument("--out", type=Path, default=None, help="JSON output file")
    args = parser.parse_args()
    result: dict = {"benchmark": "mm_env", "python": platform.python_version(),
                    "machine": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "load_avg_1m_before": round(os.getloadavg()[0], 2),
                    "steps": args.steps, "single_steps_per_s": {}, "vector_env_steps_per_s": {}}
    for action_type in ("discrete", "continuous", "quotes"):
        result["single_steps_per_s"][action_type] = round(bench_single(action_type, args.steps))
    for action_type in ("discrete", "continuous"):
        result["vector_env_steps_per_s"][action_type] = {
            str(n): round(bench_vector(action_type, n, args.steps * (10 if n > 1 else 1)))
            for n in (1, 64, 1024)}
    result["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or ROOT / "runs" / "bench" / f"mm_env-{stamp}.json"
    write_atomic(out, result)
    print(json.dumps(result, indent=2))
    print(out)


if __name__ == "__main__":
    main()
