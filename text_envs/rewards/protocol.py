"""The reward-model interface: batched ``score(prompts, completions) -> float32 array``.

Every reward model in the package (a plain callable wrapped by :class:`CallableRewardModel`, a
Hugging Face classifier, a model trained by this package, a person at the terminal) is a
:class:`RewardModel`, and every :class:`RewardModel` is also a callable
``(prompts, completions) -> scores``, which is what the TextGeneration envs take.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import numpy as np


class RewardModel(ABC):
    """Scores completions of prompts, one float per completion, in the model's own units."""

    @abstractmethod
    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """A ``float32`` array of shape ``(len(completions),)``."""

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        return self.score(prompts, completions)


def check_scores(scores: object, count: int, source: str) -> np.ndarray:
    """``scores`` as a finite ``float32`` array of length ``count``, else ``ValueError`` naming ``source``."""
    array = np.asarray(scores, dtype=np.float32).reshape(-1)
    if array.shape != (count,):
        raise ValueError(f"{source} returned {array.size} scores for {count} completions")
    if not np.isfinite(array).all():
        raise ValueError(f"{source} returned a non-finite score at index {int(np.flatnonzero(~np.isfinite(array))[0])}")
    return array


class CallableRewardModel(RewardModel):
    """Any ``fn(prompts, completions) -> sequence of floats`` as a :class:`RewardModel`.

    ``batch_size`` splits large calls into chunks (``None``: one call). The output is checked:
    one finite score per completion.
    """

    def __init__(self, fn: Callable[[list[str], list[str]], Sequence[float]], batch_size: int | None = None):
        if not callable(fn):
            raise TypeError(f"expected a callable (prompts, completions) -> scores, got {fn!r}")
        self.fn = fn
        self.batch_size = batch_size

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts for {len(completions)} completions")
        size = self.batch_size or max(1, len(completions))
        chunks = [
            check_scores(
                self.fn(list(prompts[i : i + size]), list(completions[i : i + size])),
                len(completions[i : i + size]),
                repr(self.fn),
            )
            for i in range(0, len(completions), size)
        ]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
