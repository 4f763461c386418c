"""Label completions in the terminal: 0/1 labels or A/B preferences, appended durably to a feedback JSONL file.

    text-envs-label --annotator alice --feedback-file feedback/alice.jsonl          # 20 sampled completions
    text-envs-label --annotator alice --feedback-file feedback/alice.jsonl --mode compare \\
        --model runs/text/checkpoint --num-items 50 --seed 1
    text-envs-label --annotator alice --feedback-file feedback/alice.jsonl --completions items.jsonl

Items are sampled from ``--model`` (default: the embedded LM) on prompts drawn from ``--prompts``,
or read from ``--completions`` (JSONL: ``prompt`` and ``completion`` per line to label, ``prompt``,
``completion_a`` and ``completion_b`` to compare). Keys: ``0``/``1`` or ``a``/``b``, ``s`` skip,
``u`` undo, ``q`` quit. Every answer is on disk before the next question, so running the same
command again (same ``--seed`` and ``--num-items`` when sampling) resumes with the items this
annotator has not judged. The session loop lives in :mod:`text_envs.feedback.labelling`; the records are
described in :mod:`text_envs.feedback.records`.
"""

from __future__ import annotations

import functools
import getpass
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from text_envs.defaults import DEFAULT_PROMPTS_TRAIN
from text_envs_agents.cli.common import parse


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in the environment or the password database
        return "annotator"


@dataclass
class Args:
    annotator: str = field(default_factory=_login_name)
    """your id, stored on every record (the default is your login name)"""
    feedback_file: str = "runs/feedback/feedback.jsonl"
    """feedback JSONL file, appended to (text-envs-train-reward-model reads it with --labels / --comparisons)"""
    mode: Literal["label", "compare"] = "label"
    """label: 0/1 per completion; compare: a/b per pair of completions"""
    completions: str = ""
    """JSONL file of items to judge, instead of sampling them (empty: sample)"""
    model: str = ""
    """LM to sample from: Hugging Face Hub name or local folder (empty: the embedded LM)"""
    prompts: str = str(DEFAULT_PROMPTS_TRAIN)
    """prompts to sample from: a .txt/.jsonl file or a Hugging Face dataset"""
    num_items: int = 20
    """items to sample (compare: two completions each)"""
    seed: int = 0
    """seeds the prompt draw and the sampling; reuse it (and --num-items) to resume"""
    max_new_tokens: int = 40
    """most tokens per sampled completion"""


def parse_args(argv: Sequence[str] | None = None) -> Args:
    args = parse(Args, argv, __doc__)
    if args.completions and (args.model or args.prompts != str(DEFAULT_PROMPTS_TRAIN)):
        _error("--completions reads the items from a file; --model and --prompts are for sampling them")
    if args.num_items < 1 or args.max_new_tokens < 1:
        _error("--num-items and --max-new-tokens must be positive")
    if not args.annotator.strip():
        _error("--annotator must not be empty")
    return args


def _error(message: str) -> None:
    print(f"text-envs-label: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def sample_items(args: Args) -> list:
    import numpy as np

    from text_envs.feedback.labelling import items_from_samples
    from text_envs.generation.prompts import load_prompts
    from text_envs_agents import sample_completions

    prompts = load_prompts(args.prompts)
    rng = np.random.default_rng(args.seed)
    chosen = [prompts[i] for i in rng.choice(len(prompts), size=args.num_items, replace=args.num_items > len(prompts))]
    print(f"sampling {args.num_items} item(s) from {args.model or 'the embedded LM'} ...", flush=True)
    samples = sample_completions(
        chosen,
        args.model or None,
        num_samples=1 if args.mode == "label" else 2,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
    )
    return items_from_samples(samples, args.mode)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    from text_envs.feedback.labelling import label_items, read_completions

    show = functools.partial(print, flush=True)  # flushed, so a person (or a test) sees each question at once
    if not args.completions:
        items = sample_items(args)
    else:
        items, problems = read_completions(args.completions, args.mode)
        for problem in problems:
            show(f"warning: {problem}")
    Path(args.feedback_file).parent.mkdir(parents=True, exist_ok=True)
    try:
        summary = label_items(items, args.feedback_file, args.annotator, args.mode, input_fn=input, output_fn=show)
    except KeyboardInterrupt:
        show(f"\ninterrupted: every answer so far is saved in {args.feedback_file}; run again to resume")
        sys.exit(130)
    show(
        f"{summary.judged} judged, {summary.skipped} skipped, {summary.undone} undone this session; "
        f"{summary.remaining} left" + ("; run again to resume" if summary.remaining else "")
    )


if __name__ == "__main__":
    main()
