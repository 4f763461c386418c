"""KL(π‖π_ref) per token, and the coefficient β that weighs it: fixed, or adapted towards a target KL.

Both controllers have ``.value`` (the current β) and ``.update(kl, n_steps)``, called between batches
with the mean KL of the episodes that ended (nats per sequence) and their number.
"""

from __future__ import annotations

import numbers
from typing import Protocol

import numpy as np

from text_envs.shaping.checks import finite_number

KL_ESTIMATORS = ("k1", "k3")


def kl_estimate(
    policy_logprob: float | np.ndarray, ref_logprob: float | np.ndarray, estimator: str = "k1"
) -> float | np.ndarray:
    """Per-token estimate of KL(π‖π_ref) in nats from the log-probs of the sampled tokens (floats or arrays).

    ``"k1"``: ``log π − log π_ref``; unbiased, but negative for some tokens. ``"k3"``: with
    ``r = log π_ref − log π``, ``(exp(r) − 1) − r``; unbiased, never negative, lower variance
    (Schulman 2020, "Approximating KL divergence"). Both are unbiased only for tokens sampled from π.
    A float in gives a float out.
    """
    if estimator not in KL_ESTIMATORS:
        raise ValueError(f"estimator must be one of {KL_ESTIMATORS}, got {estimator!r}")
    log_ratio = np.subtract(policy_logprob, ref_logprob)
    kl = log_ratio if estimator == "k1" else np.expm1(-log_ratio) + log_ratio
    return float(kl) if np.ndim(kl) == 0 else kl


class KLController(Protocol):
    """What :class:`~text_envs.shaping.KLTerm` needs from a β controller."""

    value: float

    def update(self, kl: float, n_steps: int) -> None:
        """Adjust ``value`` after ``n_steps`` episodes whose KL(π‖π_ref) averaged ``kl`` nats per sequence."""


class FixedKLController:
    """A constant β: ``update`` leaves it as it is."""

    def __init__(self, value: float):
        self.value = finite_number("beta", value, minimum=0.0)

    def update(self, kl: float, n_steps: int) -> None:
        """Keep β fixed."""


class AdaptiveKLController:
    """β adapted so that the KL per sequence tracks a target (Ziegler et al. 2019; TRL's ``AdaptiveKLController``).

    ## Description
    After ``n_steps`` episodes with KL ``kl`` (nats per sequence)::

        error = clip(kl / target - 1, -0.2, 0.2)
        beta <- beta * (1 + error * n_steps / horizon)

    so β grows while the policy drifts further than ``target`` from the reference and shrinks while it
    stays closer; the clip bounds the change per update.

    ## Arguments
    - ``initial_beta``: the starting β (0.2, TRL's default).
    - ``target``: the KL to track, in nats per sequence (6.0, TRL's default).
    - ``horizon``: in episodes; over ``horizon`` episodes β changes by at most a factor of about
      ``exp(±0.2)`` (10000, TRL's default).

    All three must be finite and positive: β = 0 would stay 0 for good (it only ever scales).
    """

    def __init__(self, initial_beta: float = 0.2, target: float = 6.0, horizon: int = 10_000):
        self.value = finite_number("initial_beta", initial_beta, positive=True)
        self.target = finite_number("target", target, positive=True)
        self.horizon = finite_number("horizon", horizon, positive=True)

    def update(self, kl: float, n_steps: int) -> None:
        """Move β by the clipped proportional error of ``kl`` (nats per sequence) against ``target``.

        A NaN or infinite ``kl`` is refused (``ValueError``) before β changes: it would make β NaN for good.
        """
        kl = finite_number("kl", kl)
        if isinstance(n_steps, bool) or not isinstance(n_steps, numbers.Integral) or n_steps < 0:
            raise ValueError(f"n_steps must be an integer >= 0, got {n_steps!r}")
        error = min(max(kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon
