"""Configuration of the market-making environment: one frozen dataclass, validated on creation."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MODES = ("model", "replay", "book")
ACTION_TYPES = ("discrete", "continuous", "quotes")


@dataclass(frozen=True, eq=False)
class MMConfig:
    """Every parameter of ``MarketMakingEnv`` / ``MarketMakingVectorEnv`` (their kwargs).

    Model-mode defaults are the Avellaneda-Stoikov paper's simulation.
    """

    mode: str = "model"
    """``"model"``: Brownian mid and Poisson fills; ``"replay"``: real candles; ``"book"``:
    a rebuilt L2 order book (``l2_paths``) with its features in the observation."""
    action_type: str = "discrete"
    """``"discrete"`` (index into ``gammas``), ``"continuous"`` (gamma, k, sigma, horizon scale)
    or ``"quotes"`` (reservation offset and total spread)."""
    s0: float = 100.0
    """Initial mid price (model mode)."""
    T: float = 1.0
    """Episode length in time units; ``dt = T / n_steps``."""
    sigma: float = 2.0
    """Mid volatility in price units per sqrt(time unit) (model mode)."""
    n_steps: int = 200
    """Steps (decisions) per episode."""
    A: float | None = None
    """Fill intensity at zero depth, fills per time unit; None: 140 (model) or fitted (replay)."""
    k: float | None = None
    """Intensity decay per price unit; None: 1.5 (model) or fitted (replay)."""
    order_size: float = 1.0
    """Size of every quote in base units."""
    jump_intensity: float = 0.0
    """Merton jump rate per time unit (model mode; 0 switches jumps off)."""
    jump_mean: float = 0.0
    """Mean of the Gaussian jump size, price units."""
    jump_std: float = 0.0
    """Standard deviation of the Gaussian jump size, price units."""
    max_inventory: float = 25.0
    """Inventory bound: no bid while ``q + size > max_inventory``, no ask while
    ``q - size < -max_inventory``."""
    latency: int = 0
    """Steps between deciding quotes and their reaching the market."""
    maker_fee: float = 0.0
    """Fee as a fraction of fill notional (negative: rebate). Binance USDT-M tier 0: 0.0002."""
    gammas: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2, 0.5, 1.0)
    """Risk aversions of the discrete action set."""
    gamma_min: float = 0.01
    """Lower end of the continuous gamma range (log scale)."""
    gamma_max: float = 1.0
    """Upper end of the continuous gamma range (log scale)."""
    correction: float = 2.0
    """Continuous k and sigma corrections: multiply by ``correction ** a`` with ``a`` in [-1, 1]."""
    quote_scale: float | None = None
    """Price scale of the ``"quotes"`` action; None: ``4/k``."""
    reward_gamma: float = 0.1
    """Risk aversion for the CARA-consistent running penalty ``phi = reward_gamma*sigma^2/2``."""
    inventory_penalty: float | None = None
    """Running penalty ``phi`` per unit inventory squared per time unit (overrides
    reward_gamma)."""
    terminal_penalty: float = 0.0
    """Terminal penalty ``alpha*q_T^2`` (finite horizon only)."""
    rolling_horizon: float | None = None
    """None: finite horizon (tau shrinks to 0, episode terminates); a number: constant tau for
    endless trading (episodes are truncated after ``n_steps``)."""
    n_returns: int = 4
    """Number of recent mid changes in the observation."""
    pnl_scale: float = 100.0
    """PnL is divided by this in the observation."""
    vol_halflife: float = 20.0
    """Half-life in steps of the EWMA volatility estimate in the observation."""
    candles: Any = None
    """Replay mode: a DataFrame with float columns high, low, close (one row per step)."""
    data_path: str | None = None
    """Replay mode: a candle file read with ``marketsim.data.load_candles``."""
    fill_prob: float = 1.0
    """Replay mode: probability that a traded-through quote fills (queue position)."""
    calib_bars: int = 1000
    """Replay mode: leading bars used to fit sigma, A and k; episodes start after them."""
    l2_paths: tuple[str, ...] | None = None
    """Book mode: Binance L2 capture files (``../shared/data/l2/``), in time order."""
    book_interval: float = 1.0
    """Book mode: bar length in seconds (one step per bar)."""
    book_levels: int | None = None
    """Book levels in the observation; None: 5 in book mode, 0 otherwise; > 0 in model mode
    adds a synthetic book (uninformative noise, see the docs)."""
    extra: dict = field(default_factory=dict)
    """Unused keyword arguments (rejected by validation)."""

    def __post_init__(self) -> None:
        """Validate every field; raise ValueError naming the field and what was expected."""
        if self.extra:
            raise TypeError(f"unknown MarketMaking-v0 arguments: {sorted(self.extra)}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.action_type not in ACTION_TYPES:
            raise ValueError(f"action_type must be one of {ACTION_TYPES}, got {self.action_type!r}")
        for name in ("s0", "T", "sigma", "order_size", "max_inventory", "pnl_scale",
                     "vol_halflife", "gamma_min", "gamma_max", "correction"):
            _positive(name, getattr(self, name))
        for name in ("A", "k", "quote_scale", "rolling_horizon"):
            if getattr(self, name) is not None:
                _positive(name, getattr(self, name))
        for name in ("jump_intensity", "jump_std", "reward_gamma", "terminal_penalty"):
            _nonneg(name, getattr(self, name))
        if self.inventory_penalty is not None:
            _nonneg("inventory_penalty", self.inventory_penalty)
        if not math.isfinite(self.jump_mean) or not math.isfinite(self.maker_fee):
            raise ValueError("jump_mean and maker_fee must be finite")
        if self.gamma_min > self.gamma_max:
            raise ValueError(f"gamma_min {self.gamma_min} > gamma_max {self.gamma_max}")
        if len(self.gammas) < 1:
            raise ValueError("gammas must hold at least one value")
        for g in self.gammas:
            _positive("gammas", g)
        for name in ("n_steps", "n_returns", "latency", "calib_bars"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, got {value!r}")
        if self.n_steps < 1 or self.n_returns < 1 or self.latency < 0 or self.calib_bars < 3:
            raise ValueError("need n_steps >= 1, n_returns >= 1, latency >= 0, calib_bars >= 3")
        if not 0.0 <= self.fill_prob <= 1.0:
            raise ValueError(f"fill_prob must be in [0, 1], got {self.fill_prob}")
        if self.book_levels is not None and (not isinstance(self.book_levels, int)
                                             or self.book_levels < 0):
            raise ValueError(f"book_levels must be an int >= 0, got {self.book_levels!r}")
        if self.mode == "replay" and self.levels > 0:
            raise ValueError("book_levels > 0 needs mode='book' or mode='model' (candles have "
                             "no book)")
        if self.mode == "book" and (not self.l2_paths or self.levels < 1):
            raise ValueError("mode='book' needs l2_paths=(file, ...) and book_levels >= 1")
        _positive("book_interval", self.book_interval)
        if self.mode == "replay" and self.candles is None and self.data_path is None:
            raise ValueError("mode='replay' needs candles=DataFrame or data_path='file.csv.gz'")

    @property
    def levels(self) -> int:
        """Book levels in the observation (resolving the None default)."""
        if self.book_levels is None:
            return 5 if self.mode == "book" else 0
        return self.book_levels

    @property
    def obs_dim(self) -> int:
        """Observation length: inventory, time, returns, PnL, vol ratio, book block."""
        book = self.levels + 1 if self.levels > 0 else 0
        return self.n_returns + 4 + book

    @property
    def dt(self) -> float:
        """Length of one step in time units."""
        return self.T / self.n_steps


def _positive(name: str, value: float) -> None:
    """Raise ValueError unless ``value`` is a finite number > 0."""
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _nonneg(name: str, value: float) -> None:
    """Raise ValueError unless ``value`` is a finite number >= 0."""
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def make_config(**kwargs: Any) -> MMConfig:
    """Build an ``MMConfig`` from environment kwargs; unknown names raise TypeError."""
    known = set(MMConfig.__dataclass_fields__) - {"extra"}
    extra = {key: kwargs.pop(key) for key in list(kwargs) if key not in known}
    if "gammas" in kwargs:
        kwargs["gammas"] = tuple(float(g) for g in kwargs["gammas"])
    if isinstance(kwargs.get("l2_paths"), (str, list)):
        paths = kwargs["l2_paths"]
        kwargs["l2_paths"] = (paths,) if isinstance(paths, str) else tuple(paths)
    return MMConfig(**kwargs, extra=extra)
