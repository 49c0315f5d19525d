"""Counter-based random numbers: one independent stream per environment, vectorised.

Each environment has a 64-bit key (from its seed); a draw is a hash of ``(key, episode, step,
stream)`` (the SplitMix64 finaliser), so environment ``i`` sees the same numbers whether it runs
alone or in a batch of any size, and no per-environment generator object is needed.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_INV53 = 1.0 / float(1 << 53)


def mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def seed_to_key(seeds: np.ndarray) -> np.ndarray:
    """Map integer seeds to 64-bit keys."""
    return mix64(np.asarray(seeds).astype(np.uint64) * _GOLDEN + _GOLDEN)


def uniforms(key: np.ndarray, episode: np.ndarray, step: np.ndarray, n_streams: int) -> np.ndarray:
    """Uniform draws in [0, 1), shape ``(N, n_streams)``, a pure function of its arguments."""
    counter = (episode.astype(np.uint64) << np.uint64(32)) ^ step.astype(np.uint64)
    base = mix64(key ^ mix64(counter + _GOLDEN))
    streams = np.arange(1, n_streams + 1, dtype=np.uint64) * _GOLDEN
    z = mix64(base[:, None] + streams[None, :])
    return (z >> np.uint64(11)).astype(np.float64) * _INV53


def normals(u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    """Standard normals from two uniform arrays (Box-Muller)."""
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)
