"""Perfect Tic-Tac-Toe play from the solved game."""

from __future__ import annotations

import numpy as np

from text_envs.tictactoe import rules
from text_envs_agents.base import BaseAgent


class MinimaxAgent(BaseAgent):
    """Perfect play on ``TicTacToe-v0`` observations, looked up in the solved game.

    Every position is solved once, backwards from full boards, in :mod:`text_envs.tictactoe.rules`
    (memoized over all 3^9 boards), so a move costs one table lookup. Among moves of equal value
    it prefers a quicker win and a slower loss; remaining ties are broken by the lowest cell index
    when ``deterministic=True``, and uniformly at random (the agent's ``seed``) otherwise.
    Action masks are accepted and ignored: the solved game already knows the legal moves.
    """

    def act(self, observations: np.ndarray, action_masks: np.ndarray | None, deterministic: bool) -> np.ndarray:
        states = rules.state_from_observation(observations)
        optimal = rules.OPTIMAL_MOVES[states].astype(bool)
        if not optimal.any(axis=1).all():
            raise ValueError("MinimaxAgent was asked to move in a finished game")
        return self.choose_among(optimal, deterministic)
