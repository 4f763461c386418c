"""TextPPO: sequence-level PPO for RLHF on TextGeneration-v0, with its config and safetensors checkpoints.

- :mod:`~text_envs_agents.text_ppo.trainer`: :class:`TextPPO` (``learn``, ``save`` / ``load``,
  ``save_pretrained``, ``predict``, ``generate``).
- :mod:`~text_envs_agents.text_ppo.config`: :class:`TextPPOConfig` (torch-free, for command lines).
- :mod:`~text_envs_agents.text_ppo.checkpoint`: the safetensors + JSON checkpoint format and its checks.
- :mod:`~text_envs_agents.text_ppo.callbacks`: stable-baselines3 callbacks and plain callables for ``learn``.
- :mod:`~text_envs_agents.text_ppo.logger`: TensorBoard / Weights & Biases under stable-baselines3's keys.

Names are imported on first use; the trainer loads torch and transformers, never stable-baselines3,
TensorBoard or wandb.
"""

from text_envs.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "PolicyWithValueHead": "text_envs_agents.text_ppo.trainer",
        "TextPPO": "text_envs_agents.text_ppo.trainer",
        "TextPPOConfig": "text_envs_agents.text_ppo.config",
        "TrainingLogger": "text_envs_agents.text_ppo.logger",
    },
)
