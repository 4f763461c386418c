"""Ray RLlib (new API stack) modules and PPO set-up for text_envs: scale-out over env runners and clusters.

- :class:`ActionMaskingTorchRLModule`: RLlib's default PPO network for TicTacToe-v0, illegal moves masked.
- :class:`CausalLMTorchRLModule`: a Hugging Face causal LM as the policy of TextGeneration-v0.
- :func:`ppo_config`: a ``PPOConfig`` wiring either env to its module, with the env creators
  (:func:`tictactoe_env_creator`, :func:`text_generation_env_creator`) that RLlib's env runner processes call.

Needs the ``rllib`` extra (``pip install -e ".[rllib]"``). Nothing else in ``agents`` or ``text_envs``
imports this package, so the rest works without Ray.
"""

try:
    import ray.rllib  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        'text_envs_agents.rllib needs Ray RLlib: pip install "text_envs[rllib]" (or -e ".[rllib]")'
    ) from error

from text_envs_agents.rllib.action_masking import ActionMaskingTorchRLModule
from text_envs_agents.rllib.causal_lm import CausalLMTorchRLModule
from text_envs_agents.rllib.ppo import (
    ENV_NAMES,
    EPISODE_SCORE_SUM,
    count_illegal_moves,
    episode_score_mean,
    log_episode_score,
    ppo_config,
    text_generation_env_creator,
    tictactoe_env_creator,
)

__all__ = [
    "ENV_NAMES",
    "EPISODE_SCORE_SUM",
    "ActionMaskingTorchRLModule",
    "CausalLMTorchRLModule",
    "count_illegal_moves",
    "episode_score_mean",
    "log_episode_score",
    "ppo_config",
    "text_generation_env_creator",
    "tictactoe_env_creator",
]
