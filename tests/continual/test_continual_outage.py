"""The online loop on a live ccxt feed from the local fake Binance (no internet): a 60 s outage
(every request answered 500, 429 or not at all) is served through and logged, the bars of the
outage arrive when it ends, API keys in the environment are never used for public data, and the
``online`` command takes ``--since`` and ``--exchange-url``.

Time is the test's: the exchange's clock and the loop's tick times are set by hand, so the 60 s
outage costs no minute of waiting (retries back off for hundredths of a second)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from continual_helpers import regime_candles, train_base, write_candles

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from fake_binance import MINUTE_MS, FakeBinance  # noqa: E402

from marketsim.data.ccxt_loader import RetryPolicy, make_exchange  # noqa: E402
from marketsim.data.sources import CcxtSource  # noqa: E402
from marketsim.online import online  # noqa: E402
from rlcore.continual import OnlineConfig, OnlineLoop, OnlineSettings  # noqa: E402

T0 = pd.Timestamp("2025-03-01", tz="UTC")
T0_MS = int(T0.value // 1_000_000)
CFG = dict(every=pd.Timedelta("30s"), train_bars=100, holdout_bars=64, episode_length=16,
           n_envs=4, control_settle_s=0.0)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("outage")
    df = regime_candles([0.5], 300, seed=7)
    write_candles(df, root / "old.parquet")
    return train_base(root, root / "old.parquet", steps=256)


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_a_60_second_outage_is_served_through_and_logged(base_run, tmp_path, monkeypatch):
    monkeypatch.setenv("MARKETSIM_BINANCE_API_KEY", "key-that-must-not-be-used")
    monkeypatch.setenv("MARKETSIM_BINANCE_SECRET", "secret-that-must-not-be-used")
    run = tmp_path / "run"
    import shutil

    shutil.copytree(base_run, run)
    clock = {"ms": T0_MS + 300 * MINUTE_MS}
    with FakeBinance(T0_MS, clock["ms"] - MINUTE_MS, timeout_sleep=0.6) as fb:
        def factory():
            ex = make_exchange("binance", {"timeout": 300}, base_url=fb.base)  # public
            ex.milliseconds = lambda: clock["ms"]  # the exchange's clock is the test's
            return ex

        src = CcxtSource("binance", "ETH/USDT", "1m", tmp_path / "store", since=T0,
                         exchange_factory=factory,
                         retry=RetryPolicy(max_tries=3, base_delay=0.01, max_delay=0.05))
        loop = OnlineLoop(run, src, OnlineConfig(**CFG), OnlineSettings(tick_steps=256)).start()
        outage = (clock["ms"] + 60_000, clock["ms"] + 120_000)  # 60 s
        records, versions = [], []
        for k in range(8):  # ticks every 30 s: 2 before, 2 in, 4 after the outage
            now = T0_MS + 300 * MINUTE_MS + k * 30_000
            clock["ms"] = now
            fb.last_ms = now - now % MINUTE_MS - MINUTE_MS  # bars that closed by now
            fb.outage = [500, 429, "timeout"] if outage[0] <= now < outage[1] else None
            loop.tick_time = pd.Timestamp(now * 1_000_000, tz="UTC")
            records.append(loop.step())  # never raises
            versions.append(loop.version)
        fb.outage = None
    assert [r["tick"] for r in records] == list(range(1, 9))
    assert len(_lines(run / "online" / "ticks.jsonl")) == 8
    events = _lines(run / "online" / "data_events.jsonl")
    during = {e["tick"] for e in events if e["kind"] == "fetch_failed"}
    assert during == {3, 4}  # the two ticks inside the outage, each logged ...
    retries = [e for e in events if e["kind"] == "retry"]
    assert {e["tick"] for e in retries} == {3, 4} and len(retries) >= 6  # ... with every retry
    assert all(e["reason"] for e in events)
    assert records[2]["new_bars"] == records[3]["new_bars"] == 0  # served on, nothing new
    # the bars that closed during the outage arrive with the first poll after it
    assert records[4]["new_bars"] >= 1
    idx = loop.data.index
    assert idx[0] == T0 and (idx[1:] - idx[:-1] == pd.Timedelta("1min")).all()
    # the last tick (T0 + 303.5 min) sees every bar that closed by then: the one opening at 302
    assert idx[-1] == T0 + pd.Timedelta("302min") and len(idx) == 303
    # keys in the environment were never sent: no signed request, no key header, no private path
    assert fb.failed > 0
    assert not any("signature" in q for _, q in fb.requests)
    assert not any("x-mbx-apikey" in h for h in fb.headers)
    assert all(p.startswith(("/api/v3/", "/fapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo"))
               for p, _ in fb.requests)


def test_online_command_with_since_and_exchange_url(base_run, tmp_path):
    import shutil
    import time

    run = tmp_path / "run"
    shutil.copytree(base_run, run)
    now_ms = int(time.time() * 1000)
    with FakeBinance(now_ms - 400 * MINUTE_MS, now_ms) as fb:
        since = pd.Timestamp((now_ms - 300 * MINUTE_MS) * 1_000_000, tz="UTC").floor("1min")
        args = [str(run), "--source", "ccxt:binance:ETH/USDT:1m", "--exchange-url", fb.base,
                "--since", since.isoformat(), "--store", str(tmp_path / "store"),
                "--every", "1s", "--max-ticks", "2", "--train-bars", "100",
                "--holdout-bars", "64", "--episode-length", "16", "--set", "tick_steps=256",
                "--quiet"]
        res = CliRunner().invoke(online, args)
        assert res.exit_code == 0, res.output
        starts = [int(q["startTime"]) for p, q in fb.requests if p == "/api/v3/klines"]
    assert min(starts) == int(since.value // 1_000_000)  # --since was the first bar asked for
    assert "2 ticks this session" in res.output
    ticks = _lines(run / "online" / "ticks.jsonl")
    assert ticks[0]["new_bars"] >= 299 and ticks[0]["new_first"] == since.isoformat()


def test_online_command_with_no_network_keeps_serving(base_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(base_run, run)
    with FakeBinance(T0_MS, T0_MS) as fb:
        dead = fb.base  # the server closes below: connections are refused
    args = [str(run), "--source", "ccxt:binance:ETH/USDT:1m", "--exchange-url", dead,
            "--store", str(tmp_path / "store"), "--every", "1s", "--max-ticks", "2",
            "--train-bars", "100", "--holdout-bars", "64", "--episode-length", "16",
            "--max-tries", "2", "--quiet"]
    res = CliRunner().invoke(online, args)
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output and "2 ticks this session" in res.output
    events = _lines(run / "online" / "data_events.jsonl")
    assert {e["tick"] for e in events if e["kind"] == "fetch_failed"} == {1, 2}
    assert any("NetworkError" in e["reason"] or "gave up" in e["reason"] for e in events)
