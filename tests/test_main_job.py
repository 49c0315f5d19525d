"""The README's main job: SAC on the futures environment over the embedded default market."""

import json

from click.testing import CliRunner

import cli as cli_module


def test_train_sac_with_no_env_uses_the_futures_env_on_default_data(tmp_path):
    res = CliRunner().invoke(cli_module.cli, [
        "train", "--algo", "sac", "--steps", "400", "--n-envs", "2", "--runs-dir", str(tmp_path),
        "--run-id", "main", "--no-progress", "--set", "learning_starts=100",
        "--set", "eval_episodes=1", "--env-arg", "episode_length=64"])
    assert res.exit_code == 0, res.output
    summary = json.loads(open(res.output.strip().splitlines()[-1]).read())
    assert summary["env"] == cli_module.DEFAULT_ENV == "marketsim/CryptoFutures-v0"
    assert summary["algo"] == "sac" and summary["steps"] == 400
    config = (tmp_path / "main" / "config.yaml").read_text()
    assert "action_type: continuous" in config
