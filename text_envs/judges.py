"""Independent judges of completions: sentiment, fluency and diversity by tools no training step sees.

The reward model and the project's lexicon both judge sentiment only, and the policy is trained on one
of them, so a rising score can hide text that no reader would call fluent. These judges measure what
they miss, each named in the table it fills (:data:`JUDGED`):

- **gold sentiment**: VADER (Hutto & Gilbert 2014, the ``vaderSentiment`` package, which ships its lexicon;
  the ``text_envs[vader]`` extra), the compound score in [-1, 1] of the completion text alone;
- **fluency**: the perplexity of the completions given their prompts under a judge LM,
  ``exp(total NLL / total completion tokens)`` (:class:`PerplexityJudge`; the default judge is
  SmolLM2-135M-Instruct from the model registry), and the share of completions holding broken bytes
  (U+FFFD) or control characters;
- **diversity**: distinct-1 and distinct-2 (distinct word n-grams over all word n-grams of the
  completions), and the mean number of words.

Judge what the policy samples as it is trained to (temperature 1, no token bans), before and after
alike, so that decoding alone cannot move a judge.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

JUDGED = {
    "vader_mean": "gold sentiment, VADER compound (mean)",
    "perplexity": "perplexity of the completions given their prompts",
    "broken_share": "completions with broken bytes or control characters (share)",
    "distinct_1": "distinct-1 (distinct words / words)",
    "distinct_2": "distinct-2 (distinct word bigrams / bigrams)",
    "words_mean": "words per completion (mean)",
}
"""The keys :func:`judge_completions` returns, and what each measures."""

DEFAULT_JUDGE_LM = "smollm2-135m-instruct"
"""The default judge LM of :class:`PerplexityJudge`: a registered model (:mod:`text_envs.models`), apart from
the embedded LM the default runs train (a run that trains this model should judge with another)."""

NO_VADER = "no VADER figures: the vaderSentiment package is missing (pip install 'text_envs[vader]')"
"""What a table says when :func:`vader_available` is false."""


def judge_label(key: str, judge_name: str = "") -> str:
    """The heading of the figure ``key`` of :data:`JUDGED`, naming its judge: the perplexity's judge LM is
    ``judge_name`` (the others' judges are in their descriptions)."""
    if key == "perplexity":
        return f"{JUDGED[key]}, judged by {judge_name or 'no judge LM'}"
    return JUDGED[key]


@cache
def _vader():
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        raise ImportError("the VADER judge needs the vaderSentiment package: pip install 'text_envs[vader]'") from None
    return SentimentIntensityAnalyzer()


def vader_available() -> bool:
    """Whether the VADER judge can run (the ``vaderSentiment`` package is installed)."""
    try:
        _vader()
    except ImportError:
        return False
    return True


def vader_sentiment(prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
    """VADER's compound score in [-1, 1] of each completion's text alone (the prompts are not judged).

    A reward-model callable like any other, so it can also serve as a gold scorer or a reward.
    """
    analyzer = _vader()
    return np.array([analyzer.polarity_scores(text)["compound"] for text in completions], dtype=np.float64)


def broken_share(completions: Sequence[str]) -> float:
    """The share of completions holding U+FFFD (bytes that do not form UTF-8) or control characters other
    than tab, newline and carriage return."""
    if not completions:
        return 0.0
    return sum(_is_broken(text) for text in completions) / len(completions)


def _is_broken(text: str) -> bool:
    return any(c == "\ufffd" or (unicodedata.category(c) == "Cc" and c not in "\t\n\r") for c in text)


def distinct_n(completions: Sequence[str], n: int) -> float:
    """Distinct word n-grams over all word n-grams of the completions (lower-cased, split on whitespace);
    0.0 when there are none."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    grams = [
        tuple(words[i : i + n])
        for words in (text.lower().split() for text in completions)
        for i in range(len(words) - n + 1)
    ]
    return len(set(grams)) / len(grams) if grams else 0.0


class PerplexityJudge:
    """``exp(total NLL / total completion tokens)`` of completions given their prompts under a judge LM.

    Prompt and completion are tokenized apart and concatenated (the completion's tokens are the ones
    judged, whatever tokenizer the policy used); one forward per batch of ``batch_size``. ``model``: a
    registered name (:mod:`text_envs.models`), Hub name or folder; ``name`` is what the tables call it.
    """

    def __init__(self, model: str | Path = DEFAULT_JUDGE_LM, device: str = "auto", batch_size: int = 16) -> None:
        import torch

        from text_envs.lm import load_causal_lm, load_tokenizer, resolve_device

        self.device = resolve_device(device)
        self.model = load_causal_lm(model).to(self.device).requires_grad_(False)
        self.tokenizer = load_tokenizer(model)
        self.batch_size = batch_size
        self.name = Path(str(getattr(self.model.config, "_name_or_path", model))).name or str(model)
        self._torch = torch

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> float:
        """The perplexity over every completion token (``nan`` when the completions hold none).

        Rows are batched in order of length (less padding); the log-softmax is taken at the judged positions only.
        """
        torch = self._torch
        rows = [(self._ids(p), self._ids(c)) for p, c in zip(prompts, completions, strict=True)]
        rows = sorted((row for row in rows if row[1]), key=lambda row: len(row[0]) + len(row[1]))
        total_nll, total_tokens = 0.0, 0
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            width = max(len(p) + len(c) for p, c in batch)
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            judged = torch.zeros((len(batch), width), dtype=torch.bool)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, (prompt, completion) in enumerate(batch):
                sequence = prompt + completion
                ids[row, : len(sequence)] = torch.tensor(sequence)
                mask[row, : len(sequence)] = 1
                judged[row, len(prompt) : len(sequence)] = True
            ids, mask, targets = ids.to(self.device), mask.to(self.device), judged[:, 1:].to(self.device)
            with torch.no_grad():
                logits = self.model(input_ids=ids, attention_mask=mask).logits
            log_probs = torch.log_softmax(logits[:, :-1][targets].float(), dim=-1)
            total_nll -= float(log_probs.gather(-1, ids[:, 1:][targets][:, None]).sum())
            total_tokens += int(targets.sum())
        return math.exp(total_nll / total_tokens) if total_tokens else math.nan

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]


def load_perplexity_judge(model: str | Path, device: str = "auto") -> tuple[PerplexityJudge | None, str]:
    """The :class:`PerplexityJudge` of ``model`` and its name, or ``(None, why not)`` when ``model`` is empty
    or does not load (the reason names the error, for the table and the results to record)."""
    if not str(model):
        return None, "no judge LM asked for"
    try:
        judge = PerplexityJudge(model, device=device)
    except (OSError, ImportError) as error:  # a folder without weights, a wheel or the gguf package missing
        return None, f"no judge LM: {model} did not load ({type(error).__name__}: {error})"
    return judge, judge.name


def judge_completions(
    prompts: Sequence[str], completions: Sequence[str], perplexity_judge: PerplexityJudge | None = None
) -> dict[str, float]:
    """Every judged figure of :data:`JUDGED` for these completions (``prompts[i]`` is ``completions[i]``'s
    prompt; a prompt may repeat); ``perplexity`` only with a
    ``perplexity_judge``, ``vader_mean`` only where vaderSentiment is installed."""
    figures = {
        "broken_share": broken_share(completions),
        "distinct_1": distinct_n(completions, 1),
        "distinct_2": distinct_n(completions, 2),
        "words_mean": float(np.mean([len(text.split()) for text in completions])) if completions else 0.0,
    }
    try:
        figures["vader_mean"] = float(np.mean(vader_sentiment(prompts, completions)))
    except ImportError:
        pass
    if perplexity_judge is not None:
        figures["perplexity"] = perplexity_judge(prompts, completions)
    return figures
