"""Market simulators and market data for crypto-trading research.

Importing this package registers its environments with gymnasium:

* ``marketsim/CryptoFutures-v0``: perpetual-futures trading (fees, slippage, funding,
  leverage, liquidation); see ``docs/marketsim/futures.md``.
* ``marketsim/MarketMaking-v0``: Avellaneda-Stoikov market making; see
  ``docs/marketsim/market-making.md``.
* ``marketsim/TrendToy-v0``: a fee-free position-taking toy on candles, for fast
  continual-learning tests; see ``docs/guide/continual-learning.md``.

The first two have a natively batched ``gymnasium.vector.VectorEnv`` (``vector_entry_point``) that
``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")`` builds, and take
``action_type`` (``continuous`` or ``discrete``). They declare it in their registered ``kwargs``
(with the environment's own default), which tells rlcore to choose it from the agent's action
types when the user does not (``rlcore.envs.env_kwargs_for``).

``gymnasium.make("marketsim/...")`` needs this package imported first; rlcore's
``resolve_env_id`` imports it for any unregistered ``marketsim/...`` id.
"""

import gymnasium

FUTURES_ID = "marketsim/CryptoFutures-v0"
MARKET_MAKING_ID = "marketsim/MarketMaking-v0"
TREND_TOY_ID = "marketsim/TrendToy-v0"


def _register() -> None:
    """Register the marketsim environments once (idempotent)."""
    registry = gymnasium.envs.registry
    if FUTURES_ID not in registry:
        gymnasium.register(
            id=FUTURES_ID,
            entry_point="marketsim.futures.env:CryptoFuturesEnv",
            vector_entry_point="marketsim.futures.vector:CryptoFuturesVectorEnv",
            kwargs={"action_type": "continuous"},
        )
    if MARKET_MAKING_ID not in registry:
        gymnasium.register(
            id=MARKET_MAKING_ID,
            entry_point="marketsim.mm.env:MarketMakingEnv",
            vector_entry_point="marketsim.mm.vector:MarketMakingVectorEnv",
            kwargs={"action_type": "discrete"},
        )
    if TREND_TOY_ID not in registry:
        gymnasium.register(id=TREND_TOY_ID, entry_point="marketsim.toy:TrendToyEnv")


_register()
from marketsim import optimum  # noqa: E402, F401  (registers the known-optimum futures markets)
