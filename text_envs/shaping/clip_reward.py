"""Clipping the total reward to an interval."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from text_envs.shaping.reward_components import add_reward_term


class ClipReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Clip every reward to ``[low, high]``.

    ## Description
    Bounds the total reward (score plus shaping terms) so that an outlier, such as a reward model's
    extreme score or a large KL term, cannot dominate an update.

    ## Rewards
    ``min(max(r_t, low), high)`` for each incoming reward ``r_t`` (per token, in its units).

    ## Information
    Every step: ``reward_components["clipped_by"]``, the reward returned minus the reward received
    (0.0 when nothing was clipped; negative when clipped from above), so the components below it plus
    this one still sum to the reward returned.

    ## Arguments
    - ``env``: a TextGeneration-v0 env, possibly wrapped; put this wrapper outside the shaping wrappers.
    - ``low``, ``high``: the bounds (``low <= high``; ``math.inf`` leaves a side open).
    """

    def __init__(self, env: gym.Env, low: float, high: float):
        if not low <= high:
            raise ValueError(f"low must not exceed high, got low={low}, high={high}")
        gym.utils.RecordConstructorArgs.__init__(self, low=low, high=high)
        gym.Wrapper.__init__(self, env)
        self.low = float(low)
        self.high = float(high)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        reward = float(reward)
        clipped = min(max(reward, self.low), self.high)
        info = add_reward_term(info, "clipped_by", clipped - reward)
        return observation, clipped, terminated, truncated, info
