"""TextPPO: sequence-level PPO for RLHF on TextGeneration-v0, with its config and safetensors checkpoints.

- :mod:`~text_envs_agents.text_ppo.trainer`: :class:`TextPPO` (``learn``, ``save`` / ``load``,
  ``save_pretrained``, ``predict``, ``generate``) and :class:`TextPPOConfig`.
- :mod:`~text_envs_agents.text_ppo.checkpoint`: the safetensors + JSON checkpoint format and its checks.
- :mod:`~text_envs_agents.text_ppo.callbacks`: stable-baselines3 callbacks and plain callables for ``learn``.
- :mod:`~text_envs_agents.text_ppo.logger`: TensorBoard / Weights & Biases under stable-baselines3's keys.

Importing this package loads torch and transformers, never stable-baselines3, TensorBoard or wandb.
"""

from text_envs_agents.text_ppo.logger import TrainingLogger
from text_envs_agents.text_ppo.trainer import PolicyWithValueHead, TextPPO, TextPPOConfig

__all__ = ["PolicyWithValueHead", "TextPPO", "TextPPOConfig", "TrainingLogger"]
