"""Search spaces: the defaults are valid, a bad YAML space is refused with one line naming the
file, the setting and the field (and the command shows no traceback)."""

from __future__ import annotations

import pytest

from rlcore.tune.space import DEFAULT_SPACES, SpaceError, load_space, parse_space, space_to_dict
from tests.tune.tune_helpers import invoke


@pytest.mark.parametrize("algo", sorted(DEFAULT_SPACES))
def test_default_spaces_are_valid_and_round_trip(algo):
    space = DEFAULT_SPACES[algo]
    assert parse_space(space_to_dict(space), algo) == space


def test_ppo_default_is_the_documents_space():
    ppo = DEFAULT_SPACES["ppo"]
    assert (ppo["learning_rate"].low, ppo["learning_rate"].high, ppo["learning_rate"].log) == \
        (1e-5, 1e-3, True)
    assert (ppo["gamma"].low, ppo["gamma"].high) == (0.9, 0.9999)
    assert (ppo["clip_range"].low, ppo["clip_range"].high) == (0.1, 0.3)
    assert (ppo["gae_lambda"].low, ppo["gae_lambda"].high) == (0.85, 0.99)
    assert (ppo["n_steps"].low, ppo["n_steps"].high, ppo["n_steps"].type) == (512, 4096, "int")


@pytest.mark.parametrize("text, needle", [
    ("lr: {type: float, low: 0.1, high: 0.2}", "lr: not a setting of --algo ppo"),
    ("gamma: {type: gaussian, low: 0.9, high: 0.99}", "gamma.type: expected float, int"),
    ("gamma: {type: float, low: 0.99, high: 0.9}", "gamma: expected low < high"),
    ("learning_rate: {type: float, low: 0, high: 0.1, log: true}",
     "learning_rate.low: a log range needs low > 0"),
    ("n_steps: {type: int, low: 1.5, high: 8}", "n_steps: an int setting needs whole bounds"),
    ("gamma: {type: float, high: 0.99}", "gamma.low: missing"),
    ("net: {type: categorical, choices: []}", "net.choices: expected a non-empty list"),
    ("gamma: {type: float, low: a, high: 0.99}", "gamma.low: expected a finite number"),
    ("gamma: {type: float, low: 0.9, high: 0.99, step: 2}", "gamma: unknown field(s) step"),
    ("- gamma", "expected a mapping of settings"),
])
def test_bad_spaces_name_file_setting_and_field(tmp_path, text, needle):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(SpaceError) as e:
        load_space(path, "ppo")
    assert str(path) in str(e.value) and needle in str(e.value)
    assert "\n" not in str(e.value)


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    bad = tmp_path / "space.yaml"
    bad.write_text("gamma: {type: float, low: 0.99, high: 0.9}")
    cases = [
        (["--space", str(bad)], f"{bad}: gamma: expected low < high"),
        (["--storage", "redis://x"], "--storage 'redis://x': expected a database URL"),
        (["--storage", "sqlite:///x.db"], "SQLite is not safe for parallel workers"),
        (["--storage", "postgresql://u:secret@127.0.0.1:1/db"],
         "--storage postgresql://u:***@127.0.0.1:1/db: cannot open"),
        (["--set", "bogus=1"], "unknown setting(s) bogus"),
        (["--algo", "nope"], "Invalid value for '--algo'"),
        (["--env", "NoSuchEnv-v0"], "--env 'NoSuchEnv-v0':"),
    ]
    for args, needle in cases:
        res = invoke("tune", "--env", "CartPole-v1", "--steps", "64", "--trials", "1", "--out",
                     str(tmp_path / "s"), *args)
        assert res.exit_code == 2 if "--algo" in args else res.exit_code == 1, res.output
        assert needle in res.stderr, (args, res.stderr)
        assert isinstance(res.exception, SystemExit)  # a message, not a traceback
