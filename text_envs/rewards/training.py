"""Training a reward model from a small number of human examples: binary labels and pairwise preferences.

- Labels (0/1, e.g. non-toxic / toxic, or the default task's "positive, fluent review"): binary
  cross-entropy on the reward logit.
- Comparisons (completion A preferred to B): the Bradley-Terry loss
  ``-log sigmoid(r_chosen - r_rejected - margin)`` (Christiano et al. 2017; Stiennon et al. 2020),
  plus an optional reward-centering term ``center_coefficient * mean((r_chosen + r_rejected)^2)``
  that keeps rewards near zero (as TRL's ``center_rewards_coefficient``).

Both kinds can be mixed; the loss is the mean over each kind, added. With a frozen backbone the
pooled encoder outputs are computed once and only the head trains (seconds on a CPU); with
``fine_tune=True`` the whole network trains. A seeded fraction of the training examples is held
out for validation and early stopping (the best validation loss wins); accuracies are reported on
training, validation and, when given, test examples: a label is right when ``sign(logit)`` matches
it, a comparison when the chosen completion scores higher.

The backbone is ``"minilm"`` (the packaged encoder), a registered model's name (:mod:`text_envs.models`),
a Hub name or a local folder. Training runs on ``device`` (``"auto"``: CUDA when present), where the
returned model stays.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from text_envs.lm import resolve_device
from text_envs.rewards.trained import (
    MINILM,
    RewardModelConfig,
    RewardNetwork,
    TrainedRewardModel,
    load_encoder,
    saved_backbone,
)

Record = dict[str, Any]


@dataclass
class RewardTrainingConfig:
    """Settings of :func:`train_reward_model`; saved with the model."""

    backbone: str = MINILM
    fine_tune: bool = False
    head_hidden: int = 128
    max_length: int = 128
    epochs: int = 300
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    validation_fraction: float = 0.15
    patience: int = 30
    margin: float = 0.0
    center_coefficient: float = 0.0
    output: str = "logit"
    seed: int = 0


@dataclass
class _Examples:
    """Texts flattened for the network: label examples, then both sides of each comparison."""

    prompts: list[str]
    completions: list[str]
    labels: torch.Tensor  # (n_labels,) float
    chosen: torch.Tensor  # (n_comparisons,) index into the texts
    rejected: torch.Tensor

    @classmethod
    def build(cls, labels: Sequence[Record], comparisons: Sequence[Record], device: torch.device) -> _Examples:
        """The texts, and the 0/1 labels on ``device`` beside the logits (the indices stay on the CPU)."""
        prompts = [r["prompt"] for r in labels]
        completions = [r["completion"] for r in labels]
        chosen, rejected = [], []
        for r in comparisons:
            first = len(prompts)
            prompts += [r["prompt"], r["prompt"]]
            completions += [r["completion_a"], r["completion_b"]]
            a_wins = r["choice"] == "a"
            chosen.append(first if a_wins else first + 1)
            rejected.append(first + 1 if a_wins else first)
        return cls(
            prompts,
            completions,
            torch.tensor([float(r["label"]) for r in labels], device=device),
            torch.tensor(chosen, dtype=torch.long),
            torch.tensor(rejected, dtype=torch.long),
        )


def _split(records: Sequence[Record], fraction: float, rng: np.random.Generator) -> tuple[list[Record], list[Record]]:
    order = rng.permutation(len(records))
    held = int(round(fraction * len(records)))
    return [records[i] for i in order[held:]], [records[i] for i in order[:held]]


def loss_and_accuracy(
    logits: torch.Tensor, examples: _Examples, config: RewardTrainingConfig
) -> tuple[torch.Tensor, float]:
    """Training loss and accuracy (labels and comparisons pooled) for logits over ``examples``' texts."""
    n_labels = len(examples.labels)
    loss = logits.new_zeros(())
    correct = 0.0
    if n_labels:
        label_logits = logits[:n_labels]
        loss = loss + nn.functional.binary_cross_entropy_with_logits(label_logits, examples.labels)
        correct += ((label_logits > 0).float() == examples.labels).sum().item()
    if len(examples.chosen):
        chosen, rejected = logits[examples.chosen], logits[examples.rejected]
        loss = loss - nn.functional.logsigmoid(chosen - rejected - config.margin).mean()
        if config.center_coefficient:
            loss = loss + config.center_coefficient * ((chosen + rejected) ** 2).mean()
        correct += (chosen > rejected).sum().item()
    total = n_labels + len(examples.chosen)
    return loss, correct / max(1, total)


def train_reward_model(
    labels: Sequence[Record] = (),
    comparisons: Sequence[Record] = (),
    config: RewardTrainingConfig | None = None,
    test_labels: Sequence[Record] = (),
    test_comparisons: Sequence[Record] = (),
    device: str | torch.device = "auto",
) -> TrainedRewardModel:
    """Train on feedback records (:mod:`text_envs.feedback.records`) on ``device`` (``"auto"``: CUDA when present);
    the metrics land in ``model.config.metrics``."""
    config = config or RewardTrainingConfig()
    device = resolve_device(device)
    if not labels and not comparisons:
        raise ValueError("no training examples: give label and/or comparison records")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train_labels, validation_labels = _split(labels, config.validation_fraction, rng)
    train_comparisons, validation_comparisons = _split(comparisons, config.validation_fraction, rng)
    splits = {
        "train": _Examples.build(train_labels, train_comparisons, device),
        "validation": _Examples.build(validation_labels, validation_comparisons, device),
        "test": _Examples.build(test_labels, test_comparisons, device),
    }
    encoder, tokenizer = load_encoder(config.backbone)
    network = RewardNetwork(encoder, config.head_hidden)
    model = TrainedRewardModel(
        network,
        tokenizer,
        RewardModelConfig(
            backbone=saved_backbone(config.backbone),
            fine_tuned=config.fine_tune,
            head_hidden=config.head_hidden,
            max_length=config.max_length,
            output=config.output,
        ),
        batch_size=config.batch_size,
        device=device,
    )
    if config.fine_tune:
        forward = _fine_tune_forward(model, splits)
        trained: nn.Module = network
    else:
        network.encoder.requires_grad_(False)
        forward = _frozen_forward(model, splits)
        trained = network.head
    optimizer = torch.optim.AdamW(trained.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    has_validation = len(splits["validation"].prompts) > 0
    best_loss, best_state, stale = float("inf"), copy.deepcopy(trained.state_dict()), 0
    history = []
    for _ in range(config.epochs):
        network.train()
        train_loss = _train_epoch(forward, splits["train"], optimizer, config, rng)
        network.eval()
        with torch.no_grad():
            validation_loss = (
                loss_and_accuracy(forward("validation"), splits["validation"], config)[0].item()
                if has_validation
                else train_loss
            )
        history.append((train_loss, validation_loss))
        if validation_loss < best_loss - 1e-6:
            best_loss, best_state, stale = validation_loss, copy.deepcopy(trained.state_dict()), 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    trained.load_state_dict(best_state)
    network.eval()
    metrics: dict[str, float] = {"epochs": float(len(history)), "best_validation_loss": best_loss}
    with torch.no_grad():
        for name, examples in splits.items():
            if len(examples.prompts):
                loss, accuracy = loss_and_accuracy(forward(name), examples, config)
                metrics[f"{name}_loss"], metrics[f"{name}_accuracy"] = loss.item(), accuracy
                metrics.update(_accuracy_by_kind(forward(name), examples, name))
    model.config.metrics = metrics
    model.config.training = {
        **asdict(config),
        "train_labels": len(train_labels),
        "train_comparisons": len(train_comparisons),
        "validation_labels": len(validation_labels),
        "validation_comparisons": len(validation_comparisons),
        "test_labels": len(test_labels),
        "test_comparisons": len(test_comparisons),
    }
    return model


def _accuracy_by_kind(logits: torch.Tensor, examples: _Examples, name: str) -> dict[str, float]:
    result = {}
    n_labels = len(examples.labels)
    if n_labels:
        result[f"{name}_label_accuracy"] = ((logits[:n_labels] > 0).float() == examples.labels).float().mean().item()
    if len(examples.chosen):
        result[f"{name}_comparison_accuracy"] = (
            (logits[examples.chosen] > logits[examples.rejected]).float().mean().item()
        )
    return result


def _frozen_forward(model: TrainedRewardModel, splits: dict[str, _Examples]):
    """Pool every text once (the encoder is frozen); the forward then only runs the head."""
    pooled = {}
    with torch.no_grad():
        for name, examples in splits.items():
            chunks = []
            for i in range(0, len(examples.prompts), model.batch_size):
                tokens = model.tokenize(
                    examples.prompts[i : i + model.batch_size], examples.completions[i : i + model.batch_size]
                )
                chunks.append(model.network.embed(**tokens))
            hidden_size = model.network.encoder.config.hidden_size
            pooled[name] = torch.cat(chunks) if chunks else torch.zeros(0, hidden_size, device=model.device)

    def forward(name: str, index: torch.Tensor | None = None) -> torch.Tensor:
        features = pooled[name] if index is None else pooled[name][index]
        return model.network.head(features).squeeze(-1)

    return forward


def _fine_tune_forward(model: TrainedRewardModel, splits: dict[str, _Examples]):
    """Run the whole network on the selected texts (the encoder trains too)."""

    def forward(name: str, index: torch.Tensor | None = None) -> torch.Tensor:
        examples = splits[name]
        chosen = range(len(examples.prompts)) if index is None else index.tolist()
        prompts = [examples.prompts[i] for i in chosen]
        completions = [examples.completions[i] for i in chosen]
        return torch.cat(
            [
                model.logits(prompts[i : i + model.batch_size], completions[i : i + model.batch_size])
                for i in range(0, len(prompts), model.batch_size)
            ]
        )

    return forward


def _train_epoch(
    forward,
    examples: _Examples,
    optimizer: torch.optim.Optimizer,
    config: RewardTrainingConfig,
    rng: np.random.Generator,
) -> float:
    """One pass over the training texts in shuffled mini-batches of label examples and comparisons."""
    n_labels, n_comparisons = len(examples.labels), len(examples.chosen)
    units = [("label", i) for i in range(n_labels)] + [("comparison", i) for i in range(n_comparisons)]
    order = rng.permutation(len(units))
    total = 0.0
    for start in range(0, len(units), config.batch_size):
        batch = [units[i] for i in order[start : start + config.batch_size]]
        label_index = torch.tensor([i for kind, i in batch if kind == "label"], dtype=torch.long)
        pair_index = torch.tensor([i for kind, i in batch if kind == "comparison"], dtype=torch.long)
        texts = torch.cat([label_index, examples.chosen[pair_index], examples.rejected[pair_index]])
        logits = forward("train", texts)
        sub = _Examples(
            [],
            [],
            examples.labels[label_index],
            torch.arange(len(label_index), len(label_index) + len(pair_index)),
            torch.arange(len(label_index) + len(pair_index), len(texts)),
        )
        loss, _ = loss_and_accuracy(logits, sub, config)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch)
    return total / max(1, len(units))
