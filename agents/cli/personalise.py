"""Personalised RLHF: two simulated users with opposite tastes, one reward model and one policy each, compared.

    text-envs-personalise                                  # about 5 minutes here (2 cores, the embedded LM)
    text-envs-personalise --rounds 1 --items-per-round 40 --iterations 5 --judge-lm ""   # a smoke test
    python scripts/personalise.py --output-dir runs/personalise_seed1 --seed 1

Two **simulated** users (scripted annotators, :mod:`text_envs.feedback.annotators`; their records carry
``"simulated": true`` and annotator ids ``simulated-short-reviews`` / ``simulated-long-reviews``):
one wants short, punchy reviews (complete, at most ``--short-max-words`` words), the other long, detailed
ones (complete, at least ``--long-min-words`` words in two sentences or more). Each user runs its own
:mod:`text_envs_agents.rlhf_loop` (``--rounds`` rounds of ``--items-per-round`` items, reward models trained
on that user's records only) into ``--output-dir``/``<user id>/``; both loops share the seed, so both users
judge the same round-1 items. Then every model is evaluated on the
held-out prompts: the reference LM and each user's final policy, under **both** users' final reward
models, with the share of completions each simulated user would label 1, the KL to the reference and
the independent judges (VADER, the perplexity under ``--judge-lm``, distinct-2, words, broken text).
Personalisation worked when each user's policy scores higher under that user's reward model than the
other user's policy does. The table goes to the terminal and ``table.md``, every figure to
``results.json``. Timing (defaults, two shared cores, one torch thread): 4 min 52 s in the last run (2 rounds
x 150 comparisons + 32 held-out per user, 30 TextPPO iterations of 32 episodes per round), most of it TextPPO
and the SmolLM2 judge; a rerun resumes each user's loop and only redoes the table.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from text_envs.feedback.annotators import LongReviewAnnotator, ScriptedAnnotator, ShortReviewAnnotator
from text_envs_agents.cli.common import hiding_fields, parse
from text_envs_agents.cli.rlhf_loop import FROM_OWN_FLAGS, LoopSettings, loop_config
from text_envs_agents.text_ppo.config import TextPPOConfig


@dataclass
class Args(LoopSettings):
    rounds: int = 2
    """rounds of each user's loop"""
    items_per_round: int = 150
    """comparisons (or labels) each user makes per round, from the training prompts"""
    test_items_per_round: int = 32
    """held-out items each user judges per round: their reward model's test set"""
    iterations: int = 30
    """TextPPO iterations per round"""
    only_annotator_records: bool = True
    """train each user's reward model on that user's records only"""
    output_dir: str = "runs/personalise"
    """one loop folder per user, table.md and results.json"""
    short_max_words: int = 12
    """the short-reviews user labels 1 a complete completion of at most this many words"""
    long_min_words: int = 24
    """the long-reviews user labels 1 a complete completion of at least this many words (and 2 sentences)"""


def parse_args(argv: Sequence[str] | None = None) -> Args:
    return parse(Args, argv, __doc__, registry=hiding_fields(TextPPOConfig, FROM_OWN_FLAGS))


COLUMNS = {
    "kl": "KL (nats/seq)",
    "vader_mean": "VADER",
    "perplexity": "perplexity",
    "distinct_2": "distinct-2",
    "words_mean": "words",
    "broken_share": "broken",
}
"""The table's columns after the users' own: the KL to the reference and the independent judges
(:data:`text_envs.judges.JUDGED` says what each measures)."""


def print_table(rows: dict[str, dict[str, float]], users: Sequence[str], judge_name: str) -> str:
    """The table as Markdown (printed and returned): one row per model, the users' columns, then the judges."""
    names = [user.removeprefix("simulated-") for user in users]
    header = [f"{name} RM score" for name in names] + [f"{name} user: label 1" for name in names]
    header += [f"{title} ({judge_name})" if key == "perplexity" else title for key, title in COLUMNS.items()]
    lines = ["| model | " + " | ".join(header) + " |", "|---|" + "---:|" * len(header)]
    for model, metrics in rows.items():
        cells = [f"{metrics[f'{user}_reward_model_mean']:.3f}" for user in users]
        cells += [f"{metrics[f'{user}_accepts_mean']:.1%}" for user in users]
        cells += [f"{metrics[key]:.3f}" if key in metrics else "-" for key in COLUMNS]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    return text


def personalised(rows: dict[str, dict[str, float]], users: Sequence[str]) -> list[str]:
    """One line per user: does that user's policy score higher under that user's reward model than the other's?"""
    lines = []
    for user in users:
        other = next(u for u in users if u != user)
        own, others = (rows[f"{u} policy"][f"{user}_reward_model_mean"] for u in (user, other))
        verdict = "higher" if own > others else "NOT higher"
        lines.append(
            f"under {user}'s reward model: {user}'s policy {own:.3f}, {other}'s policy {others:.3f} ({verdict})"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    import functools

    import torch

    from text_envs.generation.vector_env import TextGenerationVectorEnv
    from text_envs.judges import NO_VADER, vader_available
    from text_envs_agents.llm.evaluation import evaluate_text_policy
    from text_envs_agents.rlhf_loop.loop import EVALUATION_ENVS, RLHFLoop

    torch.set_num_threads(args.threads)
    show = functools.partial(print, flush=True)
    config = loop_config(args)
    annotators = [ShortReviewAnnotator(args.short_max_words), LongReviewAnnotator(args.long_min_words)]
    output = Path(args.output_dir)
    loops = {}
    for annotator in annotators:
        show(f"\n=== {annotator.annotator_id} (simulated): {annotator.preference}")
        try:
            loop = RLHFLoop(
                config,
                annotator,
                output / annotator.annotator_id,
                device=args.device,
                progress_bar=args.progress_bar,
                log=show,
            )
            loop.run()
        except (ValueError, OSError) as error:  # another loop in the folder, a round that cannot go on
            print(f"text-envs-personalise: error: {error}", file=sys.stderr)
            raise SystemExit(2) from None
        loops[annotator.annotator_id] = loop

    users = list(loops)
    first = loops[users[0]]
    scorers: dict[str, Any] = {}
    for user, loop in loops.items():
        scorers[f"{user}_reward_model"] = loop.reward_model(config.rounds)
        scorers[f"{user}_accepts"] = functools.partial(_accepts, loop.annotator)
    env = TextGenerationVectorEnv(
        min(EVALUATION_ENVS, len(first.test_prompts)),
        tokenizer=config.model or None,
        prompts=first.test_prompts,
        reward_model=scorers[f"{users[0]}_reward_model"],
        max_new_tokens=config.max_new_tokens,
    )
    models = {
        "reference": first.reference,
        **{f"{u} policy": loops[u].policy(config.rounds).policy.model for u in users},
    }
    rows = {}
    for name, model in models.items():
        show(f"evaluating {name} ...")
        evaluation = evaluate_text_policy(
            model,
            first.reference_logprobs,
            env,
            seed=config.seed,
            samples_per_prompt=config.evaluation_samples_per_prompt,
            scorers=scorers,
            perplexity_judge=first.perplexity_judge,
        )
        rows[name] = evaluation.metrics
    judge_name = first.perplexity_judge.name if first.perplexity_judge else "no judge LM"
    show(
        f"\nheld-out prompts: {len(first.test_prompts)} x {config.evaluation_samples_per_prompt}; users simulated "
        f"(scripted annotators), {config.rounds} round(s) of {config.items_per_round} {config.mode} items each\n"
    )
    table = print_table(rows, users, judge_name)
    if not vader_available():
        show(NO_VADER)
    verdicts = personalised(rows, users)
    for line in verdicts:
        show(line)
    (output / "table.md").write_text(table + "\n" + "\n".join(verdicts) + "\n")
    results = {
        "users": {u: loops[u].state["annotator"] for u in users},
        "config": dataclasses.asdict(config),
        "judge_lm": judge_name,
        "rows": rows,
        "personalised": verdicts,
    }
    (output / "results.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    show(f"\ntable.md, results.json and each user's loop in {output}/")


def _accepts(annotator: ScriptedAnnotator, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
    """1.0 for each completion the simulated user would label 1 (its own rule, not a judge), else 0.0."""
    return np.array([annotator.accepts(p, c) for p, c in zip(prompts, completions, strict=True)], dtype=np.float64)


if __name__ == "__main__":
    main()
