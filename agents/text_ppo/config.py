"""TextPPO's hyper-parameters, apart from the trainer so that a command line can read them without loading torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
    seed: int = 0
