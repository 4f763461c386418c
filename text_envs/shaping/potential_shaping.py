"""Potential-based reward shaping (Ng, Harada & Russell 1999), which leaves the optimal policy unchanged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from text_envs.shaping.reward_components import add_reward_term

Potential = Callable[[str, str], float]
"""``(prompt, completion_so_far) -> float``: the potential Φ of a state."""


class PotentialShaping(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Add ``F = γ·Φ(s') − Φ(s)`` at every token, for a potential Φ of the prompt and completion so far.

    ## Description
    Ng et al. (1999) show that adding ``γ·Φ(s') − Φ(s)`` to every transition does not change which
    policies are optimal, whatever Φ is, provided Φ is 0 at the end of the episode: a heuristic
    (a partial-completion scorer, a value estimate) can guide exploration without being exploitable.
    Here Φ(s') := 0 on the last step, whether terminated or truncated (the token budget is part of
    the task). The state's completion is every generated id so far decoded as one sequence with the
    env's tokenizer (special tokens skipped).

    ## Rewards
    Per token, in Φ's units: ``γ·Φ(s_{t+1}) − Φ(s_t)``, with ``Φ(s_0) = potential(prompt, "")`` and
    ``Φ(s_T) = 0``. With ``γ = 1`` an episode's terms sum to ``−Φ(s_0)``, whatever the policy does.

    ## Information
    Every step: ``reward_components["potential"]`` (the shaping term F).

    ## Arguments
    - ``env``: a TextGeneration-v0 env, possibly wrapped.
    - ``potential``: ``(prompt: str, completion_so_far: str) -> float``, called once per ``reset`` and
      once per non-final step.
    - ``gamma``: the agent's discount factor (1.0); the guarantee holds only if they match.
    """

    def __init__(self, env: gym.Env, potential: Potential, gamma: float = 1.0):
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        gym.utils.RecordConstructorArgs.__init__(self, potential=potential, gamma=gamma)
        gym.Wrapper.__init__(self, env)
        self._task = env.unwrapped.task
        self.potential = potential
        self.gamma = float(gamma)
        self._prompt = ""
        self._completion_ids: list[int] = []
        self._potential = 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        observation, info = self.env.reset(seed=seed, options=options)
        self._prompt = info["prompt"]
        self._completion_ids = []
        self._potential = float(self.potential(self._prompt, ""))
        return observation, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        self._completion_ids.append(int(action))
        next_potential = 0.0
        if not (terminated or truncated):
            completion = self._task.completion_text(np.array(self._completion_ids, dtype=np.int64), stopped=False)
            next_potential = float(self.potential(self._prompt, completion))
        shaping = self.gamma * next_potential - self._potential
        self._potential = next_potential
        info = add_reward_term(info, "potential", shaping)
        return observation, float(reward) + shaping, terminated, truncated, info
