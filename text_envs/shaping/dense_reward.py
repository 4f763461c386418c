"""A per-token reward from a scorer of the completion so far."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from text_envs.shaping.reward_components import add_reward_term

TokenScorer = Callable[[str, str], float]
"""``(prompt, completion_so_far) -> float``: a score of a partial completion."""


class DenseReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Add ``coef`` times a scorer's value of the completion so far at every token.

    ## Description
    Gives the policy feedback before the end of the episode. After each step the wrapper decodes every
    generated id so far as one sequence with the env's tokenizer (byte-level tokens would garble
    piecewise decoding), exactly as the env decodes its final completion (special tokens skipped; on
    the last step without the stop token that ended it), and calls ``token_scorer(prompt, completion)``.

    ## Rewards
    Per token, in ``coef`` times the scorer's units: ``coef·v_t`` with ``v_t`` the score after token t;
    or, with ``difference=True``, ``coef·(v_t − v_{t−1})`` with ``v_{−1} = token_scorer(prompt, "")``,
    so the episode's sum telescopes to ``coef·(v_T − v_{−1})`` whatever the length.

    ## Information
    Every step: ``reward_components["dense"]`` (the term added) and ``token_score`` (``v_t``).

    ## Arguments
    - ``env``: a TextGeneration-v0 env, possibly wrapped.
    - ``token_scorer``: ``(prompt: str, completion_so_far: str) -> float``, called once per step (and
      once per ``reset`` with ``difference=True``).
    - ``coef``: weight of the term (1.0).
    - ``difference``: reward the change in score instead of the score (False).
    """

    def __init__(self, env: gym.Env, token_scorer: TokenScorer, coef: float = 1.0, difference: bool = False):
        gym.utils.RecordConstructorArgs.__init__(self, token_scorer=token_scorer, coef=coef, difference=difference)
        gym.Wrapper.__init__(self, env)
        self._task = env.unwrapped.task
        self.token_scorer = token_scorer
        self.coef = float(coef)
        self.difference = difference
        self._prompt = ""
        self._completion_ids: list[int] = []
        self._previous_score = 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        observation, info = self.env.reset(seed=seed, options=options)
        self._prompt = info["prompt"]
        self._completion_ids = []
        self._previous_score = float(self.token_scorer(self._prompt, "")) if self.difference else 0.0
        return observation, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        self._completion_ids.append(int(action))
        completion = self._task.completion_text(np.array(self._completion_ids, dtype=np.int64), stopped=terminated)
        score = float(self.token_scorer(self._prompt, completion))
        term = self.coef * (score - self._previous_score if self.difference else score)
        self._previous_score = score
        info = add_reward_term(info, "dense", term)
        info["token_score"] = score
        return observation, float(reward) + term, terminated, truncated, info
