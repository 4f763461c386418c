"""A reward model that is a person: each completion is shown in the terminal and scored by hand."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from text_envs.feedback.records import append_record, make_item_id, make_record

SCALES = ("binary", "number")


def parse_score(answer: str, scale: str, low: float | None = None, high: float | None = None) -> float:
    """The score a person typed, or ``ValueError`` with a short explanation they can act on."""
    answer = answer.strip()
    if scale == "binary":
        if answer not in ("0", "1"):
            raise ValueError(f"type 0 or 1, not {answer!r}")
        return float(answer)
    try:
        score = float(answer)
    except ValueError:
        raise ValueError(f"{answer!r} is not a number") from None
    if not math.isfinite(score):
        raise ValueError(f"{answer!r} is not a finite number")
    if (low is not None and score < low) or (high is not None and score > high):
        raise ValueError(f"{answer} is outside {_range(low, high)}")
    return score


def _range(low: float | None, high: float | None) -> str:
    return f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"


class HumanReward:
    """A person scores each completion live in the terminal: the slow, honest baseline RLHF starts from.

    A :class:`~text_envs.rewards.RewardModel` like any other: ``TextGenerationEnv(reward_model=HumanReward())``.

    ## Description
    ``reward_model(prompts, completions)`` shows each prompt and completion in turn (with a
    ``[i/n]`` progress line) and asks for a score. A learned reward model imitates exactly these
    answers; plugging the person in directly (e.g. ``TextGenerationEnv(reward_model=HumanReward())``)
    is the ground truth it approximates, at human speed.

    ## Scores
    One per completion (per sequence), a ``float32`` array, in whatever units the person types:

    - ``scale="binary"``: ``0`` or ``1`` (1 = the completion is what the guidelines ask for).
    - ``scale="number"``: any finite number, within ``[low, high]`` (inclusive) when given.

    Any other answer (empty, not a number, ``nan``, ``inf``, out of bounds) is explained and asked
    again; the call returns only once every completion has a valid score. End of input
    (``EOFError``) and Ctrl-C propagate.

    ## Feedback records
    With ``feedback_path`` and ``annotator``, every score is also appended durably to that JSONL
    file (:func:`text_envs.feedback.records.append_record`): a ``label`` record on the binary scale, a
    ``score`` record on the number scale, with ``item_id = make_item_id("label" | "score", prompt,
    completion)``, the same ids ``text-envs-label`` uses, so a later labelling session
    skips what was already judged here.

    ## Arguments
    - ``scale``: ``"binary"`` (default) or ``"number"``.
    - ``low``, ``high``: optional bounds of the number scale.
    - ``input_fn``: asks a question and returns the answer (default :func:`input`).
    - ``output_fn``: shows a line of text (default :func:`print`).
    - ``feedback_path``, ``annotator``: where to record the scores and whose they are (both or neither).
    """

    def __init__(
        self,
        scale: str = "binary",
        low: float | None = None,
        high: float | None = None,
        input_fn: Callable[[str], str] = input,
        output_fn: Callable[[str], None] = print,
        feedback_path: str | Path | None = None,
        annotator: str | None = None,
    ):
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        if scale == "binary" and (low is not None or high is not None):
            raise ValueError("low and high bound the number scale; the binary scale is always 0 or 1")
        for name, bound in (("low", low), ("high", high)):
            if bound is not None and not math.isfinite(bound):
                raise ValueError(f"{name} must be a finite number, got {bound!r}")
        if low is not None and high is not None and low >= high:
            raise ValueError(f"low must be below high, got low={low}, high={high}")
        if (feedback_path is None) != (annotator is None):
            raise ValueError("give feedback_path and annotator together: every record says who judged it")
        self.scale = scale
        self.low = low
        self.high = high
        self.input_fn = input_fn
        self.output_fn = output_fn
        self.feedback_path = None if feedback_path is None else Path(feedback_path)
        self.annotator = annotator

    def __call__(self, prompts: list[str], completions: list[str]) -> np.ndarray:
        """Ask for a score of each completion; ``float32``, one per completion."""
        if len(prompts) != len(completions):
            raise ValueError(f"got {len(prompts)} prompts but {len(completions)} completions")
        question = "score 0 or 1: " if self.scale == "binary" else f"score, a number in {_range(self.low, self.high)}: "
        scores = np.empty(len(completions), dtype=np.float32)
        for index, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
            self.output_fn(f"[{index + 1}/{len(completions)}]\nprompt:     {prompt}\ncompletion: {completion}")
            score = self._ask(question)
            if self.feedback_path is not None:
                append_record(self.feedback_path, self._record(prompt, completion, score))
            scores[index] = score
        return scores

    def _ask(self, question: str) -> float:
        while True:
            try:
                return parse_score(self.input_fn(question), self.scale, self.low, self.high)
            except ValueError as error:
                self.output_fn(f"{error}; try again")

    def _record(self, prompt: str, completion: str, score: float) -> dict:
        if self.scale == "binary":
            item_id = make_item_id("label", prompt, completion)
            return make_record("label", item_id, self.annotator, prompt=prompt, completion=completion, label=int(score))
        item_id = make_item_id("score", prompt, completion)
        return make_record("score", item_id, self.annotator, prompt=prompt, completion=completion, score=score)
