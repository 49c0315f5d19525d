"""The ``baseline`` click command writes a summary and prints its path last."""

import json
from pathlib import Path

from click.testing import CliRunner

from marketsim.mm.cli import baseline, parse_env_args


def test_baseline_command_writes_summary(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(baseline, [
        "--env", "marketsim/MarketMaking-v0", "--strategy", "as", "--gamma", "0.1",
        "--episodes", "50", "--env-arg", "n_steps=50", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert Path(last) == out / "summary.json"
    summary = json.loads(Path(last).read_text())
    for key in ("pnl_mean", "pnl_std", "inventory_std", "spread_mean", "reward_mean", "episodes"):
        assert key in summary
    assert summary["episodes"] == 50 and summary["env_kwargs"] == {"n_steps": 50}
    assert not list(out.glob("*.tmp"))


def test_default_run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(baseline, ["--strategy", "cj", "--episodes", "4"])
    assert result.exit_code == 0, result.output
    last = Path(result.output.strip().splitlines()[-1])
    assert last.parts[0] == "runs" and last.parent.name.startswith("baseline-cj-")
    assert (tmp_path / last).exists()


def test_bad_input_is_a_clear_error():
    runner = CliRunner()
    result = runner.invoke(baseline, ["--strategy", "as", "--episodes", "2", "--env-arg", "k=0"])
    assert result.exit_code != 0 and "k must be" in result.output
    result = runner.invoke(baseline, ["--strategy", "as", "--gamma", "-1", "--episodes", "2"])
    assert result.exit_code != 0 and "gamma" in result.output
    assert parse_env_args(("a=1", "b=x", "c=[0.1, 0.2]")) == {"a": 1, "b": "x", "c": [0.1, 0.2]}
