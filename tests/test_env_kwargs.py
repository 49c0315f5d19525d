"""Environment ids and keyword arguments: the namespace import rule and the one action-type rule."""

from __future__ import annotations

import sys
import textwrap

import gymnasium as gym
import pytest

from rlcore.config import agent_class, resolve_configs, resolved_env_kwargs
from rlcore.envs import env_kwargs_for, resolve_env_id

FUTURES = "marketsim/CryptoFutures-v0"
MM = "marketsim/MarketMaking-v0"


def test_unregistered_namespace_imports_the_package_of_that_name(tmp_path, monkeypatch):
    pkg = tmp_path / "layerns"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        import gymnasium
        if "layerns/Thing-v0" not in gymnasium.registry:
            gymnasium.register("layerns/Thing-v0",
                               entry_point="gymnasium.envs.classic_control:CartPoleEnv")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "layerns/Thing-v0" not in gym.registry
    env_id, spec = resolve_env_id("layerns/Thing-v0")
    assert env_id == "layerns/Thing-v0" and "layerns" in sys.modules
    assert spec.entry_point == "gymnasium.envs.classic_control:CartPoleEnv"
    with pytest.raises(ValueError, match="namespace 'nosuchns' is not registered"):
        resolve_env_id("nosuchns/Thing-v0")


def test_rlcore_ids_and_module_form_still_resolve():
    assert resolve_env_id("rlcore/CartPoleNoVel-v1")[0] == "rlcore/CartPoleNoVel-v1"
    assert resolve_env_id("rlcore.toy_envs:rlcore/CartPoleNoVel-v1")[0] == "rlcore/CartPoleNoVel-v1"
    with pytest.raises(ValueError, match="cannot import 'nosuchmodule'"):
        resolve_env_id("nosuchmodule:Thing-v0")


@pytest.mark.parametrize("algo, expected", [("ppo", "continuous"), ("a2c", "continuous"),
                                            ("sac", "continuous"), ("dqn", "discrete")])
def test_action_type_follows_the_agent_where_the_env_declares_it(algo, expected):
    types = agent_class(algo).action_types
    for env in (FUTURES, MM):
        assert env_kwargs_for(env, {}, types) == {"action_type": expected}
        assert env_kwargs_for(env, {"action_type": "discrete", "x": 1}, types) == \
            {"action_type": "discrete", "x": 1}  # the user's choice wins
    assert env_kwargs_for("CartPole-v1", {"a": 1}, types) == {"a": 1}  # declares none
    assert env_kwargs_for("marketsim/TrendToy-v0", {}, types) == {}
    run, _ = resolve_configs({"algo": algo, "env": FUTURES})
    assert resolved_env_kwargs(run) == {"action_type": expected}


def test_gymnasium_passes_the_declared_kwargs_to_make_and_the_vector_entry_point():
    import marketsim  # noqa: F401  (registers the environments)

    # gym.make and make_vec's vector_entry_point both merge the spec's kwargs with the caller's
    env = gym.make(FUTURES)
    assert env.unwrapped.config.action_type == "continuous"
    env.close()
    env = gym.make(MM)  # the market-making env's own default is discrete, and stays so
    assert env.unwrapped.config.action_type == "discrete"
    env.close()
    venv = gym.make_vec(FUTURES, num_envs=2, vectorization_mode="vector_entry_point")
    assert venv.unwrapped.config.action_type == "continuous"
    venv.close()
    venv = gym.make_vec(FUTURES, num_envs=2, vectorization_mode="vector_entry_point",
                        action_type="discrete")
    assert venv.unwrapped.config.action_type == "discrete"
    venv.close()
