"""Language-model plumbing every env, reward model and agent shares: loading, peft unwrapping, position ids
and one cached decoding step across transformers versions.

``trust_remote_code`` is off unless the caller turns it on: a name on the Hub must not run code
from the Hub by default.
"""

from __future__ import annotations

import inspect
from functools import cache
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from text_envs.defaults import DEFAULT_LM_DIR
from text_envs.models import resolve_model


def load_tokenizer(
    name_or_path: str | Path | PreTrainedTokenizerBase | None = None, trust_remote_code: bool = False
) -> PreTrainedTokenizerBase:
    """A tokenizer by registered name (:mod:`text_envs.models`), Hub name or local directory (``None``: the
    embedded default); objects pass through."""
    if isinstance(name_or_path, PreTrainedTokenizerBase):
        return name_or_path
    source = DEFAULT_LM_DIR if name_or_path is None else resolve_model(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(str(source), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise OSError(f"could not load a tokenizer from {str(source)!r}: {_why(source, 'tokenizer')}") from error


def load_causal_lm(name_or_path: str | Path | None = None, trust_remote_code: bool = False) -> PreTrainedModel:
    """A causal LM by registered name (:mod:`text_envs.models`), Hub name or local directory (``None``: the
    embedded default), in eval mode."""
    source = DEFAULT_LM_DIR if name_or_path is None else resolve_model(name_or_path)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(source), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise OSError(f"could not load a causal LM from {str(source)!r}: {_why(source, 'model')}") from error
    return model.eval()


def _why(source: str | Path, what: str) -> str:
    path = Path(source)
    if path.exists():
        expected = "tokenizer.json / tokenizer_config.json" if what == "tokenizer" else "config.json and weights"
        return f"the path exists but holds no {what} files ({expected})"
    if str(source).startswith((".", "/", "~")) or path.suffix:
        return "no such file or directory"
    return "not a local directory, and not found on (or not reachable from) the Hugging Face Hub"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA when present, else the CPU; anything else as ``torch.device`` reads it (``"cuda:1"``).

    A CUDA device on a machine without CUDA is refused here, naming the argument, rather than at the first
    tensor moved there.
    """
    resolved = torch.device("cuda" if torch.cuda.is_available() else "cpu") if str(device) == "auto" else None
    if resolved is None:
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} asks for CUDA, which this machine lacks: use 'auto' or 'cpu'")
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device={str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return resolved


def unwrap_peft(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a ``peft`` wrapper (its modules carry the injected adapters); other models as they are."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids of left-padded rows: real tokens count from 0, pads get 0 (they are masked anyway)."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


@cache
def _cache_keyword(forward_class: type) -> str:
    parameters = inspect.signature(forward_class.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def _unwrapped_class(model: torch.nn.Module) -> type:
    # A peft wrapper forwards **kwargs: ask the wrapped model what it takes.
    return type(unwrap_peft(model))


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


def check_vocabulary(model: torch.nn.Module, vocab_size: int, owner: str) -> None:
    """Refuse a model with fewer token ids (LM-head rows) than the env's tokenizer, naming ``owner``.

    A larger vocabulary (embeddings padded to a multiple of 64, as many models ship) is fine: the
    extra logits are ignored.
    """
    model_vocab = model.get_output_embeddings().weight.shape[0]
    if model_vocab < vocab_size:
        raise ValueError(
            f"{owner} has {model_vocab} token ids but the env's tokenizer has {vocab_size}: "
            "use a model that shares the env's tokenizer"
        )
