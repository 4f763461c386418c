"""The RLHF loop: K rounds of sample -> label -> retrain the reward model -> RL, resumable, each round in its folder.

    text-envs-rlhf-loop --annotator-id alice --rounds 3 --items-per-round 50    # a person labels at the terminal
    text-envs-rlhf-loop --annotator short-reviews --output-dir runs/loop_short  # a simulated user (scripted)
    text-envs-rlhf-loop --annotator my_annotators:Strict --mode label           # your own Annotator class
    text-envs-rlhf-loop --base-feedback text_envs/defaults/feedback/comparisons_train.jsonl ...   # earlier data too

Each round samples items from the current policy (round 1: the reference LM), has ``--annotator`` judge them
(``terminal``: a person, keys as in ``text-envs-label``; ``short-reviews`` / ``long-reviews``: the
simulated users of :mod:`text_envs.feedback.annotators`; ``module:name`` or ``file.py:name``: a plug-in
whose module must not import a judge), retrains the reward model on every round's records so far, runs
``--iterations`` TextPPO iterations against it from the previous round's policy (KL ``--beta`` to the
reference LM) and evaluates the policy and the reference on the held-out prompts with the independent
judges. Everything goes to ``--output-dir``: ``loop.json`` (the config and finished stages) and one
``round_k/`` per round. Running the same command again resumes; with a larger ``--rounds`` it appends
rounds. The loop is :mod:`text_envs_agents.rlhf_loop`.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from text_envs_agents.cli.common import hiding_fields, parse
from text_envs_agents.rlhf_loop.config import RLHFLoopConfig
from text_envs_agents.text_ppo.config import TextPPOConfig

if TYPE_CHECKING:
    from text_envs_agents.rlhf_loop.loop import RLHFLoopResult

# Set from the loop tools' own flags: --beta and --seed; LoRA is not offered (tyro cannot render its dict).
FROM_OWN_FLAGS = ("kl_coef", "seed", "lora")


@dataclass
class LoopSettings(RLHFLoopConfig):
    """The loop's config plus what the loop tools share: β, where and how they run."""

    beta: float = 0.1
    """KL coefficient β (reward units per nat) of TextPPO, to the reference LM"""
    output_dir: str = "runs/rlhf_loop"
    """loop.json and one round_k/ folder per round (items, feedback, reward model, policy, metrics)"""
    device: str = "auto"
    """where the LMs, reward models and the judge run: auto (CUDA when present), cpu, cuda, cuda:1"""
    threads: int = 1
    """torch.set_num_threads"""
    progress_bar: bool = True
    """show a progress bar while TextPPO trains"""


@dataclass
class Args(LoopSettings):
    annotator: str = "terminal"
    """who judges: terminal (you), short-reviews, long-reviews (simulated users), module:name or file.py:name"""
    annotator_id: str = ""
    """your id on every record, with --annotator terminal (empty: your login name)"""


def parse_args(argv: Sequence[str] | None = None) -> Args:
    return parse(Args, argv, __doc__, registry=hiding_fields(TextPPOConfig, FROM_OWN_FLAGS))


def loop_config(settings: LoopSettings) -> RLHFLoopConfig:
    """The loop's config from the flags: ``--seed`` also seeds TextPPO, ``--beta`` is its ``kl_coef``."""
    values: dict[str, Any] = {f.name: getattr(settings, f.name) for f in dataclasses.fields(RLHFLoopConfig)}
    values["ppo"] = dataclasses.replace(settings.ppo, kl_coef=settings.beta, seed=settings.seed)
    return RLHFLoopConfig(**values)


def print_rounds(result: RLHFLoopResult) -> None:
    """One row per finished round: its records, the reward model's held-out accuracy, reference vs policy."""
    print("\n| round | records (train/test) | reward-model test accuracy | score: reference -> policy | KL | words |")
    print("|---:|---:|---:|---:|---:|---:|")
    for metrics in result.rounds:
        records = metrics["records"]
        counts = [sum(records[name].get(kind, 0) for kind in ("label", "comparison")) for name in records]
        accuracy = metrics["reward_model"].get("test_accuracy")
        policy, reference = metrics["policy"], metrics["reference"]
        print(
            f"| {metrics['round']} | {counts[0]}/{counts[1]} | {'-' if accuracy is None else f'{accuracy:.1%}'} | "
            f"{reference['score_mean']:.3f} -> {policy['score_mean']:.3f} | {policy['kl']:.2f} | "
            f"{reference['words_mean']:.1f} -> {policy['words_mean']:.1f} |"
        )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    import torch

    from text_envs.feedback.annotators import load_annotator
    from text_envs.judges import NO_VADER, vader_available
    from text_envs_agents.rlhf_loop.loop import RLHFLoop

    torch.set_num_threads(args.threads)
    show = functools.partial(print, flush=True)  # flushed, so a person sees each question at once
    try:
        annotator = load_annotator(args.annotator, args.annotator_id)
        loop = RLHFLoop(
            loop_config(args), annotator, args.output_dir, device=args.device, progress_bar=args.progress_bar, log=show
        )
    except (ValueError, TypeError, ImportError, OSError) as error:
        print(f"text-envs-rlhf-loop: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        result = loop.run()
    except ValueError as error:  # a round that cannot go on (e.g. every item skipped): say why, keep everything
        print(f"text-envs-rlhf-loop: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        show(f"\ninterrupted: every finished stage and every answer is saved in {args.output_dir}; run again to resume")
        sys.exit(130)
    print_rounds(result)
    if not vader_available():
        show(NO_VADER)
    if result.stopped:
        show(f"\nstopped: {result.stopped}")
    show(f"\nloop.json and round folders in {args.output_dir}/")


if __name__ == "__main__":
    main()
