"""Reward-model scoring throughput (completions/s) at batch 32: the default reward model beside the gold lexicon.

    python scripts/bench_reward_model.py [--batch-size 32] [--batches 20] [--threads 1] [--json PATH]

Completions are held-out default-task reviews (about 30 tokens each); both scorers run in this
process on the same texts with ``torch.set_num_threads(--threads)``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import tyro

from text_envs.defaults.corpus import reviews
from text_envs.rewards.lexicon import lexicon_sentiment_reward
from text_envs.rewards.trained import default_reward_model


def completions_per_second(score: Callable, prompts: list[str], completions: list[str], batch_size: int) -> float:
    score(prompts[:batch_size], completions[:batch_size])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(completions), batch_size):
        score(prompts[i : i + batch_size], completions[i : i + batch_size])
    return len(completions) / (time.perf_counter() - start)


@dataclass
class Args:
    batch_size: int = 32
    """completions per scoring call"""
    batches: int = 20
    """timed calls per scorer"""
    threads: int = 1
    """torch.set_num_threads"""
    json: str = ""
    """write the figures to this path (empty: print only)"""


def main() -> None:
    args = tyro.cli(Args, description=__doc__.split("\n")[0])
    torch.set_num_threads(args.threads)

    texts = [text for text, _ in reviews(seed=4242, count=args.batch_size * args.batches)]
    split = [text.split(" ", 4) for text in texts]
    prompts = [" ".join(words[:4]) for words in split]
    completions = [" " + words[4] if len(words) > 4 else "" for words in split]
    model = default_reward_model()
    figures = {
        "default_reward_model": completions_per_second(model.score, prompts, completions, args.batch_size),
        "gold_lexicon": completions_per_second(lexicon_sentiment_reward, prompts, completions, args.batch_size),
    }
    print(f"scoring throughput at batch {args.batch_size}, torch threads {args.threads}")
    print("| scorer | completions/s |")
    print("|---|---:|")
    for name, rate in figures.items():
        print(f"| {name} | {rate:,.0f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "completions_per_second": figures,
                    "batch_size": args.batch_size,
                    "threads": args.threads,
                    "mean_completion_words": float(np.mean([len(c.split()) for c in completions])),
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
