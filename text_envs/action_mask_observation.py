"""The env's action mask moved from ``info`` into the observation, for agents that only read observations."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class ActionMaskObservation(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Observations become ``{"action_mask": mask, "observations": observation}``, the mask read from ``info``.

    ## Description
    An env such as TicTacToe-v0 reports its legal actions as ``info["action_mask"]``. Libraries whose
    policies see only observations (Ray RLlib's RLModules, whose action-masking example reads a Dict
    observation with exactly these two keys) need the mask inside the observation; this wrapper puts
    it there. Rewards, ``terminated``, ``truncated`` and ``info`` pass through unchanged.

    ## Observation Space
    ``Dict(action_mask=Box(0, 1, (n,), float32), observations=env.observation_space)`` for a
    ``Discrete(n)`` action space: the mask holds 1.0 for a legal action and 0.0 for an illegal one
    (float32, so that it batches and converts to a tensor like any other Box); ``observations`` is the
    wrapped env's observation, untouched.

    ## Information
    Unchanged; ``info["action_mask"]`` is still there. A reset or step whose ``info`` has no
    ``"action_mask"``, or one of the wrong shape, raises ``KeyError`` or ``ValueError``.

    ## Arguments
    - ``env``: an env with a ``Discrete`` action space that puts ``action_mask`` (shape ``(n,)``, any
      numeric or bool dtype, nonzero meaning legal) in the info of every reset and step.

    ## Version History
    - v0: initial version.
    """

    def __init__(self, env: gym.Env):
        if not isinstance(env.action_space, spaces.Discrete):
            raise ValueError(f"ActionMaskObservation needs a Discrete action space, got {env.action_space}")
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        self._actions = int(env.action_space.n)
        self.observation_space = spaces.Dict(
            {
                "action_mask": spaces.Box(0.0, 1.0, shape=(self._actions,), dtype=np.float32),
                "observations": env.observation_space,
            }
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        observation, info = self.env.reset(seed=seed, options=options)
        return self._with_mask(observation, info), info

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        return self._with_mask(observation, info), reward, terminated, truncated, info

    def _with_mask(self, observation: Any, info: dict[str, Any]) -> dict[str, Any]:
        if "action_mask" not in info:
            raise KeyError(
                "ActionMaskObservation needs info['action_mask'] on every reset and step; "
                f"{type(self.env.unwrapped).__name__} gave info keys {sorted(info)}"
            )
        mask = np.asarray(info["action_mask"])
        if mask.shape != (self._actions,):
            raise ValueError(f"info['action_mask'] has shape {mask.shape}, expected ({self._actions},)")
        return {"action_mask": (mask != 0).astype(np.float32), "observations": observation}
