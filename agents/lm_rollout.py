"""Sampling whole episodes from a causal LM through a TextGeneration vector env, and measuring them.

Shared by :class:`~agents.text_ppo.TextPPO` and ``scripts/train_text.py``: the LM samples one token per
env step for every env at once, feeding only the new token through its KV cache; the env keeps the
contexts and scores each finished completion (one batched reward-model call per step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from text_envs.kv_cache import forward_with_cache
from text_envs.text_generation_vector import TextGenerationVectorEnv


@dataclass
class RolloutBatch:
    """One episode per env: left-padded prompts, right-padded completions, reward-model scores."""

    prompt_ids: torch.Tensor  # (batch, longest prompt), left-padded
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor  # (batch, longest completion), right-padded with pad ids
    completion_mask: torch.Tensor  # 1 for generated tokens, the stop token included
    scores: torch.Tensor  # (batch,)
    prompts: list[str]
    completions: list[str]

    def select(self, rows: torch.Tensor) -> RolloutBatch:
        """The episodes at ``rows``."""
        chosen = rows.tolist()
        return RolloutBatch(
            self.prompt_ids[rows],
            self.prompt_mask[rows],
            self.completion_ids[rows],
            self.completion_mask[rows],
            self.scores[rows],
            [self.prompts[i] for i in chosen],
            [self.completions[i] for i in chosen],
        )


def filler_token(env: TextGenerationVectorEnv) -> int:
    """A token that ends no episode: fed to envs whose episode is over while the batch finishes."""
    stop = env.task.stop_token_ids
    return next(t for t in (env.task.pad_token_id, *range(env.task.vocab_size)) if t not in stop)


@torch.no_grad()
def sample_episodes(
    model: nn.Module,
    env: TextGenerationVectorEnv,
    seed: int | None,
    generator: torch.Generator,
    temperature: float = 1.0,
) -> RolloutBatch:
    """One episode in every env of ``env``, sampled from ``model`` with its KV cache.

    Envs whose episode ended keep being stepped with a filler token until the whole batch is done
    (the env restarts them; those second episodes are ignored and cannot finish within the batch).
    """
    n, max_new = env.num_envs, env.task.max_new_tokens
    observations, info = env.reset(seed=seed)
    prompts = [str(p) for p in info["prompt"]]
    # The env pads every context to its full window; only the columns of the longest prompt matter.
    width = int(observations["attention_mask"].sum(1).max())
    prompt_ids = torch.as_tensor(observations["input_ids"][:, -width:])
    prompt_mask = torch.as_tensor(observations["attention_mask"][:, -width:])
    completion = torch.full((n, max_new), env.task.pad_token_id, dtype=torch.long)
    completion_mask = torch.zeros((n, max_new), dtype=torch.long)
    scores = torch.zeros(n)
    texts = [""] * n
    running = torch.ones(n, dtype=torch.bool)
    filler = torch.full((n,), filler_token(env), dtype=torch.long)
    mask = prompt_mask.clone()
    logits, cache = forward_with_cache(
        model, prompt_ids, None, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)
    )
    for step in range(max_new):
        probabilities = torch.softmax(logits[:, -1].float() / temperature, dim=-1)
        tokens = torch.where(running, torch.multinomial(probabilities, 1, generator=generator)[:, 0], filler)
        completion[running, step] = tokens[running]
        completion_mask[running, step] = 1
        _, rewards, terminated, truncated, info = env.step(tokens.numpy())
        ended = torch.as_tensor(terminated | truncated) & running
        for i in np.flatnonzero(ended.numpy()):
            scores[i], texts[i] = float(rewards[i]), info["completion"][i]
        running &= ~ended
        if not running.any():
            completion, completion_mask = completion[:, : step + 1], completion_mask[:, : step + 1]
            break
        mask = torch.cat([mask, torch.ones((n, 1), dtype=mask.dtype)], dim=1)
        logits, cache = forward_with_cache(
            model, tokens[:, None], cache, attention_mask=mask, position_ids=mask.sum(-1, keepdim=True) - 1
        )
    return RolloutBatch(prompt_ids, prompt_mask, completion, completion_mask, scores, prompts, texts)


def completion_window(batch: RolloutBatch) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Prompt + completion ids and mask, and the slice ``[start, end)`` of logits that predict the completion."""
    input_ids = torch.cat([batch.prompt_ids, batch.completion_ids], dim=1)
    mask = torch.cat([batch.prompt_mask, batch.completion_mask], dim=1)
    start = batch.prompt_ids.shape[1] - 1  # the logits at position p predict token p + 1
    return input_ids, mask, start, input_ids.shape[1] - 1


def sequence_logprobs(model: nn.Module, batch: RolloutBatch, temperature: float = 1.0) -> torch.Tensor:
    """``log p(token)`` of every completion token under ``model``, one teacher-forced forward: ``(batch, max_new)``."""
    input_ids, mask, start, end = completion_window(batch)
    logits = model(input_ids=input_ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits
    log_probs = torch.log_softmax(logits[:, start:end].float() / temperature, dim=-1)
    return log_probs.gather(-1, batch.completion_ids.unsqueeze(-1)).squeeze(-1)


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
    batch = sample_episodes(model, env, seed, torch.Generator().manual_seed(seed), temperature)
    kl = ((sequence_logprobs(model, batch, temperature) - reference_logprobs(batch)) * batch.completion_mask).sum(1)
    metrics = {
        "score_mean": float(batch.scores.mean()),
        "score_std": float(batch.scores.std()),
        "kl": float(kl.mean()),
        "completion_length": float(batch.completion_mask.sum(1).float().mean()),
    }
    if gold is not None:
        metrics["gold_mean"] = float(np.mean(gold(batch.prompts, batch.completions)))
    return metrics, batch
