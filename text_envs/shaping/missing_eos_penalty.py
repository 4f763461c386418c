"""A per-sequence penalty for completions cut off before EOS or a stop token."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from text_envs.shaping.reward_components import add_reward_term


class MissingEOSPenalty(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Penalise completions that never ended themselves (truncated by ``max_new_tokens`` or a full context).

    ## Description
    A reward model scores a cut-off completion as if it were finished; this constant penalty teaches
    the policy to end its answers (as TRL's ``missing_eos_penalty`` does).

    ## Rewards
    ``−penalty`` on a final step that was truncated, i.e. no EOS or stop token was emitted; 0.0 on
    every other step (per sequence, in reward units).

    ## Information
    Every step: ``reward_components["missing_eos_penalty"]``.

    ## Arguments
    - ``env``: a TextGeneration-v0 env, possibly wrapped.
    - ``penalty``: the amount subtracted from a truncated completion's reward.
    """

    def __init__(self, env: gym.Env, penalty: float):
        gym.utils.RecordConstructorArgs.__init__(self, penalty=penalty)
        gym.Wrapper.__init__(self, env)
        self.penalty = float(penalty)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        penalty = -self.penalty if truncated else 0.0
        info = add_reward_term(info, "missing_eos_penalty", penalty)
        return observation, float(reward) + penalty, terminated, truncated, info
