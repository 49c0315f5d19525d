"""Train every algorithm (and PPO with ``--net lstm``) for a few thousand steps on each device;
print steps/s and the evaluation return side by side, as JSON (written to --out, path printed
last).

    python benchmarks/bench_device.py --devices cpu cuda --out runs/bench/device.json

On a machine without CUDA only the CPU rows run. The figures are a smoke check that every
agent trains on the GPU (tensors, recurrent state and optimisers on the right device) and a
rough cost ratio; at these small networks and batch sizes the GPU is not expected to be faster.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = [
    ("ppo", "CartPole-v1", 8, 8192, {}),
    ("ppo-lstm", "CartPole-v1", 8, 4096, {"net": "lstm", "n_steps": 64, "batch_size": 128}),
    ("a2c", "CartPole-v1", 8, 8192, {}),
    ("a2c-lstm", "CartPole-v1", 8, 4096, {"net": "lstm"}),
    ("sac", "Pendulum-v1", 1, 2000, {"learning_starts": 500}),
    ("dqn", "CartPole-v1", 1, 4000, {"learning_starts": 500}),
    ("ppo-futures", "marketsim/CryptoFutures-v0", 256, 65536,
     {"n_steps": 128, "batch_size": 256, "n_epochs": 10}),
]


def run_case(name: str, env: str, n_envs: int, steps: int, extra: dict, device: str,
             seed: int) -> dict:
    """Train one case on one device in a temporary run folder; steps/s and eval return."""
    import torch

    from rlcore.config import resolve_configs
    from rlcore.training import train

    algo = name.split("-")[0]
    with tempfile.TemporaryDirectory() as tmp:
        run, cfg = resolve_configs({"algo": algo, "env": env, "n_envs": n_envs, "steps": steps,
                                    "seed": seed, "device": device, "progress": False,
                                    "runs_dir": tmp, "eval_episodes": 4, **extra})
        t0 = time.perf_counter()
        summary, _ = train(run, cfg)
        wall = time.perf_counter() - t0
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return {"case": name, "device": device, "steps": summary["steps"], "sps": summary["sps"],
            "wall_s": wall, "eval_return_mean": summary.get("eval_return_mean")}


def main() -> None:
    """Run every case on every device, print a table and write JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    p.add_argument("--cases", nargs="+", default=[c[0] for c in CASES])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/bench/device.json")
    a = p.parse_args()
    import torch

    devices = [d for d in a.devices if d == "cpu" or torch.cuda.is_available()]
    rows, errors = [], []
    for name, env, n, steps, extra in CASES:
        if name not in a.cases:
            continue
        for dev in devices:
            try:
                r = run_case(name, env, n, steps, extra, dev, a.seed)
                rows.append(r)
                print(f"{name:9s} {dev:5s} {r['sps']:9.0f} steps/s  eval {r['eval_return_mean']}",
                      flush=True)
            except Exception as e:  # noqa: BLE001  (record what fails on a device, go on)
                errors.append({"case": name, "device": dev, "error": f"{type(e).__name__}: {e}"})
                print(f"{name:9s} {dev:5s} FAILED {type(e).__name__}: {e}", flush=True)
    info = {"torch": torch.__version__, "cuda": torch.cuda.is_available(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "threads": torch.get_num_threads()}
    for r in rows:
        cpu = next((x for x in rows if x["case"] == r["case"] and x["device"] == "cpu"), None)
        r["sps_vs_cpu"] = r["sps"] / cpu["sps"] if cpu else None
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": info, "rows": rows, "errors": errors}, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
