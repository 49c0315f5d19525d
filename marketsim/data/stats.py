"""Summary statistics of candles, used to calibrate and check the synthetic default dataset.

Definitions are in docs/marketsim/data.md, section "Calibrating the default dataset".
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def candle_stats(df: pd.DataFrame) -> dict[str, float]:
    """Per-bar statistics of a candle frame (only consecutive bars count for returns).

    Keys: ``vol_std`` (std of close-to-close log returns), ``vol_robust`` (1.4826 * median
    absolute return), ``tail_rate_8`` (share of returns beyond 8 robust sigmas),
    ``acf_abs_1``/``acf_abs_60`` (autocorrelation of absolute returns), ``range_mean``
    (mean of log(high/low)), ``volume_mean``, ``volume_median``, ``log_volume_std``,
    ``corr_logvol_absret`` (correlation of log volume with absolute return).
    """
    close = df["close"].to_numpy(np.float64)
    step = np.diff(df.index.asi8)
    consecutive = step == np.median(step)
    r = np.diff(np.log(close))[consecutive]
    abs_r = np.abs(r)
    robust = 1.4826 * float(np.median(abs_r))
    centred = abs_r - abs_r.mean()
    var = float(centred.var())

    def acf(lag: int) -> float:
        """Autocorrelation of absolute returns at ``lag`` bars."""
        return float((centred[:-lag] * centred[lag:]).mean() / var)

    vol = df["volume"].to_numpy(np.float64)
    vol_next = vol[1:][consecutive]
    positive = vol_next > 0
    return {
        "bars": float(len(df)),
        "vol_std": float(r.std()),
        "vol_robust": robust,
        "tail_rate_8": float((abs_r > 8 * robust).mean()),
        "acf_abs_1": acf(1),
        "acf_abs_60": acf(60),
        "range_mean": float(np.log(df["high"] / df["low"]).mean()),
        "volume_mean": float(vol.mean()),
        "volume_median": float(np.median(vol)),
        "log_volume_std": float(np.log(vol[vol > 0]).std()),
        "corr_logvol_absret": float(np.corrcoef(np.log(vol_next[positive]), abs_r[positive])[0, 1]),
    }
