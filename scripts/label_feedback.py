"""Label completions in the terminal: 0/1 labels or A/B preferences, appended durably to a feedback JSONL file.

    python scripts/label_feedback.py --output feedback/alice.jsonl --annotator alice            # 20 samples
    python scripts/label_feedback.py --output feedback/alice.jsonl --annotator alice --mode compare \\
        --policy runs/ppo/policy --num-items 50 --seed 1
    python scripts/label_feedback.py --output feedback/alice.jsonl --annotator alice --completions items.jsonl

Items are sampled from ``--policy`` (default: the embedded LM) on prompts drawn from ``--prompts``,
or read from ``--completions`` (JSONL: ``prompt`` and ``completion`` per line to label, ``prompt``,
``completion_a`` and ``completion_b`` to compare). Keys: ``0``/``1`` or ``a``/``b``, ``s`` skip,
``u`` undo, ``q`` quit. Every answer is on disk before the next question, so running the same
command again (same ``--seed`` and ``--num-items`` when sampling) resumes with the items this
annotator has not judged. The session loop lives in :mod:`text_envs.feedback.labelling`; the records are
described in :mod:`text_envs.feedback.records`.
"""

from __future__ import annotations

import argparse
import functools
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from text_envs.defaults import DEFAULT_PROMPTS_TRAIN
from text_envs.feedback.labelling import MODES, Item, items_from_samples, label_items, read_completions
from text_envs.generation.prompts import load_prompts
from text_envs_agents import sample_completions


@dataclass
class Args:
    output: str | None = field(default=None, metadata={"help": "feedback JSONL file, appended to", "required": True})
    annotator: str | None = field(default=None, metadata={"help": "your id, stored on every record", "required": True})
    mode: str = field(default="label", metadata={"help": "label (0/1 per completion) or compare (a/b per pair)"})
    completions: str | None = field(default=None, metadata={"help": "JSONL of items to judge, instead of sampling"})
    policy: str | None = field(
        default=None, metadata={"help": "Hub name or path of the LM to sample (default: the embedded LM)"}
    )
    prompts: str | None = field(default=None, metadata={"help": "prompts to sample from (default: embedded train set)"})
    num_items: int = field(default=20, metadata={"help": "items to sample (compare: two completions each)"})
    seed: int = field(
        default=0, metadata={"help": "seeds the prompt draw and the sampling; reuse it (and --num-items) to resume"}
    )
    max_new_tokens: int = field(default=40, metadata={"help": "most tokens per sampled completion"})


def parse_args(argv: list[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for arg in fields(Args):
        kind = {"int": int, "float": float}.get(arg.type, str)
        parser.add_argument(
            "--" + arg.name.replace("_", "-"),
            type=kind,
            default=arg.default,
            help=arg.metadata["help"],
            required=arg.metadata.get("required", False),
        )
    args = Args(**vars(parser.parse_args(argv)))
    if args.mode not in MODES:
        parser.error(f"--mode must be one of {MODES}")
    if args.completions is not None and (args.policy is not None or args.prompts is not None):
        parser.error("--completions reads the items from a file; --policy and --prompts are for sampling them")
    if args.num_items < 1 or args.max_new_tokens < 1:
        parser.error("--num-items and --max-new-tokens must be positive")
    return args


def sample_items(args: Args) -> list[Item]:
    prompts = load_prompts(DEFAULT_PROMPTS_TRAIN if args.prompts is None else args.prompts)
    rng = np.random.default_rng(args.seed)
    chosen = [prompts[i] for i in rng.choice(len(prompts), size=args.num_items, replace=args.num_items > len(prompts))]
    print(f"sampling {args.num_items} item(s) from {args.policy or 'the embedded LM'} ...", flush=True)
    samples = sample_completions(
        chosen,
        args.policy,
        num_samples=1 if args.mode == "label" else 2,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
    )
    return items_from_samples(samples, args.mode)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    show = functools.partial(print, flush=True)  # flushed, so a person (or a test) sees each question at once
    if args.completions is None:
        items = sample_items(args)
    else:
        items, problems = read_completions(args.completions, args.mode)
        for problem in problems:
            show(f"warning: {problem}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    try:
        summary = label_items(items, args.output, args.annotator, args.mode, input_fn=input, output_fn=show)
    except KeyboardInterrupt:
        show(f"\ninterrupted: every answer so far is saved in {args.output}; run again to resume")
        sys.exit(130)
    show(
        f"{summary.judged} judged, {summary.skipped} skipped, {summary.undone} undone this session; "
        f"{summary.remaining} left" + ("; run again to resume" if summary.remaining else "")
    )


if __name__ == "__main__":
    main()
