"""A per-sequence penalty for each generated token beyond a target length."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from text_envs.shaping.reward_components import add_reward_term


class LengthPenalty(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Penalise completions longer than ``target_length`` tokens, linearly in the excess.

    ## Description
    Reward models often prefer longer answers; this term counters that bias (or, with
    ``target_length``, only the part of it beyond a budget).

    ## Rewards
    On the last step, ``−coef·max(0, n − target_length)`` with ``n`` the number of generated tokens,
    the stop token that ended the completion included (``len(info["completion_ids"])``); 0.0 before.
    ``coef`` is in reward units per token over the target; the term is per sequence.

    ## Information
    Every step: ``reward_components["length_penalty"]``.

    ## Arguments
    - ``env``: a TextGeneration-v0 env, possibly wrapped.
    - ``coef``: the penalty per token over ``target_length``.
    - ``target_length``: tokens allowed without penalty (0: every token counts).
    """

    def __init__(self, env: gym.Env, coef: float, target_length: int = 0):
        if target_length < 0:
            raise ValueError(f"target_length must be >= 0, got {target_length}")
        gym.utils.RecordConstructorArgs.__init__(self, coef=coef, target_length=target_length)
        gym.Wrapper.__init__(self, env)
        self.coef = float(coef)
        self.target_length = target_length

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        penalty = 0.0
        if terminated or truncated:
            penalty = -self.coef * max(0, len(info["completion_ids"]) - self.target_length)
        info = add_reward_term(info, "length_penalty", penalty)
        return observation, float(reward) + penalty, terminated, truncated, info
