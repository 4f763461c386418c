"""What the benchmark scripts share to compare contenders fairly on a noisy machine: one device and dtype for
all of them, the same stop rule, trials interleaved pair by pair, and ratios summarised by median and range.

On a shared machine the speed of the cores swings within a run, so timing one contender in one block and
then the other measures the machine as much as the code. Here every *round* runs one trial of each
contender back to back, in the given order on even rounds and reversed on odd ones (ABBA...), so
that a slow patch of the machine falls on both sides of a pair; a ratio is taken within each round,
and the median over rounds (with its min..max range) is reported.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from typing import Literal

import torch

from text_envs.lm import resolve_device

DeviceName = Literal["auto", "cpu", "cuda"]
DtypeName = Literal["float32", "bfloat16"]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def bench_device(name: DeviceName) -> torch.device:
    """:func:`~text_envs.lm.resolve_device` (``"auto"``: CUDA when present) as a command-line error: ``"cuda"``
    on a machine without it stops the benchmark before it starts."""
    try:
        return resolve_device(name)
    except ValueError as error:
        raise SystemExit(f"--device: {error}") from error


def synchronize(device: torch.device) -> None:
    """Wait for ``device`` (CUDA kernels run asynchronously), so that a clock read afterwards is true."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def generation_eos_ids(model: torch.nn.Module) -> list[int]:
    """The model's ``generation_config.eos_token_id`` as a list: the stop tokens ``generate`` and TRL use
    besides the tokenizer's EOS, which the env must stop at too for both sides to share one stop rule."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        return []
    return [int(eos)] if isinstance(eos, int) else [int(token) for token in eos]


def interleaved_rates(trials: Mapping[str, Callable[[int], float]], rounds: int) -> dict[str, list[float]]:
    """``rounds`` rounds of one trial per contender, ABBA order; each trial ``(round) -> rate`` (higher is faster).

    Warm-up is the caller's: these are all timed.
    """
    names = list(trials)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        for name in names if index % 2 == 0 else reversed(names):
            rates[name].append(trials[name](index))
    return rates


def ratio_summary(numerator: list[float], denominator: list[float]) -> dict[str, object]:
    """Per-round ratios ``numerator / denominator``, their median and their ``[min, max]`` range."""
    ratios = [a / b for a, b in zip(numerator, denominator, strict=True)]
    return {"median": statistics.median(ratios), "range": [min(ratios), max(ratios)], "per_pair": ratios}
