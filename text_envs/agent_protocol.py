"""The agent interface every env in this package speaks: stable-baselines3's ``predict``.

Built-in agents (``agents/``), trained stable-baselines3 / sb3-contrib models and user objects all
satisfy :class:`Agent`, so an env can use any of them as an opponent and a benchmark can evaluate
them alike.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Agent(Protocol):
    """Anything with stable-baselines3's ``predict`` signature.

    ``predict(observation, state=None, episode_start=None, deterministic=False, action_masks=None)``
    returns ``(action, state)``. ``action_masks`` is optional: plain SB3 models (PPO, DQN, A2C) do
    not accept it, sb3-contrib's MaskablePPO and this package's agents do.
    """

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = False,
    ) -> tuple[Any, Any]: ...


def accepts_action_masks(agent: Agent) -> bool:
    """Whether ``agent.predict`` takes an ``action_masks`` keyword."""
    parameters = inspect.signature(agent.predict).parameters
    return "action_masks" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def predict_actions(
    agent: Agent,
    observation: np.ndarray,
    action_masks: np.ndarray | None,
    deterministic: bool,
    pass_masks: bool | None = None,
) -> np.ndarray:
    """Call ``agent.predict`` and return its actions as an int64 array, passing masks if it takes them.

    ``pass_masks`` caches :func:`accepts_action_masks` for callers on a hot path.
    """
    if pass_masks is None:
        pass_masks = accepts_action_masks(agent)
    if pass_masks and action_masks is not None:
        actions, _ = agent.predict(observation, deterministic=deterministic, action_masks=action_masks)
    else:
        actions, _ = agent.predict(observation, deterministic=deterministic)
    return np.asarray(actions, dtype=np.int64)
