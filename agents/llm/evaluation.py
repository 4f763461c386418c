"""Evaluating a text policy: sample one completion per prompt of a vector env and measure it against a reference.

The same measurement serves ``text-envs-train``'s before/after table, TextPPO's
:meth:`~text_envs_agents.text_ppo.TextPPO.evaluate`, the benchmark and the shaping sweep.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from text_envs.generation.vector_env import TextGenerationVectorEnv
from text_envs.rewards.protocol import check_scores
from text_envs_agents.llm.rollout import RolloutBatch, sample_episodes, sequence_logprobs


@torch.no_grad()
def evaluate_lm(
    model: nn.Module,
    reference_logprobs: Callable[[RolloutBatch], torch.Tensor],
    env: TextGenerationVectorEnv,
    seed: int = 0,
    gold: Callable | None = None,
    temperature: float = 1.0,
) -> tuple[dict[str, float], RolloutBatch]:
    """Sample one completion per env of ``env`` (seeded: the same prompts every call) and measure it.

    Metrics: mean and standard deviation of the reward-model score; the mean ``gold`` score when a
    gold scorer ``(prompts, completions) -> scores`` is given; the KL to the reference in nats per
    sequence (the sum over sampled tokens of ``log π - log π_ref``, an unbiased estimate of
    KL(π‖π_ref)); the mean completion length in tokens.
    """
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    batch = sample_episodes(model, env, seed, generator, temperature)
    # Teacher-forced like the reference's (not the log-probs recorded while sampling, equal only to
    # rounding), so that a policy equal to its reference measures a KL of exactly 0.
    kl = ((sequence_logprobs(model, batch, temperature) - reference_logprobs(batch)) * batch.completion_mask).sum(1)
    metrics = {
        "score_mean": float(batch.scores.mean()),
        "score_std": float(batch.scores.std()),
        "kl": float(kl.mean()),
        "completion_length": float(batch.completion_mask.sum(1).float().mean()),
    }
    if gold is not None:
        gold_scores = check_scores(gold(batch.prompts, batch.completions), len(batch.completions), "the gold scorer")
        metrics["gold_mean"] = float(np.mean(gold_scores))
    return metrics, batch
