"""The ``data`` click group: every command runs and prints its output path last."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from data_helpers import make_candles
from fake_binance import MINUTE_MS, FakeBinance, point_binance_at

from marketsim.data import DataStore, ccxt_loader, load_candles
from marketsim.data.cli import data


def _last_line(result) -> str:
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


@pytest.mark.parametrize("model", ["default", "gbm", "merton", "regime"])
def test_synth_writes_parquet(tmp_path, model):
    out = tmp_path / f"{model}.parquet"
    res = CliRunner().invoke(
        data, ["synth", "--model", model, "--n-bars", "500", "--out", str(out)]
    )
    assert _last_line(res) == str(out)
    df = load_candles(out, clean=False)
    assert len(df) == 500


def test_clean_then_info(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default output goes under runs/data/
    df = make_candles(np.linspace(10, 11, 30))
    df = df.drop(df.index[5:8])
    src = tmp_path / "raw.csv"
    df.rename_axis("timestamp").reset_index().to_csv(src, index=False)
    report = tmp_path / "report.json"
    res = CliRunner().invoke(data, ["clean", str(src), "--report", str(report)])
    out = _last_line(res)
    assert out == "runs/data/raw.clean.parquet"
    assert json.loads(report.read_text())["filled_rows"] == 3
    cleaned = pd.read_parquet(out)
    assert len(cleaned) == 30 and cleaned["filled"].sum() == 3
    info = CliRunner().invoke(data, ["info", str(src)])
    assert info.exit_code == 0 and "gaps: 1, filled rows: 3" in info.output
    assert "rows: 27" in info.output and "hash: sha256:" in info.output


def test_import_and_info_from_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MARKETSIM_STORE", str(tmp_path / "st"))
    df = make_candles(np.linspace(10, 11, 20), freq="1h")
    src = tmp_path / "h.csv"
    df.rename_axis("timestamp").reset_index().to_csv(src, index=False)
    res = CliRunner().invoke(
        data, ["import", str(src), "--exchange", "okx", "--symbol", "ETH/USDT"]
    )
    assert _last_line(res) == str(tmp_path / "st" / "okx" / "ETH-USDT" / "1h.parquet")
    info = CliRunner().invoke(
        data, ["info", "--exchange", "okx", "--symbol", "ETH/USDT", "--timeframe", "1h"]
    )
    assert "cleaning report (stored" in info.output and "rows: 20" in info.output
    listing = CliRunner().invoke(data, ["info"])
    assert listing.output.strip() == "okx ETH-USDT 1h"


def test_fetch_command_against_local_server(tmp_path, monkeypatch):
    t0 = pd.Timestamp("2025-03-01", tz="UTC")
    t0_ms = int(t0.value // 1_000_000)
    with FakeBinance(t0_ms, t0_ms + 5000 * MINUTE_MS, max_limit=200) as fb:
        real_make = ccxt_loader.make_exchange

        def local_exchange(exchange_id, config=None):
            ex = real_make(exchange_id, {"options": {"fetchMarkets": {"types": ["spot"]}}})
            point_binance_at(ex, fb.base)
            return ex

        monkeypatch.setattr(ccxt_loader, "make_exchange", local_exchange)
        args = [
            "fetch",
            "--exchange",
            "binance",
            "--symbol",
            "ETH/USDT",
            "--symbol",
            "BTC/USDT",
            "--since",
            "2025-03-01",
            "--until",
            "2025-03-01 10:00",
            "--store",
            str(tmp_path),
        ]
        res = CliRunner().invoke(data, args)
        assert res.exit_code == 0, res.output
        lines = res.output.strip().splitlines()
        assert lines[-2:] == [
            str(tmp_path / "binance" / s / "1m.parquet") for s in ("ETH-USDT", "BTC-USDT")
        ]
        fb.failures["/api/v3/klines"] = [400]
        bad = CliRunner().invoke(
            data, [*args[:5], "--until", "2025-03-01 12:00", "--store", str(tmp_path)]
        )
    assert bad.exit_code == 1 and "permanent error" in bad.output
    assert len(DataStore(tmp_path).read("binance", "ETH/USDT", "1m")) == 600


def test_synth_writes_into_the_store_by_default(tmp_path):
    res = CliRunner().invoke(data, ["synth", "--model", "gbm", "--n-bars", "300", "--seed", "3",
                                    "--store", str(tmp_path)])
    assert _last_line(res) == str(tmp_path / "synthetic" / "gbm-seed3" / "1m.parquet")
    meta = DataStore(tmp_path).read_meta("synthetic", "gbm-seed3", "1m")
    assert meta["synthetic"]["model"] == "gbm" and meta["rows"] == 300


@pytest.mark.parametrize("name, exchange, symbol, tf", [
    ("binance-spot_ETHUSDT_1h_20170817_20230303.csv", "binance", "ETH-USDT", "1h"),
    ("coinbase-spot_ETH-USD_1h_20170430_20221024.csv", "coinbase", "ETH-USD", "1h"),
    ("ETH_USDT-1h.csv", "local", "ETH-USDT", "1h"),
])
def test_import_reads_symbol_and_timeframe_from_a_standard_name(tmp_path, name, exchange,
                                                                symbol, tf):
    df = make_candles(np.linspace(10, 11, 20), freq="1h")
    src = tmp_path / name
    df.rename_axis("timestamp").reset_index().to_csv(src, index=False)
    res = CliRunner().invoke(data, ["import", str(src), "--store", str(tmp_path / "st")])
    assert _last_line(res) == str(tmp_path / "st" / exchange / symbol / f"{tf}.parquet")


def test_import_refuses_a_name_that_contradicts_the_bars(tmp_path):
    df = make_candles(np.linspace(10, 11, 20), freq="1min")
    src = tmp_path / "binance-spot_ETHUSDT_1h_20170817_20230303.csv"
    df.rename_axis("timestamp").reset_index().to_csv(src, index=False)
    res = CliRunner().invoke(data, ["import", str(src), "--store", str(tmp_path / "st")])
    assert res.exit_code == 1 and "the name says 1h bars but the bars are 1m apart" in res.output


def test_import_of_an_unnamed_file_asks_for_the_symbol(tmp_path):
    src = tmp_path / "candles.csv"
    make_candles(np.linspace(10, 11, 5)).rename_axis("timestamp").reset_index().to_csv(src)
    res = CliRunner().invoke(data, ["import", str(src), "--store", str(tmp_path / "st")])
    assert res.exit_code == 2 and "--symbol is needed" in res.output


def test_file_names():
    from marketsim.data.names import FileName, parse_file_name, split_symbol

    assert parse_file_name("x/binance-spot_BTCUSDT_1m_20210402_20210520.csv.gz") == \
        FileName("BTC/USDT", "1m", "binance")
    assert parse_file_name("BTC_USDT_USDT-1h-futures.feather") == FileName("BTC/USDT:USDT", "1h")
    assert parse_file_name("binanceusdm_ETHUSDT_5m_20240101_20240201.parquet").exchange == \
        "binanceusdm"
    assert parse_file_name("prices.csv") is None
    assert parse_file_name("binance-spot_XYZ_1h_20170817_20230303.csv") is None
    assert split_symbol("ETHBTC") == "ETH/BTC" and split_symbol("SOLFDUSD") == "SOL/FDUSD"
