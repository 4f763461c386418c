"""TextPPO: sequence-level PPO for RLHF on TextGeneration-v0, with its config and safetensors checkpoints."""

from text_envs_agents.text_ppo.trainer import PolicyWithValueHead, TextPPO, TextPPOConfig

__all__ = ["PolicyWithValueHead", "TextPPO", "TextPPOConfig"]
