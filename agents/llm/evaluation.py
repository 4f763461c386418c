"""Evaluating a text policy: sample completions on a vector env and measure them against a reference.

:func:`evaluate_text_policy` is the one evaluation of text policies: ``text-envs-train``'s before/after table
and ``metrics.json``, the benchmark's text cells, the shaping sweep and ``text-envs-rlhf-loop`` all report its
figures: the reward-model score and KL beside the independent judges of :mod:`text_envs.judges`, over every
held-out prompt the same number of times. :func:`evaluate_lm` is its quick form on one batch (TextPPO's
:meth:`~text_envs_agents.text_ppo.TextPPO.evaluate`, no judges).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from text_envs.generation.vector_env import TextGenerationVectorEnv
from text_envs.judges import PerplexityJudge, judge_completions
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
    kl = _sequence_kl(model, reference_logprobs, batch, temperature)
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


def _sequence_kl(
    model: nn.Module,
    reference_logprobs: Callable[[RolloutBatch], torch.Tensor],
    batch: RolloutBatch,
    temperature: float,
) -> torch.Tensor:
    """``sum log π - log π_ref`` over each episode's completion tokens, ``(batch,)``.

    Teacher-forced like the reference's (not the log-probs recorded while sampling, equal only to rounding),
    so that a policy equal to its reference measures a KL of exactly 0.
    """
    return ((sequence_logprobs(model, batch, temperature) - reference_logprobs(batch)) * batch.completion_mask).sum(1)


@dataclass(frozen=True)
class TextPolicyEvaluation:
    """What :func:`evaluate_text_policy` measured, and the completions it measured (prompt order, round by round)."""

    metrics: dict[str, float]
    prompts: list[str]
    completions: list[str]
    scores: np.ndarray  # the reward-model score of each completion


@torch.no_grad()
def evaluate_text_policy(
    model: nn.Module,
    reference_logprobs: Callable[[RolloutBatch], torch.Tensor],
    env: TextGenerationVectorEnv,
    *,
    seed: int = 0,
    samples_per_prompt: int = 1,
    scorers: Mapping[str, Callable] | None = None,
    perplexity_judge: PerplexityJudge | None = None,
) -> TextPolicyEvaluation:
    """Sample ``samples_per_prompt`` completions of every prompt of ``env`` and measure them all together.

    The prompts are taken in order, ``env.num_envs`` at a time (the last round's spare envs repeat the first
    prompts and are not counted), from one generator seeded with ``seed``: the same completions every call
    for the same model. The policy samples at temperature 1 from its own full distribution (no token bans),
    as the reference does here, so that decoding alone cannot move a judge; ``reference_logprobs`` gives the
    reference's log-probs of the sampled tokens at temperature 1.

    Metrics, pooled over every completion: ``score_mean``/``score_std`` of the env's reward model; ``kl``
    (nats per sequence, as :func:`evaluate_lm`); ``completion_length`` (tokens); ``{name}_mean`` and
    ``{name}_std`` for each of ``scorers`` (``(prompts, completions) -> scores`` callables never trained on,
    e.g. ``{"gold": lexicon_sentiment_reward}``, or an earlier round's reward model); and every figure of
    :func:`text_envs.judges.judge_completions` (VADER, broken text, distinct-n, words; perplexity with a
    ``perplexity_judge``); ``completions`` (how many were measured).
    """
    if samples_per_prompt < 1:
        raise ValueError(f"samples_per_prompt must be at least 1, got {samples_per_prompt}")
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    count = len(env.task.prompts)
    order = np.tile(np.arange(count), samples_per_prompt)
    prompts: list[str] = []
    completions: list[str] = []
    scores: list[np.ndarray] = []
    kls: list[np.ndarray] = []
    lengths: list[int] = []
    for start in range(0, order.size, env.num_envs):
        rows = order[start : start + env.num_envs]
        index = np.resize(rows, env.num_envs)  # spare envs of the last round repeat prompts; not counted
        batch = sample_episodes(model, env, seed + start, generator, prompt_index=index)
        kept = rows.size
        prompts += batch.prompts[:kept]
        completions += batch.completions[:kept]
        scores.append(batch.scores[:kept].double().cpu().numpy())
        kls.append(_sequence_kl(model, reference_logprobs, batch, 1.0)[:kept].double().cpu().numpy())
        lengths += batch.completion_lengths[:kept]
    score, kl = np.concatenate(scores), np.concatenate(kls)
    metrics = {
        "score_mean": float(score.mean()),
        "score_std": float(score.std(ddof=1)) if score.size > 1 else 0.0,
        "kl": float(kl.mean()),
        "completion_length": float(np.mean(lengths)),
        "completions": float(len(completions)),
    }
    for name, scorer in (scorers or {}).items():
        values = check_scores(scorer(prompts, completions), len(completions), f"the {name} scorer")
        metrics[f"{name}_mean"] = float(np.mean(values))
        metrics[f"{name}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    metrics.update(judge_completions(prompts, completions, perplexity_judge))
    return TextPolicyEvaluation(metrics, prompts, completions, score)
