"""Settings are checked against their field's type: a wrong value is refused with a message that
names the setting, the value and what was expected, never a traceback from deep in the run."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli import cli
from rlcore.config import parse_assignments, resolve_configs


def _resolve(*items: str, algo: str = "dqn"):
    return resolve_configs({"algo": algo, **parse_assignments(list(items))})


@pytest.mark.parametrize("item, attr, expected", [
    ("hidden=256,256", "hidden", (256, 256)),
    ("hidden=[64, 32]", "hidden", (64, 32)),
    ("hidden=64", "hidden", (64,)),
    ("buffer_size=1e5", "buffer_size", 100_000),  # YAML 1.1 reads 1e5 as a string
    ("buffer_size=2000.0", "buffer_size", 2000),
    ("per=no", "per", False),
    ("per=True", "per", True),
    ("exploration_fraction=1e-1", "exploration_fraction", 0.1),
    ("exploration_final_eps=0", "exploration_final_eps", 0.0),
])
def test_values_are_converted_to_the_fields_type(item, attr, expected) -> None:
    _, algo_cfg = _resolve(item)
    value = getattr(algo_cfg, attr)
    assert value == expected and type(value) is type(expected)


def test_run_settings_are_converted_too() -> None:
    run, _ = _resolve("seed=3.0", "checkpoint_minutes=2", "runs_dir=2026", "run_id=7")
    assert (run.seed, run.checkpoint_minutes, run.runs_dir, run.run_id) == (3, 2.0, "2026", "7")
    assert type(run.checkpoint_minutes) is float


@pytest.mark.parametrize("item, message", [
    ("hidden=abc", "hidden: expected a list of positive integers such as [256, 256], got 'abc'"),
    ("hidden=[64, x]", "hidden: expected a list of positive integers such as [256, 256], got [64, 'x']"),
    ("hidden=[0]", "hidden: expected a list of positive integers"),
    ("buffer_size=lots", "buffer_size: expected an integer, got 'lots'"),
    ("learning_starts=1.5", "learning_starts: expected an integer, got 1.5"),
    ("per=maybe", "per: expected true or false, got 'maybe'"),
    ("per=2", "per: expected true or false, got 2"),
    ("exploration_fraction=half", "exploration_fraction: expected a number, got 'half'"),
    ("env_kwargs=3", "env_kwargs: expected a mapping"),
    ("activation=[1, 2]", "activation: expected a string, got [1, 2]"),
])
def test_wrong_values_name_the_setting_and_what_was_expected(item, message) -> None:
    with pytest.raises(ValueError) as err:
        _resolve(item)
    assert message in str(err.value)


def test_the_cli_reports_a_wrong_value_without_a_traceback(tmp_path) -> None:
    res = CliRunner().invoke(cli, ["train", "--algo", "dqn", "--env", "CartPole-v1",
                                   "--steps", "100", "--no-progress", "--runs-dir", str(tmp_path),
                                   "--set", "hidden=[64, x]"])
    assert res.exit_code == 1
    assert "hidden: expected a list of positive integers" in res.output
    assert "Traceback" not in res.output and not list(tmp_path.iterdir())
