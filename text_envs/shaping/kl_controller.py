"""The KL coefficient β of :class:`~text_envs.shaping.KLPenalty`: fixed, or adapted towards a target KL.

Both controllers have ``.value`` (the current β) and ``.update(kl, n_steps)``, called once per episode.
"""

from __future__ import annotations

from typing import Protocol


class KLController(Protocol):
    """What :class:`~text_envs.shaping.KLPenalty` needs from a β controller."""

    value: float

    def update(self, kl: float, n_steps: int) -> None:
        """Adjust ``value`` after ``n_steps`` episodes whose KL(π‖π_ref) averaged ``kl`` nats per sequence."""


class FixedKLController:
    """A constant β: ``update`` leaves it as it is."""

    def __init__(self, value: float):
        if value < 0:
            raise ValueError(f"the KL coefficient must be >= 0, got {value}")
        self.value = float(value)

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
    """

    def __init__(self, initial_beta: float = 0.2, target: float = 6.0, horizon: int = 10_000):
        if initial_beta <= 0 or target <= 0 or horizon <= 0:
            raise ValueError(
                f"initial_beta, target and horizon must be positive, got {initial_beta}, {target}, {horizon}"
            )
        self.value = float(initial_beta)
        self.target = float(target)
        self.horizon = horizon

    def update(self, kl: float, n_steps: int) -> None:
        """Move β by the clipped proportional error of ``kl`` (nats per sequence) against ``target``."""
        error = min(max(kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon
