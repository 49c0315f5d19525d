"""Steps per second of the futures environment: single env and batched (N = 1, 64, 1024).

Usage: ``python benchmarks/bench_futures_env.py [--seconds 3] [--num-envs 1 64 1024]
[--out PATH]``. Prints one JSON object, writes it to
``runs/bench/futures_env-<timestamp>.json`` (or ``--out``) and prints that path as the last
line. Data: the shared Binance ETHUSDT 1m file when present, else a random walk.
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
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from marketsim.futures.env import CryptoFuturesEnv  # noqa: E402
from marketsim.futures.vector import CryptoFuturesVectorEnv  # noqa: E402

DATA = ROOT / ".." / "shared" / "data" / "binance-spot_ETHUSDT_1m_20210402_20210615.csv.gz"


def load_data() -> tuple[pd.DataFrame, str]:
    """Real 1m candles if the shared folder is there, else a seeded random walk."""
    if DATA.exists():
        raw = pd.read_csv(DATA)
        idx = pd.DatetimeIndex(pd.to_datetime(raw["open_time_ms"], unit="ms", utc=True))
        cols = ["open", "high", "low", "close", "volume"]
        return pd.DataFrame(raw[cols].to_numpy(float), index=idx, columns=cols), DATA.name
    rng = np.random.default_rng(0)
    n = 100_000
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    idx = pd.date_range("2021-01-01", periods=n, freq="1min", tz="UTC", name="timestamp")
    df = pd.DataFrame({"open": open_, "high": np.maximum(open_, close) * 1.001,
                       "low": np.minimum(open_, close) * 0.999, "close": close,
                       "volume": rng.lognormal(5, 1, n)}, index=idx)
    return df, "random-walk-100k-1m"


def bench_single(df: pd.DataFrame, seconds: float) -> dict[str, float]:
    """Single-env steps/s, calling env.step directly (no wrappers), a policy-like action.

    "wall" is steps per wall-clock second; "cpu" per second of this process's CPU time, which
    is what to read when other jobs share the machine (load average is recorded too).
    """
    env = CryptoFuturesEnv(data=df)
    env.reset(seed=0)
    actions = [np.array([a], np.float32) for a in np.random.default_rng(0).uniform(-1, 1, 64)]
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        for k in range(1000):
            _, _, term, trunc, _ = env.step(actions[(k >> 4) & 63])
            if term or trunc:
                env.reset()
        n += 1000
    return {"wall": n / (time.perf_counter() - t0), "cpu": n / (time.process_time() - c0)}


def bench_vector(df: pd.DataFrame, num_envs: int, seconds: float) -> dict[str, float]:
    """Batched env-steps/s (num_envs * steps / s), autoreset included."""
    env = CryptoFuturesVectorEnv(num_envs=num_envs, data=df)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = [rng.uniform(-1, 1, (num_envs, 1)).astype(np.float32) for _ in range(16)]
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        for k in range(50):
            env.step(actions[k & 15])
        n += 50
    n *= num_envs
    return {"wall": n / (time.perf_counter() - t0), "cpu": n / (time.process_time() - c0)}


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder, fsync, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def main() -> None:
    """Run the benchmark, print JSON, write it, print the file's path."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--out", type=Path, default=None, help="JSON output file")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 64, 1024],
                        help="batch sizes of the vector measurement (default 1 64 1024)")
    args = parser.parse_args()
    df, source = load_data()
    result = {
        "benchmark": "futures_env",
        "data": source,
        "bars": len(df),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
        "load_average_before": os.getloadavg(),
        "single_steps_per_s": bench_single(df, args.seconds),
        "vector_env_steps_per_s": {
            str(n): bench_vector(df, n, args.seconds) for n in args.num_envs
        },
        "targets": {"single_steps_per_s": 50_000, "vector_1024_env_steps_per_s": 2_000_000},
    }
    result["load_average_after"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    out = args.out or ROOT / "runs" / "bench" / f"futures_env-{stamp}.json"
    write_atomic(out, text + "\n")
    print(out)


if __name__ == "__main__":
    main()
