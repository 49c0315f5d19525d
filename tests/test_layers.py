"""Layers run one way: the engine loads nothing of the markets, the candle store loads no torch.

Each check runs in a fresh interpreter, so modules imported by other tests cannot hide a wrong
import. The static contracts (every import statement, not only those executed) are in setup.cfg's
``[importlinter]`` sections and run in CI as ``lint-imports``.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import rlcore

REPO = Path(__file__).resolve().parents[1]


def _run(code: str, cwd: Path) -> dict:
    """Run ``code`` in a fresh interpreter (repository on the path); return its printed JSON."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, check=True,
                         capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _rlcore_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(rlcore.__path__, "rlcore."))


def test_importing_every_rlcore_module_loads_no_marketsim(tmp_path):
    modules = _rlcore_modules()
    for name in ("rlcore.runner", "rlcore.ppo", "rlcore.a2c", "rlcore.sac", "rlcore.dqn",
                 "rlcore.envs", "rlcore.config", "rlcore.continual", "rlcore.continual.loop"):
        assert name in modules
    got = _run(f"""
        import importlib, json, sys
        for name in {modules!r}:
            importlib.import_module(name)
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "marketsim")))
    """, tmp_path)
    assert got == []


def test_marketsim_data_writes_and_reads_a_dataset_without_torch(tmp_path):
    got = _run("""
        import json, sys
        import pandas as pd
        from marketsim.data import DataStore, read_candles
        from marketsim.data.sources import ReplaySource

        idx = pd.date_range("2024-01-01", periods=4, freq="1min", tz="UTC")
        df = pd.DataFrame({"open": [1.0, 2, 3, 4], "high": [2.0, 3, 4, 5], "low": [0.5, 1, 2, 3],
                           "close": [1.5, 2.5, 3.5, 4.5], "volume": [1.0, 1, 1, 1]}, index=idx)
        store = DataStore("store")
        store.write(df, "test", "ETH/USDT", "1m", source="test")
        back = store.read("test", "ETH/USDT", "1m", verify=True)
        new, _ = ReplaySource(back).poll(idx[-1] + pd.Timedelta("1min"))
        print(json.dumps({"rows": len(back), "polled": len(new),
                          "torch": sorted(m for m in sys.modules if m.split(".")[0] == "torch")}))
    """, tmp_path)
    assert got == {"rows": 4, "polled": 4, "torch": []}
