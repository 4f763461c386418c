"""The base class of this package's agents: stable-baselines3's ``predict`` on one or many observations."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class BaseAgent(ABC):
    """An agent whose ``predict`` matches stable-baselines3's, so benchmarks treat it like a trained model.

    Subclasses implement :meth:`act` on a batch. :meth:`predict` accepts one observation or a batch
    (a leading dimension of ``observation_ndim + 1``), returns an ``int64`` action of shape ``()``
    or ``(n,)`` accordingly, and passes the recurrent ``state`` through unchanged (these agents are
    not recurrent). ``seed`` seeds the agent's own generator, used for random choices.
    """

    observation_ndim = 1

    def __init__(self, seed: int | None = None):
        self.rng = np.random.default_rng(seed)

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = False,
        action_masks: Any = None,
    ) -> tuple[np.ndarray, Any]:
        observations = np.asarray(observation)
        single = observations.ndim == self.observation_ndim
        if single:
            observations = observations[None]
        masks = None
        if action_masks is not None:
            masks = np.asarray(action_masks, dtype=bool).reshape(len(observations), -1)
            if not masks.any(axis=1).all():
                raise ValueError("action_masks has a row with no legal action")
        actions = self.act(observations, masks, deterministic).astype(np.int64)
        return (actions[0] if single else actions), state

    @abstractmethod
    def act(self, observations: np.ndarray, action_masks: np.ndarray | None, deterministic: bool) -> np.ndarray:
        """Actions for a batch of observations; ``action_masks`` is ``bool`` ``(n, num_actions)`` or None."""

    def choose_among(self, allowed: np.ndarray, deterministic: bool) -> np.ndarray:
        """For each row of a ``bool`` mask, the lowest allowed index if deterministic, else a uniform pick."""
        if deterministic:
            return allowed.argmax(axis=1)
        return np.where(allowed, self.rng.random(allowed.shape), -1.0).argmax(axis=1)
