"""TextPPO's hyper-parameters, apart from the trainer so that a command line can read them without loading torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

MixedPrecision = Literal["no", "bf16"]
MIXED_PRECISION = get_args(MixedPrecision)
"""The values of :attr:`TextPPOConfig.mixed_precision`."""


@dataclass
class TextPPOConfig:
    """Hyper-parameters of :class:`TextPPO`; ``batch_size`` episodes per iteration (the env's ``num_envs``)."""

    learning_rate: float = 1e-4
    """for the embedded LM on the default task, 120 iterations of 32 episodes: 1e-4 raised the held-out
    reward-model score by 1.4-1.8 standard deviations at 17-31 nats of KL on seeds 0-2; 3e-4 ended
    at 45-89 nats, one seed barely above 1 standard deviation"""
    ppo_epochs: int = 4
    minibatch_size: int = 16
    gradient_accumulation_steps: int = 1
    gamma: float = 1.0
    lam: float = 0.95
    clip_range: float = 0.2
    clip_range_value: float = 0.2
    value_coef: float = 0.1
    """TRL's default. The value head shares the LM's trunk, so early value errors (returns of a few
    reward units against a zero-initialised head) also move the policy: at 0.5 the default task's KL
    jumped to 15-21 nats on the third iteration for each of three seeds, at 0.1 it grows smoothly."""
    entropy_coef: float = 0.0
    max_grad_norm: float = 1.0
    kl_coef: float = 0.05
    adaptive_kl: bool = False
    target_kl: float = 6.0
    kl_horizon: int = 10_000
    kl_estimator: str = "k1"
    temperature: float = 1.0
    whiten_advantages: bool = True
    lora: dict[str, Any] | None = None
    mixed_precision: MixedPrecision = "no"
    """``"no"``: every forward in the parameters' dtype; ``"bf16"``: rollout, reference and update forwards
    under ``torch.autocast(device_type, dtype=torch.bfloat16)`` (TRL's and accelerate's ``mixed_precision``),
    with float32 master weights and optimizer state, and the losses, log-softmax, KL and GAE in float32.
    The old policy's log-probs and values are then recomputed with one teacher-forced forward per
    iteration instead of taken from the rollout: the KV-cached and teacher-forced bf16 paths round
    differently (~1e-2), which would bias the first pass's PPO ratio away from 1. bf16, not fp16: it
    needs no loss scaling, and CPUs run bf16 autocast too, at speed only with AVX-512 BF16 or AMX
    (:func:`~text_envs_agents.llm.model.native_bf16`; elsewhere it warns). The model must be in float32."""
    gradient_checkpointing: bool = False
    """recompute each decoder layer's activations in the backward pass instead of keeping them
    (Hugging Face's ``gradient_checkpointing_enable``, non-reentrant): less memory for one more forward
    of the trunk per minibatch"""
    seed: int = 0

    def __post_init__(self) -> None:
        """Refuse settings no run could mean (NaN, wrong types, out of range), naming the field."""
        from text_envs.shaping.checks import finite_number
        from text_envs.shaping.kl import KL_ESTIMATORS

        for name in ("ppo_epochs", "minibatch_size", "gradient_accumulation_steps", "kl_horizon"):
            _positive_integer(name, getattr(self, name))
        for name in ("learning_rate", "target_kl", "temperature"):
            finite_number(name, getattr(self, name), positive=True)
        for name in ("clip_range", "clip_range_value", "value_coef", "entropy_coef", "max_grad_norm", "kl_coef"):
            finite_number(name, getattr(self, name), minimum=0.0)
        for name in ("gamma", "lam"):
            if not 0.0 <= finite_number(name, getattr(self, name)) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.adaptive_kl and self.kl_coef == 0:
            raise ValueError("kl_coef must be positive with adaptive_kl=True (the controller scales it), got 0")
        if self.kl_estimator not in KL_ESTIMATORS:
            raise ValueError(f"kl_estimator must be one of {KL_ESTIMATORS}, got {self.kl_estimator!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must be an integer in [0, 2**32 - 1], got {self.seed!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")


def _positive_integer(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


FLUENT_RLHF = TextPPOConfig(learning_rate=3e-5, entropy_coef=0.005)
"""The TextPPO settings of ``text-envs-train`` and the shaping sweep on the embedded defaults: with β 0.2 and 32
new tokens, against the reward model of both feedback rounds, the levers measured to raise its score while the
text stays fluent (the README's lever table; at the library's learning rate of 1e-4, β 0.5 or more diverged)."""
