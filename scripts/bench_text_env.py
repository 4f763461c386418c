"""Env overhead per token of TextGeneration-v0 beside the embedded LM's own cached forward per token.

    python scripts/bench_text_env.py [--num-envs 64] [--tokens 20000] [--model NAME] [--threads 1] [--json PATH]

Random actions and a trivial reward model (zeros), so the figures are the env's own cost: token
bookkeeping, observations, decoding finished completions and the reward call. The LM figure is the
default model decoding with its KV cache (one token per forward, after the prompt), at batch 1 for
the single env and at batch ``--num-envs`` for the vector env, in the same process and thread
setting. The target is env cost <= 5% of the LM's forward per token.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import tyro

import text_envs  # noqa: F401  (registers the envs)
from text_envs import TextGenerationEnv, TextGenerationVectorEnv
from text_envs.lm import forward_with_cache, load_causal_lm

MAX_NEW_TOKENS = 32


def zero_reward(prompts: list[str], completions: list[str]) -> np.ndarray:
    return np.zeros(len(completions))


def single_env_seconds_per_token(env: gym.Env, tokens: int) -> float:
    rng = np.random.default_rng(0)
    actions = rng.integers(env.action_space.n, size=tokens).tolist()
    env.reset(seed=0)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return (time.perf_counter() - start) / tokens


def vector_env_seconds_per_token(envs: TextGenerationVectorEnv, tokens: int) -> float:
    rng = np.random.default_rng(0)
    steps = max(1, tokens // envs.num_envs)
    actions = rng.integers(envs.single_action_space.n, size=(steps, envs.num_envs))
    envs.reset(seed=0)
    start = time.perf_counter()
    for step_actions in actions:
        envs.step(step_actions)
    return (time.perf_counter() - start) / (steps * envs.num_envs)


@torch.no_grad()
def lm_seconds_per_token(model, prompt_ids: torch.Tensor, batch: int, repeats: int = 5) -> float:
    """Cached decoding: prefill once (not timed), then one forward per new token for the whole batch."""
    ids = prompt_ids.expand(batch, -1)
    best = float("inf")
    for _ in range(repeats):
        logits, kv_cache = forward_with_cache(model, ids)
        next_ids = logits[:, -1].argmax(-1, keepdim=True)
        start = time.perf_counter()
        for _ in range(MAX_NEW_TOKENS):
            logits, kv_cache = forward_with_cache(model, next_ids, kv_cache)
            next_ids = logits[:, -1].argmax(-1, keepdim=True)
        best = min(best, (time.perf_counter() - start) / (MAX_NEW_TOKENS * batch))
    return best


@dataclass
class Args:
    num_envs: int = 64
    """envs of the vector env"""
    tokens: int = 20_000
    """env steps (single) or tokens (vector) to time"""
    model: str = ""
    """the LM whose cached forward the env is compared with, and the envs' tokenizer: Hugging Face Hub name or
    local folder (empty: the embedded LM)"""
    threads: int = 1
    """torch.set_num_threads for the LM forward"""
    json: str = ""
    """write the figures to this path (empty: print only)"""


def main() -> None:
    args = tyro.cli(Args, description=__doc__.split("\n")[0])
    torch.set_num_threads(args.threads)

    model = load_causal_lm(args.model or None)
    env_kwargs = dict(tokenizer=args.model or None, reward_model=zero_reward, max_new_tokens=MAX_NEW_TOKENS)
    single = TextGenerationEnv(**env_kwargs)
    made = gym.make("text_envs/TextGeneration-v0", **env_kwargs)
    vector = TextGenerationVectorEnv(args.num_envs, **env_kwargs)
    prompt_ids = torch.tensor([single.task.prompt_ids[0]])

    figures = {
        "single_env_us_per_token": 1e6 * single_env_seconds_per_token(single, args.tokens),
        "single_env_gym_make_us_per_token": 1e6 * single_env_seconds_per_token(made, args.tokens),
        "vector_env_us_per_token": 1e6 * vector_env_seconds_per_token(vector, args.tokens),
        "lm_batch1_us_per_token": 1e6 * lm_seconds_per_token(model, prompt_ids, 1),
        f"lm_batch{args.num_envs}_us_per_token": 1e6 * lm_seconds_per_token(model, prompt_ids, args.num_envs),
    }
    lm_single, lm_batch = figures["lm_batch1_us_per_token"], figures[f"lm_batch{args.num_envs}_us_per_token"]
    figures["single_env_share_of_lm"] = figures["single_env_us_per_token"] / lm_single
    figures["single_env_gym_make_share_of_lm"] = figures["single_env_gym_make_us_per_token"] / lm_single
    figures["vector_env_share_of_lm"] = figures["vector_env_us_per_token"] / lm_batch

    print(f"TextGeneration-v0, {MAX_NEW_TOKENS} new tokens per episode, torch threads {args.threads}")
    print("| path | env µs/token | LM cached forward µs/token | env / LM |")
    print("|---|---:|---:|---:|")
    print(
        f"| single env (unwrapped) | {figures['single_env_us_per_token']:.2f} | {lm_single:.1f} | "
        f"{figures['single_env_share_of_lm']:.1%} |"
    )
    print(
        f"| single env (gym.make) | {figures['single_env_gym_make_us_per_token']:.2f} | {lm_single:.1f} | "
        f"{figures['single_env_gym_make_share_of_lm']:.1%} |"
    )
    print(
        f"| vector env, N = {args.num_envs} | {figures['vector_env_us_per_token']:.2f} | {lm_batch:.1f} | "
        f"{figures['vector_env_share_of_lm']:.1%} |"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**figures, "num_envs": args.num_envs, "threads": args.threads}, f, indent=2)


if __name__ == "__main__":
    main()
