"""Sample completions of trained policies for a labelling round: the items of a new feedback round.

    python scripts/sample_for_labelling.py --checkpoint runs/text/checkpoint --source demo-policy \\
        --prompts text_envs/defaults/prompts_train.jsonl --num-prompts 96 --seed 21 --items-file round2_items.jsonl

``--checkpoint`` is a TextPPO checkpoint (``text-envs-train``'s ``checkpoint/``) or empty for the embedded LM;
``--num-prompts`` prompts are drawn without replacement from ``--prompts`` with ``--seed`` and one completion
of each is sampled as the policy is trained to sample (temperature 1, its own full distribution). Each line of
``--items-file`` (appended to) holds ``prompt``, ``completion`` and ``source``: what ``text-envs-label
--completions`` reads, and what the annotator of ``GUIDELINES.md`` labels.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import tyro

from text_envs.defaults import DEFAULT_PROMPTS_TRAIN


@dataclass
class Args:
    checkpoint: str = ""
    """TextPPO checkpoint folder (empty: the embedded LM itself)"""
    source: str = "default-lm"
    """what the ``source`` field of every item says (which policy wrote it)"""
    prompts: str = str(DEFAULT_PROMPTS_TRAIN)
    """prompt file to draw from"""
    num_prompts: int = 96
    """prompts drawn without replacement, one completion each"""
    seed: int = 0
    """seeds the prompt draw and the sampling"""
    max_new_tokens: int = 24
    """most tokens per completion (the training budget of text-envs-train)"""
    items_file: str = "runs/feedback/items.jsonl"
    """JSONL file the items are appended to"""


def main(argv: Sequence[str] | None = None) -> None:
    args = tyro.cli(Args, args=argv, description=__doc__.strip().split("\n")[0])
    import numpy as np
    import torch

    from text_envs import TextGenerationVectorEnv
    from text_envs.durable import append_line
    from text_envs.generation.prompts import load_prompts
    from text_envs.lm import load_causal_lm
    from text_envs_agents.llm.evaluation import evaluate_text_policy
    from text_envs_agents.llm.rollout import sequence_logprobs
    from text_envs_agents.text_ppo import TextPPO

    torch.set_num_threads(1)
    prompts = load_prompts(args.prompts)
    if not 1 <= args.num_prompts <= len(prompts):
        raise SystemExit(f"--num-prompts must be in 1..{len(prompts)} (the prompts of {args.prompts})")
    drawn = np.random.default_rng(args.seed).choice(len(prompts), args.num_prompts, replace=False)
    chosen = [prompts[i] for i in drawn]
    env = TextGenerationVectorEnv(
        min(32, len(chosen)),
        prompts=chosen,
        reward_model=lambda p, c: np.zeros(len(c)),
        max_new_tokens=args.max_new_tokens,
    )
    if args.checkpoint:
        trainer = TextPPO.load(args.checkpoint, env=env)
        model = trainer.policy.model
    else:
        model = load_causal_lm()
    evaluation = evaluate_text_policy(model, lambda batch: sequence_logprobs(model, batch), env, seed=args.seed)
    for prompt, completion in zip(evaluation.prompts, evaluation.completions, strict=True):
        append_line(args.items_file, json.dumps({"prompt": prompt, "completion": completion, "source": args.source}))
    source = args.checkpoint or "the embedded LM"
    print(f"{len(evaluation.completions)} items from {source} appended to {args.items_file}")


if __name__ == "__main__":
    main()
