"""Checking the actions users send to ``Discrete`` envs."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np


def check_discrete_action(action: Any, n: int, what: str) -> int:
    """``action`` as an int in ``0..n-1``; anything else raises ``ValueError`` naming ``what`` it should be."""
    try:
        value = operator.index(action)
    except TypeError:
        raise ValueError(f"action must be an integer {what} 0..{n - 1}, got {action!r}") from None
    if not 0 <= value < n:
        raise ValueError(f"action must be an integer {what} 0..{n - 1}, got {value}")
    return value


def check_discrete_actions(actions: Any, num_envs: int, n: int, what: str) -> np.ndarray:
    """A vector env's actions as an int64 array of shape ``(num_envs,)`` in ``0..n-1``, else ``ValueError``."""
    values = np.asarray(actions)
    if values.shape != (num_envs,) or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"actions must be {num_envs} integers ({what} 0..{n - 1} each), got {actions!r}")
    if ((values < 0) | (values >= n)).any():
        raise ValueError(f"actions must each be a {what} 0..{n - 1}, got {values}")
    return values.astype(np.int64, copy=False)
