"""Any Hugging Face sequence classifier (sentiment, toxicity, hate speech, ...) as a reward model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from text_envs.lm import resolve_device

OUTPUTS = ("probability", "logit")


class ClassifierRewardModel:
    """The score of one class of a Hugging Face ``AutoModelForSequenceClassification``.

    Arguments:
    - ``name_or_path``: Hub name or local directory (``from_pretrained``; ``trust_remote_code`` off
      unless set).
    - ``label``: the class whose score is the reward, by index or by name as in the model's
      ``config.id2label`` (case-insensitive), e.g. ``"POSITIVE"`` for a sentiment model or
      ``"nothate"`` for a hate-speech model. Default: the last class (index ``num_labels - 1``).
    - ``output``: ``"probability"`` (softmax over classes, or sigmoid for a single-logit or
      multi-label model; in [0, 1]) or ``"logit"`` (the raw logit of that class, unbounded).
    - ``include_prompt``: score ``(prompt, completion)`` as a text pair instead of the completion
      alone (most classifiers were trained on single texts, hence off by default).
    - ``batch_size`` texts per forward; ``max_length`` tokens per text, longer ones truncated.
    - ``device`` (``"auto"``: CUDA when present): where the classifier runs. Each batch's tokens are
      moved there once; the scores come back as a ``float32`` numpy array, once per call.
    """

    def __init__(
        self,
        name_or_path: str | Path,
        label: int | str | None = None,
        output: str = "probability",
        include_prompt: bool = False,
        batch_size: int = 32,
        max_length: int = 512,
        trust_remote_code: bool = False,
        device: str | torch.device = "auto",
    ):
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(name_or_path), trust_remote_code=trust_remote_code)
            self.model = AutoModelForSequenceClassification.from_pretrained(
                str(name_or_path), trust_remote_code=trust_remote_code
            ).eval()
        except (OSError, ValueError) as error:
            raise OSError(f"could not load a sequence classifier from {str(name_or_path)!r}: {error}") from error
        self.device = resolve_device(device)
        self.model.to(self.device)
        self.label_index = self._label_index(label)
        self.output = output
        self.include_prompt = include_prompt
        self.batch_size = batch_size
        self.max_length = min(max_length, self.tokenizer.model_max_length)

    def _label_index(self, label: int | str | None) -> int:
        num_labels = self.model.config.num_labels
        if label is None:
            return num_labels - 1
        if isinstance(label, str):
            names = {str(name).lower(): int(index) for index, name in self.model.config.id2label.items()}
            if label.lower() not in names:
                raise ValueError(f"label {label!r} is not one of the model's labels {sorted(names)}")
            return names[label.lower()]
        if not 0 <= label < num_labels:
            raise ValueError(f"label index {label} is outside 0..{num_labels - 1}")
        return int(label)

    @torch.no_grad()
    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """One score per completion (a :class:`~text_envs.rewards.RewardModel`), ``float32``."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts for {len(completions)} completions")
        scores = []
        for start in range(0, len(completions), self.batch_size):
            texts = list(completions[start : start + self.batch_size])
            pairs = (list(prompts[start : start + self.batch_size]), texts) if self.include_prompt else (texts,)
            tokens = self.tokenizer(
                *pairs, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
            ).to(self.device)
            logits = self.model(**tokens).logits
            scores.append(self._from_logits(logits.float()))
        return torch.cat(scores).cpu().numpy() if scores else np.zeros(0, dtype=np.float32)

    def _from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        if self.output == "logit":
            return logits[:, self.label_index]
        if logits.shape[1] == 1 or self.model.config.problem_type == "multi_label_classification":
            return torch.sigmoid(logits[:, self.label_index])
        return torch.softmax(logits, dim=-1)[:, self.label_index]
