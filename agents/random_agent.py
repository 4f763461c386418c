"""The uniformly random agent: the floor every benchmark reports."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from text_envs_agents.base import BaseAgent


class RandomAgent(BaseAgent):
    """Picks uniformly among the legal actions (``action_masks``), or over the whole ``Discrete`` space.

    ``deterministic=True`` is ignored: a random agent stays random. Without masks, ``action_space``
    must be given (e.g. ``Discrete(9)`` for Tic-Tac-Toe).
    """

    def __init__(self, action_space: spaces.Discrete | None = None, seed: int | None = None):
        super().__init__(seed)
        self.action_space = action_space

    def act(self, observations: np.ndarray, action_masks: np.ndarray | None, deterministic: bool) -> np.ndarray:
        if action_masks is None:
            if self.action_space is None:
                raise ValueError("RandomAgent needs action_masks or an action_space to choose from")
            n = int(self.action_space.n)
            return self.action_space.start + self.rng.integers(n, size=len(observations))
        return self.choose_among(action_masks, deterministic=False)
