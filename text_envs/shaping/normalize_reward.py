"""Scaling the reward by the running standard deviation of episode returns."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym

from text_envs.shaping.reward_components import reward_components


class NormalizeReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Divide every reward by the running standard deviation of the (discounted) episode return.

    ## Description
    Keeps the scale of the total reward (score plus shaping terms) near 1 whatever the reward model's
    units, so that learning rates and value losses transfer between reward models. The scale is the
    standard deviation of the episode return ``G = Σ_t γ^t r_t`` of the incoming rewards, estimated
    with Welford's running update once per episode, at its end. Normalising by episode returns rather
    than by Gymnasium's per-step running discounted return means the divisor is constant within an
    episode, so every token's reward, and the episode's return, is scaled by the same factor. The mean
    is not subtracted, as in Gymnasium's NormalizeReward: a constant added to every token would make
    longer or shorter completions pay, changing which policy is optimal.
    Until two episodes have ended there is no spread to measure and the divisor is 1.

    ## Rewards
    ``r_t / sqrt(var(G) + epsilon)`` for each incoming reward ``r_t`` (per token, in units of the
    return's standard deviation).

    ## Information
    Every step: ``reward_components["normalised_reward"]`` (the reward returned; the additive terms below
    it still sum to the reward before normalisation) and ``reward_std`` (the divisor).

    ## Arguments
    - ``env``: a TextGeneration-v0 env, possibly wrapped; put this wrapper outside the shaping wrappers.
    - ``gamma``: discount of the episode return (1.0, RLHF's undiscounted return).
    - ``epsilon``: added to the variance before the square root (1e-8).
    - ``update_statistics``: update the running statistics at the end of each episode (True); set the
      attribute of the same name to False to freeze them for evaluation.
    """

    def __init__(self, env: gym.Env, gamma: float = 1.0, epsilon: float = 1e-8, update_statistics: bool = True):
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        if epsilon <= 0:
            raise ValueError(f"epsilon must be positive, got {epsilon}")
        gym.utils.RecordConstructorArgs.__init__(
            self, gamma=gamma, epsilon=epsilon, update_statistics=update_statistics
        )
        gym.Wrapper.__init__(self, env)
        self.gamma = float(gamma)
        self.epsilon = float(epsilon)
        self.update_statistics = update_statistics
        self.return_count = 0
        self.return_mean = 0.0
        self._return_m2 = 0.0
        self._episode_return = 0.0
        self._discount = 1.0

    @property
    def return_std(self) -> float:
        """The current divisor: ``sqrt(var(G) + epsilon)`` over the episodes seen, 1.0 before the second."""
        if self.return_count < 2:
            return 1.0
        return math.sqrt(self._return_m2 / self.return_count + self.epsilon)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        self._episode_return = 0.0
        self._discount = 1.0
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        reward = float(reward)
        self._episode_return += self._discount * reward
        self._discount *= self.gamma
        std = self.return_std
        normalised = reward / std
        if (terminated or truncated) and self.update_statistics:
            self._update(self._episode_return)
        components = reward_components(info)
        components["normalised_reward"] = normalised
        info = {**info, "reward_components": components, "reward_std": std}
        return observation, normalised, terminated, truncated, info

    def _update(self, episode_return: float) -> None:
        self.return_count += 1
        delta = episode_return - self.return_mean
        self.return_mean += delta / self.return_count
        self._return_m2 += delta * (episode_return - self.return_mean)
