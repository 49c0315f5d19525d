"""L2 book rebuild and book mode: a hand-made capture, and the real one against bookTicker."""

import gzip
import json

import numpy as np
import pytest

from marketsim.mm.book import book_features, load_l2_bars
from marketsim.mm.config import make_config
from marketsim.mm.env import MarketMakingEnv
from marketsim.mm.kernel import MMKernel
from marketsim.mm.market import Market

from .conftest import DATA_DIR

L2 = DATA_DIR / "l2"
SPOT_ETH = [L2 / "spot_ethusdt_20240808.gz", L2 / "spot_ethusdt_20240809.gz"]
S = 1_000_000_000  # one second in ns


def _write(path, messages):
    with gzip.open(path, "wt") as handle:
        for t, msg in messages:
            handle.write(f"{t} {json.dumps(msg)}\n")


def _diff(U, u, b, a):
    return {"stream": "x@depth@100ms", "data": {"e": "depthUpdate", "U": U, "u": u, "b": b,
                                                "a": a}}


def _trade(p):
    return {"stream": "x@trade", "data": {"e": "trade", "p": str(p), "q": "1"}}


def test_rebuild_by_hand(tmp_path):
    path = tmp_path / "cap.gz"
    _write(path, [
        (10 * S, _diff(1, 5, [["99", "7"]], [])),            # before the snapshot: covered by it
        (10 * S + 1, _diff(6, 12, [["100", "2"]], [])),      # straddles lastUpdateId = 10: applied
        (10 * S + 2, {"lastUpdateId": 10, "bids": [["100", "1"], ["99", "3"]],
                      "asks": [["101", "4"], ["102", "5"]]}),
        (10 * S + 3, _trade(100.5)),
        (10 * S + 4, _diff(13, 14, [["99", "0"]], [["101.5", "1"]])),  # remove 99, add 101.5
        (10 * S + 5, _trade(99.5)),
        (11 * S + 3, _trade(101.2)),
        (12 * S + 1, _diff(15, 15, [], [])),
    ])
    bars = load_l2_bars(path, interval_s=1.0, levels=2)
    # first bar ends at 11 s: bids {100: 2}, asks {101: 4, 101.5: 1, 102: 5}; trades 100.5, 99.5
    np.testing.assert_array_equal(bars.time_ns, [11 * S, 12 * S])
    np.testing.assert_array_equal(bars.bid_px[0], [100.0, np.nan])
    np.testing.assert_array_equal(bars.bid_sz[0], [2.0, 0.0])
    np.testing.assert_array_equal(bars.ask_px[0], [101.0, 101.5])
    np.testing.assert_array_equal(bars.ask_sz[0], [4.0, 1.0])
    assert bars.mid[0] == 100.5 and bars.high[0] == 100.5 and bars.low[0] == 99.5
    assert bars.high[1] == 101.2 and bars.low[1] == 101.2


def test_book_features_by_hand():
    # level 1: (2 - 4)/6; levels 1-2: (2 - 5)/7; spread 1 over scale 0.5
    f = book_features(np.array([[2.0, 0.0]]), np.array([[4.0, 1.0]]), np.array([1.0]), 0.5)
    np.testing.assert_allclose(f, [[-2 / 6, -3 / 7, 2.0]])
    assert np.all(book_features(np.zeros((1, 2)), np.zeros((1, 2)), np.ones(1), 1.0)[0, :2] == 0)


def test_missing_snapshot_and_file(tmp_path):
    path = tmp_path / "nosnap.gz"
    _write(path, [(S, _diff(1, 2, [], []))])
    with pytest.raises(ValueError, match="snapshot"):
        load_l2_bars(path)
    with pytest.raises(FileNotFoundError, match="missing.gz"):
        load_l2_bars(tmp_path / "missing.gz")


@pytest.fixture(scope="module")
def real_bars():
    if not all(p.exists() for p in SPOT_ETH):
        pytest.skip(f"shared L2 data not found under {L2}")
    return load_l2_bars(SPOT_ETH, interval_s=1.0, levels=5)


def test_real_book_matches_book_ticker(real_bars):
    # independent reference: the bookTicker stream's last best bid/ask before each bar's end
    times, best_bid, best_ask = [], [], []
    for path in SPOT_ETH:
        with gzip.open(path, "rt") as handle:
            for line in handle:
                stamp, _, payload = line.partition(" ")
                if "bookTicker" in payload:
                    data = json.loads(payload)["data"]
                    times.append(int(stamp))
                    best_bid.append(float(data["b"]))
                    best_ask.append(float(data["a"]))
    i = np.searchsorted(np.array(times), real_bars.time_ns) - 1
    assert np.all(i >= 0)
    # depth@100ms lags bookTicker by up to 100 ms, so a few bars differ; 92% agree exactly
    assert np.mean(np.array(best_bid)[i] == real_bars.bid_px[:, 0]) > 0.85
    assert np.mean(np.array(best_ask)[i] == real_bars.ask_px[:, 0]) > 0.85
    assert np.all(real_bars.bid_px[:, 0] < real_bars.ask_px[:, 0])
    assert np.all(np.diff(real_bars.bid_px, axis=1) < 0) and np.all(np.diff(real_bars.ask_px) > 0)


def test_book_mode_env_and_no_look_ahead(real_bars):
    kwargs = dict(mode="book", l2_paths=[str(p) for p in SPOT_ETH], calib_bars=200,
                  n_steps=100, gammas=(0.1, 1.0, 10.0))
    env = MarketMakingEnv(**kwargs)
    assert env.observation_space.shape == (4 + 4 + 6,)
    obs, _ = env.reset(seed=3)
    seen = [obs]
    for _ in range(100):
        obs, r, te, tr, info = env.step(1)
        assert np.all(np.isfinite(obs)) and np.isfinite(r)
        seen.append(obs)
    assert te
    # perturb every bar after step t: observations up to t do not change
    m = env.kernel.market
    start = int(env.kernel.start[0])
    t = 40
    cut = start + t + 1
    feats = m.features.copy()
    feats[cut:] = -feats[cut:]
    close = m.close.copy()
    close[cut:] += 5.0
    fake = Market(sigma=m.sigma, A=m.A, k=m.k, close=close, high=m.high + 5.0 * (np.arange(
        close.size) >= cut), low=m.low, features=feats)
    kernel = MMKernel(make_config(**kwargs), 1, market=fake)
    one = np.ones(1, dtype=bool)
    kernel.seed(one, np.array([3]))
    kernel.init_state(one)
    np.testing.assert_array_equal(kernel.obs[0], seen[0])
    for step in range(1, t + 1):
        bid, ask, _ = kernel.action_quotes(np.array([1]))
        kernel.step(bid, ask)
        np.testing.assert_array_equal(kernel.obs[0], seen[step])
    bid, ask, _ = kernel.action_quotes(np.array([1]))
    kernel.step(bid, ask)
    assert not np.array_equal(kernel.obs[0], seen[t + 1])


def test_synthetic_book_in_model_mode():
    env = MarketMakingEnv(book_levels=3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4 + 4 + 4,)
    imbalances = []
    for _ in range(200):
        obs, *_ = env.step(2)
        imbalances.append(obs[8:11])
    imb = np.array(imbalances)
    assert np.all(np.abs(imb) <= 1) and abs(imb.mean()) < 0.15  # symmetric noise book
    # the book block does not change the model: same PnL as without it
    plain = MarketMakingEnv()
    plain.reset(seed=0)
    for _ in range(200):
        _, _, _, _, info_plain = plain.step(2)
    with_book = MarketMakingEnv(book_levels=3)
    with_book.reset(seed=0)
    for _ in range(200):
        _, _, _, _, info_book = with_book.step(2)
    assert info_book["pnl"] == info_plain["pnl"]


def test_book_levels_rejected_for_candles():
    with pytest.raises(ValueError, match="book"):
        make_config(mode="replay", data_path="x.csv", book_levels=3)
    with pytest.raises(ValueError, match="l2_paths"):
        make_config(mode="book")
