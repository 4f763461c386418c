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


def forward_with_cache(
    model: torch.nn.Module, input_ids: torch.Tensor, kv_cache: Any = None, **kwargs: Any
) -> tuple[torch.Tensor, Any]:
    """``model(input_ids, <cache>=kv_cache, use_cache=True, **kwargs)`` returning ``(logits, new_cache)``."""
    # A peft wrapper forwards **kwargs: ask the wrapped model which name it takes.
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    output = model(input_ids=input_ids, use_cache=True, **{_cache_keyword(type(base)): kv_cache}, **kwargs)
    new_cache = output["cache"] if "cache" in output.keys() else output["past_key_values"]
    return output.logits, new_cache
