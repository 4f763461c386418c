"""One cached decoding step across transformers versions (``past_key_values`` became ``cache`` in 5.x)."""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

import torch


@cache
def _cache_keyword(forward_class: type) -> str:
    parameters = inspect.signature(forward_class.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def _unwrapped_class(model: torch.nn.Module) -> type:
    # A peft wrapper forwards **kwargs: ask the wrapped model what it takes.
    return type(model.get_base_model() if hasattr(model, "get_base_model") else model)


def cache_keyword(model: torch.nn.Module) -> str:
    """The name of ``model.forward``'s KV-cache argument: ``cache`` (transformers 5.x) or ``past_key_values``."""
    return _cache_keyword(_unwrapped_class(model))


@cache
def _accepts_logits_to_keep(forward_class: type) -> bool:
    return "logits_to_keep" in inspect.signature(forward_class.forward).parameters


def accepts_logits_to_keep(model: torch.nn.Module) -> bool:
    """Whether ``model.forward`` takes ``logits_to_keep`` (the LM head on the last positions only)."""
    return _accepts_logits_to_keep(_unwrapped_class(model))


def forward_with_cache(
    model: torch.nn.Module, input_ids: torch.Tensor, kv_cache: Any = None, **kwargs: Any
) -> tuple[torch.Tensor, Any]:
    """``model(input_ids, <cache>=kv_cache, use_cache=True, **kwargs)`` returning ``(logits, new_cache)``."""
    output, new_cache = output_with_cache(model, input_ids, kv_cache, **kwargs)
    return output.logits, new_cache


def output_with_cache(model: torch.nn.Module, input_ids: torch.Tensor, kv_cache: Any = None, **kwargs: Any) -> tuple:
    """As :func:`forward_with_cache`, but returning the model's whole output (hidden states included)."""
    output = model(input_ids=input_ids, use_cache=True, **{cache_keyword(model): kv_cache}, **kwargs)
    new_cache = output["cache"] if "cache" in output.keys() else output["past_key_values"]
    return output, new_cache
