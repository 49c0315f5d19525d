"""Market simulators and market data for crypto-trading research.

Importing this package registers its environments with gymnasium:

* ``marketsim/CryptoFutures-v0``: perpetual-futures trading (fees, slippage, funding,
  leverage, liquidation); see ``docs/marketsim/futures.md``.
* ``marketsim/MarketMaking-v0``: Avellaneda-Stoikov market making; see
  ``docs/marketsim/market-making.md``.

Both have a natively batched ``gymnasium.vector.VectorEnv`` (``vector_entry_point``) that
``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")`` builds.
"""

import gymnasium

FUTURES_ID = "marketsim/CryptoFutures-v0"
MARKET_MAKING_ID = "marketsim/MarketMaking-v0"


def _register() -> None:
    """Register the marketsim environments once (idempotent)."""
    registry = gymnasium.envs.registry
    if FUTURES_ID not in registry:
        gymnasium.register(
            id=FUTURES_ID,
            entry_point="marketsim.futures.env:CryptoFuturesEnv",
            vector_entry_point="marketsim.futures.vector:CryptoFuturesVectorEnv",
        )
    if MARKET_MAKING_ID not in registry:
        gymnasium.register(
            id=MARKET_MAKING_ID,
            entry_point="marketsim.mm.env:MarketMakingEnv",
            vector_entry_point="marketsim.mm.vector:MarketMakingVectorEnv",
        )


_register()
