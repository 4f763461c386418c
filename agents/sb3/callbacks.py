"""stable-baselines3 callbacks for TextGeneration-v0 training."""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback


class EpisodeScoreCurve(BaseCallback):
    """Records the reward-model score of the episodes each rollout finished: a learning curve of the training batches.

    ``points`` holds ``(env steps before the rollout, mean info["score"] of its finished episodes)``, one point per
    rollout that finished an episode. ``info["score"]`` is the env's reward-model score of the completion, before any
    shaping (the KL penalty's included), so the curve shows the score a shaped policy earns.
    """

    def __init__(self) -> None:
        super().__init__()
        self.points: list[tuple[int, float]] = []
        self._rollout_start = 0
        self._scores: list[float] = []

    def _on_rollout_start(self) -> None:
        self._rollout_start = self.num_timesteps
        self._scores = []

    def _on_step(self) -> bool:
        infos, dones = self.locals["infos"], self.locals["dones"]
        self._scores += [float(info["score"]) for info, done in zip(infos, dones, strict=True) if done]
        return True

    def _on_rollout_end(self) -> None:
        if self._scores:
            self.points.append((self._rollout_start, float(np.mean(self._scores))))
