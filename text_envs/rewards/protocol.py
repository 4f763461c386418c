"""The reward-model protocol: a batched callable ``(prompts, completions) -> one score per completion``.

Every reward model in the package (a trained head on an encoder, a Hugging Face classifier, a person
at the terminal, the sentiment lexicon) and any plain function with that signature is a
:class:`RewardModel`. Scores are per sequence, in the model's own units.

What a reward model returns is checked in one place, :func:`check_scores`, by everything that calls
one (the TextGeneration envs, the batched adapter below): one finite number per completion. The
caller picks the precision: ``float32`` by default (what SB3's rollout buffers and torch training use,
and the shipped models compute in), ``float64`` for the envs, whose rewards keep a callable's values exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class RewardModel(Protocol):
    """Scores completions of prompts: ``reward_model(prompts, completions)`` gives one float per completion.

    Any array-like of numbers is accepted as the return value (a list, a numpy array, a tensor
    without gradients); :func:`check_scores` turns it into a finite ``float32`` array or says what is
    wrong with it.
    """

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> Any: ...


def check_scores(scores: Any, count: int, source: str, dtype: type = np.float32) -> np.ndarray:
    """``scores`` as a finite ``dtype`` array of length ``count``, else an error naming ``source``.

    ``TypeError`` for what is not a sequence of numbers (``None``, a string, a dict, a tensor that
    requires gradients); ``ValueError`` for the wrong number of scores or a non-finite one. Tensors
    on any device are accepted.
    """
    if scores is None or isinstance(scores, (str, bytes, dict)):
        raise TypeError(f"{source} returned {type(scores).__name__} {scores!r:.80}; expected {count} numbers")
    if getattr(scores, "requires_grad", False):
        raise TypeError(f"{source} returned a tensor that requires gradients; return scores.detach() (or numbers)")
    if hasattr(scores, "cpu"):  # a torch tensor, possibly on a GPU
        scores = scores.cpu()
    try:
        array = np.asarray(scores, dtype=dtype).reshape(-1)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{source} returned {scores!r:.80}, not {count} numbers: {error}") from None
    if array.shape != (count,):
        raise ValueError(f"{source} returned {array.size} scores for {count} completions")
    if not np.isfinite(array).all():
        index = int(np.flatnonzero(~np.isfinite(array))[0])
        raise ValueError(f"{source} returned {array[index]}, a non-finite score, for completion {index}")
    return array


class CallableRewardModel:
    """A reward-model callable run in chunks of ``batch_size`` completions (``None``: one call), each checked.

    For a function that cannot score a whole rollout batch at once (memory, an API's request limit).
    """

    def __init__(self, fn: Callable[[list[str], list[str]], Any], batch_size: int | None = None):
        if not callable(fn):
            raise TypeError(f"expected a callable (prompts, completions) -> scores, got {fn!r}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be positive or None, got {batch_size}")
        self.fn = fn
        self.batch_size = batch_size

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
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
