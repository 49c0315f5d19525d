"""Acceptance: a regime switch on a synthetic market (fixed seeds, thresholds stated).

The market's returns follow AR(1) with coefficient +0.5 (trending: follow the last move) for
1000 bars, then -0.5 (mean-reverting: fade it) for 1000 bars (``continual_helpers``). A PPO agent
is trained on the trending part only. It scores about +13 per 32-bar episode on fresh trending
data and about -13 on fresh mean-reverting data (the frozen agent). The online loop then replays
the stream from bar 1000 in ticks of 250 bars, 2048 fine-tuning steps per tick at learning rate
3e-3, always promoting (margin 1e9, so that learning itself is measured). Three variants:

* naive fine-tuning (no rehearsal, no anchor),
* rehearsal (half of each tick's rollouts on a reservoir window from earlier ticks),
* EWC anchor (strength 1 towards the last promoted weights).

Scores are deterministic 32-bar episode returns on two held-out series with other seeds: one
trending (old regime), one mean-reverting (new regime). Forgetting = frozen score on the old
regime minus the variant's score there. Thresholds (observed values with seed 1 in the comments):

* every continual variant beats the frozen agent on the new regime: naive by > 8 (16.5),
  rehearsal and EWC by > 3 (6.2 and 5.8);
* rehearsal and EWC forget less than naive fine-tuning by > 6 (naive 15.2, rehearsal 2.5, EWC 4.1).
"""

from __future__ import annotations

import shutil

import pandas as pd
from continual_helpers import SIGMA, regime_candles, train_base, write_candles

from marketsim import TREND_TOY_ID
from marketsim.data.sources import ReplaySource
from rlcore.continual import OnlineConfig, OnlineLoop, OnlineSettings
from rlcore.continual.holdout import evaluate_window

B = 1000
VARIANTS = {"naive": ("none", 0.0), "rehearsal": ("none", 0.5), "ewc": ("ewc", 0.0)}


def test_continual_beats_frozen_and_rehearsal_anchor_forget_less(tmp_path):
    df = regime_candles([0.5, -0.5], B, seed=1)
    write_candles(df.iloc[:B], tmp_path / "old.parquet")
    write_candles(df, tmp_path / "stream.parquet")
    base = train_base(tmp_path, tmp_path / "old.parquet")
    test_old = regime_candles([0.5], 2000, seed=7)
    test_new = regime_candles([-0.5], 2000, seed=8)
    kw = {"episode_length": 32, "scale": SIGMA}

    def score(agent, data):
        return evaluate_window(agent, TREND_TOY_ID, kw, data, 32)["return_mean"]

    res = {}
    for name, (anchor, rehearsal) in VARIANTS.items():
        run = tmp_path / name
        shutil.copytree(base, run)
        cfg = OnlineConfig(every=pd.Timedelta(f"{B // 4}min"), train_bars=B // 4,
                           holdout_bars=B // 10, warmup_bars=B, episode_length=32, n_envs=4,
                           anchor=anchor, seed=0)
        st = OnlineSettings(learning_rate=3e-3, tick_steps=2048, rehearsal_frac=rehearsal,
                            anchor_strength=1.0, promote_margin=1e9)
        loop = OnlineLoop(run, ReplaySource(tmp_path / "stream.parquet"), cfg, st).start()
        loop.run()
        assert loop.tick == 5 and loop.version == 5
        res[name] = {"old": score(loop.serving, test_old), "new": score(loop.serving, test_new)}
        res["frozen"] = {"old": score(loop.frozen, test_old), "new": score(loop.frozen, test_new)}
    print(res)
    fro = res["frozen"]
    assert fro["old"] > 8 and fro["new"] < -8  # the switch really hurts the frozen agent
    forget = {k: fro["old"] - res[k]["old"] for k in VARIANTS}
    assert res["naive"]["new"] > fro["new"] + 8
    assert res["rehearsal"]["new"] > fro["new"] + 3
    assert res["ewc"]["new"] > fro["new"] + 3
    assert forget["rehearsal"] < forget["naive"] - 6
    assert forget["ewc"] < forget["naive"] - 6
