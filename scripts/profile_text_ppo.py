"""Where a TextPPO iteration's time goes: rollout, reference forward, each pass's forward and backward, optimizer.

    python scripts/profile_text_ppo.py [--model smollm2-135m-instruct] [--batch-size 8] [--max-new-tokens 24]
                                       [--ppo-epochs 4] [--minibatch-size 8] [--iterations 3]
                                       [--mixed-precision no|bf16] [--gradient-checkpointing] [--threads 1]

Times the trainer's own methods by wrapping them (no code path changes): ``rollout``, ``_reference_logprobs``,
``_sequence_outputs`` (with gradients: the passes' forwards; without: the old policy's forward that bf16
mixed precision adds), ``Tensor.backward`` and the optimizer's ``step``; "other" is the rest of the
iteration (GAE, shaping, losses, bookkeeping). One warm-up iteration, then ``--iterations`` timed ones;
the table shows per-iteration medians (passes summed). Learning rate 1e-6 so that completion lengths stay
put from iteration to iteration; the lexicon reward, so that no reward model's cost is in the figures.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import tyro

from text_envs import TextGenerationVectorEnv
from text_envs.lm import load_causal_lm
from text_envs.rewards.lexicon import lexicon_sentiment_reward
from text_envs_agents.text_ppo import TextPPO, TextPPOConfig

PHASES = (
    "rollout",
    "reference forward",
    "old-policy forward",
    "pass forward",
    "pass backward",
    "optimizer step",
    "other",
    "total",
)


@dataclass
class Args:
    model: str = "smollm2-135m-instruct"
    """the policy LM: registered name, Hugging Face Hub name or local folder"""
    batch_size: int = 8
    max_new_tokens: int = 24
    ppo_epochs: int = 4
    minibatch_size: int = 8
    iterations: int = 3
    """timed iterations, after one untimed warm-up"""
    mixed_precision: Literal["no", "bf16"] = "no"
    gradient_checkpointing: bool = False
    device: str = "auto"
    threads: int = 1
    json: str = ""
    """write the per-iteration phases to this path (empty: print only)"""


def profile(args: Args) -> list[dict[str, float]]:
    torch.set_num_threads(args.threads)
    env = TextGenerationVectorEnv(
        args.batch_size, tokenizer=args.model, reward_model=lexicon_sentiment_reward, max_new_tokens=args.max_new_tokens
    )
    config = TextPPOConfig(
        learning_rate=1e-6,
        ppo_epochs=args.ppo_epochs,
        minibatch_size=args.minibatch_size,
        mixed_precision=args.mixed_precision,
        gradient_checkpointing=args.gradient_checkpointing,
    )
    trainer = TextPPO(env, load_causal_lm(args.model), config, sample_log_interval=None, device=args.device)
    seconds: defaultdict[str, float] = defaultdict(float)

    def timed(phase: str | Callable[[], str], function: Callable) -> Callable:
        def wrapper(*arguments, **keywords):
            if trainer.device.type == "cuda":
                torch.cuda.synchronize(trainer.device)
            start = time.perf_counter()
            output = function(*arguments, **keywords)
            if trainer.device.type == "cuda":
                torch.cuda.synchronize(trainer.device)
            seconds[phase() if callable(phase) else phase] += time.perf_counter() - start
            return output

        return wrapper

    trainer.rollout = timed("rollout", trainer.rollout)
    trainer._reference_logprobs = timed("reference forward", trainer._reference_logprobs)
    trainer._sequence_outputs = timed(
        lambda: "pass forward" if torch.is_grad_enabled() else "old-policy forward", trainer._sequence_outputs
    )
    trainer.optimizer.step = timed("optimizer step", trainer.optimizer.step)
    backward = torch.Tensor.backward
    torch.Tensor.backward = timed("pass backward", backward)
    try:
        trainer.learn(iterations=1)  # warm-up
        rows = []
        for _ in range(args.iterations):
            seconds.clear()
            start = time.perf_counter()
            trainer.learn(iterations=1)
            row = {phase: seconds.get(phase, 0.0) for phase in PHASES[:-2]}
            row["total"] = time.perf_counter() - start
            row["other"] = row["total"] - sum(seconds.values())
            row["completion_length"] = trainer.history[-1]["completion_length"]
            rows.append(row)
    finally:
        torch.Tensor.backward = backward
    return rows


def main() -> None:
    args = tyro.cli(Args)
    rows = profile(args)
    print(
        f"{args.model}, batch {args.batch_size}, <= {args.max_new_tokens} new tokens, {args.ppo_epochs} passes of "
        f"minibatch {args.minibatch_size}, mixed_precision={args.mixed_precision}, gradient_checkpointing="
        f"{args.gradient_checkpointing}, {args.threads} thread(s); median of {len(rows)} iterations"
    )
    print("| phase | seconds per iteration | min..max |\n|---|---:|---:|")
    for phase in PHASES:
        values = [row[phase] for row in rows]
        print(f"| {phase} | {statistics.median(values):.2f} | {min(values):.2f}..{max(values):.2f} |")
    lengths = [row["completion_length"] for row in rows]
    print(f"mean completion length: {statistics.median(lengths):.1f} tokens")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "iterations": rows}, indent=2))


if __name__ == "__main__":
    main()
