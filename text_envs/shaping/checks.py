"""The checks every shaping piece makes: settings that are finite numbers, and rewards that stay finite.

One NaN let through would never leave: it would turn a KL controller's β, a running return statistic
or every later clipped reward into NaN for good. So settings are refused at construction, naming the
argument, and a non-finite reward is refused where it enters a piece, naming the piece and the episode.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np


def finite_number(name: str, value: object, *, minimum: float | None = None, positive: bool = False) -> float:
    """``value`` as a float, refusing non-numbers (bools included), NaN, infinities, values below ``minimum``
    and, with ``positive``, zero; the error names ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return float(value)


def check_finite_rewards(source: str, episodes: Sequence[int] | np.ndarray, rewards: np.ndarray) -> None:
    """Raise ``ValueError`` naming ``source`` and the first episode whose reward is NaN or infinite."""
    bad = ~np.isfinite(np.asarray(rewards, dtype=np.float64))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"non-finite reward ({float(rewards[row])}) for episode {int(episodes[row])} from {source}; "
            "shaping refuses NaN and infinite rewards, which would poison every statistic they reach"
        )
