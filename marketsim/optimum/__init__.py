"""Known-optimum futures markets: synthetic regimes whose optimal policy after costs is exact.

Importing this package registers three gymnasium ids (``import marketsim`` imports it):

* ``marketsim/FuturesNoSignal-v0``: driftless prices; the optimum is to stay flat (value 0).
* ``marketsim/FuturesObservedSignal-v0``: Markov-regime drift, the regime in the observation;
  optimum by dynamic programming over (regime, position).
* ``marketsim/FuturesHiddenSignal-v0``: the same regimes, unobserved; Bayes-optimal policy by
  dynamic programming over the filter's belief.

Model: :mod:`marketsim.optimum.model`; oracles: :mod:`marketsim.optimum.oracle`; environment:
:mod:`marketsim.optimum.env`. Teaching page: ``docs/marketsim/known-optimum.md``.
"""

import gymnasium

NO_SIGNAL_ID = "marketsim/FuturesNoSignal-v0"
OBSERVED_SIGNAL_ID = "marketsim/FuturesObservedSignal-v0"
HIDDEN_SIGNAL_ID = "marketsim/FuturesHiddenSignal-v0"

ENV_KWARGS = {
    NO_SIGNAL_ID: {"market": "no_signal", "observe_regime": False, "action_type": "discrete"},
    OBSERVED_SIGNAL_ID: {"market": "signal", "observe_regime": True, "action_type": "discrete"},
    HIDDEN_SIGNAL_ID: {"market": "signal", "observe_regime": False, "action_type": "discrete"},
}
"""Registered id -> the keyword arguments of ``KnownOptimumEnv`` it stands for. Declaring
``action_type`` lets rlcore give each agent the action space it needs (``rlcore.envs``)."""


def register() -> None:
    """Register the three known-optimum ids once (idempotent)."""
    registry = gymnasium.envs.registry
    for env_id, kwargs in ENV_KWARGS.items():
        if env_id not in registry:
            gymnasium.register(id=env_id, entry_point="marketsim.optimum.env:KnownOptimumEnv",
                               vector_entry_point="marketsim.optimum.vector:KnownOptimumVectorEnv",
                               kwargs=dict(kwargs))


register()
