"""Prioritised replay micro-benchmark: sample + priority update of batches from a full buffer.

    python benchmarks/bench_per.py [--capacity 1000000] [--batch 256] [--seconds 10] [--out F]

Fills a buffer of ``capacity`` transitions (CartPole-sized: 4 floats per observation, one
environment), gives every transition a random priority, then repeats for ``--seconds``:
draw a prioritised batch (stratified prefix-sum search in the sum tree, importance weights from
the min tree, one-step gather) and write back new priorities for the batch. Reports batches per
second for the whole cycle and for its parts. Prints JSON, writes it to
``runs/bench/per-<time>.json`` (or ``--out``), and prints that path as the last line.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlcore.per import PrioritizedReplayBuffer  # noqa: E402
from rlcore.replay import ReplayBuffer  # noqa: E402


def _rate(fn, seconds: float) -> tuple[float, int]:
    """Calls of ``fn`` per second over about ``seconds`` (after 20 warm-up calls)."""
    for _ in range(20):
        fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(50):
            fn()
        n += 50
    return n / (time.perf_counter() - t0), n


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns the result dict."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--capacity", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--obs-dim", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=str, default=None)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    cap, B = args.capacity, args.batch
    per = PrioritizedReplayBuffer(ReplayBuffer(cap, 1, (args.obs_dim,), (), np.int64,
                                               seed=args.seed), alpha=0.6, beta=0.4)
    t0 = time.perf_counter()
    chunk = 10_000
    buf = per.buffer
    for start in range(0, cap, chunk):  # fill the arrays directly, then the trees at once
        k = min(chunk, cap - start)
        buf.obs[start : start + k, 0] = rng.normal(size=(k, args.obs_dim))
        buf.next_obs[start : start + k, 0] = rng.normal(size=(k, args.obs_dim))
        buf.rewards[start : start + k, 0] = rng.normal(size=k)
    buf.count[:] = cap
    per.p[:] = rng.exponential(1.0, cap) + per.eps
    per.set_alpha(per.alpha)
    fill_s = time.perf_counter() - t0
    assert per.size == cap

    def sample():
        return per.sample(B, 0.99, 1)

    def cycle():
        b = per.sample(B, 0.99, 1)
        per.update_priorities(b.slots, rng.exponential(1.0, B))

    slots = per.sample_slots(B)

    def update_only():
        per.update_priorities(slots, rng.exponential(1.0, B))

    cyc, n = _rate(cycle, args.seconds)
    smp, _ = _rate(sample, args.seconds / 2)
    upd, _ = _rate(update_only, args.seconds / 2)
    result = {
        "benchmark": "per", "capacity": cap, "batch": B, "obs_dim": args.obs_dim,
        "sample_and_update_batches_per_s": round(cyc, 1),
        "sample_batches_per_s": round(smp, 1), "update_batches_per_s": round(upd, 1),
        "transitions_per_s": round(cyc * B, 1), "cycles_measured": n,
        "fill_and_build_s": round(fill_s, 3), "numpy": np.__version__,
        "python": platform.python_version(), "cpu_count": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps(result, indent=2))
    out = Path(args.out) if args.out else (Path("runs") / "bench" /
                                           f"per-{time.strftime('%Y%m%d-%H%M%S')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=out.parent, delete=False, suffix=".tmp") as f:
        f.write(json.dumps(result, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
        tmp = f.name
    os.replace(tmp, out)
    print(out)
    return result


if __name__ == "__main__":
    main()
