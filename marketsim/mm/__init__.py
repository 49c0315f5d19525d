"""Avellaneda-Stoikov market making: formulas, optimal quotes, estimators and environments.

See ``docs/marketsim/market-making.md`` for the derivations behind every function here.
"""

from marketsim.mm.cartea import cara_inventory_table, cartea_jaimungal_table
from marketsim.mm.formulas import (
    as_quotes,
    glft_quotes,
    optimal_spread,
    reservation_price,
)
from marketsim.mm.jumps import gaussian_jump_mgf, merton_reservation_price

__all__ = [
    "as_quotes",
    "cara_inventory_table",
    "cartea_jaimungal_table",
    "gaussian_jump_mgf",
    "glft_quotes",
    "merton_reservation_price",
    "optimal_spread",
    "reservation_price",
]
