"""``online`` click command: a tiny replay run, resume on a second call, clear errors."""

from __future__ import annotations

import json

from click.testing import CliRunner
from continual_helpers import regime_candles, train_base, write_candles

from marketsim.online import online


def test_online_command_runs_resumes_and_reports(tmp_path):
    df = regime_candles([0.5, -0.5], 200, seed=4)
    write_candles(df.iloc[:200], tmp_path / "old.parquet")
    stream = write_candles(df, tmp_path / "stream.parquet")
    run = train_base(tmp_path, tmp_path / "old.parquet", steps=256)
    args = [str(run), "--source", f"replay:{stream}", "--every", "50m", "--speed", "max",
            "--train-bars", "100", "--holdout-bars", "64", "--warmup-bars", "200",
            "--episode-length", "16", "--max-ticks", "2", "--set", "tick_steps=256", "--quiet"]
    r = CliRunner().invoke(online, args)
    assert r.exit_code == 0, r.output
    last = r.output.strip().splitlines()[-1]
    assert last == str(run / "online" / "promotions.jsonl")
    assert "2 ticks this session" in r.output
    # the same command again resumes after tick 2 and stops at max_ticks = 3
    r2 = CliRunner().invoke(online, args[:-4] + ["3", "--set", "tick_steps=256", "--quiet"])
    assert r2.exit_code == 0, r2.output
    assert "1 ticks this session" in r2.output
    ticks = [json.loads(x)["tick"] for x in (run / "online" / "ticks.jsonl").read_text()
             .splitlines()]
    assert ticks == [1, 2, 3]


def test_online_command_errors_name_the_problem(tmp_path):
    df = regime_candles([0.5], 300, seed=5)
    write_candles(df, tmp_path / "old.parquet")
    run = train_base(tmp_path, tmp_path / "old.parquet", steps=256)
    r = CliRunner().invoke(online, [str(run), "--source", "kafka:x"])
    assert r.exit_code != 0 and "expected replay:PATH" in r.output
    r = CliRunner().invoke(online, [str(run), "--source", f"replay:{tmp_path / 'old.parquet'}",
                                    "--set", "gamma=0.5"])
    assert r.exit_code != 0 and "unknown online setting(s) gamma" in r.output
    r = CliRunner().invoke(online, [str(run), "--source", f"replay:{tmp_path / 'old.parquet'}",
                                    "--set", "rehearsal_frac=3"])
    assert r.exit_code != 0 and "rehearsal_frac" in r.output and "out of range" in r.output
    r = CliRunner().invoke(online, [str(run), "--source", f"replay:{tmp_path / 'old.parquet'}",
                                    "--every", "10y"])
    assert r.exit_code != 0 and "--every '10y'" in r.output
