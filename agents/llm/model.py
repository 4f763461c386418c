"""A trainable policy LM: LoRA adapters on a causal LM, the zero-initialised value head beside it, gradient
checkpointing for a policy kept in eval mode, and the check that bf16 autocast trains float32 weights.

Every LM policy (stable-baselines3's :class:`~text_envs_agents.sb3.LMActorCriticPolicy`,
:class:`~text_envs_agents.text_ppo.TextPPO`, RLlib's :class:`~text_envs_agents.rllib.CausalLMTorchRLModule`)
builds its adapters and critic here.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from gymnasium import spaces
from torch import nn

from text_envs.lm import unwrap_peft


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


def enable_gradient_checkpointing(model: nn.Module) -> list[nn.Module]:
    """Turn on Hugging Face's non-reentrant activation checkpointing for a policy that stays in eval mode;
    returns the layers it recomputes, to be flagged for a grad-enabled forward by :func:`checkpointing`.

    Hugging Face checkpoints a layer only while the layer's ``training`` flag is set, and dropout reads
    the same flags; so only the checkpointed layers' own flags are set, only around the forwards that
    build a graph (older transformers also drop the KV cache of a flagged layer, which a rollout needs),
    and their submodules (attention and MLP dropout) stay in eval mode. Refused for models that act on
    the layer's own flag otherwise (dropout in the layer's own forward, as OPT's): a probe of two tiny
    forwards, with and without the flags, must agree exactly.
    """
    from transformers.modeling_layers import GradientCheckpointingLayer

    base = unwrap_peft(model)
    if hasattr(base, "activation_checkpointing_enable"):  # the newer name; transformers 5 deprecates the older
        base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    layers = [m for m in base.modules() if isinstance(m, GradientCheckpointingLayer)]
    if not layers:
        raise ValueError(
            f"gradient_checkpointing=True: {type(base).__name__} has no layers that Hugging Face's gradient "
            "checkpointing recomputes"
        )
    for layer in layers:
        layer.training = False
    probe = torch.tensor([[1, 2, 3]], device=next(base.parameters()).device)
    with torch.no_grad():
        plain = base(input_ids=probe, use_cache=False).logits
        with checkpointing(layers):
            flagged = base(input_ids=probe, use_cache=False).logits
    if not torch.equal(plain, flagged):
        raise ValueError(
            f"gradient_checkpointing=True: {type(base).__name__}'s decoder layers change their outputs in training "
            "mode (dropout in the layer's own forward), which the policy keeps off"
        )
    return layers


@contextmanager
def checkpointing(layers: Sequence[nn.Module]) -> Iterator[None]:
    """Flag ``layers`` (from :func:`enable_gradient_checkpointing`) for recomputation inside the block only."""
    for layer in layers:
        layer.training = True
    try:
        yield
    finally:
        for layer in layers:
            layer.training = False


def check_token_spaces(observation_space: spaces.Space, action_space: spaces.Space, owner: str) -> None:
    """Refuse spaces other than a causal TextGeneration env's token ones, naming ``owner`` (the policy class)."""
    keys = set(observation_space.spaces) if isinstance(observation_space, spaces.Dict) else set()
    if keys != {"input_ids", "attention_mask"} or not isinstance(action_space, spaces.Discrete):
        raise ValueError(
            f"{owner} acts in causal TextGeneration-v0 envs with observation_mode='tokens' "
            "(Dict(input_ids, attention_mask) observations, Discrete token actions); got "
            f"{observation_space} and {action_space}"
        )


CPU_BF16_CHECKS = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
"""``torch.cpu``'s probes of the instructions that run bfloat16 at speed."""


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively: a GPU that supports it without emulation, or a CPU with
    AVX-512 BF16 or AMX. Elsewhere bf16 autocast still runs, emulated or through slow CPU fallback kernels."""
    if device.type == "cuda":
        with torch.cuda.device(device):
            return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return any(getattr(torch.cpu, check, lambda: False)() for check in CPU_BF16_CHECKS)
    return False


def check_mixed_precision(model: nn.Module, mixed_precision: str, device: torch.device) -> None:
    """Refuse mixed precision over weights that are not float32, or on a GPU without bf16; warn where bf16 is not
    native (:func:`native_bf16`), where it runs but slowly."""
    if mixed_precision != "bf16":
        return
    dtypes = sorted({str(p.dtype) for p in model.parameters() if p.is_floating_point()})
    if dtypes != ["torch.float32"]:
        raise ValueError(
            f"mixed_precision='bf16' keeps float32 master weights, but the model's parameters are {dtypes}: "
            "load it in float32, or set mixed_precision='no' to train it in its own dtype"
        )
    if device.type == "cuda":
        with torch.cuda.device(device):
            if not torch.cuda.is_bf16_supported():
                raise ValueError(f"mixed_precision='bf16': the GPU at {device} does not support bfloat16")
    if not native_bf16(device):
        warnings.warn(
            f"mixed_precision='bf16' on {device}, which does not compute in bfloat16 natively (a CPU without "
            "AVX-512 BF16 or AMX, or a GPU that emulates it): autocast can be many times slower than float32 "
            "there; set mixed_precision='no'",
            stacklevel=3,
        )
