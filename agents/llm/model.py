"""A trainable policy LM: LoRA adapters on a causal LM and the zero-initialised value head beside it.

Every LM policy (stable-baselines3's :class:`~text_envs_agents.sb3.LMActorCriticPolicy`,
:class:`~text_envs_agents.text_ppo.TextPPO`, RLlib's :class:`~text_envs_agents.rllib.CausalLMTorchRLModule`)
builds its adapters and critic here.
"""

from __future__ import annotations

from typing import Any

from gymnasium import spaces
from torch import nn


def value_head(hidden_size: int) -> nn.Linear:
    """``nn.Linear(hidden_size, 1)`` initialised to zero: the first values are 0, and the first value-loss
    gradients leave the LM trunk it shares alone."""
    head = nn.Linear(hidden_size, 1)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    return head


def with_lora(model: nn.Module, lora: dict[str, Any]) -> nn.Module:
    """``peft.get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **lora))``: only the adapters train.

    ``lora`` holds ``peft.LoraConfig`` keyword arguments (e.g. ``{"r": 8, "lora_alpha": 16}``).
    """
    try:
        import peft
    except ImportError:
        raise ImportError("lora needs the peft package: pip install peft (or the text_envs[peft] extra)") from None
    return peft.get_peft_model(model, peft.LoraConfig(**{"task_type": "CAUSAL_LM", **lora}))


def check_token_spaces(observation_space: spaces.Space, action_space: spaces.Space, owner: str) -> None:
    """Refuse spaces other than a causal TextGeneration env's token ones, naming ``owner`` (the policy class)."""
    keys = set(observation_space.spaces) if isinstance(observation_space, spaces.Dict) else set()
    if keys != {"input_ids", "attention_mask"} or not isinstance(action_space, spaces.Discrete):
        raise ValueError(
            f"{owner} acts in causal TextGeneration-v0 envs with observation_mode='tokens' "
            "(Dict(input_ids, attention_mask) observations, Discrete token actions); got "
            f"{observation_space} and {action_space}"
        )
